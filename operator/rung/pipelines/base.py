"""The launcher interface: start a retraining run, and report how it went.

A launcher does I/O (the Kubernetes API, HTTP); what it sends is built by pure
functions next to it, unit-tested on their own. Launching is idempotent: the run's
name is decided (and written to status) before the launch, and launching a name
that already exists is not an error, so a relaunch after a crash is harmless.
"""

from __future__ import annotations

from typing import Protocol

from rung.api.resource import ModelDeployment
from rung.plan.observation import RunOutcome
from rung.plan.retraining import LaunchRequest

RUN_LABEL = "rung.dev/retraining-run"
REASON_ANNOTATION = "rung.dev/trigger-reason"
EVENT_TYPE = "dev.rung.retraining.requested"


class PipelineError(RuntimeError):
    """A run could not be launched or its state could not be read."""


class Launcher(Protocol):
    """One way of running a retraining pipeline."""

    name: str

    def launch(self, request: LaunchRequest) -> None:
        """Start the run `request.run`; an existing run of that name is fine.

        Raises PipelineError when the run cannot be started.
        """
        ...

    def outcome(self, md: ModelDeployment, run: str) -> RunOutcome:
        """Running, Succeeded, Failed (with the pipeline's reason) or NotFound.

        Raises PipelineError when the state cannot be read (then nothing is concluded).
        """
        ...


def run_parameters(request: LaunchRequest) -> dict[str, str]:
    """What every run receives: the model, its current version and the trigger reason."""
    return {
        "model": request.md.name,
        "namespace": request.md.namespace,
        "version": request.version,
        "storageUri": request.storage_uri,
        "reason": request.reason,
        "trigger": request.trigger,
        "run": request.run,
        **{f"data{k.capitalize()}": v for k, v in _data(request).items()},
    }


def _data(request: LaunchRequest) -> dict[str, str]:
    """The lineage of the model being retrained: dataset uri, version, digest ("" unknown)."""
    data = request.data
    return {
        "uri": data.uri if data else "",
        "version": (data.version or "") if data else "",
        "digest": (data.digest or "") if data else "",
    }


def run_env(request: LaunchRequest) -> dict[str, str]:
    """The same, as environment variables of a Job's containers."""
    return {
        "RUNG_MODEL_DEPLOYMENT": request.md.name,
        "RUNG_NAMESPACE": request.md.namespace,
        "RUNG_MODEL_VERSION": request.version,
        "RUNG_STORAGE_URI": request.storage_uri,
        "RUNG_TRIGGER_REASON": request.reason,
        "RUNG_TRIGGER": request.trigger,
        "RUNG_RUN": request.run,
        **{f"RUNG_DATA_{k.upper()}": v for k, v in _data(request).items()},
    }


def external_id(md: ModelDeployment, run: str) -> str:
    """A run's name outside the cluster (KFP display name, CloudEvent id).

    Run names restart at 1 when a ModelDeployment is deleted and created again; the
    uid keeps the new runs apart from the old ones.
    """
    return f"{md.namespace}/{run}.{md.uid[:8]}" if md.uid else f"{md.namespace}/{run}"


def api_error(error: object) -> str:
    """A short text of a kubernetes ApiException (status, reason and message)."""
    import json

    status = getattr(error, "status", None)
    reason = getattr(error, "reason", None)
    body = getattr(error, "body", None)
    message = ""
    try:
        message = str(json.loads(body or "{}").get("message") or "")
    except (ValueError, AttributeError):
        message = str(body or "")
    return f"{status} {reason}" + (f": {message[:300]}" if message else "")
