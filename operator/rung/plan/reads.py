"""What a reconcile must read, and what the answers mean (pure).

`reads()` computes the ladder once and returns every query and poll due now for one
ModelDeployment (canary analysis, the SLO snapshot, drift/decay triggers, active
retraining runs), with the Prometheus to ask and when the next read falls due. The
reconciler runs the queries, each answer becoming one `Reading` (a value, no data, or
an error), polls the runs, and hands the answers to `interpret()`, which turns them
into the fields of the `Observation` that `plan()` decides on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rung.api._base import parse_duration
from rung.api.resource import ModelDeployment
from rung.api.status import ModelRef, SloSnapshot
from rung.ladder import Capability, LadderResult, capabilities
from rung.plan import conditions as cond
from rung.plan.analysis import needs_stable, stage_metrics
from rung.plan.events import parse_time, timestamp
from rung.plan.live import LiveObjects
from rung.plan.observation import AnalysisQuery, Reading, SloReading, TriggerReading
from rung.plan.promql import Targets, TemplateError, indicators, query_variables, render
from rung.plan.retraining import TriggerQuery, active_runs, retraining_queries
from rung.plan.rollout import RolloutSettings, RolloutState, ShadowSettings, analysis_due
from rung.plan.routers import Router, router_for
from rung.plan.slo import effective_slo, within_slo

SLO_WINDOW = "1m"
"""The rate window of the SLO snapshot's queries."""
WAITING_POLL_SECONDS = 5.0
"""Seconds between passes of a canary that waits on the cluster (readiness, promotion)."""
MIN_ANALYSIS_WINDOW = 10.0
"""Seconds: analysis queries never use a rate window shorter than this."""
NO_PROMETHEUS = (
    "no Prometheus to read: set spec.monitoring.prometheus.url or the operator's --prometheus-url"
)


_Reader = Callable[[str], "Reading"]


@dataclass(frozen=True)
class SloQuery:
    """The PromQL for one SLO indicator (a SloSnapshot field)."""

    field: str
    query: str


@dataclass(frozen=True)
class ReadPlan:
    """Everything one reconcile must read for one ModelDeployment."""

    prometheus_url: str | None = None
    """Where to send the queries (spec, else the operator's default)."""
    analysis: tuple[AnalysisQuery, ...] | None = None
    """Canary analysis queries; None when no analysis is due."""
    slo: tuple[SloQuery, ...] | None = None
    """SLO indicator queries; None when no snapshot is due."""
    triggers: tuple[TriggerQuery, ...] | None = None
    """Drift/decay trigger queries; None when no evaluation is due."""
    runs: tuple[str, ...] = ()
    """Active retraining runs whose outcome to poll."""
    next_due: datetime | None = None
    """When the next periodic read falls due (None: nothing periodic)."""
    query_errors: Mapping[str, str] = field(default_factory=dict)
    """Queries that could not be built, by metric name, with why."""

    def promql(self) -> list[str]:
        """Every distinct query to send to Prometheus, in a stable order."""
        wanted: list[str] = []
        for query in self.analysis or ():
            if query.error is None:
                wanted += [query.canary] + ([query.stable] if query.stable else [])
        wanted += [q.query for q in self.slo or ()]
        wanted += [t.query for t in self.triggers or () if t.query is not None]
        return list(dict.fromkeys(wanted))


def router_of(md: ModelDeployment) -> Router:
    """The traffic router named by spec.rollout (KServe's own by default); an LLM served
    by LLMInferenceServices (or an external provider) has the `llm` router."""
    if md.spec.model.llm_api() == "LLMInferenceService":
        return router_for("llm")
    return router_for(md.spec.rollout.router if md.spec.rollout else "kserve")


def rollout_settings(md: ModelDeployment, ladder: LadderResult) -> RolloutSettings:
    """spec.rollout in the state machine's units; the approval gate from the ladder."""
    rollout = md.spec.rollout
    if rollout is None and md.spec.model.kind == "llm":
        rollout = md.spec.rollout_or_default()  # an LLM's longer defaults
    manual = Capability.APPROVAL_GATE in ladder or (
        rollout is not None and rollout.gate == "manual"
    )
    if rollout is None:
        return RolloutSettings(manual_gate=manual)
    shadow = None
    if rollout.shadow is not None and router_of(md).mirrors:
        # Admission refuses a shadow stage on a router that cannot mirror; one stored
        # before that rule is ignored rather than run without traffic.
        shadow = ShadowSettings(
            mirror_percent=rollout.shadow.mirror_percent,
            runs=rollout.shadow.analysis_runs,
            duration_seconds=parse_duration(rollout.shadow.duration)
            if rollout.shadow.duration
            else None,
        )
    return RolloutSettings(
        shadow=shadow,
        steps=tuple(rollout.steps),
        interval_seconds=parse_duration(rollout.interval),
        deadline_seconds=parse_duration(rollout.progress_deadline),
        failure_limit=rollout.analysis.failure_limit if rollout.analysis else 2,
        error_limit=rollout.analysis.consecutive_error_limit if rollout.analysis else 4,
        manual_gate=manual,
    )


def rollout_state(md: ModelDeployment) -> RolloutState:
    """The rollout part of status (a stable model must exist)."""
    return RolloutState.of(md.status)


def canary_on(md: ModelDeployment, ladder: LadderResult) -> bool:
    """Whether a canary can run: the capability is on and a stable model exists."""
    stable = md.status.stable
    return Capability.CANARY in ladder and stable is not None and stable.model is not None


def stable_targets(md: ModelDeployment, live: LiveObjects) -> Targets:
    """The workload names for queries about the stable model only (SLOs, triggers, alerts)."""
    stable = md.status.stable or ModelRef(
        version=md.spec.model.version, storage_uri=md.spec.model.location()
    )
    return router_of(md).targets(md, stable, None, live)


def reads(
    md: ModelDeployment,
    live: LiveObjects,
    now: datetime,
    default_prometheus_url: str | None = None,
) -> ReadPlan:
    """Every query and poll due now for `md`, and when the next one is due."""
    ladder = capabilities(md.spec.maturity.level, md.spec.maturity.overrides)
    analysis = _analysis(md, ladder, live, now)
    slo, slo_next = _slo(md, ladder, live, now)
    stable = stable_targets(md, live)
    triggers = retraining_queries(md, now, stable)
    monitoring = md.spec.monitoring
    url = monitoring.prometheus.url if monitoring and monitoring.prometheus else None
    due = [
        t
        for t in (slo_next, _next_analysis(md, ladder, now), _next_retraining(md, ladder, now))
        if t is not None
    ]
    if triggers is not None or _evaluates_triggers(md):
        due.append(now + timedelta(seconds=_monitoring_interval(md)))
    runs = tuple(run.name for run in active_runs(md))
    if runs:
        due.append(now + timedelta(seconds=_run_poll_seconds(md)))
    return ReadPlan(
        prometheus_url=url or default_prometheus_url,
        analysis=None if analysis is None else tuple(analysis),
        slo=slo,
        triggers=None if triggers is None else tuple(triggers),
        runs=runs,
        next_due=min(due) if due else None,
    )


def _next_retraining(md: ModelDeployment, ladder: LadderResult, now: datetime) -> datetime | None:
    """The next schedule slot of a trigger, or the end of the cooldown, whichever is first."""
    spec, status = md.spec.retraining, md.status.retraining
    if Capability.RETRAINING not in ladder or spec is None or status is None:
        return None
    times = [parse_time(t.next_at) for t in status.triggers if t.next_at]
    if status.last_triggered_at is not None:
        cooldown_end = parse_time(status.last_triggered_at) + timedelta(
            seconds=parse_duration(spec.cooldown)
        )
        if cooldown_end > now:
            times.append(cooldown_end)
    future = [t for t in times if t > now]
    return min(future) if future else None


RUN_POLL_SECONDS = 10.0
"""How often a running retraining run is polled (Argo, Kubeflow, webhook launchers)."""
JOB_POLL_SECONDS = 60.0
"""Jobs are watched (their events wake the owner at once): polled only as a safety net."""


def _run_poll_seconds(md: ModelDeployment) -> float:
    pipeline = md.spec.retraining.pipeline if md.spec.retraining else None
    return JOB_POLL_SECONDS if pipeline is not None and pipeline.type == "job" else RUN_POLL_SECONDS


def _monitoring_interval(md: ModelDeployment) -> float:
    return parse_duration(md.spec.monitoring_or_default().interval)


def _evaluates_triggers(md: ModelDeployment) -> bool:
    spec = md.spec.retraining
    return spec is not None and any(t.type in ("drift", "decay") for t in spec.triggers)


def _analysis(
    md: ModelDeployment, ladder: LadderResult, live: LiveObjects, now: datetime
) -> list[AnalysisQuery] | None:
    """The canary's analysis queries, or None when no analysis is due."""
    canary = md.status.canary
    if not canary_on(md, ladder) or canary is None or md.status.stable is None:
        return None
    router = router_of(md)
    ready = router.canary_ready(md, canary, live)
    if not analysis_due(rollout_state(md), rollout_settings(md, ladder), ready, now):
        return None
    targets = router.targets(md, md.status.stable, canary, live)
    if targets.canary is None:
        return []
    window = md.spec.rollout_or_default().interval
    window = window if parse_duration(window) >= MIN_ANALYSIS_WINDOW else "10s"
    canary_vars = query_variables(md, targets, window, target=targets.canary)
    stable_vars = {**canary_vars, "target": targets.stable}
    queries = []
    for metric in stage_metrics(md.spec, md.status.phase == "Shadowing"):
        try:
            queries.append(
                AnalysisQuery(
                    metric_name=metric.name,
                    canary=render(metric.query, canary_vars),
                    stable=render(metric.query, stable_vars) if needs_stable(metric) else None,
                )
            )
        except TemplateError as error:
            # Admission refuses such templates; one stored before that is a failed check.
            queries.append(AnalysisQuery(metric.name, "", None, f"query template: {error}"))
    return queries


def _next_analysis(md: ModelDeployment, ladder: LadderResult, now: datetime) -> datetime | None:
    """When the running canary's next analysis (or step deadline) falls due."""
    canary = md.status.canary
    if not canary_on(md, ladder) or canary is None or canary.paused_at is not None:
        return None  # none, or held by `rung pause`: the resume (an annotation) wakes it
    settings = rollout_settings(md, ladder)
    last_run = md.status.analysis.last_run if md.status.analysis else None
    times = [parse_time(t) for t in (canary.step_started_at, last_run) if t]
    if not times:
        return now
    next_analysis = max(times) + timedelta(seconds=settings.interval_seconds)
    if canary.step_started_at is not None:
        deadline = parse_time(canary.step_started_at) + timedelta(seconds=settings.deadline_seconds)
        next_analysis = min(next_analysis, deadline)
    if next_analysis <= now:
        # Due, yet this pass could not act (the canary not ready at its generation,
        # a promotion or rollback KServe has not finished): what it waits for wakes the
        # object through the watches; meanwhile look again after a short poll, never in
        # a loop.
        poll = min(max(settings.interval_seconds, 1.0), WAITING_POLL_SECONDS)
        return now + timedelta(seconds=poll)
    return next_analysis


def _slo(
    md: ModelDeployment, ladder: LadderResult, live: LiveObjects, now: datetime
) -> tuple[tuple[SloQuery, ...] | None, datetime | None]:
    """The SLO queries when a snapshot is due (None otherwise), and when the next is."""
    if Capability.MONITORING not in ladder:
        return None, None
    interval = _monitoring_interval(md)
    last = md.status.slo
    healthy = cond.get_condition(md.status.conditions, cond.MONITORING_READY)
    if last is not None and healthy is not None and healthy.status == "True":
        next_due = parse_time(last.measured_at) + timedelta(seconds=interval)
        if next_due > now:
            return None, next_due
    variables = query_variables(md, stable_targets(md, live), SLO_WINDOW)
    queries = tuple(
        SloQuery(name, render(indicator.query, variables))
        for name, indicator in indicators(md.spec.model.kind, md.spec.model.llm_api()).items()
    )
    return queries, now + timedelta(seconds=interval)


def analysis_queries(
    md: ModelDeployment, live: LiveObjects, now: datetime
) -> list[AnalysisQuery] | None:
    """The canary analysis queries due now (None: none due); `reads(...).analysis`."""
    ladder = capabilities(md.spec.maturity.level, md.spec.maturity.overrides)
    return _analysis(md, ladder, live, now)


# --- the answers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Interpreted:
    """The Observation fields that come from reading Prometheus."""

    measurements: Mapping[str, tuple[float | None, float | None]] | None = None
    analysis_error: str | None = None
    invalid_measurements: Mapping[str, str] = field(default_factory=dict)
    slo: SloReading | None = None
    retraining_readings: Mapping[int, TriggerReading] | None = None


def interpret(
    md: ModelDeployment, plan: ReadPlan, results: Mapping[str, Reading], now: datetime
) -> Interpreted:
    """What the answers to `plan`'s queries mean for the planner.

    `results` maps each query of `plan.promql()` to its reading; a missing one is an
    error (the provider was never asked, e.g. there is no Prometheus).
    """

    def reading(query: str) -> Reading:
        if plan.prometheus_url is None:
            return Reading(error=NO_PROMETHEUS)
        return results.get(query) or Reading(error=f"query not run: {query}")

    measurements, analysis_error, invalid = _measurements(plan, reading)
    return Interpreted(
        measurements=measurements,
        analysis_error=analysis_error,
        invalid_measurements=invalid,
        slo=_slo_reading(md, plan, reading, now),
        retraining_readings=_trigger_readings(plan, reading),
    )


def _measurements(
    plan: ReadPlan, reading: _Reader
) -> tuple[dict[str, tuple[float | None, float | None]] | None, str | None, dict[str, str]]:
    """Analysis values by metric, the provider's error, and the metrics whose answer was
    garbage (with why).

    A metric the provider could not read keeps no value and the error is reported (the
    run is an analysis error, counted against consecutiveErrorLimit). A metric whose
    answer was not one finite number is a failed measurement, never "no data".
    """
    if plan.analysis is None:
        return None, None, {}
    results: dict[str, tuple[float | None, float | None]] = {}
    invalid: dict[str, str] = {}
    error: str | None = None
    for query in plan.analysis:
        if query.error is not None:
            results[query.metric_name] = (None, None)
            invalid[query.metric_name] = query.error
            continue
        canary = reading(query.canary)
        stable = reading(query.stable) if query.stable else Reading()
        results[query.metric_name] = (canary.value, stable.value)
        for who, answer in (("canary", canary), ("stable", stable)):
            if answer.error is None:
                continue
            if answer.invalid:
                invalid.setdefault(query.metric_name, f"{who}: {answer.error}")
            else:
                error = error or answer.error
    return results, error, invalid


def _slo_reading(
    md: ModelDeployment, plan: ReadPlan, reading: _Reader, now: datetime
) -> SloReading | None:
    if plan.slo is None:
        return None
    values: dict[str, float | None] = {}
    invalid: list[str] = []
    for query in plan.slo:
        answer = reading(query.query)
        if answer.error and answer.invalid:
            invalid.append(f"{query.field}: {answer.error}")
            values[query.field] = None
            continue
        if answer.error:
            return SloReading(error=answer.error)
        values[query.field] = answer.value
    snapshot = SloSnapshot(measured_at=timestamp(now), **values)
    slo = effective_slo(md.spec.model.kind, md.spec.monitoring.slo if md.spec.monitoring else None)
    return SloReading(
        snapshot=snapshot.model_copy(update={"within_slo": within_slo(snapshot, slo)}),
        invalid="; ".join(invalid) or None,
    )


def _trigger_readings(plan: ReadPlan, reading: _Reader) -> dict[int, TriggerReading] | None:
    if plan.triggers is None:
        return None
    readings: dict[int, TriggerReading] = {}
    for trigger in plan.triggers:
        if trigger.query is None:
            readings[trigger.index] = TriggerReading(error=trigger.error or NO_PROMETHEUS)
        else:
            readings[trigger.index] = reading(trigger.query)
    return readings


__all__ = [
    "NO_PROMETHEUS",
    "Interpreted",
    "ReadPlan",
    "SloQuery",
    "TemplateError",
    "analysis_queries",
    "interpret",
    "reads",
]
