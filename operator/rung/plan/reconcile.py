"""The whole desired state of one ModelDeployment, from what was observed (pure).

`plan()` is the operator's brain for levels 0 and 1: given the ModelDeployment,
the live objects it owns and what was measured, it returns the objects that should
exist, the status to write and the decisions (Events) to announce. Handlers do the
I/O around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from rung.api.resource import ModelDeployment
from rung.api.status import (
    HISTORY_LIMIT,
    HistoryEntry,
    ModelDeploymentStatus,
    ModelRef,
    Phase,
    SloSnapshot,
)
from rung.ladder import Capability, capabilities
from rung.plan import conditions as cond
from rung.plan.inference_service import (
    MODEL_HASH_ANNOTATION,
    build_inference_service,
    model_hash,
)
from rung.plan.monitoring import MonitoringPlan, plan_monitoring


@dataclass(frozen=True)
class ClusterFeatures:
    """What the cluster offers, discovered once at start-up."""

    prometheus_operator: bool = False
    """PodMonitor/ServiceMonitor/PrometheusRule CRDs are installed."""
    gateway_api: bool = False
    """HTTPRoute CRD is installed."""


@dataclass(frozen=True)
class SloReading:
    """The outcome of reading the SLO indicators from Prometheus."""

    snapshot: SloSnapshot | None = None
    """What was measured, when Prometheus answered."""
    error: str | None = None
    """Why Prometheus could not be read, when it could not."""


@dataclass(frozen=True)
class Observation:
    """Everything the planner needs, read by the handler."""

    md: ModelDeployment
    now: datetime
    inference_services: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Live InferenceServices owned by the ModelDeployment, by name."""
    features: ClusterFeatures = ClusterFeatures()
    slo: SloReading | None = None
    """None when no reading was due (or monitoring is off)."""
    default_prometheus_url: str | None = None


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the ModelDeployment."""

    reason: str
    message: str
    type: Literal["Normal", "Warning"] = "Normal"


@dataclass
class Plan:
    """What the handler must make true."""

    desired: list[dict[str, Any]]
    """Owned objects that should exist; owned objects not listed are deleted."""
    status: ModelDeploymentStatus
    events: list[Event]


def timestamp(now: datetime) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes writes times."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def plan(obs: Observation) -> Plan:
    """Desired objects, status and events for one ModelDeployment."""
    md, now = obs.md, timestamp(obs.now)
    spec, old = md.spec, md.status
    ladder = capabilities(spec.maturity.level, spec.maturity.overrides)
    events: list[Event] = []
    history = list(old.history)
    if ladder.refused and old.capabilities != ladder.ordered():
        for refusal in ladder.refused:
            events.append(Event("CapabilityRefused", refusal, "Warning"))
            history.append(HistoryEntry(time=now, event="Refused", message=refusal))

    wanted = ModelRef(
        version=spec.model.version,
        storage_uri=spec.model.storage_uri,
        hash=model_hash(spec.model),
    )
    if old.stable is None:
        events.append(
            Event("Deploying", f"deploying model {wanted.version} from {wanted.storage_uri}")
        )
        history.append(
            HistoryEntry(
                time=now, event="Deployed", message="first deployment", version=wanted.version
            )
        )
    elif old.stable.hash != wanted.hash:
        events.append(
            Event(
                "ModelReplaced",
                f"replacing model {old.stable.version} with {wanted.version}"
                " (no canary below level 2)",
            )
        )
        history.append(
            HistoryEntry(
                time=now,
                event="ModelReplaced",
                message=f"{old.stable.version} -> {wanted.version}",
                version=wanted.version,
            )
        )
    if old.level is not None and old.level != spec.maturity.level:
        events.append(
            Event(
                "LevelChanged",
                f"maturity level {old.level} -> {spec.maturity.level}:"
                f" capabilities {', '.join(ladder.ordered())}",
            )
        )
        history.append(
            HistoryEntry(
                time=now, event="LevelChanged", message=f"{old.level} -> {spec.maturity.level}"
            )
        )

    monitoring: MonitoringPlan | None = None
    if Capability.MONITORING in ladder:
        monitoring = plan_monitoring(md, obs.features)
    isvc = build_inference_service(
        md,
        spec.model,
        extra_annotations=monitoring.predictor_annotations if monitoring else None,
    )
    desired: list[dict[str, Any]] = [isvc, *(monitoring.objects if monitoring else [])]

    live = obs.inference_services.get(md.name)
    ready = cond.object_condition(live, "Ready")
    is_ready = ready is not None and ready.get("status") == "True" and _serves(live, wanted)
    failure = _failure(live)
    conditions = list(old.conditions)
    gen = md.generation
    if is_ready:
        conditions = cond.set_condition(
            conditions,
            cond.READY,
            "True",
            "InferenceServiceReady",
            f"model {wanted.version} is serving",
            now=now,
            generation=gen,
        )
        conditions = cond.set_condition(
            conditions,
            cond.PROGRESSING,
            "False",
            "Deployed",
            f"model {wanted.version} is deployed",
            now=now,
            generation=gen,
        )
    else:
        reason = (ready or {}).get("reason") or "InferenceServiceNotReady"
        message = (ready or {}).get("message") or (
            "waiting for the InferenceService to become ready"
        )
        conditions = cond.set_condition(
            conditions, cond.READY, "False", reason, message, now=now, generation=gen
        )
        conditions = cond.set_condition(
            conditions,
            cond.PROGRESSING,
            "True",
            "Deploying",
            f"deploying model {wanted.version}",
            now=now,
            generation=gen,
        )
    if failure:
        conditions = cond.set_condition(
            conditions, cond.DEGRADED, "True", "ModelFailed", failure, now=now, generation=gen
        )
    else:
        conditions = cond.set_condition(
            conditions,
            cond.DEGRADED,
            "False",
            "AsExpected",
            "no failure reported",
            now=now,
            generation=gen,
        )

    slo = old.slo
    if monitoring is None:
        conditions = cond.remove_condition(conditions, cond.MONITORING_READY)
        slo = None
    elif obs.slo is not None:
        if obs.slo.error is not None:
            conditions = cond.set_condition(
                conditions,
                cond.MONITORING_READY,
                "False",
                "PrometheusUnreachable",
                obs.slo.error,
                now=now,
                generation=gen,
            )
        else:
            slo = obs.slo.snapshot
            conditions = cond.set_condition(
                conditions,
                cond.MONITORING_READY,
                "True",
                "MetricsAvailable",
                monitoring.description,
                now=now,
                generation=gen,
            )
    elif cond.get_condition(conditions, cond.MONITORING_READY) is None:
        conditions = cond.set_condition(
            conditions,
            cond.MONITORING_READY,
            "Unknown",
            "AwaitingFirstReading",
            "the SLO indicators have not been read yet",
            now=now,
            generation=gen,
        )

    phase: Phase = "Failed" if failure else ("Ready" if is_ready else "Progressing")
    status = ModelDeploymentStatus(
        observed_generation=gen,
        level=spec.maturity.level,
        capabilities=ladder.ordered(),
        phase=phase,
        inference_service=md.name,
        url=((live or {}).get("status") or {}).get("url"),
        stable=wanted,
        canary=None,
        analysis=old.analysis,
        slo=slo,
        retraining=old.retraining,
        history=history[-HISTORY_LIMIT:],
        conditions=conditions,
    )
    return Plan(desired=desired, status=status, events=events)


def _serves(isvc: Mapping[str, Any] | None, model: ModelRef) -> bool:
    """Whether the live InferenceService already carries `model` (by its hash)."""
    annotations = ((isvc or {}).get("metadata") or {}).get("annotations") or {}
    return bool(annotations.get(MODEL_HASH_ANNOTATION) == model.hash)


def _failure(isvc: Mapping[str, Any] | None) -> str | None:
    """KServe's own report that the model failed to load, if any."""
    model_status = ((isvc or {}).get("status") or {}).get("modelStatus") or {}
    if model_status.get("transitionStatus") in ("BlockedByFailedLoad", "InvalidSpec"):
        info = model_status.get("lastFailureInfo") or {}
        return str(info.get("message") or info.get("reason") or model_status["transitionStatus"])
    return None
