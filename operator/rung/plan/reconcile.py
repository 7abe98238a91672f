"""The whole desired state of one ModelDeployment, from what was observed (pure).

`plan()` is the operator's brain: given the ModelDeployment, the live objects it
owns and what was measured, it returns the objects that should exist, the status
to write and the decisions (Events) to announce. Handlers do the I/O around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rung.api.resource import APPROVE_ANNOTATION, ModelDeployment
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
from rung.plan.analysis import Measurement, analysis_metrics, check, verdict
from rung.plan.apply_failure import keep_apply_failure
from rung.plan.events import Event, timestamp
from rung.plan.explainability import governance_conditions
from rung.plan.inference_service import (
    CANARY_HASH_ANNOTATION,
    MODEL_HASH_ANNOTATION,
    build_inference_service,
    model_hash,
)
from rung.plan.live import annotation
from rung.plan.monitoring import MonitoringPlan, plan_monitoring
from rung.plan.observation import AnalysisQuery, ClusterFeatures, Observation, SloReading
from rung.plan.reads import (
    analysis_queries,
    canary_on,
    rollout_settings,
    rollout_state,
    router_of,
    stable_targets,
)
from rung.plan.retraining import RETRAINING_READY, LaunchRequest, decide
from rung.plan.rollout import (
    Observed,
    RolloutState,
    advance,
)
from rung.plan.routers import Router, Traffic

__all__ = [
    "AnalysisQuery",
    "ClusterFeatures",
    "Event",
    "Observation",
    "Plan",
    "SloReading",
    "analysis_queries",
    "plan",
    "timestamp",
]


@dataclass
class Plan:
    """What the handler must make true."""

    desired: list[dict[str, Any]]
    """Owned objects that should exist; owned objects not listed are deleted."""
    status: ModelDeploymentStatus
    events: list[Event]
    launch: LaunchRequest | None = None
    """A retraining run to launch after the status write (same name again: idempotent)."""
    status_when_applied: ModelDeploymentStatus | None = None
    """While an earlier apply failure is kept in `status`: the status to write once the
    desired objects have been applied without error."""


def plan(obs: Observation) -> Plan:
    """Desired objects, status and events for one ModelDeployment."""
    md, now = obs.md, timestamp(obs.now)
    spec, old = md.spec, md.status
    ladder = capabilities(spec.maturity.level, spec.maturity.overrides)
    canary_running = canary_on(md, ladder)
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
        model=spec.model,
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

    router = router_of(md)
    rollout_phase: Phase | None = None
    if canary_running:
        state = rollout_state(md)
        assert state.stable is not None
        observed = _observe_rollout(obs, router, state)
        decision = advance(state, wanted, rollout_settings(md, ladder), observed, obs.now)
        events.extend(decision.events)
        history.extend(decision.history)
        stable, canary = decision.state.stable, decision.state.canary
        rollout_phase, analysis = decision.state.phase, decision.state.analysis
        rejected = decision.state.rejected
    else:
        stable, canary, analysis, rejected = _replace_directly(old, wanted, now, events, history)

    monitoring: MonitoringPlan | None = None
    if Capability.MONITORING in ladder:
        monitoring = plan_monitoring(md, obs.features, stable_targets(md, obs.live))
    annotations = monitoring.predictor_annotations if monitoring else {}
    assert stable.model is not None
    if Capability.CANARY in ladder:
        desired = router.objects(
            md,
            Traffic(
                stable=stable,
                canary=canary,
                canary_weight=canary.weight if canary else 0,
                promoting=rollout_phase == "Promoting",
                rolling_back=rollout_phase == "RollingBack",
                annotations=annotations,
            ),
        )
    else:
        desired = [build_inference_service(md, stable.model, extra_annotations=annotations)]
    desired += monitoring.objects if monitoring else []

    isvc = obs.inference_services.get(md.name)
    ready = cond.object_condition(isvc, "Ready")
    is_ready = _serving_ready(isvc, ready, stable, canary)
    failure = _failure(isvc)
    conditions = _conditions(
        old.conditions,
        md,
        stable,
        canary,
        rollout_phase,
        is_ready,
        ready,
        failure,
        now,
        rejected,
    )
    conditions, governance_events = governance_conditions(md, conditions, now)
    events.extend(governance_events)

    conditions, slo = _monitoring_status(conditions, monitoring, obs, now)
    retraining = old.retraining
    launch = None
    if Capability.RETRAINING in ladder:
        retrain = decide(md, obs.retraining_readings, obs.run_outcomes, obs.now)
        retraining, launch = retrain.status, retrain.launch
        events.extend(retrain.events)
        history.extend(retrain.history)
        if retrain.condition is not None:
            conditions = cond.set_condition(
                conditions, RETRAINING_READY, *retrain.condition, now=now, generation=md.generation
            )
    else:
        conditions = cond.remove_condition(conditions, RETRAINING_READY)

    phase: Phase
    if rollout_phase is not None:
        phase = rollout_phase
    else:
        phase = "Failed" if failure else ("Ready" if is_ready else "Progressing")
    status = ModelDeploymentStatus(
        observed_generation=md.generation,
        level=spec.maturity.level,
        capabilities=ladder.ordered(),
        phase=phase,
        inference_service=md.name,
        url=((isvc or {}).get("status") or {}).get("url"),
        stable=stable,
        canary=canary,
        rejected=rejected,
        analysis=analysis,
        slo=slo,
        retraining=retraining,
        history=history[-HISTORY_LIMIT:],
        conditions=conditions,
    )
    apply_failed = keep_apply_failure(old.conditions, obs.owned, desired)
    if apply_failed is None:
        return Plan(desired=desired, status=status, events=events, launch=launch)
    # An earlier apply failed and the objects are still not in place: status keeps
    # saying so until an apply succeeds (then `status_when_applied` is written).
    kept = status.model_copy(
        update={
            "conditions": [apply_failed if c.type == cond.DEGRADED else c for c in conditions],
            "phase": phase if rollout_phase is not None else "Failed",
        }
    )
    return Plan(
        desired=desired, status=kept, events=events, launch=launch, status_when_applied=status
    )


def _serving_ready(
    isvc: Mapping[str, Any] | None,
    ready: Mapping[str, Any] | None,
    stable: ModelRef,
    canary: ModelRef | None,
) -> bool:
    """Whether the InferenceService is Ready and serving the model status says it does.

    Serverless canaries carry only the canary's hash while KServe's previous revision
    serves stable, so either hash on a ready InferenceService counts.
    """
    serving = {
        h
        for h in (
            annotation(isvc, MODEL_HASH_ANNOTATION),
            annotation(isvc, CANARY_HASH_ANNOTATION),
        )
        if h
    }
    return (
        ready is not None
        and ready.get("status") == "True"
        and bool({stable.hash, canary.hash if canary else None} & serving)
    )


def _monitoring_status(
    conditions: list[Any], monitoring: MonitoringPlan | None, obs: Observation, now: str
) -> tuple[list[Any], SloSnapshot | None]:
    """MonitoringReady and the SLO snapshot, from this pass's reading (if one was due)."""
    md = obs.md
    if monitoring is None:
        return cond.remove_condition(conditions, cond.MONITORING_READY), None
    slo = md.status.slo
    if obs.slo is not None and obs.slo.error is not None:
        conditions = cond.set_condition(
            conditions,
            cond.MONITORING_READY,
            "False",
            "PrometheusUnreachable",
            obs.slo.error,
            now=now,
            generation=md.generation,
        )
    elif obs.slo is not None:
        slo = obs.slo.snapshot
        conditions = cond.set_condition(
            conditions,
            cond.MONITORING_READY,
            "True",
            "MetricsAvailable",
            monitoring.description,
            now=now,
            generation=md.generation,
        )
    elif cond.get_condition(conditions, cond.MONITORING_READY) is None:
        conditions = cond.set_condition(
            conditions,
            cond.MONITORING_READY,
            "Unknown",
            "AwaitingFirstReading",
            "the SLO indicators have not been read yet",
            now=now,
            generation=md.generation,
        )
    return conditions, slo


def _observe_rollout(obs: Observation, router: Router, state: RolloutState) -> Observed:
    md, live = obs.md, obs.live
    canary = state.canary
    if canary is None:
        return Observed()
    checks = None
    result = None
    if obs.measurements is not None:
        by_name = {m.name: m for m in analysis_metrics(md.spec)}
        checks = [
            check(Measurement(by_name[name], values[0], values[1]))
            for name, values in obs.measurements.items()
            if name in by_name
        ]
        if obs.analysis_error:
            checks = [c.model_copy(update={"message": obs.analysis_error}) for c in checks]
        on_no_data = (
            md.spec.rollout.analysis.on_no_data
            if md.spec.rollout and md.spec.rollout.analysis
            else "hold"
        )
        result = verdict(checks, on_no_data)
    return Observed(
        canary_ready=router.canary_ready(md, canary, live),
        live_weight=router.canary_weight(md, live),
        promoted=router.promoted(md, canary, live),
        promoted_in_place=router.promotes_in_place(md, state.stable, canary),
        verdict=result,
        checks=checks or (),
        approved_version=md.annotations.get(APPROVE_ANNOTATION),
    )


def _replace_directly(
    old: ModelDeploymentStatus,
    wanted: ModelRef,
    now: str,
    events: list[Event],
    history: list[HistoryEntry],
) -> tuple[ModelRef, None, Any, None]:
    """Below level 2 (or on first deployment) a model change replaces the model."""
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
    if old.canary is not None:
        events.append(
            Event(
                "CanaryAbandoned",
                f"canary rollouts are off: {wanted.version} is deployed directly",
                "Warning",
            )
        )
        history.append(
            HistoryEntry(
                time=now,
                event="CanaryAbandoned",
                message="canary capability switched off",
                version=old.canary.version,
            )
        )
    stable = wanted
    if old.stable is not None and old.stable.hash == wanted.hash:
        stable = wanted.model_copy(update={"predictor_name": old.stable.predictor_name})
    return stable, None, old.analysis, None


def _conditions(
    existing: list[Any],
    md: ModelDeployment,
    stable: ModelRef,
    canary: Any,
    rollout_phase: Phase | None,
    is_ready: bool,
    ready: Mapping[str, Any] | None,
    failure: str | None,
    now: str,
    rejected: ModelRef | None = None,
) -> list[Any]:
    gen = md.generation
    conditions = list(existing)
    if is_ready:
        conditions = cond.set_condition(
            conditions,
            cond.READY,
            "True",
            "InferenceServiceReady",
            f"model {stable.version} is serving",
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
    if canary is not None:
        progressing = {
            "Progressing": (
                "CanaryProgressing",
                f"canary {canary.version} at {canary.weight}% (step {canary.step + 1})",
            ),
            "Paused": ("AwaitingApproval", f"canary {canary.version} waits for approval"),
            "Promoting": ("Promoting", f"promoting {canary.version}"),
            "RollingBack": ("RollingBack", f"rolling back {canary.version}"),
        }.get(rollout_phase or "", ("CanaryProgressing", f"canary {canary.version}"))
        conditions = cond.set_condition(
            conditions,
            cond.PROGRESSING,
            "True",
            progressing[0],
            progressing[1],
            now=now,
            generation=gen,
        )
    elif is_ready:
        conditions = cond.set_condition(
            conditions,
            cond.PROGRESSING,
            "False",
            "Deployed",
            f"model {stable.version} is deployed",
            now=now,
            generation=gen,
        )
    else:
        conditions = cond.set_condition(
            conditions,
            cond.PROGRESSING,
            "True",
            "Deploying",
            f"deploying model {stable.version}",
            now=now,
            generation=gen,
        )
    if failure:
        conditions = cond.set_condition(
            conditions, cond.DEGRADED, "True", "ModelFailed", failure, now=now, generation=gen
        )
    elif rollout_phase == "RolledBack":
        version = rejected.version if rejected else (canary.version if canary else "the canary")
        conditions = cond.set_condition(
            conditions,
            cond.DEGRADED,
            "True",
            "RolledBack",
            f"{version} was rolled back; change spec.model to try again",
            now=now,
            generation=gen,
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
    return conditions


def _failure(isvc: Mapping[str, Any] | None) -> str | None:
    """KServe's own report that the model failed to load, if any."""
    model_status = ((isvc or {}).get("status") or {}).get("modelStatus") or {}
    if model_status.get("transitionStatus") in ("BlockedByFailedLoad", "InvalidSpec"):
        info = model_status.get("lastFailureInfo") or {}
        return str(info.get("message") or info.get("reason") or model_status["transitionStatus"])
    return None
