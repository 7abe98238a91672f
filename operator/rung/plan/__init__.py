"""Pure planning: what the world should look like, given a ModelDeployment. No I/O here."""

from rung.plan.kserve_package import register as _register_kserve_models

_register_kserve_models()  # kserve.models without KServe's model server (see the module)
