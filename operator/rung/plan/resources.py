"""Resource requirements of the spec as Kubernetes client models (pure)."""

from __future__ import annotations

from kubernetes.client import V1ResourceRequirements

from rung.api.spec import ResourceRequirements


def resource_requirements(resources: ResourceRequirements | None) -> V1ResourceRequirements | None:
    """`resources` for a container; quantities become strings, as the client expects."""
    if resources is None:
        return None
    return V1ResourceRequirements(
        requests=_quantities(resources.requests), limits=_quantities(resources.limits)
    )


def _quantities(values: dict[str, int | str] | None) -> dict[str, str] | None:
    return None if values is None else {k: str(v) for k, v in values.items()}
