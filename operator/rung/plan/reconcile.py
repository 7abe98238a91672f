"""The whole desired state of one ModelDeployment, from what was observed (pure).

`plan()` is the operator's brain: given the ModelDeployment, the live objects it
owns and what was measured, it returns the objects that should exist, the status
to write and the decisions (Events) to announce. Handlers do the I/O around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from rung.api.resource import APPROVE_ANNOTATION, ModelDeployment
from rung.api.spec import TrainingData
from rung.api.status import (
    HISTORY_LIMIT,
    REVISION_LIMIT,
    AnalysisStatus,
    CanaryStatus,
    Condition,
    ConditionStatus,
    ModelDeploymentStatus,
    ModelRef,
    Phase,
    RejectedModel,
    RetrainingStatus,
    SloSnapshot,
)
from rung.ladder import Capability, LadderResult, capabilities
from rung.plan import conditions as cond
from rung.plan import reasons
from rung.plan.analysis import Measurement, check, stage_metrics, verdict
from rung.plan.apply_failure import keep_apply_failure
from rung.plan.commands import Commands, find_revision, read_commands
from rung.plan.events import Decided, Event, timestamp, with_lineage
from rung.plan.explainability import governance_conditions
from rung.plan.inference_service import (
    CANARY_HASH_ANNOTATION,
    MODEL_HASH_ANNOTATION,
    build_inference_service,
    model_hash,
)
from rung.plan.live import annotation, knative, predictor_ready, stable_predictor_name
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
from rung.plan.routers.llm import LLM_ROUTER, stable_serving

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
    decided = _ladder_changes(md, ladder, now)
    commands = read_commands(md.annotations)
    models = _models(obs, ladder, commands)
    decided += models.decided
    monitoring: MonitoringPlan | None = None
    if Capability.MONITORING in ladder:
        monitoring = plan_monitoring(md, obs.features, stable_targets(md, obs.live))
    desired = _desired(md, ladder, models, monitoring)

    isvc = obs.inference_services.get(md.name)
    ready = cond.object_condition(isvc, "Ready")
    is_ready = _serving_ready(isvc, ready, models.stable, models.canary) and (
        knative(isvc) or predictor_ready(obs.live, isvc, stable_predictor_name(isvc))
    )
    if router_of(md).name == LLM_ROUTER:
        hashes = {models.stable.hash, models.canary.hash if models.canary else None}
        isvc, ready = stable_serving(md, hashes, obs.live)
        is_ready = _serving_ready(isvc, ready, models.stable, models.canary)
    failure = _failure(isvc)
    conditions = _conditions(old.conditions, md, models, is_ready, ready, failure, now)
    conditions = _command_conditions(conditions, md, models, commands, now)
    conditions, governance_events = governance_conditions(md, conditions, now)
    decided += Decided(tuple(governance_events))
    conditions, slo = _monitoring_status(conditions, monitoring, obs, now)
    retraining, launch, conditions, retrained = _retraining(obs, ladder, conditions, now)
    decided += retrained

    phase: Phase
    if models.phase is not None:
        phase = models.phase
    else:
        phase = "Failed" if failure else ("Ready" if is_ready else "Progressing")
    status = ModelDeploymentStatus(
        observed_generation=md.generation,
        level=spec.maturity.level,
        capabilities=ladder.ordered(),
        capability_summary=",".join(ladder.ordered()),
        phase=phase,
        inference_service=md.name,
        url=((isvc or {}).get("status") or {}).get("url"),
        stable=models.stable,
        canary=models.canary,
        rejected=models.rejected,
        revisions=_revisions(old, models.stable),
        analysis=models.analysis,
        slo=slo,
        retraining=retraining,
        history=[*old.history, *with_lineage(decided.history, _lineage(md, models))][
            -HISTORY_LIMIT:
        ],
        conditions=conditions,
        gitops=old.gitops,
    )
    return _with_apply_failure(
        Plan(desired=desired, status=status, events=list(decided.events), launch=launch),
        models.phase,
        obs,
    )


def _lineage(md: ModelDeployment, models: _Models) -> dict[str, TrainingData]:
    """Model version -> the data it was trained on, for every version known this pass
    (the spec's wins: it is what the user says now)."""
    old = md.status
    refs = (old.rejected, old.canary, old.stable, models.rejected, models.canary, models.stable)
    known = {r.version: r.data for r in refs if r is not None and r.data is not None}
    if md.spec.model.data is not None:
        known[md.spec.model.version] = md.spec.model.data
    return known


@dataclass(frozen=True)
class _Models:
    """Which models serve, and the rollout's state, after this pass's decisions."""

    stable: ModelRef
    canary: CanaryStatus | None
    analysis: AnalysisStatus | None
    rejected: RejectedModel | None
    phase: Phase | None
    decided: Decided
    undone: ModelRef | None = None
    """The earlier model `rung undo` asked for, while it stands in for spec.model."""


def _ladder_changes(md: ModelDeployment, ladder: LadderResult, now: str) -> Decided:
    """Refused capabilities (once per change of the ladder) and a changed level."""
    old, level = md.status, md.spec.maturity.level
    decided = Decided()
    if ladder.refused and old.capabilities != ladder.ordered():
        for refusal in ladder.refused:
            event = Event(reasons.CAPABILITY_REFUSED, refusal, "Warning")
            decided += Decided.one(event, now, reasons.REFUSED)
    if old.level is not None and old.level != level:
        message = (
            f"maturity level {old.level} -> {level}: capabilities {', '.join(ladder.ordered())}"
        )
        event = Event(reasons.LEVEL_CHANGED, message)
        decided += Decided.one(event, now, message=f"{old.level} -> {level}")
    return decided


def _models(obs: Observation, ladder: LadderResult, commands: Commands) -> _Models:
    """The rollout state machine's next state at level 2+, else a direct replacement."""
    md, spec = obs.md, obs.md.spec
    wanted = ModelRef(
        version=spec.model.version,
        storage_uri=spec.model.location(),
        hash=model_hash(spec.model),
        model=spec.model,
    )
    undone = _undo_target(md, commands, wanted)
    decided = _undo_started(md, commands, undone, wanted, timestamp(obs.now))
    wanted = undone or wanted
    if not canary_on(md, ladder):
        stable, replaced = _replace_directly(md.status, wanted, timestamp(obs.now))
        return _Models(
            stable, None, md.status.analysis, None, None, decided + replaced, undone=undone
        )
    state = rollout_state(md)
    observed = _observe_rollout(obs, router_of(md), state, commands)
    decision = advance(state, wanted, rollout_settings(md, ladder), observed, obs.now)
    new = decision.state
    decided += Decided(tuple(decision.events), tuple(decision.history))
    return _Models(
        new.stable, new.canary, new.analysis, new.rejected, new.phase, decided, undone=undone
    )


def _undo_target(md: ModelDeployment, commands: Commands, wanted: ModelRef) -> ModelRef | None:
    """The earlier stable model `rung undo` asked for, while spec.model is still the one
    in force when it was asked (a new spec.model rolls forward and ends the undo)."""
    undo = commands.undo
    if undo is None or undo.spec != wanted.hash or undo.to == wanted.hash:
        return None
    old = md.status
    found = find_revision(old.revisions, undo.to) or (
        old.stable if old.stable is not None and old.stable.hash == undo.to else None
    )
    if found is None or found.model is None:
        return None
    return found.model_copy(update={"predictor_name": None})


def _undo_started(
    md: ModelDeployment, commands: Commands, undone: ModelRef | None, spec: ModelRef, now: str
) -> Decided:
    """The Event and history entry of an undo, on the pass that starts it."""
    old = md.status
    if undone is None or commands.undo is None:
        return Decided()
    if undone.hash in {
        old.stable.hash if old.stable else None,
        old.canary.hash if old.canary else None,
    }:
        return Decided()
    message = (
        f"undo by {commands.undo.by}: back to {undone.version}"
        f" while spec.model names {spec.version}"
    )
    return Decided.one(Event(reasons.UNDONE, message), now, version=undone.version)


def _revisions(old: ModelDeploymentStatus, stable: ModelRef) -> list[ModelRef]:
    """Earlier stable models, newest last, each once: what `rung undo` can return to."""
    if old.stable is None or old.stable.hash == stable.hash:
        return old.revisions
    kept = [r for r in old.revisions if r.hash not in (old.stable.hash, stable.hash)]
    return [*kept, old.stable][-REVISION_LIMIT:]


def _desired(
    md: ModelDeployment,
    ladder: LadderResult,
    models: _Models,
    monitoring: MonitoringPlan | None,
) -> list[dict[str, Any]]:
    """Every owned object that should exist: the router's (or one InferenceService),
    then monitoring's."""
    annotations = monitoring.predictor_annotations if monitoring else {}
    stable, canary = models.stable, models.canary
    assert stable.model is not None
    if Capability.CANARY in ladder:
        traffic = Traffic(
            stable=stable,
            canary=canary,
            canary_weight=canary.weight if canary else 0,
            mirror_percent=canary.shadow.mirror_percent
            if models.phase == "Shadowing"
            and canary is not None
            and canary.shadow is not None
            and canary.shadow.started_at is not None
            else None,
            promoting=models.phase == "Promoting",
            rolling_back=models.phase == "RollingBack",
            annotations=annotations,
        )
        desired = router_of(md).objects(md, traffic)
    elif router_of(md).name == LLM_ROUTER:
        desired = router_of(md).objects(md, Traffic(stable=stable, annotations=annotations))
    else:
        desired = [build_inference_service(md, stable.model, extra_annotations=annotations)]
    return desired + (monitoring.objects if monitoring else [])


def _retraining(
    obs: Observation, ladder: LadderResult, conditions: list[Condition], now: str
) -> tuple[RetrainingStatus | None, LaunchRequest | None, list[Condition], Decided]:
    """Level 3: the retraining decision, its condition, and what it announces."""
    md = obs.md
    if Capability.RETRAINING not in ladder:
        conditions = cond.remove_condition(conditions, RETRAINING_READY)
        return md.status.retraining, None, conditions, Decided()
    retrain = decide(md, obs.retraining_readings, obs.run_outcomes, obs.now)
    if retrain.condition is not None:
        conditions = cond.set_condition(
            conditions, RETRAINING_READY, *retrain.condition, now=now, generation=md.generation
        )
    decided = Decided(tuple(retrain.events), tuple(retrain.history))
    return retrain.status, retrain.launch, conditions, decided


def _with_apply_failure(planned: Plan, rollout_phase: Phase | None, obs: Observation) -> Plan:
    """Keep an earlier apply failure in status while the objects are still not in place;
    `status_when_applied` is what to write once an apply succeeds."""
    apply_failed = keep_apply_failure(obs.md.status.conditions, obs.owned, planned.desired)
    if apply_failed is None:
        return planned
    status = planned.status
    kept = status.model_copy(
        update={
            "conditions": [
                apply_failed if c.type == cond.DEGRADED else c for c in status.conditions
            ],
            "phase": rollout_phase if rollout_phase is not None else "Failed",
        }
    )
    return replace(planned, status=kept, status_when_applied=status)


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
    elif obs.slo is not None and obs.slo.invalid is not None:
        slo = obs.slo.snapshot
        conditions = cond.set_condition(
            conditions,
            cond.MONITORING_READY,
            "False",
            reasons.INVALID_MEASUREMENT,
            obs.slo.invalid,
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


def _observe_rollout(
    obs: Observation, router: Router, state: RolloutState, commands: Commands
) -> Observed:
    md, live = obs.md, obs.live
    canary = state.canary
    if canary is None:
        return Observed(commands=commands)
    checks = None
    result = None
    if obs.measurements is not None:
        by_name = {m.name: m for m in stage_metrics(md.spec, state.phase == "Shadowing")}
        checks = [
            check(
                Measurement(by_name[name], values[0], values[1]),
                obs.invalid_measurements.get(name),
            )
            for name, values in obs.measurements.items()
            if name in by_name
        ]
        if obs.analysis_error:
            checks = [
                c.model_copy(update={"message": obs.analysis_error}) if c.passed is None else c
                for c in checks
            ]
        on_no_data = (
            md.spec.rollout.analysis.on_no_data
            if md.spec.rollout and md.spec.rollout.analysis
            else "hold"
        )
        result = verdict(checks, on_no_data, obs.analysis_error)
    return Observed(
        canary_ready=router.canary_ready(md, canary, live),
        live_weight=router.canary_weight(md, live),
        live_mirror=router.canary_mirrored(md, live),
        promoted=router.promoted(md, canary, live),
        promoted_in_place=router.promotes_in_place(md, state.stable, canary),
        verdict=result,
        checks=checks or (),
        approved_version=md.annotations.get(APPROVE_ANNOTATION),
        error=obs.analysis_error,
        commands=commands,
    )


def _replace_directly(
    old: ModelDeploymentStatus, wanted: ModelRef, now: str
) -> tuple[ModelRef, Decided]:
    """Below level 2 (or on first deployment) a model change replaces the model."""
    decided = Decided()
    if old.stable is None:
        event = Event(
            reasons.DEPLOYING, f"deploying model {wanted.version} from {wanted.storage_uri}"
        )
        decided += Decided.one(
            event, now, reasons.DEPLOYED, "first deployment", version=wanted.version
        )
    elif old.stable.hash != wanted.hash:
        message = (
            f"replacing model {old.stable.version} with {wanted.version} (no canary below level 2)"
        )
        decided += Decided.one(
            Event(reasons.MODEL_REPLACED, message),
            now,
            message=f"{old.stable.version} -> {wanted.version}",
            version=wanted.version,
        )
    if old.canary is not None:
        message = f"canary rollouts are off: {wanted.version} is deployed directly"
        decided += Decided.one(
            Event(reasons.CANARY_ABANDONED, message, "Warning"),
            now,
            message="canary capability switched off",
            version=old.canary.version,
        )
    stable = wanted
    if old.stable is not None and old.stable.hash == wanted.hash:
        stable = wanted.model_copy(update={"predictor_name": old.stable.predictor_name})
    return stable, decided


ConditionValue = tuple[ConditionStatus, str, str]
"""(status, reason, message) of one condition."""


def _conditions(
    existing: list[Condition],
    md: ModelDeployment,
    models: _Models,
    is_ready: bool,
    ready: Mapping[str, Any] | None,
    failure: str | None,
    now: str,
) -> list[Condition]:
    """Ready, Progressing and Degraded for this pass."""
    conditions = list(existing)
    for type_, value in (
        (cond.READY, _ready(models.stable, is_ready, ready)),
        (cond.PROGRESSING, _progressing(models, is_ready)),
        (cond.DEGRADED, _degraded(models, failure)),
    ):
        conditions = cond.set_condition(
            conditions, type_, *value, now=now, generation=md.generation
        )
    return conditions


def _ready(stable: ModelRef, is_ready: bool, ready: Mapping[str, Any] | None) -> ConditionValue:
    if is_ready:
        return "True", "InferenceServiceReady", f"model {stable.version} is serving"
    reason = (ready or {}).get("reason") or "InferenceServiceNotReady"
    message = (ready or {}).get("message") or "waiting for the InferenceService to become ready"
    return "False", str(reason), str(message)


def _progressing(models: _Models, is_ready: bool) -> ConditionValue:
    canary, stable = models.canary, models.stable
    if canary is None:
        if is_ready:
            return "False", reasons.DEPLOYED, f"model {stable.version} is deployed"
        return "True", reasons.DEPLOYING, f"deploying model {stable.version}"
    analysis = models.analysis
    if models.phase == "Progressing" and analysis is not None and analysis.consecutive_errors:
        return (
            "True",
            reasons.ANALYSIS_ERROR,
            f"canary {canary.version} at {canary.weight}% (step {canary.step + 1}):"
            f" analysis could not measure ({analysis.consecutive_errors} in a row):"
            f" {analysis.last_error or 'unknown error'}",
        )
    by_phase = {
        "Progressing": (
            "CanaryProgressing",
            f"canary {canary.version} at {canary.weight}% (step {canary.step + 1})",
        ),
        "Paused": (
            (
                reasons.PAUSED,
                f"canary {canary.version} paused at {canary.weight}% by {canary.paused_by}:"
                " `rung resume` continues",
            )
            if canary.paused_at
            else (reasons.AWAITING_APPROVAL, f"canary {canary.version} waits for approval")
        ),
        "Shadowing": (
            reasons.SHADOW_STARTED,
            f"canary {canary.version} in the shadow stage: {_shadow_progress(canary)}",
        ),
        "Promoting": (reasons.PROMOTING, f"promoting {canary.version}"),
        "RollingBack": (reasons.ROLLING_BACK, f"rolling back {canary.version}"),
    }
    reason, message = by_phase.get(
        models.phase or "", ("CanaryProgressing", f"canary {canary.version}")
    )
    return "True", reason, message


def _shadow_progress(canary: CanaryStatus) -> str:
    shadow = canary.shadow
    if shadow is None or shadow.started_at is None:
        return "waiting for it to be ready before mirroring requests to it"
    return (
        f"{shadow.mirror_percent}% of requests mirrored, responses discarded;"
        f" {shadow.runs_passed} analysis runs passed, no user traffic"
    )


def _command_conditions(
    conditions: list[Condition],
    md: ModelDeployment,
    models: _Models,
    commands: Commands,
    now: str,
) -> list[Condition]:
    """Undone while `rung undo` stands in for spec.model; CommandsAccepted=False while a
    command annotation cannot be read. Both are absent otherwise."""
    if models.undone is not None and commands.undo is not None:
        conditions = cond.set_condition(
            conditions,
            cond.UNDONE,
            "True",
            reasons.UNDONE,
            f"`rung undo` by {commands.undo.by}: {models.undone.version} stands in for"
            f" spec.model {md.spec.model.version}; set spec.model to {models.undone.version}"
            " (in Git, if Git holds it) to keep it, or to a new version to roll forward",
            now=now,
            generation=md.generation,
        )
    else:
        conditions = cond.remove_condition(conditions, cond.UNDONE)
    undo_unknown = (
        commands.undo is not None
        and models.undone is None
        and commands.undo.spec == model_hash(md.spec.model)
        and commands.undo.to != commands.undo.spec
    )
    problems = [*commands.invalid] + (
        [
            f"rung undo: version {commands.undo.version or commands.undo.to} is not in"
            " status.revisions"
        ]
        if undo_unknown and commands.undo is not None
        else []
    )
    if problems:
        return cond.set_condition(
            conditions,
            cond.COMMANDS_ACCEPTED,
            "False",
            reasons.INVALID_COMMAND,
            "; ".join(problems),
            now=now,
            generation=md.generation,
        )
    return cond.remove_condition(conditions, cond.COMMANDS_ACCEPTED)


def _degraded(models: _Models, failure: str | None) -> ConditionValue:
    if failure:
        return "True", "ModelFailed", failure
    if models.phase == "RolledBack":
        canary, rejected = models.canary, models.rejected
        version = rejected.version if rejected else (canary.version if canary else "the canary")
        return (
            "True",
            reasons.ROLLED_BACK,
            f"{version} was rolled back; change spec.model, or `rung retry`, to try again",
        )
    return "False", "AsExpected", "no failure reported"


def _failure(isvc: Mapping[str, Any] | None) -> str | None:
    """KServe's own report that the model failed to load, if any."""
    model_status = ((isvc or {}).get("status") or {}).get("modelStatus") or {}
    if model_status.get("transitionStatus") in ("BlockedByFailedLoad", "InvalidSpec"):
        info = model_status.get("lastFailureInfo") or {}
        return str(info.get("message") or info.get("reason") or model_status["transitionStatus"])
    return None
