"""The canary rollout state machine (pure).

`advance()` takes the rollout's state from status, what was observed this pass
(canary readiness, the weight the cluster routes, an analysis verdict when one
ran) and the time, and returns the next state with the decisions it took. Every
transition is a function of status and observations only, so a restarted operator
continues exactly where the last status write left off.

Phases while a canary exists:
  Shadowing (spec.rollout.shadow) -> (shadow analysis passed) -> Progressing at step 1
  Shadowing -> (failureLimit failures, or progressDeadline) -> RollingBack -> RolledBack
  Progressing -> (last step passed) -> Paused (manual gate) -> Promoting -> Ready
  Progressing -> (failureLimit failures, or progressDeadline) -> RollingBack -> RolledBack
In the shadow stage the canary's weight stays 0: it receives a mirrored copy of requests
(canary.shadow.mirrorPercent, from when it is ready) and serves no user request.
Day-2 commands (rung.plan.commands) move it too: `promote` skips a step (or, with
--full, every step and the gate), `abort` rolls back, `pause` holds a Progressing canary
in Paused (canary.pausedAt set) until `resume`, `retry` starts a rejected version again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from rung.api.spec import DEFAULT_SHADOW_RUNS
from rung.api.status import (
    AnalysisStatus,
    CanaryStatus,
    CheckResult,
    HistoryEntry,
    ModelDeploymentStatus,
    ModelRef,
    Phase,
    RejectedModel,
    ShadowStatus,
)
from rung.plan import reasons
from rung.plan.analysis import Verdict
from rung.plan.commands import Commands, canary_id, rejection_id
from rung.plan.events import Event, parse_time, timestamp


@dataclass(frozen=True)
class ShadowSettings:
    """spec.rollout.shadow in the state machine's units."""

    mirror_percent: int = 100
    runs: int | None = None
    """Passed analysis runs that complete the stage (when no duration is set)."""
    duration_seconds: float | None = None
    """The stage passes at the first passed run this long after mirroring began."""

    def complete(self, shadow: ShadowStatus, now: datetime) -> bool:
        """Whether a stage that just passed a run (counted in `shadow`) is done."""
        if self.duration_seconds is not None:
            return _since(shadow.started_at, now) >= self.duration_seconds
        return shadow.runs_passed >= (self.runs or DEFAULT_SHADOW_RUNS)


@dataclass(frozen=True)
class RolloutSettings:
    """spec.rollout with defaults, in the units the state machine uses."""

    steps: tuple[int, ...] = (10, 25, 50, 100)
    interval_seconds: float = 60.0
    deadline_seconds: float = 600.0
    failure_limit: int = 2
    manual_gate: bool = False
    error_limit: int = 4
    """consecutiveErrorLimit: errored analysis runs in a row tolerated (more roll back)."""
    shadow: ShadowSettings | None = None
    """A shadow stage before the first step (None: none)."""


@dataclass(frozen=True)
class RolloutState:
    """The rollout part of status."""

    stable: ModelRef
    canary: CanaryStatus | None = None
    phase: Phase | None = None
    analysis: AnalysisStatus | None = None
    rejected: RejectedModel | None = None

    @classmethod
    def of(cls, status: ModelDeploymentStatus) -> RolloutState:
        """The rollout part of `status` (a stable model must exist)."""
        assert status.stable is not None
        return cls(
            stable=status.stable,
            canary=status.canary,
            phase=status.phase,
            analysis=status.analysis,
            rejected=status.rejected,
        )


@dataclass(frozen=True)
class Observed:
    """What this pass saw in the cluster."""

    canary_ready: bool = False
    live_weight: int | None = None
    """Canary weight the cluster routes now (None: no canary route)."""
    live_mirror: bool = False
    """The cluster mirrors requests to the canary now."""
    promoted: bool = False
    """The canary's model serves from the stable slot."""
    promoted_in_place: bool = False
    """The router promotes by putting the canary's model into the stable predictor
    (which keeps its name) rather than by renaming the canary's predictor stable."""
    verdict: Verdict | None = None
    """Set when analysis ran this pass."""
    checks: Sequence[CheckResult] = ()
    approved_version: str | None = None
    """The value of the rung.dev/approve annotation."""
    error: str | None = None
    """Why analysis could not measure, when the verdict is "error"."""
    commands: Commands = field(default_factory=Commands)
    """Day-2 commands found on the object."""


@dataclass
class Decision:
    """The next rollout state and what to announce."""

    state: RolloutState
    events: list[Event] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)


def analysis_due(
    state: RolloutState, settings: RolloutSettings, canary_ready: bool, now: datetime
) -> bool:
    """Whether analysis should run this pass (the handler then queries metrics)."""
    canary = state.canary
    if canary is None or not canary_ready:
        return False
    if state.phase == "Shadowing":
        if canary.shadow is None or canary.shadow.started_at is None:
            return False  # not mirrored yet: nothing to judge
        return _since(_step_clock(state), now) >= settings.interval_seconds
    if state.phase != "Progressing":
        return False
    if canary.weight == 0:
        return False  # no traffic yet: nothing to judge
    return _since(_step_clock(state), now) >= settings.interval_seconds


def advance(
    state: RolloutState,
    desired: ModelRef,
    settings: RolloutSettings,
    observed: Observed,
    now: datetime,
) -> Decision:
    """One step of the state machine. `desired` is spec.model (with its hash)."""
    at = timestamp(now)
    canary = state.canary
    if canary is None:
        if desired.hash == state.stable.hash:
            return Decision(replace(state, phase=None, rejected=None))
        if state.rejected is not None and state.rejected.hash == desired.hash:
            retry = observed.commands.retry
            if retry is None or retry.rejected != rejection_id(state.rejected):
                return Decision(replace(state, phase="RolledBack"))
            return _start(state, desired, settings, at, superseding=None, retried_by=retry.by)
        return _start(state, desired, settings, at, superseding=None)
    if state.phase == "RollingBack":
        # Finish taking traffic off the canary before anything else, even if the
        # spec changed meanwhile; a newer model starts on the next pass.
        return _rolling_back(state, canary, desired, observed, at)
    if canary.hash != desired.hash:
        if desired.hash == state.stable.hash:
            message = f"spec.model is back to {desired.version}: removing canary {canary.version}"
            return rollback(state, at, reasons.CANARY_ABORTED, message, warning=False)
        return _start(state, desired, settings, at, superseding=canary)
    if state.phase == "Promoting":
        return _promoted(state, canary, observed, at) if observed.promoted else Decision(state)
    commanded = _commanded(state, canary, settings, observed, at)
    if commanded is not None:
        return commanded
    if state.phase == "Paused":
        if canary.paused_at is None and observed.approved_version == canary.version:
            return _promote(state, at, approved=True, by=observed.commands.approved_by)
        return Decision(state)
    if state.phase == "Shadowing":
        return _shadowing(state, canary, settings, observed, now)
    return _progressing(state, canary, settings, observed, now)


def _shadowing(
    state: RolloutState,
    canary: CanaryStatus,
    settings: RolloutSettings,
    observed: Observed,
    now: datetime,
) -> Decision:
    """The shadow stage: weight 0, requests mirrored to the canary once it is ready,
    judged by analysis; passing moves to the first step, failing rejects the version
    before it has answered a single user request."""
    at = timestamp(now)
    shadow_settings = settings.shadow or ShadowSettings()
    shadow = canary.shadow or ShadowStatus(mirror_percent=shadow_settings.mirror_percent)
    if not observed.canary_ready:
        if _since(canary.step_started_at or canary.started_at, now) > settings.deadline_seconds:
            message = f"canary {canary.version} not ready within {settings.deadline_seconds:g}s"
            return rollback(state, at, reasons.PROGRESS_DEADLINE_EXCEEDED, message)
        return Decision(state)
    if shadow.started_at is None:
        # Ready at the generation Rung applied: only now are requests mirrored to it, and
        # the stage's clock starts.
        started = canary.model_copy(
            update={"shadow": shadow.model_copy(update={"started_at": at}), "step_started_at": at}
        )
        message = (
            f"canary {canary.version} is ready: mirroring {shadow.mirror_percent}% of requests"
            " to it (responses discarded); no user traffic until the shadow stage passes"
        )
        return Decision(
            replace(state, canary=started),
            [Event(reasons.SHADOW_STARTED, message)],
            [_entry(at, reasons.SHADOW_STARTED, message, canary.version)],
        )
    if observed.verdict is None:
        return Decision(state)
    judged = _judged(state, canary, settings, observed, now, "the shadowed canary")
    if isinstance(judged, Decision):
        return judged
    if observed.verdict == "fail":
        return _failed(judged, canary, settings, observed, at, stage="shadow analysis")
    counted = shadow.model_copy(update={"runs_passed": shadow.runs_passed + 1})
    if not shadow_settings.complete(counted, now):
        # The deadline counts from the last passed run: a long stage never times out.
        waiting = canary.model_copy(update={"shadow": counted, "step_started_at": at})
        return Decision(replace(judged, canary=waiting))
    weight = next((w for w in settings.steps if w > 0), settings.steps[0])
    first = canary.model_copy(
        update={
            "shadow": counted.model_copy(update={"passed_at": at}),
            "weight": weight,
            "step": 0,
            "step_started_at": at,
        }
    )
    message = (
        f"canary {canary.version} passed the shadow stage ({counted.runs_passed} analysis"
        f" runs on mirrored requests): weight 0% -> {weight}%"
    )
    # The steps' own analysis starts afresh: shadow failures do not count against them.
    assert judged.analysis is not None  # recorded by _judged
    fresh = judged.analysis.model_copy(update={"failures": 0})
    return Decision(
        replace(judged, phase="Progressing", canary=first, analysis=fresh),
        [Event(reasons.SHADOW_PASSED, message)],
        [_entry(at, reasons.SHADOW_PASSED, message, canary.version)],
    )


def _commanded(
    state: RolloutState,
    canary: CanaryStatus,
    settings: RolloutSettings,
    observed: Observed,
    at: str,
) -> Decision | None:
    """What a day-2 command meant for this canary does, or None (none applies)."""
    commands, this = observed.commands, canary_id(canary)
    if commands.abort is not None and commands.abort.canary == this:
        message = f"canary {canary.version} aborted by {commands.abort.by}"
        return rollback(state, at, reasons.ABORTED, message, warning=False)
    promote = commands.promote
    if promote is not None and promote.canary == this and canary.weight > 0:
        at_gate = state.phase == "Paused" and canary.paused_at is None
        if promote.step is None:
            return _promote(state, at, approved=at_gate, by=promote.by, full=True)
        if promote.step == canary.step and promote.gate == at_gate:
            # A step's promote that led to the gate is spent there: approval is asked anew.
            if at_gate:
                return _promote(state, at, approved=True, by=promote.by)
            return _skip_step(state, canary, settings, observed, at, promote.by)
    pause = commands.pause
    if pause is not None and state.phase == "Progressing":
        paused = canary.model_copy(update={"paused_at": at, "paused_by": pause.by})
        message = f"canary {canary.version} paused at {canary.weight}% by {pause.by}"
        return Decision(
            replace(state, phase="Paused", canary=paused),
            [Event(reasons.PAUSED, message)],
            [_entry(at, reasons.PAUSED, message, canary.version)],
        )
    if pause is None and canary.paused_at is not None:
        # The step's clock starts again: a pause never counts against the deadline.
        resumed = canary.model_copy(
            update={"paused_at": None, "paused_by": None, "step_started_at": at}
        )
        message = f"canary {canary.version} resumed at {canary.weight}%"
        return Decision(
            replace(state, phase="Progressing", canary=resumed),
            [Event(reasons.RESUMED, message)],
            [_entry(at, reasons.RESUMED, message, canary.version)],
        )
    return None


def _skip_step(
    state: RolloutState,
    canary: CanaryStatus,
    settings: RolloutSettings,
    observed: Observed,
    at: str,
    by: str,
) -> Decision:
    """`rung promote` without --full: the current step counts as passed, unanalysed."""
    decision = _passed(state, canary, settings, observed, at)
    message = f"step {canary.step + 1} ({canary.weight}%) skipped by {by}, without analysis"
    return Decision(
        decision.state,
        [Event(reasons.STEP_SKIPPED, message), *decision.events],
        [_entry(at, reasons.STEP_SKIPPED, message, canary.version), *decision.history],
    )


def _rolling_back(
    state: RolloutState, canary: CanaryStatus, desired: ModelRef, observed: Observed, at: str
) -> Decision:
    if observed.live_weight not in (None, 0) or observed.live_mirror:
        return Decision(state)
    if canary.hash != desired.hash:
        # Aborted (spec went back to stable, or moved on): not a failed model.
        message = f"canary {canary.version} removed; traffic is on {state.stable.version}"
        done = replace(state, canary=None, phase=None, rejected=None)
        return Decision(done, [Event(reasons.CANARY_REMOVED, message)])
    rejected = RejectedModel(**dict(_ref(canary)), rejected_at=at)
    done = replace(state, canary=None, phase="RolledBack", rejected=rejected)
    message = f"traffic is on {state.stable.version}; canary {canary.version} removed"
    entry = f"{canary.version} rolled back"
    if canary.shadow is not None and canary.shadow.passed_at is None:
        entry += " in the shadow stage, before serving any user request"
        message += " (rejected in the shadow stage: it served no user request)"
    return Decision(
        done,
        [Event(reasons.ROLLED_BACK, message, "Warning")],
        [_entry(at, reasons.ROLLED_BACK, entry, canary.version)],
    )


def _promoted(state: RolloutState, canary: CanaryStatus, observed: Observed, at: str) -> Decision:
    name = state.stable.predictor_name if observed.promoted_in_place else canary.predictor_name
    stable = _ref(canary).model_copy(update={"predictor_name": name})
    done = RolloutState(stable=stable, canary=None, phase=None, analysis=state.analysis)
    message = f"{state.stable.version} -> {canary.version}"
    return Decision(
        done,
        [Event(reasons.PROMOTED, f"{canary.version} is now stable")],
        [_entry(at, reasons.PROMOTED, message, canary.version)],
    )


def _progressing(
    state: RolloutState,
    canary: CanaryStatus,
    settings: RolloutSettings,
    observed: Observed,
    now: datetime,
) -> Decision:
    at = timestamp(now)
    if not observed.canary_ready:
        if _since(canary.step_started_at or canary.started_at, now) > settings.deadline_seconds:
            message = f"canary {canary.version} not ready within {settings.deadline_seconds:g}s"
            return rollback(state, at, reasons.PROGRESS_DEADLINE_EXCEEDED, message)
        return Decision(state)
    if canary.weight == 0:
        # Ready at the generation Rung applied: only now does the canary get traffic.
        # The first step's clock starts here, so its analysis judges served requests.
        weight = next((w for w in settings.steps if w > 0), settings.steps[0])
        first = canary.model_copy(update={"weight": weight, "step": 0, "step_started_at": at})
        message = f"canary {canary.version} is ready: weight 0% -> {weight}%"
        return Decision(replace(state, canary=first), [Event(reasons.CANARY_READY, message)])
    if observed.verdict is None:
        return Decision(state)
    judged = _judged(state, canary, settings, observed, now, "the canary")
    if isinstance(judged, Decision):
        return judged
    if observed.verdict == "fail":
        return _failed(judged, canary, settings, observed, at)
    return _passed(judged, canary, settings, observed, at)


def _judged(
    state: RolloutState,
    canary: CanaryStatus,
    settings: RolloutSettings,
    observed: Observed,
    now: datetime,
    who: str,
) -> RolloutState | Decision:
    """This pass's analysis run recorded in status. A Decision where the run decides by
    itself (it could not measure; no data: hold, or roll back past the deadline); else
    the state with the run recorded, for the caller to act on `fail` or `pass`."""
    at = timestamp(now)
    analysis = state.analysis or AnalysisStatus()
    analysis = analysis.model_copy(update={"last_run": at, "checks": list(observed.checks)})
    if observed.verdict == "error":
        return _errored(replace(state, analysis=analysis), canary, settings, observed, now)
    analysis = analysis.model_copy(update={"consecutive_errors": 0, "last_error": None})
    judged = replace(state, analysis=analysis)
    if observed.verdict == "hold":
        if _since(canary.step_started_at, now) > settings.deadline_seconds:
            message = f"no metrics for {who} within progressDeadline"
            return rollback(judged, at, reasons.ANALYSIS_NO_DATA, message)
        return Decision(judged)
    return judged


def _errored(
    state: RolloutState,
    canary: CanaryStatus,
    settings: RolloutSettings,
    observed: Observed,
    now: datetime,
) -> Decision:
    """An analysis run that could not measure: never advances; too many in a row (or the
    progress deadline) roll back."""
    assert state.analysis is not None
    at = timestamp(now)
    errors = state.analysis.consecutive_errors + 1
    why = observed.error or "; ".join(f"{c.metric}: {c.message}" for c in observed.checks)
    errored = replace(
        state,
        analysis=state.analysis.model_copy(
            update={"consecutive_errors": errors, "last_error": why[:500]}
        ),
    )
    event = Event(
        reasons.ANALYSIS_ERROR,
        f"canary {canary.version}: analysis could not measure"
        f" ({errors} in a row, limit {settings.error_limit}): {why}",
        "Warning",
    )
    if errors > settings.error_limit:
        message = f"{errors} analysis runs in a row could not measure: {why}"
        decision = rollback(errored, at, reasons.ERROR_LIMIT_REACHED, message)
        return Decision(decision.state, [event, *decision.events], decision.history)
    if _since(canary.step_started_at, now) > settings.deadline_seconds:
        message = f"no measurement of the canary within progressDeadline: {why}"
        decision = rollback(errored, at, reasons.ANALYSIS_NO_DATA, message)
        return Decision(decision.state, [event, *decision.events], decision.history)
    return Decision(errored, [event])


def _failed(
    state: RolloutState,
    canary: CanaryStatus,
    settings: RolloutSettings,
    observed: Observed,
    at: str,
    stage: str = "analysis",
) -> Decision:
    assert state.analysis is not None
    failures = state.analysis.failures + 1
    failed = replace(state, analysis=state.analysis.model_copy(update={"failures": failures}))
    summary = "; ".join(f"{c.metric}: {c.message}" for c in observed.checks if c.passed is not True)
    event = Event(
        reasons.ANALYSIS_FAILED,
        f"canary {canary.version} failed {stage} ({failures}/{settings.failure_limit}): {summary}",
        "Warning",
    )
    if failures < settings.failure_limit:
        return Decision(failed, [event])
    message = f"{failures} failed {stage} runs: {summary}"
    shadowed = state.phase == "Shadowing"
    if shadowed:
        message += "; no user request was served by it"
    reason = reasons.SHADOW_FAILED if shadowed else reasons.FAILURE_LIMIT_REACHED
    decision = rollback(failed, at, reason, message)
    return Decision(decision.state, [event, *decision.events], decision.history)


def _passed(
    state: RolloutState,
    canary: CanaryStatus,
    settings: RolloutSettings,
    observed: Observed,
    at: str,
) -> Decision:
    # The next step is the first weight above the current one, not the next index: steps
    # changed mid-canary never skip a weight of the list in force, never move backwards.
    step = next((i for i, w in enumerate(settings.steps) if w > canary.weight), None)
    if step is not None:
        weight = settings.steps[step]
        moved = canary.model_copy(update={"step": step, "weight": weight, "step_started_at": at})
        message = f"canary {canary.version}: weight {canary.weight}% -> {weight}%"
        return Decision(replace(state, canary=moved), [Event(reasons.STEP_ADVANCED, message)])
    if settings.manual_gate and observed.approved_version != canary.version:
        message = (
            f"canary {canary.version} passed every step; approve with"
            f" `rung approve` (annotation rung.dev/approve={canary.version})"
        )
        return Decision(
            replace(state, phase="Paused"),
            [Event(reasons.AWAITING_APPROVAL, message)],
            [_entry(at, reasons.AWAITING_APPROVAL, "promotion waits for approval", canary.version)],
        )
    return _promote(state, at, approved=settings.manual_gate, by=observed.commands.approved_by)


def _entry(at: str, event: str, message: str, version: str | None = None) -> HistoryEntry:
    return HistoryEntry(time=at, event=event, message=message, version=version)


def _start(
    state: RolloutState,
    desired: ModelRef,
    settings: RolloutSettings,
    at: str,
    superseding: CanaryStatus | None,
    retried_by: str | None = None,
) -> Decision:
    canary = CanaryStatus(
        version=desired.version,
        storage_uri=desired.storage_uri,
        hash=desired.hash,
        model=desired.model,
        predictor_name=f"r-{(desired.hash or '')[:8]}",
        weight=0,  # no traffic until the canary is ready at the spec Rung applied
        step=0,
        started_at=at,
        step_started_at=at,
        shadow=None
        if settings.shadow is None
        else ShadowStatus(mirror_percent=settings.shadow.mirror_percent),
    )
    events: list[Event] = []
    history: list[HistoryEntry] = []
    if superseding is not None:
        events.append(
            Event(
                reasons.CANARY_SUPERSEDED,
                f"canary {superseding.version} replaced by {desired.version}",
            )
        )
        history.append(
            HistoryEntry(
                time=at,
                event=reasons.CANARY_SUPERSEDED,
                message=f"{superseding.version} -> {desired.version}",
                version=desired.version,
            )
        )
    if retried_by is not None:
        message = f"{desired.version} rolled out again, asked by {retried_by}"
        events.append(Event(reasons.RETRIED, message))
        history.append(_entry(at, reasons.RETRIED, message, desired.version))
    shadow = settings.shadow
    events.append(
        Event(
            reasons.CANARY_STARTED,
            f"rolling out {desired.version} next to {state.stable.version}:"
            + (
                f" shadow stage ({shadow.mirror_percent}% mirrored), then"
                if shadow is not None
                else ""
            )
            + f" steps {', '.join(f'{s}%' for s in settings.steps)}",
        )
    )
    history.append(
        HistoryEntry(
            time=at,
            event=reasons.CANARY_STARTED,
            message=f"{state.stable.version} -> {desired.version}",
            version=desired.version,
        )
    )
    new = RolloutState(
        stable=state.stable,
        canary=canary,
        phase="Progressing" if shadow is None else "Shadowing",
        analysis=AnalysisStatus(),
        rejected=None,
    )
    return Decision(new, events, history)


def _promote(
    state: RolloutState, at: str, approved: bool, by: str | None = None, full: bool = False
) -> Decision:
    """Promoting at 100 %: after the last step (approved at the gate, if it has one), or
    at once on `rung promote --full`."""
    assert state.canary is not None
    canary = state.canary
    promoting = replace(state, phase="Promoting", canary=canary.model_copy(update={"weight": 100}))
    if full:
        message = (
            f"canary {canary.version} promoted by {by or 'unknown'} at {canary.weight}%,"
            " skipping the remaining steps and analysis"
        )
        return Decision(
            promoting,
            [Event(reasons.PROMOTING, message)],
            [_entry(at, reasons.PROMOTED_BY_USER, message, canary.version)],
        )
    message = f"canary {canary.version} passed" + (
        f" and was approved{f' by {by}' if by else ''}" if approved else ""
    )
    return Decision(
        promoting,
        [Event(reasons.PROMOTING, message)],
        [_entry(at, reasons.APPROVED, message, canary.version)] if approved else [],
    )


def rollback(
    state: RolloutState, at: str, reason: str, message: str, warning: bool = True
) -> Decision:
    """Take all traffic off the canary: RollingBack at weight 0, announced as `reason`."""
    assert state.canary is not None
    canary = state.canary.model_copy(update={"weight": 0})
    return Decision(
        replace(state, phase="RollingBack", canary=canary),
        [
            Event(
                reason,
                f"{message}; rolling back to {state.stable.version}",
                "Warning" if warning else "Normal",
            )
        ],
        [
            HistoryEntry(
                time=at,
                event=reasons.ROLLING_BACK,
                message=f"{reason}: {message}",
                version=canary.version,
            )
        ],
    )


def _ref(model: ModelRef) -> ModelRef:
    return ModelRef(
        version=model.version,
        storage_uri=model.storage_uri,
        hash=model.hash,
        model=model.model,
        predictor_name=model.predictor_name,
    )


def _step_clock(state: RolloutState) -> str | None:
    """The later of the step's start and the last analysis run."""
    assert state.canary is not None
    times = [
        t
        for t in (state.canary.step_started_at, state.analysis.last_run if state.analysis else None)
        if t
    ]
    return max(times, key=parse_time) if times else None


def _since(text: str | None, now: datetime) -> float:
    if not text:
        return float("inf")
    return (now - parse_time(text)).total_seconds()
