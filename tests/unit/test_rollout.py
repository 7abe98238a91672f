"""rung.plan.rollout: every transition of the canary state machine, and when analysis is due."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import pytest

from rung.api.spec import ModelSource
from rung.api.status import (
    AnalysisStatus,
    CanaryStatus,
    CheckResult,
    ModelRef,
    Phase,
    RejectedModel,
)
from rung.plan.analysis import Verdict
from rung.plan.commands import (
    Abort,
    Commands,
    Pause,
    Promote,
    Retry,
    canary_id,
    rejection_id,
)
from rung.plan.events import timestamp
from rung.plan.inference_service import model_hash
from rung.plan.rollout import (
    Decision,
    Observed,
    RolloutSettings,
    RolloutState,
    advance,
    analysis_due,
)

from . import factories as f

T0 = f.NOW


def at(seconds: float) -> datetime:
    """`seconds` after T0."""
    return T0 + timedelta(seconds=seconds)


def text(seconds: float) -> str:
    """`at(seconds)` as status writes it."""
    return timestamp(at(seconds))


def ref(version: str, predictor_name: str | None = None) -> ModelRef:
    """The ModelRef the planner derives from a spec.model of `version`."""
    source = ModelSource.model_validate(
        f.model(storageUri=f"s3://models/fraud/{version}", version=version)
    )
    return ModelRef(
        version=version,
        storage_uri=source.storage_uri,
        hash=model_hash(source),
        model=source,
        predictor_name=predictor_name,
    )


V1, V2, V3 = ref("v1"), ref("v2"), ref("v3")
SETTINGS = RolloutSettings()  # steps 10, 25, 50, 100; interval 60s; deadline 600s; limit 2
GATED = replace(SETTINGS, steps=(10, 50), manual_gate=True)
"""Two steps, so that the last step's weight (50) differs from promotion's (100)."""
WARNINGS = {
    "ProgressDeadlineExceeded",
    "AnalysisFailed",
    "FailureLimitReached",
    "AnalysisNoData",
    "RolledBack",
}
PASSED = (CheckResult(metric="error-rate", value=0.001, passed=True, message="within thresholds"),)
FAILED = (CheckResult(metric="error-rate", value=0.5, passed=False, message="0.5 > max 0.01"),)
NO_DATA = (CheckResult(metric="error-rate", message="no data for the canary"),)


def canary(
    model: ModelRef = V2,
    *,
    step: int = 0,
    weight: int | None = None,
    started: float = 0,
    step_started: float | None = None,
    steps: tuple[int, ...] = SETTINGS.steps,
) -> CanaryStatus:
    """A canary of `model` at `step` (weight from `steps` unless given)."""
    assert model.hash is not None
    return CanaryStatus(
        version=model.version,
        storage_uri=model.storage_uri,
        hash=model.hash,
        model=model.model,
        predictor_name=f"r-{model.hash[:8]}",
        weight=steps[step] if weight is None else weight,
        step=step,
        started_at=text(started),
        step_started_at=text(started if step_started is None else step_started),
    )


def state(
    phase: Phase | None = None,
    canary: CanaryStatus | None = None,
    *,
    failures: int = 0,
    last_run: float | None = None,
    rejected: ModelRef | None = None,
    stable: ModelRef = V1,
) -> RolloutState:
    analysis = None
    if canary is not None:
        analysis = AnalysisStatus(
            failures=failures, last_run=None if last_run is None else text(last_run)
        )
    return RolloutState(
        stable=stable,
        canary=canary,
        phase=phase,
        analysis=analysis,
        rejected=None if rejected is None else RejectedModel(**dict(rejected), rejected_at=text(0)),
    )


# --- advance(): the transition table -------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Case:
    """Given a state, the desired model, settings, observations and time, expect ..."""

    state: RolloutState
    desired: ModelRef
    settings: RolloutSettings = SETTINGS
    observed: Observed = field(default_factory=Observed)
    now: datetime = T0
    # expected:
    phase: Phase | None
    canary: tuple[int, int] | None
    """(step, weight) of the canary after the pass, None when there is none."""
    stable: str = "v1"
    rejected: str | None = None
    events: tuple[str, ...] = ()
    history: tuple[str, ...] = ()

    def run(self) -> Decision:
        return advance(self.state, self.desired, self.settings, self.observed, self.now)


def ready(
    weight: int | None,
    verdict: Verdict | None = None,
    *,
    approved_version: str | None = None,
    promoted: bool = False,
    commands: Commands | None = None,
) -> Observed:
    """A ready canary that the cluster routes `weight` percent to, and this pass's verdict."""
    checks = {"pass": PASSED, "fail": FAILED, "hold": NO_DATA, None: ()}[verdict]
    return Observed(
        canary_ready=True,
        live_weight=weight,
        promoted=promoted,
        verdict=verdict,
        checks=checks,
        approved_version=approved_version,
        commands=commands or Commands(),
    )


AT_STEP_1 = canary(step=1, step_started=60)
"""A canary at 25 % since 60 s."""
PAUSED = AT_STEP_1.model_copy(update={"paused_at": text(70), "paused_by": "alice"})
REJECTED_V2 = RejectedModel(**dict(V2), rejected_at=text(0))


def promote(step: int | None, of: CanaryStatus = AT_STEP_1, gate: bool = False) -> Commands:
    return Commands(promote=Promote(canary_id(of), step, "alice", gate))


COMMAND_CASES: dict[str, Case] = {
    "abort-rolls-back-now": Case(
        state=state("Progressing", AT_STEP_1),
        desired=V2,
        observed=ready(25, commands=Commands(abort=Abort(canary_id(AT_STEP_1), "alice"))),
        now=at(70),
        phase="RollingBack",
        canary=(1, 0),
        events=("Aborted",),
        history=("RollingBack",),
    ),
    "abort-of-an-earlier-canary-is-ignored": Case(
        state=state("Progressing", AT_STEP_1),
        desired=V2,
        observed=ready(25, commands=Commands(abort=Abort(canary_id(canary(started=-600)), "a"))),
        now=at(70),
        phase="Progressing",
        canary=(1, 25),
    ),
    "promote-skips-the-current-step": Case(
        state=state("Progressing", AT_STEP_1),
        desired=V2,
        observed=ready(25, commands=promote(1)),
        now=at(70),
        phase="Progressing",
        canary=(2, 50),
        events=("StepSkipped", "StepAdvanced"),
        history=("StepSkipped",),
    ),
    "promote-given-at-an-earlier-step-is-spent": Case(
        state=state("Progressing", AT_STEP_1),
        desired=V2,
        observed=ready(25, commands=promote(0)),
        now=at(70),
        phase="Progressing",
        canary=(1, 25),
    ),
    "promote-full-skips-every-step": Case(
        state=state("Progressing", AT_STEP_1),
        desired=V2,
        observed=ready(25, commands=promote(None)),
        now=at(70),
        phase="Promoting",
        canary=(1, 100),
        events=("Promoting",),
        history=("PromotedByUser",),
    ),
    "promote-waits-for-a-ready-canary": Case(
        state=state("Progressing", canary(weight=0)),
        desired=V2,
        observed=Observed(commands=promote(None, canary(weight=0))),
        now=at(10),
        phase="Progressing",
        canary=(0, 0),
    ),
    "promote-at-the-gate-approves": Case(
        state=state("Paused", canary(step=1, steps=GATED.steps, step_started=60)),
        desired=V2,
        settings=GATED,
        observed=ready(50, commands=promote(1, canary(step=1, steps=GATED.steps), gate=True)),
        now=at(200),
        phase="Promoting",
        canary=(1, 100),
        events=("Promoting",),
        history=("Approved",),
    ),
    "promote-that-led-to-the-gate-does-not-approve": Case(
        state=state("Paused", canary(step=1, steps=GATED.steps, step_started=60)),
        desired=V2,
        settings=GATED,
        observed=ready(50, commands=promote(1, canary(step=1, steps=GATED.steps))),
        now=at(200),
        phase="Paused",
        canary=(1, 50),
    ),
    "promote-to-the-gate": Case(
        state=state("Progressing", canary(step=1, steps=GATED.steps, step_started=60)),
        desired=V2,
        settings=GATED,
        observed=ready(50, commands=promote(1, canary(step=1, steps=GATED.steps))),
        now=at(200),
        phase="Paused",
        canary=(1, 50),
        events=("StepSkipped", "AwaitingApproval"),
        history=("StepSkipped", "AwaitingApproval"),
    ),
    "pause-holds-the-canary": Case(
        state=state("Progressing", AT_STEP_1),
        desired=V2,
        observed=ready(25, commands=Commands(pause=Pause("alice", text(70)))),
        now=at(70),
        phase="Paused",
        canary=(1, 25),
        events=("PausedByUser",),
        history=("PausedByUser",),
    ),
    "paused-canary-outlives-its-deadline": Case(
        state=state("Paused", PAUSED),
        desired=V2,
        observed=Observed(canary_ready=False, commands=Commands(pause=Pause("alice", ""))),
        now=at(5000),
        phase="Paused",
        canary=(1, 25),
    ),
    "paused-canary-ignores-approval": Case(
        state=state("Paused", PAUSED),
        desired=V2,
        settings=GATED,
        observed=ready(25, approved_version="v2", commands=Commands(pause=Pause("alice", ""))),
        now=at(100),
        phase="Paused",
        canary=(1, 25),
    ),
    "resume-continues-with-a-fresh-step-clock": Case(
        state=state("Paused", PAUSED),
        desired=V2,
        observed=ready(25),
        now=at(5000),
        phase="Progressing",
        canary=(1, 25),
        events=("Resumed",),
        history=("Resumed",),
    ),
    "retry-rolls-the-rejected-version-out-again": Case(
        state=state("RolledBack", rejected=V2),
        desired=V2,
        observed=Observed(commands=Commands(retry=Retry(rejection_id(REJECTED_V2), "alice"))),
        now=at(300),
        phase="Progressing",
        canary=(0, 0),
        events=("Retried", "CanaryStarted"),
        history=("Retried", "CanaryStarted"),
    ),
    "retry-of-an-earlier-rejection-is-spent": Case(
        state=state("RolledBack", rejected=V2),
        desired=V2,
        observed=Observed(
            commands=Commands(
                retry=Retry(rejection_id(REJECTED_V2.model_copy(update={"rejected_at": "x"})), "a")
            )
        ),
        now=at(300),
        phase="RolledBack",
        canary=None,
        rejected="v2",
    ),
}
"""Day-2 commands (rung.plan.commands): each acts once, on the rollout it names."""


CASES: dict[str, Case] = {
    # no canary
    "steady": Case(state=state(), desired=V1, phase=None, canary=None),
    "steady-clears-rolled-back": Case(
        state=state("RolledBack", rejected=V2), desired=V1, phase=None, canary=None
    ),
    "new-model-starts-canary": Case(
        state=state(),
        desired=V2,
        phase="Progressing",
        canary=(0, 0),
        events=("CanaryStarted",),
        history=("CanaryStarted",),
    ),
    "new-model-starts-at-first-custom-step": Case(
        state=state(),
        desired=V2,
        settings=replace(SETTINGS, steps=(5, 100)),
        phase="Progressing",
        canary=(0, 0),
        events=("CanaryStarted",),
        history=("CanaryStarted",),
    ),
    "rejected-model-is-not-retried": Case(
        state=state("RolledBack", rejected=V2),
        desired=V2,
        phase="RolledBack",
        canary=None,
        rejected="v2",
    ),
    "another-model-after-a-rollback": Case(
        state=state("RolledBack", rejected=V2),
        desired=V3,
        phase="Progressing",
        canary=(0, 0),
        events=("CanaryStarted",),
        history=("CanaryStarted",),
    ),
    # spec.model changes under a canary
    "spec-changed-during-canary": Case(
        state=state("Progressing", canary(step=2, step_started=120)),
        desired=V3,
        observed=ready(50),
        now=at(150),
        phase="Progressing",
        canary=(0, 0),
        events=("CanarySuperseded", "CanaryStarted"),
        history=("CanarySuperseded", "CanaryStarted"),
    ),
    "spec-changed-while-paused": Case(
        state=state("Paused", canary(step=1, steps=GATED.steps)),
        desired=V3,
        settings=GATED,
        observed=ready(50),
        phase="Progressing",
        canary=(0, 0),
        events=("CanarySuperseded", "CanaryStarted"),
        history=("CanarySuperseded", "CanaryStarted"),
    ),
    "spec-changed-while-rolling-back": Case(
        # traffic comes off the failing canary first; the newer model starts after
        state=state("RollingBack", canary(step=1, weight=0)),
        desired=V3,
        observed=ready(25),
        phase="RollingBack",
        canary=(1, 0),
        events=(),
        history=(),
    ),
    "spec-back-to-stable-during-canary": Case(
        state=state("Progressing", canary(step=1)),
        desired=V1,
        observed=ready(25),
        phase="RollingBack",
        canary=(1, 0),
        events=("CanaryAborted",),
        history=("RollingBack",),
    ),
    # Progressing: readiness
    "not-ready-past-deadline": Case(
        state=state("Progressing", canary()),
        desired=V2,
        observed=Observed(canary_ready=False, live_weight=10),
        now=at(601),
        phase="RollingBack",
        canary=(0, 0),
        events=("ProgressDeadlineExceeded",),
        history=("RollingBack",),
    ),
    "not-ready-at-deadline": Case(
        state=state("Progressing", canary()),
        desired=V2,
        observed=Observed(canary_ready=False, live_weight=10),
        now=at(600),
        phase="Progressing",
        canary=(0, 10),
    ),
    "not-ready-before-deadline": Case(
        state=state("Progressing", canary()),
        desired=V2,
        observed=Observed(canary_ready=False, live_weight=10),
        now=at(300),
        phase="Progressing",
        canary=(0, 10),
    ),
    "ready-without-verdict": Case(
        state=state("Progressing", canary()),
        desired=V2,
        observed=ready(10),
        now=at(30),
        phase="Progressing",
        canary=(0, 10),
    ),
    # Progressing: analysis verdicts
    "pass-advances-a-step": Case(
        state=state("Progressing", canary()),
        desired=V2,
        observed=ready(10, "pass"),
        now=at(60),
        phase="Progressing",
        canary=(1, 25),
        events=("StepAdvanced",),
    ),
    "pass-advances-to-the-last-step": Case(
        state=state("Progressing", canary(step=2, step_started=120)),
        desired=V2,
        observed=ready(50, "pass"),
        now=at(180),
        phase="Progressing",
        canary=(3, 100),
        events=("StepAdvanced",),
    ),
    "pass-at-the-last-step-promotes": Case(
        state=state("Progressing", canary(step=3, step_started=180)),
        desired=V2,
        observed=ready(100, "pass"),
        now=at(240),
        phase="Promoting",
        canary=(3, 100),
        events=("Promoting",),
    ),
    "pass-at-the-last-step-awaits-approval": Case(
        state=state("Progressing", canary(step=1, step_started=60, steps=GATED.steps)),
        desired=V2,
        settings=GATED,
        observed=ready(50, "pass"),
        now=at(120),
        phase="Paused",
        canary=(1, 50),
        events=("AwaitingApproval",),
        history=("AwaitingApproval",),
    ),
    "pass-at-the-last-step-approved-beforehand": Case(
        state=state("Progressing", canary(step=1, step_started=60, steps=GATED.steps)),
        desired=V2,
        settings=GATED,
        observed=ready(50, "pass", approved_version="v2"),
        now=at(120),
        phase="Promoting",
        canary=(1, 100),
        events=("Promoting",),
        history=("Approved",),
    ),
    "pass-at-the-last-step-approval-for-another-version": Case(
        state=state("Progressing", canary(step=1, step_started=60, steps=GATED.steps)),
        desired=V2,
        settings=GATED,
        observed=ready(50, "pass", approved_version="v1"),
        now=at(120),
        phase="Paused",
        canary=(1, 50),
        events=("AwaitingApproval",),
        history=("AwaitingApproval",),
    ),
    "fail-below-failure-limit": Case(
        state=state("Progressing", canary()),
        desired=V2,
        observed=ready(10, "fail"),
        now=at(60),
        phase="Progressing",
        canary=(0, 10),
        events=("AnalysisFailed",),
    ),
    "fail-reaching-failure-limit": Case(
        state=state("Progressing", canary(), failures=1, last_run=60),
        desired=V2,
        observed=ready(10, "fail"),
        now=at(120),
        phase="RollingBack",
        canary=(0, 0),
        events=("AnalysisFailed", "FailureLimitReached"),
        history=("RollingBack",),
    ),
    "fail-with-failure-limit-1": Case(
        state=state("Progressing", canary()),
        desired=V2,
        settings=replace(SETTINGS, failure_limit=1),
        observed=ready(10, "fail"),
        now=at(60),
        phase="RollingBack",
        canary=(0, 0),
        events=("AnalysisFailed", "FailureLimitReached"),
        history=("RollingBack",),
    ),
    "hold-within-deadline": Case(
        state=state("Progressing", canary()),
        desired=V2,
        observed=ready(10, "hold"),
        now=at(60),
        phase="Progressing",
        canary=(0, 10),
    ),
    "hold-past-deadline": Case(
        state=state("Progressing", canary(), last_run=540),
        desired=V2,
        observed=ready(10, "hold"),
        now=at(601),
        phase="RollingBack",
        canary=(0, 0),
        events=("AnalysisNoData",),
        history=("RollingBack",),
    ),
    "hold-deadline-counts-from-the-step-start": Case(
        state=state("Progressing", canary(step=2, step_started=1200), last_run=1200),
        desired=V2,
        observed=ready(50, "hold"),
        now=at(1500),
        phase="Progressing",
        canary=(2, 50),
    ),
    # Paused
    "paused-approved": Case(
        state=state("Paused", canary(step=1, steps=GATED.steps)),
        desired=V2,
        settings=GATED,
        observed=ready(50, approved_version="v2"),
        now=at(600),
        phase="Promoting",
        canary=(1, 100),
        events=("Promoting",),
        history=("Approved",),
    ),
    "paused-approval-for-another-version": Case(
        state=state("Paused", canary(step=1, steps=GATED.steps)),
        desired=V2,
        settings=GATED,
        observed=ready(50, approved_version="v1"),
        now=at(600),
        phase="Paused",
        canary=(1, 50),
    ),
    "paused-without-approval": Case(
        state=state("Paused", canary(step=1, steps=GATED.steps)),
        desired=V2,
        settings=GATED,
        observed=ready(50),
        now=at(6000),
        phase="Paused",
        canary=(1, 50),
    ),
    "paused-ignores-a-verdict": Case(
        state=state("Paused", canary(step=1, steps=GATED.steps)),
        desired=V2,
        settings=GATED,
        observed=ready(50, "fail"),
        now=at(600),
        phase="Paused",
        canary=(1, 50),
    ),
    # RollingBack
    "rolling-back-waits-for-traffic-to-leave": Case(
        state=state("RollingBack", canary(step=1, weight=0)),
        desired=V2,
        observed=ready(25),
        phase="RollingBack",
        canary=(1, 0),
    ),
    "rolled-back-at-weight-0": Case(
        state=state("RollingBack", canary(step=1, weight=0)),
        desired=V2,
        observed=ready(0),
        phase="RolledBack",
        canary=None,
        rejected="v2",
        events=("RolledBack",),
        history=("RolledBack",),
    ),
    "rolled-back-without-a-canary-route": Case(
        state=state("RollingBack", canary(step=1, weight=0)),
        desired=V2,
        observed=Observed(live_weight=None),
        phase="RolledBack",
        canary=None,
        rejected="v2",
        events=("RolledBack",),
        history=("RolledBack",),
    ),
    # Promoting
    "promoting-waits-for-the-stable-slot": Case(
        state=state("Promoting", canary(step=3)),
        desired=V2,
        observed=ready(100, promoted=False),
        phase="Promoting",
        canary=(3, 100),
    ),
    "promoted": Case(
        state=state("Promoting", canary(step=3)),
        desired=V2,
        observed=ready(100, promoted=True),
        phase=None,
        canary=None,
        stable="v2",
        events=("Promoted",),
        history=("Promoted",),
    ),
    **COMMAND_CASES,
}


def outcome(d: Decision) -> tuple[object, ...]:
    s = d.state
    return (
        s.phase,
        None if s.canary is None else (s.canary.step, s.canary.weight),
        s.stable.version,
        None if s.rejected is None else s.rejected.version,
        tuple(e.reason for e in d.events),
        tuple(h.event for h in d.history),
    )


@pytest.mark.parametrize("name", list(CASES))
def test_advance(name: str) -> None:
    case = CASES[name]
    expected = (
        case.phase,
        case.canary,
        case.stable,
        case.rejected,
        case.events,
        case.history,
    )
    assert outcome(case.run()) == expected


@pytest.mark.parametrize("name", list(CASES))
def test_event_types(name: str) -> None:
    """Rollbacks and failures warn; an abort the user asked for and progress do not."""
    for event in CASES[name].run().events:
        assert event.type == ("Warning" if event.reason in WARNINGS else "Normal"), event


@pytest.mark.parametrize("name", list(CASES))
def test_history_is_stamped_with_now(name: str) -> None:
    case = CASES[name]
    for entry in case.run().history:
        assert entry.time == timestamp(case.now)
        assert entry.version in ("v2", "v3")


QUIET = [
    name
    for name, case in CASES.items()
    if not case.events
    and case.observed.verdict is None
    and not (case.state.phase == "RolledBack" and case.desired == case.state.stable)
]
"""Cases where nothing is decided and no analysis ran (returning to stable clears RolledBack)."""


@pytest.mark.parametrize("name", QUIET)
def test_unchanged_state_is_returned_as_is(name: str) -> None:
    """A pass that decides nothing leaves the state exactly as it was."""
    case = CASES[name]
    assert case.run().state == case.state


# --- advance(): idempotence at a fixed point -----------------------------------------


@pytest.mark.parametrize(
    "name",
    [n for n in CASES],
)
def test_second_pass_with_the_same_observation_decides_nothing(name: str) -> None:
    """Re-running at the same instant, before the cluster moved, is a fixed point.

    The verdict is only repeated when analysis is due again, as the handler does.
    """
    case = CASES[name]
    first = case.run()
    observed = case.observed
    if "CanaryStarted" in [e.reason for e in first.events]:
        observed = replace(observed, canary_ready=False)  # the new canary is not applied yet
    if not analysis_due(first.state, case.settings, observed.canary_ready, case.now):
        observed = replace(observed, verdict=None, checks=())
    second = advance(first.state, case.desired, case.settings, observed, case.now)
    assert (second.events, second.history) == ([], [])
    assert second.state == first.state


def test_aborted_canary_finishes_rolling_back() -> None:
    """spec.model back to stable: once traffic is off the canary, the canary goes."""
    aborted = CASES["spec-back-to-stable-during-canary"].run().state
    d = advance(aborted, V1, SETTINGS, Observed(live_weight=0), at(30))
    assert d.state.canary is None
    assert "CanaryAborted" not in [e.reason for e in d.events]


# --- advance(): details of each transition -------------------------------------------


def test_canary_started() -> None:
    d = CASES["new-model-starts-canary"].run()
    assert d.state.canary == CanaryStatus(
        version="v2",
        storage_uri="s3://models/fraud/v2",
        hash=V2.hash,
        model=V2.model,
        predictor_name=f"r-{(V2.hash or '')[:8]}",
        weight=0,
        step=0,
        started_at=f.NOW_TEXT,
        step_started_at=f.NOW_TEXT,
    )
    assert d.state.analysis == AnalysisStatus()
    assert d.state.stable == V1
    (event,) = d.events
    assert event.message == "rolling out v2 next to v1: steps 10%, 25%, 50%, 100%"
    (entry,) = d.history
    assert (entry.message, entry.version) == ("v1 -> v2", "v2")


def test_superseding_canary_restarts_clock_and_failures() -> None:
    case = CASES["spec-changed-during-canary"]
    busy = replace(
        case.state,
        analysis=AnalysisStatus(failures=1, last_run=text(120), checks=list(FAILED)),
    )
    d = advance(busy, V3, SETTINGS, case.observed, case.now)
    assert d.state.canary is not None
    assert d.state.canary.version == "v3"
    assert d.state.canary.started_at == d.state.canary.step_started_at == text(150)
    assert d.state.analysis == AnalysisStatus()
    assert d.events[0].message == "canary v2 replaced by v3"
    assert d.history[0].message == "v2 -> v3"


def test_abort_message() -> None:
    (event,) = CASES["spec-back-to-stable-during-canary"].run().events
    assert event.message == ("spec.model is back to v1: removing canary v2; rolling back to v1")


@pytest.mark.parametrize(
    "name",
    [
        "spec-back-to-stable-during-canary",
        "not-ready-past-deadline",
        "fail-reaching-failure-limit",
        "hold-past-deadline",
    ],
)
def test_rollback_keeps_the_canary_at_weight_0(name: str) -> None:
    case = CASES[name]
    before, after = case.state.canary, case.run().state.canary
    assert before is not None
    assert after == before.model_copy(update={"weight": 0})
    (entry,) = case.run().history
    assert entry.message.startswith(case.run().events[-1].reason + ": ")


def test_deadline_message_names_the_deadline() -> None:
    (event,) = CASES["not-ready-past-deadline"].run().events
    assert event.message == "canary v2 not ready within 600s; rolling back to v1"


def test_step_advance_restarts_the_step_clock_and_records_the_run() -> None:
    d = CASES["pass-advances-a-step"].run()
    assert d.state.canary is not None
    assert d.state.canary.step_started_at == text(60)
    assert d.state.canary.started_at == text(0)
    assert d.state.analysis == AnalysisStatus(last_run=text(60), failures=0, checks=list(PASSED))
    assert d.events[0].message == "canary v2: weight 10% -> 25%"


def test_failed_run_counts_and_explains() -> None:
    d = CASES["fail-below-failure-limit"].run()
    assert d.state.analysis == AnalysisStatus(last_run=text(60), failures=1, checks=list(FAILED))
    assert d.state.canary == CASES["fail-below-failure-limit"].state.canary
    assert d.events[0].message == "canary v2 failed analysis (1/2): error-rate: 0.5 > max 0.01"


def test_failure_limit_reached_explains() -> None:
    d = CASES["fail-reaching-failure-limit"].run()
    assert d.state.analysis is not None
    assert d.state.analysis.failures == 2
    assert d.events[1].message == (
        "2 failed analysis runs: error-rate: 0.5 > max 0.01; rolling back to v1"
    )


def test_failure_summary_lists_failed_and_missing_checks_only() -> None:
    checks = (
        CheckResult(metric="latency-p95", value=90.0, passed=True, message="within thresholds"),
        *FAILED,
        *NO_DATA,
    )
    d = advance(
        state("Progressing", canary()),
        V2,
        SETTINGS,
        Observed(canary_ready=True, live_weight=10, verdict="fail", checks=checks),
        at(60),
    )
    assert d.events[0].message.endswith(
        ": error-rate: 0.5 > max 0.01; error-rate: no data for the canary"
    )


def test_hold_records_the_run_without_counting_a_failure() -> None:
    case = CASES["hold-within-deadline"]
    d = case.run()
    assert d.state.analysis == AnalysisStatus(last_run=text(60), failures=0, checks=list(NO_DATA))
    assert d.state.canary == case.state.canary


def test_awaiting_approval_says_how_to_approve() -> None:
    (event,) = CASES["pass-at-the-last-step-awaits-approval"].run().events
    assert "rung.dev/approve=v2" in event.message


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("pass-at-the-last-step-promotes", "canary v2 passed"),
        ("pass-at-the-last-step-approved-beforehand", "canary v2 passed and was approved"),
        ("paused-approved", "canary v2 passed and was approved"),
    ],
)
def test_promoting_message(name: str, message: str) -> None:
    (event,) = CASES[name].run().events
    assert event.message == message


def test_rolled_back_rejects_the_canary_model() -> None:
    case = CASES["rolled-back-at-weight-0"]
    d = case.run()
    assert case.state.canary is not None
    assert type(d.state.rejected) is RejectedModel
    assert d.state.rejected == RejectedModel(
        version="v2",
        storage_uri="s3://models/fraud/v2",
        hash=V2.hash,
        model=V2.model,
        predictor_name=case.state.canary.predictor_name,
        rejected_at=timestamp(case.now),
    )
    assert d.state.stable == V1
    assert d.events[0].message == "traffic is on v1; canary v2 removed"


def test_promoted_canary_becomes_stable_with_its_predictor_name() -> None:
    case = CASES["promoted"]
    d = case.run()
    assert case.state.canary is not None
    assert type(d.state.stable) is ModelRef
    assert d.state.stable == ModelRef(
        version="v2",
        storage_uri="s3://models/fraud/v2",
        hash=V2.hash,
        model=V2.model,
        predictor_name=case.state.canary.predictor_name,
    )
    assert d.state.analysis == case.state.analysis
    assert d.state.rejected is None
    assert d.events[0].message == "v2 is now stable"
    assert d.history[0].message == "v1 -> v2"


def test_not_ready_at_a_later_step_holds_within_the_deadline_of_that_step() -> None:
    current = state("Progressing", canary(step=2, started=0, step_started=1200), last_run=1200)
    d = advance(current, V2, SETTINGS, Observed(canary_ready=False, live_weight=50), at(1230))
    assert (d.state, d.events) == (current, [])


# --- sequences with an injected clock ------------------------------------------------


@dataclass
class Run:
    """What a simulated rollout went through."""

    state: RolloutState
    reasons: list[str] = field(default_factory=list)
    weights: list[int] = field(default_factory=list)
    times: dict[str, datetime] = field(default_factory=dict)
    analyses: int = 0


def simulate(
    settings: RolloutSettings,
    verdict: Callable[[RolloutState], Verdict],
    *,
    desired: ModelRef = V2,
    approve_at: datetime | None = None,
    tick: timedelta = timedelta(seconds=30),
    passes: int = 60,
) -> Run:
    """Drive advance() like the handler, with a cluster that applies each pass's intent.

    The cluster makes the canary ready at once and lags one pass behind: what a pass
    decides is what the next pass observes.
    """
    run = Run(state=RolloutState(stable=V1))
    live_weight: int | None = None
    promoted = False
    now = T0
    for _ in range(passes):
        current = run.state
        is_ready = current.canary is not None
        due = analysis_due(current, settings, is_ready, now)
        observed = Observed(
            canary_ready=is_ready,
            live_weight=live_weight,
            promoted=promoted,
            verdict=verdict(current) if due else None,
            approved_version="v2" if approve_at is not None and now >= approve_at else None,
        )
        run.analyses += due
        d = advance(current, desired, settings, observed, now)
        for event in d.events:
            run.reasons.append(event.reason)
            run.times.setdefault(event.reason, now)
        run.state = d.state
        # the cluster applies what this pass wants
        live_weight = None if d.state.canary is None else d.state.canary.weight
        promoted = d.state.phase == "Promoting"
        if live_weight is not None and (not run.weights or run.weights[-1] != live_weight):
            run.weights.append(live_weight)
        now += tick
    return run


def test_healthy_canary_climbs_every_step_to_ready() -> None:
    run = simulate(SETTINGS, lambda _: "pass")
    assert run.reasons == [
        "CanaryStarted",
        "CanaryReady",
        "StepAdvanced",
        "StepAdvanced",
        "StepAdvanced",
        "Promoting",
        "Promoted",
    ]
    assert run.weights == [0, 10, 25, 50, 100]  # no traffic until the canary is ready
    assert run.state == RolloutState(
        stable=ref("v2", predictor_name=f"r-{(V2.hash or '')[:8]}"),
        analysis=run.state.analysis,
    )
    assert run.analyses == 4
    # ready (and at 10%) at 30s; each step lasts one interval: analysis at 90s ... 270s
    assert run.times["CanaryReady"] == at(30)
    assert run.times["Promoting"] == at(270)
    assert run.times["Promoted"] == at(300)


def test_healthy_canary_waits_for_approval_with_a_manual_gate() -> None:
    gated = replace(SETTINGS, manual_gate=True)
    run = simulate(gated, lambda _: "pass", approve_at=at(900))
    assert run.reasons == [
        "CanaryStarted",
        "CanaryReady",
        "StepAdvanced",
        "StepAdvanced",
        "StepAdvanced",
        "AwaitingApproval",
        "Promoting",
        "Promoted",
    ]
    assert run.times["AwaitingApproval"] == at(270)
    assert run.times["Promoting"] == at(900)
    assert run.state.canary is None
    assert run.state.stable.version == "v2"


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_faulty_canary_is_rolled_back_within_failure_limit_runs(limit: int) -> None:
    run = simulate(replace(SETTINGS, failure_limit=limit), lambda _: "fail")
    assert run.reasons == [
        "CanaryStarted",
        "CanaryReady",
        *["AnalysisFailed"] * limit,
        "FailureLimitReached",
        "RolledBack",
    ]
    assert run.analyses == limit
    assert run.weights == [0, 10, 0]
    assert run.times["FailureLimitReached"] == at(30 + 60 * limit)
    assert run.state.phase == "RolledBack"
    assert run.state.canary is None
    assert run.state.stable == V1
    assert run.state.rejected is not None
    assert run.state.rejected.version == "v2"


def test_canary_failing_at_a_later_step_never_reaches_full_traffic() -> None:
    def judge(current: RolloutState) -> Verdict:
        assert current.canary is not None
        return "fail" if current.canary.step >= 2 else "pass"

    run = simulate(SETTINGS, judge)
    assert run.reasons == [
        "CanaryStarted",
        "CanaryReady",
        "StepAdvanced",
        "StepAdvanced",
        "AnalysisFailed",
        "AnalysisFailed",
        "FailureLimitReached",
        "RolledBack",
    ]
    assert run.weights == [0, 10, 25, 50, 0]
    assert run.state.phase == "RolledBack"


def test_canary_without_metrics_is_rolled_back_after_the_deadline() -> None:
    run = simulate(SETTINGS, lambda _: "hold")
    assert run.reasons == ["CanaryStarted", "CanaryReady", "AnalysisNoData", "RolledBack"]
    # the first run more than 600s after traffic started (at 30s), on a 60s cadence
    assert run.times["AnalysisNoData"] == at(690)
    assert run.state.phase == "RolledBack"


# --- analysis_due() ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "is_ready", "now", "due"),
    [
        (state(), True, at(3600), False),
        (state("RolledBack", rejected=V2), True, at(3600), False),
        (state("Paused", canary(step=3)), True, at(3600), False),
        (state("Promoting", canary(step=3)), True, at(3600), False),
        (state("RollingBack", canary(weight=0)), True, at(3600), False),
        (state("Progressing", canary()), False, at(3600), False),
        (state("Progressing", canary()), True, at(59), False),
        (state("Progressing", canary()), True, at(60), True),
        (state("Progressing", canary()), True, at(61), True),
        (state("Progressing", canary(step=1, step_started=60)), True, at(100), False),
        (state("Progressing", canary(), last_run=100), True, at(130), False),
        (state("Progressing", canary(), last_run=100), True, at(160), True),
        (state("Progressing", canary(step=1, step_started=100), last_run=0), True, at(130), False),
        (state("Progressing", canary(step=1, step_started=100), last_run=0), True, at(160), True),
        (
            RolloutState(
                stable=V1,
                canary=canary().model_copy(update={"step_started_at": None}),
                phase="Progressing",
            ),
            True,
            T0,
            True,
        ),
    ],
    ids=[
        "no-canary",
        "rolled-back",
        "paused",
        "promoting",
        "rolling-back",
        "not-ready",
        "interval-not-elapsed-since-step-start",
        "interval-elapsed-exactly",
        "interval-elapsed",
        "interval-not-elapsed-since-later-step-start",
        "interval-not-elapsed-since-last-run",
        "interval-elapsed-since-last-run",
        "step-started-after-last-run-not-elapsed",
        "step-started-after-last-run-elapsed",
        "no-clock-yet",
    ],
)
def test_analysis_due(current: RolloutState, is_ready: bool, now: datetime, due: bool) -> None:
    assert analysis_due(current, SETTINGS, is_ready, now) is due


@pytest.mark.parametrize(("interval", "due"), [(30.0, True), (60.0, True), (61.0, False)])
def test_analysis_due_follows_the_interval(interval: float, due: bool) -> None:
    settings = replace(SETTINGS, interval_seconds=interval)
    assert analysis_due(state("Progressing", canary()), settings, True, at(60)) is due


# --- no traffic before readiness -------------------------------------------------------


def test_a_started_canary_gets_no_traffic_until_ready() -> None:
    started = CASES["new-model-starts-canary"].run().state
    assert started.canary is not None
    assert started.canary.weight == 0
    waiting = advance(started, V2, SETTINGS, Observed(canary_ready=False), at(30))
    assert waiting.state == started
    assert waiting.events == []
    assert not analysis_due(started, SETTINGS, True, at(3600))


def test_a_ready_canary_gets_the_first_step_and_its_clock_starts() -> None:
    started = CASES["new-model-starts-canary"].run().state
    verdict_ignored = Observed(canary_ready=True, verdict="pass", checks=PASSED)
    d = advance(started, V2, SETTINGS, verdict_ignored, at(45))
    assert d.state.canary is not None
    assert (d.state.canary.weight, d.state.canary.step) == (10, 0)
    assert d.state.canary.step_started_at == text(45)
    assert [(e.reason, e.message) for e in d.events] == [
        ("CanaryReady", "canary v2 is ready: weight 0% -> 10%")
    ]


def test_a_canary_never_ready_gets_no_traffic_and_rolls_back_at_the_deadline() -> None:
    started = CASES["new-model-starts-canary"].run().state
    d = advance(started, V2, SETTINGS, Observed(canary_ready=False), at(601))
    assert [e.reason for e in d.events] == ["ProgressDeadlineExceeded"]
    assert d.state.canary is not None
    assert d.state.canary.weight == 0
