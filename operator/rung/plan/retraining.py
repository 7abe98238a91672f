"""Retraining decisions (pure).

`decide()` takes the ModelDeployment (spec and status), the trigger readings taken
this pass, the outcomes of the runs still active and the time, and returns the
retraining part of status, the decisions to announce and at most one run to launch.
Every decision is a function of status and observations, so a restarted operator
resumes exactly where the last status write left off, and launching is idempotent:
a run's name comes from a counter in status (`<md>-retrain-<n>`), so relaunching
after a crash finds (or creates) the same run.

Triggers:
  drift     spec query above `above` for `for`
  decay     spec query below `below` for `for`
  schedule  a five-field cron expression in UTC; a slot fires once, counted from the
            last slot that fired (or from when the trigger was first seen)
  manual    a new value of the annotation `rung.dev/retrain` (`rung retrain NAME`)

Guards: no second run while one is active, `cooldown` after the last start, and at
most `maxRunsPerDay` starts in any 24 hours. A manual request skips the cooldown (a
human asked) but not the other two; a refused manual request is not queued. A drift
or decay trigger that stays crossed while blocked stays pending and fires when the
guard lifts; a schedule slot that is blocked is skipped, as a CronJob with
`concurrencyPolicy: Forbid` would. A blocked trigger is announced once per
transition into the blocked state, not on every pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from croniter import CroniterError, croniter

from rung.api._base import parse_duration
from rung.api.resource import RETRAIN_ANNOTATION, ModelDeployment
from rung.api.spec import Pipeline, Retraining, RetrainingTrigger, TrainingData
from rung.api.status import (
    HistoryEntry,
    RetrainingRun,
    RetrainingStatus,
    TriggerStatus,
)
from rung.ladder import Capability, capabilities
from rung.plan.events import Event, parse_time, timestamp
from rung.plan.observation import RunOutcome, TriggerReading
from rung.plan.promql import Targets, TemplateError, query_variables, render
from rung.plan.reasons import (
    RETRAINED_MODEL_RECEIVED,
    RETRAINING_FAILED,
    RETRAINING_STARTED,
    RETRAINING_SUCCEEDED,
)

RETRAINING_READY = "RetrainingReady"
MAX_LAUNCH_ATTEMPTS = 3
"""Launches of one run (first try and relaunches) before it is reported failed."""
RUNS_KEPT = 10
"""Finished runs kept in status beyond those the daily cap still counts."""
DAY = timedelta(hours=24)
RUN_NAME_LIMIT = 63
"""Job names end up in the `job-name` label of their pods: at most 63 characters."""
QUERY_TRIGGERS = ("drift", "decay")


@dataclass(frozen=True)
class TriggerQuery:
    """The PromQL to run for the trigger at `index` in spec.retraining.triggers."""

    index: int
    query: str | None
    error: str | None = None
    """Why the query could not be rendered (then it is not run)."""


@dataclass(frozen=True)
class LaunchRequest:
    """A run to launch (or relaunch: the same name again is idempotent)."""

    md: ModelDeployment
    run: str
    reason: str
    trigger: str
    version: str
    storage_uri: str
    pipeline: Pipeline
    attempt: int = 1
    data: TrainingData | None = None
    """The data the model being retrained was trained on (lineage handed to the run)."""


@dataclass
class RetrainingDecision:
    """The retraining part of status, what to announce and what to launch."""

    status: RetrainingStatus
    events: list[Event] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    launch: LaunchRequest | None = None
    condition: tuple[Literal["True", "False"], str, str] | None = None
    """RetrainingReady: status, reason, message; None keeps the current condition."""
    finished: list[RetrainingRun] = field(default_factory=list)
    """Runs that finished this pass."""


def retraining_on(md: ModelDeployment) -> bool:
    """Whether the retraining capability is switched on."""
    ladder = capabilities(md.spec.maturity.level, md.spec.maturity.overrides)
    return Capability.RETRAINING in ladder


def retraining_queries(
    md: ModelDeployment, now: datetime, targets: Targets
) -> list[TriggerQuery] | None:
    """The drift/decay queries to run this pass, or None when no evaluation is due.

    Triggers are evaluated every `spec.monitoring.interval` (default 30s), which is
    therefore the resolution of their `for` durations.
    """
    spec = md.spec.retraining
    if not retraining_on(md) or spec is None or spec.pipeline is None:
        return None
    indexed = [(i, t) for i, t in enumerate(spec.triggers) if t.type in QUERY_TRIGGERS]
    if not indexed:
        return None
    old = md.status.retraining
    if old is not None and old.evaluated_at is not None:
        interval = parse_duration(md.spec.monitoring_or_default().interval)
        if (now - parse_time(old.evaluated_at)).total_seconds() < interval:
            return None
    variables = query_variables(md, targets)
    queries = []
    for index, trigger in indexed:
        assert trigger.query is not None
        try:
            queries.append(TriggerQuery(index, render(trigger.query, variables)))
        except TemplateError as error:
            queries.append(TriggerQuery(index, None, f"query template: {error}"))
    return queries


def active_runs(md: ModelDeployment) -> list[RetrainingRun]:
    """Runs whose outcome the reconciler should read this pass."""
    old = md.status.retraining
    if not retraining_on(md) or old is None:
        return []
    return [r for r in old.runs if r.outcome == "Running"]


def run_name(md_name: str, number: int) -> str:
    """`<md>-retrain-<n>`, shortened (with a hash of the name) to fit 63 characters."""
    suffix = f"-retrain-{number}"
    if len(md_name) + len(suffix) <= RUN_NAME_LIMIT:
        return md_name + suffix
    digest = hashlib.sha256(md_name.encode()).hexdigest()[:8]
    head = md_name[: RUN_NAME_LIMIT - len(suffix) - len(digest) - 1].rstrip("-.")
    return f"{head}-{digest}{suffix}"


def decide(
    md: ModelDeployment,
    readings: Mapping[int, TriggerReading] | None,
    outcomes: Mapping[str, RunOutcome],
    now: datetime,
) -> RetrainingDecision:
    """One retraining step. `readings` is None when no evaluation ran this pass."""
    spec = md.spec.retraining or Retraining()
    old = md.status.retraining or RetrainingStatus()
    at = timestamp(now)
    d = RetrainingDecision(status=old)
    pipeline = spec.pipeline

    runs = _handed_back(md, _follow_runs(md, old, outcomes, pipeline, now, d), at, d)
    states, problems = _evaluate(spec, old, readings, now)
    status = old.model_copy(
        update={
            "runs": runs,
            "triggers": states,
            "evaluated_at": at if readings is not None else old.evaluated_at,
        }
    )

    token = md.annotations.get(RETRAIN_ANNOTATION) or None
    manual = token is not None and token != old.last_manual_token
    firing = [s for s in states if s.firing]
    if pipeline is None:
        if manual:
            _refuse(d, at, token, "no pipeline: set spec.retraining.pipeline")
            status = status.model_copy(update={"last_manual_token": token})
        d.status = status
        d.condition = ("False", "NoPipeline", "set spec.retraining.pipeline to retrain")
        return d

    active = [r for r in runs if r.outcome == "Running"]
    blocker = _blocker(spec, status, active, now, manual=False)
    manual_blocker = _blocker(spec, status, active, now, manual=True)
    launch_reasons: list[str] = []
    launch_triggers: list[str] = []
    if manual:
        status = status.model_copy(update={"last_manual_token": token})
        if manual_blocker is not None:
            _refuse(d, at, token, manual_blocker)
        else:
            launch_reasons.append(f"manual: requested with rung retrain (token {token})")
            launch_triggers.append("manual")
    if firing and (launch_reasons or blocker is None):
        for s in firing:
            launch_reasons.append(_reason(spec.triggers[s.index], s))
            launch_triggers.append(s.type)
    elif firing:
        assert blocker is not None
        states = [_blocked(spec.triggers[s.index], s, blocker, at, d) for s in states]
        status = status.model_copy(update={"triggers": states})

    if launch_reasons and d.launch is None:
        status = _launch(md, status, pipeline, launch_reasons, launch_triggers, now, d)
    d.status = _with_limits(spec, status, now)
    d.condition = _condition(spec, problems, d)
    return d


# --- runs -------------------------------------------------------------------------


def _follow_runs(
    md: ModelDeployment,
    old: RetrainingStatus,
    outcomes: Mapping[str, RunOutcome],
    pipeline: Pipeline | None,
    now: datetime,
    d: RetrainingDecision,
) -> list[RetrainingRun]:
    """Runs with this pass's outcomes; a lost launch is relaunched under the same name."""
    at = timestamp(now)
    runs: list[RetrainingRun] = []
    for run in old.runs:
        outcome = outcomes.get(run.name)
        if run.outcome != "Running" or outcome is None:
            runs.append(run)
            continue
        if outcome.state == "Running":
            runs.append(run if run.observed else run.model_copy(update={"observed": True}))
            continue
        if outcome.state == "NotFound":
            if not run.observed and run.attempts < MAX_LAUNCH_ATTEMPTS and pipeline is not None:
                # Status said "launched" but the run is not there: the operator stopped
                # between the two, or the launch failed. Same name, so idempotent.
                relaunched = run.model_copy(
                    update={"attempts": run.attempts + 1, "message": outcome.message}
                )
                runs.append(relaunched)
                d.launch = _request(md, relaunched, pipeline)
                continue
            if run.observed:
                message = "the run disappeared before it finished"
            else:
                message = f"not launched after {run.attempts} attempts"
            if outcome.message:
                message += f": {outcome.message}"
            outcome = RunOutcome("Failed", message)
        finished = run.model_copy(
            update={
                "outcome": outcome.state,
                "message": outcome.message,
                "finished_at": at,
                "observed": run.observed or outcome.state == "Succeeded",
            }
        )
        runs.append(finished)
        d.finished.append(finished)
        if outcome.state == "Succeeded":
            text = f"retraining run {run.name} succeeded" + (
                f": {outcome.message}" if outcome.message else ""
            )
            d.events.append(Event(RETRAINING_SUCCEEDED, text))
        else:
            text = f"retraining run {run.name} failed: {outcome.message or 'no reason given'}"
            d.events.append(Event(RETRAINING_FAILED, text, "Warning"))
        d.history.append(
            HistoryEntry(
                time=at, event=f"Retraining{outcome.state}", message=text, version=run.version
            )
        )
    return runs


def _handed_back(
    md: ModelDeployment, runs: list[RetrainingRun], at: str, d: RetrainingDecision
) -> list[RetrainingRun]:
    """Record the model a run handed back: spec.model.data.trainingRun names the run.

    The pipeline's last step sets spec.model (version, storageUri and data, with
    data.trainingRun: its own run name); the run then records the version it produced
    and the data it trained on, once, with an Event and a history entry.
    """
    model = md.spec.model
    data = model.data
    if data is None or data.training_run is None:
        return runs
    out = []
    for run in runs:
        if run.name == data.training_run and run.result_version != model.version:
            run = run.model_copy(update={"result_version": model.version, "trained_on": data})
            text = (
                f"retraining run {run.name} handed back {model.version}, trained on"
                f" {data.describe()}"
            )
            d.events.append(Event(RETRAINED_MODEL_RECEIVED, text))
            d.history.append(
                HistoryEntry(
                    time=at,
                    event=RETRAINED_MODEL_RECEIVED,
                    message=text,
                    version=model.version,
                    data=data,
                )
            )
        out.append(run)
    return out


def _request(md: ModelDeployment, run: RetrainingRun, pipeline: Pipeline) -> LaunchRequest:
    version, storage_uri, _ = _current_model(md)
    return LaunchRequest(
        md=md,
        run=run.name,
        reason=run.reason,
        trigger=run.trigger,
        version=run.version or version,
        storage_uri=run.storage_uri or storage_uri,
        pipeline=pipeline,
        attempt=run.attempts,
        data=run.data,
    )


def _current_model(md: ModelDeployment) -> tuple[str, str, TrainingData | None]:
    """The model serving now (stable), or the spec's before the first deployment, with
    the data it was trained on (the spec's data speaks for the version it names)."""
    stable, spec = md.status.stable, md.spec.model
    if stable is not None:
        data = stable.data or (spec.data if spec.version == stable.version else None)
        return stable.version, stable.storage_uri, data
    return spec.version, spec.location(), spec.data


def _launch(
    md: ModelDeployment,
    status: RetrainingStatus,
    pipeline: Pipeline,
    reasons: list[str],
    triggers: list[str],
    now: datetime,
    d: RetrainingDecision,
) -> RetrainingStatus:
    at = timestamp(now)
    number = status.runs_started + 1
    name = run_name(md.name, number)
    version, storage_uri, data = _current_model(md)
    reason = "; ".join(reasons)
    run = RetrainingRun(
        name=name,
        reason=reason,
        trigger=",".join(dict.fromkeys(triggers)),
        started_at=at,
        version=version,
        storage_uri=storage_uri,
        launcher=pipeline.type,
        data=data,
    )
    fired = set(triggers)
    states = [
        s.model_copy(
            update={
                "run": name,
                # Still crossed, it now waits for its own run (said in status only).
                "blocked_by": None if s.type == "schedule" else f"run {name} is still running",
                "last_fired_at": s.since if s.type == "schedule" else at,
                "firing": False if s.type == "schedule" else s.firing,
            }
        )
        if s.firing and s.type in fired
        else s
        for s in status.triggers
    ]
    d.launch = _request(md, run, pipeline)
    d.events.append(
        Event(
            RETRAINING_STARTED,
            f"launched {pipeline.type} run {name} for {version}: {reason}",
        )
    )
    d.history.append(
        HistoryEntry(
            time=at, event="Retrained", message=f"{name}: {reason}", version=version, data=data
        )
    )
    return status.model_copy(
        update={
            "runs": _pruned([*status.runs, run], now),
            "runs_started": number,
            "last_triggered_at": at,
            "reason": reason,
            "run": name,
            "triggers": states,
        }
    )


def _pruned(runs: list[RetrainingRun], now: datetime) -> list[RetrainingRun]:
    """Active runs, runs the daily cap still counts, and the last RUNS_KEPT others."""
    keep = {
        id(r) for r in runs if r.outcome == "Running" or now - parse_time(r.started_at) < DAY
    } | {id(r) for r in runs[-RUNS_KEPT:]}
    return [r for r in runs if id(r) in keep]


# --- triggers ---------------------------------------------------------------------


def _evaluate(
    spec: Retraining,
    old: RetrainingStatus,
    readings: Mapping[int, TriggerReading] | None,
    now: datetime,
) -> tuple[list[TriggerStatus], list[tuple[str, str]]]:
    """Every trigger's state after this pass, and problems as (reason, message)."""
    at = timestamp(now)
    previous = {(s.index, s.type): s for s in old.triggers}
    states: list[TriggerStatus] = []
    problems: list[tuple[str, str]] = []
    for index, trigger in enumerate(spec.triggers):
        if trigger.type == "manual":
            continue
        state = previous.get((index, trigger.type)) or TriggerStatus(
            index=index, type=trigger.type, armed_at=at
        )
        if trigger.type == "schedule":
            state, problem = _schedule(trigger, state, now)
        else:
            reading = readings.get(index) if readings is not None else None
            state, problem = _threshold(trigger, state, reading, now)
        if problem is not None:
            problems.append(problem)
        elif state.error is not None:
            problems.append(
                ("TriggerQueryFailed", f"{trigger.type} trigger {index}: {state.error}")
            )
        if not state.firing and (state.run is not None or state.blocked_by is not None):
            # The episode is over: a new crossing is a new episode.
            state = state.model_copy(update={"run": None, "blocked_by": None})
        states.append(state)
    return states, problems


def _threshold(
    trigger: RetrainingTrigger,
    state: TriggerStatus,
    reading: TriggerReading | None,
    now: datetime,
) -> tuple[TriggerStatus, tuple[str, str] | None]:
    if reading is None:
        return state, None
    if reading.error is not None:
        # Unknown is not "below the threshold": keep the clock and the verdict.
        return state.model_copy(update={"error": reading.error}), None
    value = reading.value
    if value is None:
        cleared = {"value": None, "since": None, "firing": False, "error": None}
        return state.model_copy(update={**cleared, "message": "no data"}), None
    if trigger.type == "drift":
        assert trigger.above is not None
        crossed, side, limit = value > trigger.above, "above", trigger.above
    else:
        assert trigger.below is not None
        crossed, side, limit = value < trigger.below, "below", trigger.below
    if not crossed:
        message = f"{value:.4g} is not {side} {limit:g}"
        update: dict[str, object] = {"value": value, "since": None, "firing": False}
        return state.model_copy(update={**update, "error": None, "message": message}), None
    since = state.since or timestamp(now)
    hold = parse_duration(trigger.for_) if trigger.for_ else 0.0
    firing = (now - parse_time(since)).total_seconds() >= hold
    message = f"{value:.4g} {side} {limit:g} since {since}" + (
        "" if firing else f"; fires after {trigger.for_}"
    )
    update = {"value": value, "since": since, "firing": firing, "error": None, "message": message}
    return state.model_copy(update=update), None


def _schedule(
    trigger: RetrainingTrigger, state: TriggerStatus, now: datetime
) -> tuple[TriggerStatus, tuple[str, str] | None]:
    assert trigger.cron is not None
    cron = trigger.cron.strip()
    base_text = state.last_fired_at or state.armed_at
    assert base_text is not None
    try:
        if not cron.startswith("@") and len(cron.split()) != 5:
            raise ValueError("five fields needed: minute hour day-of-month month day-of-week")
        upcoming = croniter(cron, parse_time(base_text)).get_next(datetime)
        latest = croniter(cron, now + timedelta(microseconds=1)).get_prev(datetime)
    except (CroniterError, ValueError) as error:
        message = f"invalid cron {cron!r}: {error}"
        return state.model_copy(update={"firing": False, "message": message}), (
            "InvalidTrigger",
            f"schedule trigger {state.index}: {message}",
        )
    if upcoming <= now:
        # Due. Slots missed while the operator was down fire once, as the latest.
        slot = timestamp(latest)
        return state.model_copy(
            update={"firing": True, "since": slot, "next_at": slot, "message": f"slot {slot} due"}
        ), None
    return state.model_copy(
        update={
            "firing": False,
            "since": None,
            "next_at": timestamp(upcoming),
            "message": f"next slot {timestamp(upcoming)}",
        }
    ), None


def _reason(trigger: RetrainingTrigger, state: TriggerStatus) -> str:
    if trigger.type == "schedule":
        return f"schedule: {trigger.cron} (slot {state.since})"
    side, limit = ("above", trigger.above) if trigger.type == "drift" else ("below", trigger.below)
    held = f" for {trigger.for_}" if trigger.for_ else ""
    value = "no data" if state.value is None else f"{state.value:.4g}"
    return f"{trigger.type}: {value} {side} {limit:g}{held}"


def _blocked(
    trigger: RetrainingTrigger,
    state: TriggerStatus,
    blocker: str,
    at: str,
    d: RetrainingDecision,
) -> TriggerStatus:
    """A firing trigger that may not launch: announce once, keep it (or skip a slot)."""
    if not state.firing:
        return state
    if state.type == "schedule":
        slot = state.since
        text = f"schedule slot {slot} of {trigger.cron!r} skipped: {blocker}"
        d.events.append(Event("RetrainingBlocked", text))
        d.history.append(HistoryEntry(time=at, event="RetrainingBlocked", message=text))
        return state.model_copy(
            update={"firing": False, "last_fired_at": slot, "message": f"skipped slot {slot}"}
        )
    if state.blocked_by is None and state.run is None:
        # Entering the blocked state: announce it once. A trigger served by the run
        # it launched, or already announced, only says so in status.
        text = f"{_reason(trigger, state)}, but {blocker}"
        d.events.append(Event("RetrainingBlocked", text))
        d.history.append(HistoryEntry(time=at, event="RetrainingBlocked", message=text))
    return state.model_copy(update={"blocked_by": blocker})


def _refuse(d: RetrainingDecision, at: str, token: str | None, why: str) -> None:
    text = f"manual retraining request {token} refused: {why}"
    d.events.append(Event("RetrainingRefused", text, "Warning"))
    d.history.append(HistoryEntry(time=at, event="Refused", message=text))


# --- guards -----------------------------------------------------------------------


def _cooldown_until(spec: Retraining, status: RetrainingStatus) -> datetime | None:
    if status.last_triggered_at is None:
        return None
    return parse_time(status.last_triggered_at) + timedelta(seconds=parse_duration(spec.cooldown))


def _cap_until(spec: Retraining, status: RetrainingStatus, now: datetime) -> datetime | None:
    """When the daily cap lets the next run start, if it is reached now."""
    starts = sorted(
        parse_time(r.started_at) for r in status.runs if now - parse_time(r.started_at) < DAY
    )
    if len(starts) < spec.max_runs_per_day:
        return None
    return starts[-spec.max_runs_per_day] + DAY


def _blocker(
    spec: Retraining,
    status: RetrainingStatus,
    active: list[RetrainingRun],
    now: datetime,
    *,
    manual: bool,
) -> str | None:
    """Why no run may start now, or None."""
    if active:
        return f"run {active[0].name} is still running"
    cap = _cap_until(spec, status, now)
    if cap is not None:
        return (
            f"maxRunsPerDay {spec.max_runs_per_day} reached; the next run may start"
            f" at {timestamp(cap)}"
        )
    cooldown = _cooldown_until(spec, status)
    if not manual and cooldown is not None and cooldown > now:
        return f"cooldown {spec.cooldown} after {status.run} lasts until {timestamp(cooldown)}"
    return None


def _with_limits(spec: Retraining, status: RetrainingStatus, now: datetime) -> RetrainingStatus:
    times = [t for t in (_cooldown_until(spec, status), _cap_until(spec, status, now)) if t]
    next_allowed = timestamp(max(times)) if times else None
    if next_allowed == status.next_allowed_at:
        return status
    return status.model_copy(update={"next_allowed_at": next_allowed})


def _condition(
    spec: Retraining, problems: list[tuple[str, str]], d: RetrainingDecision
) -> tuple[Literal["True", "False"], str, str]:
    if problems:
        reasons = list(dict.fromkeys(reason for reason, _ in problems))
        return ("False", reasons[0], "; ".join(message for _, message in problems))
    relaunch = d.launch is not None and d.launch.attempt > 1
    if relaunch:
        assert d.launch is not None
        run = next(r for r in d.status.runs if r.name == d.launch.run)
        detail = f": {run.message}" if run.message else ""
        return (
            "False",
            "LaunchFailed",
            f"relaunching {run.name} (attempt {run.attempts} of {MAX_LAUNCH_ATTEMPTS}){detail}",
        )
    kinds = [t.type for t in spec.triggers if t.type != "manual"]
    watching = ", ".join(kinds) if kinds else "no automatic triggers"
    assert spec.pipeline is not None
    return (
        "True",
        "TriggersWatched",
        f"watching {watching} (and rung retrain); {spec.pipeline.type} pipeline,"
        f" cooldown {spec.cooldown}, at most {spec.max_runs_per_day} runs a day",
    )
