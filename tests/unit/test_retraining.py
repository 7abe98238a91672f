"""rung.plan.retraining: triggers, guards, runs and their announcements (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from rung.api.resource import RETRAIN_ANNOTATION, ModelDeployment
from rung.api.status import ModelDeploymentStatus, RetrainingStatus
from rung.plan.conditions import get_condition
from rung.plan.events import Event, timestamp
from rung.plan.observation import RunOutcome, TriggerReading
from rung.plan.promql import Targets
from rung.plan.reconcile import Observation, Plan, plan
from rung.plan.retraining import (
    MAX_LAUNCH_ATTEMPTS,
    RETRAINING_READY,
    RUNS_KEPT,
    RetrainingDecision,
    decide,
    retraining_queries,
    run_name,
)

from . import factories as f

STABLE = Targets(stable="fraud-predictor", canary=None)

T0 = f.NOW
JOB = {
    "type": "job",
    "job": {"template": {"template": {"spec": {"containers": [{"name": "t", "image": "t:1"}]}}}},
}
DRIFT = {
    "type": "drift",
    "query": 'max(drift_score{namespace="{{ namespace }}", model="{{ name }}"})',
    "above": 0.3,
    "for": "2m",
}
DECAY = {"type": "decay", "query": "avg(accuracy)", "below": 0.8}
DAILY = {"type": "schedule", "cron": "0 3 * * *"}
PROMETHEUS = {"prometheus": {"url": "http://prometheus:9090"}, "interval": "30s"}


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def deployment(
    *,
    triggers: Sequence[Mapping[str, Any]] = (DRIFT,),
    cooldown: str = "1h",
    max_runs: int = 3,
    pipeline: Mapping[str, Any] | None = JOB,
    level: int = 3,
    retraining: RetrainingStatus | None = None,
    token: str | None = None,
    status: Mapping[str, Any] | None = None,
) -> ModelDeployment:
    spec: dict[str, Any] = {
        "triggers": [dict(t) for t in triggers],
        "cooldown": cooldown,
        "maxRunsPerDay": max_runs,
    }
    if pipeline is not None:
        spec["pipeline"] = dict(pipeline)
    wire = dict(status or {})
    if retraining is not None:
        wire["retraining"] = retraining.wire()
    return f.md(
        level=level,
        monitoring=PROMETHEUS,
        retraining=spec,
        status=wire,
        annotations={RETRAIN_ANNOTATION: token} if token else None,
    )


@dataclass
class Loop:
    """Feeds each decision's status back, as the reconciler does through the API server."""

    spec: dict[str, Any] = field(default_factory=dict)
    retraining: RetrainingStatus | None = None
    token: str | None = None
    decisions: list[RetrainingDecision] = field(default_factory=list)

    def step(
        self,
        at: datetime,
        *values: float | None,
        outcomes: Mapping[str, RunOutcome] | None = None,
        readings: Mapping[int, TriggerReading] | None = None,
    ) -> RetrainingDecision:
        md = deployment(**self.spec, retraining=self.retraining, token=self.token)
        if values:
            readings = {i: TriggerReading(value=v) for i, v in enumerate(values)}
        d = decide(md, readings, outcomes or {}, at)
        self.retraining = d.status
        self.decisions.append(d)
        return d

    def finish(
        self,
        at: datetime,
        state: str = "Succeeded",
        message: str = "",
        values: Sequence[float | None] = (),
    ) -> RetrainingDecision:
        """The active run ends (with `values` read in the same pass)."""
        assert self.retraining is not None
        active = [r.name for r in self.retraining.runs if r.outcome == "Running"]
        assert len(active) == 1
        outcome = RunOutcome(state, message)  # type: ignore[arg-type]
        return self.step(at, *values, outcomes={active[0]: outcome})

    def reasons(self) -> list[str]:
        return [e.reason for d in self.decisions for e in d.events]


def launched(d: RetrainingDecision) -> str | None:
    return d.launch.run if d.launch else None


# --- drift and decay ---------------------------------------------------------------


def test_drift_below_the_threshold_never_fires() -> None:
    loop = Loop()
    for n in range(10):
        d = loop.step(minutes(n), 0.1)
        assert d.launch is None
        assert d.events == []
    state = loop.retraining.triggers[0]  # type: ignore[union-attr]
    assert (state.firing, state.since, state.value) == (False, None, 0.1)
    assert state.message == "0.1 is not above 0.3"


def test_drift_fires_once_crossed_for_the_for_duration() -> None:
    loop = Loop()
    first = loop.step(minutes(0), 0.5)
    assert first.launch is None
    assert loop.retraining.triggers[0].since == f.NOW_TEXT  # type: ignore[union-attr]
    assert "fires after 2m" in loop.retraining.triggers[0].message  # type: ignore[union-attr]
    assert loop.step(minutes(1), 0.6).launch is None

    d = loop.step(minutes(2), 0.7)

    assert d.launch is not None
    assert d.launch.run == "fraud-retrain-1"
    assert d.launch.reason == "drift: 0.7 above 0.3 for 2m"
    assert (d.launch.trigger, d.launch.version, d.launch.storage_uri) == (
        "drift",
        "v1",
        "s3://models/fraud/v1",
    )
    assert d.events == [
        Event("RetrainingStarted", "launched job run fraud-retrain-1 for v1: " + d.launch.reason)
    ]
    assert [(h.event, h.message) for h in d.history] == [
        ("Retrained", "fraud-retrain-1: drift: 0.7 above 0.3 for 2m")
    ]
    st = d.status
    assert (st.runs_started, st.run, st.reason) == (1, "fraud-retrain-1", d.launch.reason)
    assert st.last_triggered_at == timestamp(minutes(2))
    assert st.next_allowed_at == timestamp(minutes(62))
    (run,) = st.runs
    assert (run.name, run.outcome, run.trigger, run.launcher) == (
        "fraud-retrain-1",
        "Running",
        "drift",
        "job",
    )
    assert st.triggers[0].run == "fraud-retrain-1"


def test_a_dip_below_the_threshold_restarts_the_for_clock() -> None:
    loop = Loop()
    loop.step(minutes(0), 0.5)
    loop.step(minutes(1), 0.1)
    assert loop.step(minutes(2), 0.5).launch is None
    assert loop.step(minutes(3), 0.5).launch is None
    assert launched(loop.step(minutes(4), 0.5)) == "fraud-retrain-1"


def test_no_data_is_not_a_crossing() -> None:
    loop = Loop()
    loop.step(minutes(0), 0.5)
    loop.step(minutes(1), None)
    assert loop.retraining.triggers[0].since is None  # type: ignore[union-attr]
    assert loop.retraining.triggers[0].message == "no data"  # type: ignore[union-attr]
    assert loop.step(minutes(2), 0.5).launch is None


def test_query_errors_keep_the_clock_and_do_not_fire() -> None:
    loop = Loop()
    loop.step(minutes(0), 0.5)
    error = {0: TriggerReading(error="Prometheus at http://prometheus:9090: timed out")}
    d = loop.step(minutes(3), readings=error)
    assert d.launch is None
    assert d.condition is not None
    assert d.condition[:2] == ("False", "TriggerQueryFailed")
    assert "timed out" in d.condition[2]
    state = loop.retraining.triggers[0]  # type: ignore[union-attr]
    assert (state.since, state.error) == (f.NOW_TEXT, error[0].error)
    # Between evaluations the condition stays False; the next good reading fires.
    assert loop.step(minutes(3.2)).condition[:2] == ("False", "TriggerQueryFailed")  # type: ignore[index]
    d = loop.step(minutes(4), 0.5)
    assert launched(d) == "fraud-retrain-1"
    assert d.condition is not None
    assert d.condition[:2] == ("True", "TriggersWatched")
    assert loop.retraining.triggers[0].error is None  # type: ignore[union-attr]


def test_decay_fires_below_its_threshold() -> None:
    loop = Loop({"triggers": [DECAY]})
    assert loop.step(minutes(0), 0.9).launch is None
    d = loop.step(minutes(1), 0.75)
    assert launched(d) == "fraud-retrain-1"
    assert d.launch is not None
    assert d.launch.reason == "decay: 0.75 below 0.8"


def test_triggers_firing_together_share_one_run() -> None:
    loop = Loop({"triggers": [{**DRIFT, "for": "0s"}, DECAY]})
    d = loop.step(minutes(0), 0.5, 0.5)
    assert d.launch is not None
    assert d.launch.reason == "drift: 0.5 above 0.3 for 0s; decay: 0.5 below 0.8"
    assert d.launch.trigger == "drift,decay"
    assert [s.run for s in d.status.triggers] == ["fraud-retrain-1"] * 2
    # Both stay crossed while their run is active: nothing more to say.
    for n in range(1, 5):
        assert loop.step(minutes(n), 0.5, 0.5).events == []


# --- runs --------------------------------------------------------------------------


def test_a_succeeded_run_is_recorded() -> None:
    loop = Loop({"triggers": [{**DRIFT, "for": "0s"}]})
    loop.step(minutes(0), 0.5)
    loop.step(minutes(1), outcomes={"fraud-retrain-1": RunOutcome("Running")})
    assert loop.retraining.runs[0].observed  # type: ignore[union-attr]

    d = loop.finish(minutes(5), "Succeeded", "Job fraud-retrain-1 completed")

    (run,) = d.status.runs
    assert (run.outcome, run.finished_at, run.message) == (
        "Succeeded",
        timestamp(minutes(5)),
        "Job fraud-retrain-1 completed",
    )
    assert d.events == [
        Event(
            "RetrainingSucceeded",
            "retraining run fraud-retrain-1 succeeded: Job fraud-retrain-1 completed",
        )
    ]
    assert [(h.event, h.version) for h in d.history] == [("RetrainingSucceeded", "v1")]
    assert d.finished == [run]


def test_a_failed_run_is_reported_with_its_reason() -> None:
    loop = Loop({"triggers": [{**DRIFT, "for": "0s"}]})
    loop.step(minutes(0), 0.5)
    d = loop.finish(minutes(5), "Failed", "DeadlineExceeded: Job was active longer than specified")
    assert d.status.runs[0].outcome == "Failed"
    assert d.events == [
        Event(
            "RetrainingFailed",
            "retraining run fraud-retrain-1 failed:"
            " DeadlineExceeded: Job was active longer than specified",
            "Warning",
        )
    ]
    assert d.history[0].event == "RetrainingFailed"


def test_an_unread_outcome_leaves_the_run_running() -> None:
    loop = Loop({"triggers": [{**DRIFT, "for": "0s"}]})
    loop.step(minutes(0), 0.5)
    d = loop.step(minutes(1))
    assert d.status.runs[0].outcome == "Running"
    assert d.events == []


def test_a_run_lost_before_launch_is_relaunched_under_the_same_name() -> None:
    loop = Loop({"triggers": [{**DRIFT, "for": "0s"}]})
    first = loop.step(minutes(0), 0.5)
    assert first.launch is not None
    for attempt in range(2, MAX_LAUNCH_ATTEMPTS + 1):
        d = loop.step(
            minutes(attempt),
            outcomes={"fraud-retrain-1": RunOutcome("NotFound", "403 Forbidden: jobs")},
        )
        assert d.launch is not None
        assert (d.launch.run, d.launch.attempt, d.launch.reason) == (
            "fraud-retrain-1",
            attempt,
            first.launch.reason,
        )
        assert d.events == []
        assert d.status.runs_started == 1
        assert d.condition is not None
        assert d.condition[:2] == ("False", "LaunchFailed")
        assert "403 Forbidden" in d.condition[2]

    d = loop.step(minutes(9), outcomes={"fraud-retrain-1": RunOutcome("NotFound", "403")})

    assert d.launch is None
    assert d.status.runs[0].outcome == "Failed"
    assert d.status.runs[0].message == f"not launched after {MAX_LAUNCH_ATTEMPTS} attempts: 403"
    assert [e.reason for e in d.events] == ["RetrainingFailed"]


def test_a_run_that_disappears_after_it_was_seen_has_failed() -> None:
    loop = Loop({"triggers": [{**DRIFT, "for": "0s"}]})
    loop.step(minutes(0), 0.5)
    loop.step(minutes(1), outcomes={"fraud-retrain-1": RunOutcome("Running")})
    d = loop.step(minutes(2), outcomes={"fraud-retrain-1": RunOutcome("NotFound")})
    assert d.launch is None
    assert d.status.runs[0].outcome == "Failed"
    assert d.status.runs[0].message == "the run disappeared before it finished"


# --- guards ------------------------------------------------------------------------


def test_no_second_run_while_one_is_active_and_the_block_is_announced_once() -> None:
    loop = Loop({"triggers": [{**DRIFT, "for": "0s"}, DECAY], "cooldown": "0s"})
    loop.step(minutes(0), 0.5, 0.9)  # drift launches run 1
    d = loop.step(minutes(1), 0.5, 0.5)  # decay starts firing while run 1 is active
    assert d.launch is None
    assert d.events == [
        Event("RetrainingBlocked", "decay: 0.5 below 0.8, but run fraud-retrain-1 is still running")
    ]
    assert d.history[0].event == "RetrainingBlocked"
    assert d.status.triggers[1].blocked_by == "run fraud-retrain-1 is still running"
    for n in range(2, 6):
        again = loop.step(minutes(n), 0.5, 0.5)
        assert again.events == []
        assert again.launch is None

    # The run ends; no cooldown: decay (still low) and drift launch run 2 together.
    d = loop.finish(minutes(6))
    assert launched(d) == "fraud-retrain-2"
    assert d.launch is not None
    assert d.launch.trigger == "drift,decay"
    assert [s.run for s in d.status.triggers] == ["fraud-retrain-2"] * 2


def test_cooldown_holds_the_next_run_until_it_ends() -> None:
    loop = Loop({"triggers": [{**DRIFT, "for": "0s"}], "cooldown": "1h"})
    loop.step(minutes(0), 0.5)
    loop.finish(minutes(5))
    for n in range(6, 60, 10):
        d = loop.step(minutes(n), 0.9)
        assert d.launch is None
        assert d.events == []  # the trigger was served by run 1: nothing to announce
    state = loop.retraining.triggers[0]  # type: ignore[union-attr]
    assert state.blocked_by == (
        f"cooldown 1h after fraud-retrain-1 lasts until {timestamp(minutes(60))}"
    )
    assert loop.retraining.next_allowed_at == timestamp(minutes(60))  # type: ignore[union-attr]

    d = loop.step(minutes(60), 0.9)

    assert launched(d) == "fraud-retrain-2"
    assert d.status.next_allowed_at == timestamp(minutes(120))


def test_a_new_crossing_during_cooldown_is_announced_once() -> None:
    loop = Loop({"triggers": [{**DRIFT, "for": "0s"}], "cooldown": "1h"})
    loop.step(minutes(0), 0.5)
    loop.finish(minutes(5))
    loop.step(minutes(6), 0.1)  # the episode ends
    d = loop.step(minutes(7), 0.8)
    assert [e.reason for e in d.events] == ["RetrainingBlocked"]
    assert "cooldown 1h after fraud-retrain-1 lasts until" in d.events[0].message
    assert [loop.step(minutes(n), 0.8).events for n in range(8, 12)] == [[]] * 4


def test_max_runs_per_day_caps_runs() -> None:
    loop = Loop({"triggers": [{**DRIFT, "for": "0s"}], "cooldown": "0s", "max_runs": 2})
    assert launched(loop.step(minutes(0), 0.5)) == "fraud-retrain-1"
    loop.finish(minutes(1), values=[0.1])
    assert launched(loop.step(minutes(3), 0.5)) == "fraud-retrain-2"
    loop.finish(minutes(4), values=[0.1])

    d = loop.step(minutes(6), 0.5)

    assert d.launch is None
    cap_ends = timestamp(T0 + timedelta(hours=24))
    assert d.events == [
        Event(
            "RetrainingBlocked",
            f"drift: 0.5 above 0.3 for 0s, but maxRunsPerDay 2 reached; the next run may"
            f" start at {cap_ends}",
        )
    ]
    assert d.status.next_allowed_at == cap_ends
    assert loop.step(T0 + timedelta(hours=23, minutes=59), 0.5).launch is None
    assert launched(loop.step(T0 + timedelta(hours=24), 0.5)) == "fraud-retrain-3"


# --- manual ------------------------------------------------------------------------


def test_a_new_token_is_a_manual_request_handled_once() -> None:
    loop = Loop({"triggers": []}, token="2025-03-01T12:00:00.1Z")
    d = loop.step(minutes(0))
    assert launched(d) == "fraud-retrain-1"
    assert d.launch is not None
    assert d.launch.reason == "manual: requested with rung retrain (token 2025-03-01T12:00:00.1Z)"
    assert d.launch.trigger == "manual"
    assert d.status.last_manual_token == "2025-03-01T12:00:00.1Z"
    loop.finish(minutes(1))
    for n in range(2, 5):
        assert loop.step(minutes(n)).launch is None


def test_a_manual_request_skips_the_cooldown() -> None:
    loop = Loop({"triggers": [], "cooldown": "24h"}, token="a")
    loop.step(minutes(0))
    loop.finish(minutes(1))
    loop.token = "b"
    assert launched(loop.step(minutes(2))) == "fraud-retrain-2"


def test_a_manual_request_during_a_run_is_refused_not_queued() -> None:
    loop = Loop({"triggers": []}, token="a")
    loop.step(minutes(0))
    loop.token = "b"
    d = loop.step(minutes(1))
    assert d.launch is None
    assert d.events == [
        Event(
            "RetrainingRefused",
            "manual retraining request b refused: run fraud-retrain-1 is still running",
            "Warning",
        )
    ]
    assert d.history[0].event == "Refused"
    assert d.status.last_manual_token == "b"
    assert loop.step(minutes(2)).events == []
    assert loop.finish(minutes(3)).launch is None  # not queued behind run 1


def test_a_manual_request_respects_the_daily_cap() -> None:
    loop = Loop({"triggers": [], "max_runs": 1}, token="a")
    loop.step(minutes(0))
    loop.finish(minutes(1))
    loop.token = "b"
    d = loop.step(minutes(2))
    assert d.launch is None
    assert "maxRunsPerDay 1 reached" in d.events[0].message


def test_without_a_pipeline_nothing_launches() -> None:
    d = decide(deployment(pipeline=None, token="a"), None, {}, T0)
    assert d.launch is None
    assert d.condition == ("False", "NoPipeline", "set spec.retraining.pipeline to retrain")
    assert [e.reason for e in d.events] == ["RetrainingRefused"]
    assert d.status.last_manual_token == "a"


# --- schedule (an injected clock) --------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_schedule_fires_at_its_slot_counted_from_when_it_was_first_seen() -> None:
    loop = Loop({"triggers": [DAILY], "cooldown": "1h"})
    d = loop.step(T0)  # 2025-03-01 12:00: first seen
    assert d.launch is None
    assert d.status.triggers[0].armed_at == f.NOW_TEXT
    assert d.status.triggers[0].next_at == "2025-03-02T03:00:00Z"
    assert loop.step(at("2025-03-02T02:59:59Z")).launch is None

    d = loop.step(at("2025-03-02T03:00:20Z"))

    assert launched(d) == "fraud-retrain-1"
    assert d.launch is not None
    assert d.launch.reason == "schedule: 0 3 * * * (slot 2025-03-02T03:00:00Z)"
    state = d.status.triggers[0]
    assert (state.last_fired_at, state.firing) == ("2025-03-02T03:00:00Z", False)
    loop.finish(at("2025-03-02T03:10:00Z"))
    d = loop.step(at("2025-03-02T03:11:00Z"))
    assert d.launch is None
    assert d.status.triggers[0].next_at == "2025-03-03T03:00:00Z"
    assert launched(loop.step(at("2025-03-03T03:00:00Z"))) == "fraud-retrain-2"


def test_missed_slots_fire_once() -> None:
    loop = Loop({"triggers": [DAILY], "cooldown": "1h"})
    loop.step(T0)
    d = loop.step(at("2025-03-05T09:00:00Z"))  # three slots passed while the operator was down
    assert d.launch is not None
    assert d.launch.reason == "schedule: 0 3 * * * (slot 2025-03-05T03:00:00Z)"
    loop.finish(at("2025-03-05T09:05:00Z"))
    assert loop.step(at("2025-03-05T23:00:00Z")).launch is None


def test_a_blocked_slot_is_skipped_and_announced_once() -> None:
    loop = Loop({"triggers": [DAILY], "cooldown": "30h"})
    loop.step(T0)
    loop.step(at("2025-03-02T03:00:05Z"))  # run 1
    loop.finish(at("2025-03-02T04:00:00Z"))

    d = loop.step(at("2025-03-03T03:00:05Z"))  # cooldown until 2025-03-03T09:00:05Z

    assert d.launch is None
    assert d.events == [
        Event(
            "RetrainingBlocked",
            "schedule slot 2025-03-03T03:00:00Z of '0 3 * * *' skipped: cooldown 30h after"
            " fraud-retrain-1 lasts until 2025-03-03T09:00:05Z",
        )
    ]
    assert loop.step(at("2025-03-03T03:01:00Z")).events == []
    # the cooldown ends: the skipped slot does not come back
    assert loop.step(at("2025-03-03T10:00:00Z")).launch is None
    assert launched(loop.step(at("2025-03-04T03:00:00Z"))) == "fraud-retrain-2"


@pytest.mark.parametrize("cron", ["0 3 * * * *", "61 * * * *", "every day at 3"])
def test_an_invalid_cron_is_reported(cron: str) -> None:
    d = Loop({"triggers": [{"type": "schedule", "cron": cron}]}).step(T0)
    assert d.launch is None
    assert d.condition is not None
    assert d.condition[:2] == ("False", "InvalidTrigger")
    assert cron in d.condition[2]


def test_cron_keywords_work() -> None:
    loop = Loop({"triggers": [{"type": "schedule", "cron": "@midnight"}]})
    loop.step(T0)
    assert launched(loop.step(at("2025-03-02T00:00:00Z"))) == "fraud-retrain-1"


# --- queries -----------------------------------------------------------------------


def test_queries_are_rendered_with_the_deployments_variables() -> None:
    queries = retraining_queries(deployment(triggers=[DAILY, DRIFT, DECAY]), T0, STABLE)
    assert queries is not None
    assert [(q.index, q.query) for q in queries] == [
        (1, 'max(drift_score{namespace="team-a", model="fraud"})'),
        (2, "avg(accuracy)"),
    ]


def test_queries_run_every_monitoring_interval() -> None:
    done = RetrainingStatus(evaluated_at=f.NOW_TEXT)
    md = deployment(retraining=done)
    assert retraining_queries(md, T0 + timedelta(seconds=29), STABLE) is None
    assert retraining_queries(md, T0 + timedelta(seconds=30), STABLE) is not None


@pytest.mark.parametrize(
    "md",
    [
        deployment(level=2),
        deployment(pipeline=None),
        deployment(triggers=[DAILY, {"type": "manual"}]),
    ],
    ids=["retraining-off", "no-pipeline", "no-query-triggers"],
)
def test_no_queries(md: ModelDeployment) -> None:
    assert retraining_queries(md, T0, STABLE) is None


def test_a_bad_template_is_an_error_not_a_query() -> None:
    md = deployment(triggers=[{**DRIFT, "query": "max(drift{x='{{ nope }}'})"}])
    (query,) = retraining_queries(md, T0, STABLE) or []
    assert query.query is None
    assert query.error is not None
    assert "nope" in query.error


# --- names, pruning ----------------------------------------------------------------


def test_run_names_fit_63_characters_and_stay_distinct() -> None:
    assert run_name("fraud", 7) == "fraud-retrain-7"
    long = "a" * 60
    names = {run_name(long, n) for n in range(1, 200)}
    assert len(names) == 199
    assert all(len(n) <= 63 for n in names)
    assert run_name(long, 5) == run_name(long, 5)
    assert run_name(long, 5) != run_name("a" * 61, 5)


def test_status_keeps_the_runs_of_the_last_day_and_the_last_ten() -> None:
    loop = Loop({"triggers": [{**DRIFT, "for": "0s"}], "cooldown": "0s", "max_runs": 100})
    for n in range(30):
        loop.step(T0 + timedelta(hours=n), 0.5)
        loop.finish(T0 + timedelta(hours=n, minutes=1), values=[0.1])
    runs = loop.retraining.runs  # type: ignore[union-attr]
    assert runs[-1].name == "fraud-retrain-30"
    assert len(runs) == 24  # those started within 24 hours of the last launch
    assert len(runs) >= RUNS_KEPT


# --- through plan() ----------------------------------------------------------------


def observe(md: ModelDeployment, now: datetime, **kwargs: Any) -> Plan:
    return plan(Observation(md=md, now=now, inference_services={f.NAME: f.live_isvc()}, **kwargs))


def written_back(p: Plan, **kwargs: Any) -> ModelDeployment:
    return deployment(status=p.status.wire(), **kwargs)


def test_plan_launches_and_reports_at_level_3() -> None:
    p = observe(
        deployment(triggers=[{**DRIFT, "for": "0s"}]),
        T0,
        retraining_readings={0: TriggerReading(value=0.9)},
    )
    assert p.launch is not None
    assert p.launch.run == "fraud-retrain-1"
    assert "RetrainingStarted" in [e.reason for e in p.events]
    assert p.status.history[-1].event == "Retrained"
    ready = get_condition(p.status.conditions, RETRAINING_READY)
    assert ready is not None
    assert (ready.status, ready.reason) == ("True", "TriggersWatched")
    assert p.status.retraining is not None
    assert p.status.retraining.runs[0].name == "fraud-retrain-1"


def test_replanning_at_the_fixed_point_changes_nothing() -> None:
    triggers = [{**DRIFT, "for": "0s"}, DAILY]
    first = observe(
        deployment(triggers=triggers), T0, retraining_readings={0: TriggerReading(value=0.9)}
    )
    assert first.launch is not None
    # Same moment, the status written back, no new reading: nothing to do.
    same = observe(written_back(first, triggers=triggers), T0)
    assert (same.launch, same.events, same.status) == (None, [], first.status)
    # The launcher reports the run: it is marked observed once, then nothing changes.
    running = {"fraud-retrain-1": RunOutcome("Running")}
    seen = observe(written_back(same, triggers=triggers), minutes(0.1), run_outcomes=running)
    assert seen.status.retraining is not None
    assert seen.status.retraining.runs[0].observed
    settled = seen
    for n in range(1, 6):
        again = observe(written_back(settled, triggers=triggers), minutes(n), run_outcomes=running)
        assert (again.launch, again.events) == (None, [])
        assert again.status.wire() == seen.status.wire()
        settled = again


def test_below_level_3_retraining_status_is_left_alone() -> None:
    kept = RetrainingStatus(last_triggered_at=f.NOW_TEXT, runs_started=4)
    p = observe(deployment(level=2, retraining=kept, token="x"), T0)
    assert p.launch is None
    assert p.status.retraining == kept
    assert get_condition(p.status.conditions, RETRAINING_READY) is None


def test_switching_retraining_off_removes_its_condition() -> None:
    on = observe(deployment(), T0)
    assert get_condition(on.status.conditions, RETRAINING_READY) is not None
    off = observe(written_back(on, level=2), minutes(1))
    assert get_condition(off.status.conditions, RETRAINING_READY) is None
    ModelDeploymentStatus.model_validate(off.status.wire())


# --- rung status / rung retrain ----------------------------------------------------


def test_rung_status_shows_triggers_and_runs() -> None:
    from rung.cli_rollout import render_status

    loop = Loop({"triggers": [{**DRIFT, "for": "0s"}], "cooldown": "1h"})
    loop.step(minutes(0), 0.5)
    loop.finish(minutes(1), "Failed", "DeadlineExceeded: too slow")
    text = render_status(body_of(loop))
    assert "retraining: 1 runs, last fraud-retrain-1, next allowed at 2025-03-01T13:00:00Z" in text
    assert "fraud-retrain-1              Failed     drift: 0.5 above 0.3 for 0s" in text
    assert "DeadlineExceeded: too slow" in text
    assert "drift     0.5 above 0.3 since 2025-03-01T12:00:00Z (blocked: cooldown 1h" in text


def body_of(loop: Loop) -> dict[str, Any]:
    assert loop.retraining is not None
    body = f.body(
        level=3,
        monitoring=PROMETHEUS,
        retraining={"triggers": [DRIFT], "pipeline": JOB},
        status={"retraining": loop.retraining.wire()},
    )
    return body


def test_rung_retrain_is_a_command() -> None:
    from rung.cli import build_parser

    args = build_parser().parse_args(["retrain", "fraud", "-n", "team-a"])
    assert (args.command, args.name, args.namespace) == ("retrain", "fraud", "team-a")


# --- data lineage ------------------------------------------------------------------


def test_a_run_records_the_data_of_the_model_it_retrains() -> None:
    loop = Loop({"triggers": [{**DRIFT, "for": "0s"}]})
    d = loop.step(minutes(0), 0.5)

    (run,) = d.status.runs
    assert run.data is not None
    assert (run.data.uri, run.data.version) == ("s3://datasets/fraud", "2025-02-01")
    assert d.launch is not None
    assert d.launch.data == run.data
    (entry,) = d.history
    assert (entry.event, entry.version, entry.data) == ("Retrained", "v1", run.data)


def test_the_model_a_run_hands_back_records_the_data_it_trained_on() -> None:
    loop = Loop({"triggers": [{**DRIFT, "for": "0s"}]})
    loop.step(minutes(0), 0.5)
    loop.finish(minutes(5))
    assert loop.retraining is not None
    trained_on = {"uri": "s3://datasets/fraud", "version": "2025-03-01"}
    handed_back = f.md(
        level=3,
        monitoring=PROMETHEUS,
        retraining={"triggers": [{**DRIFT, "for": "0s"}], "pipeline": JOB, "cooldown": "1h"},
        status={"retraining": loop.retraining.wire()},
        model_fields={
            "version": "v2",
            "storageUri": "s3://models/fraud/v2",
            "data": {**trained_on, "trainingRun": "fraud-retrain-1"},
        },
    )

    d = decide(handed_back, None, {}, minutes(6))

    (run,) = d.status.runs
    assert run.result_version == "v2"
    assert run.trained_on is not None
    assert run.trained_on.version == "2025-03-01"
    assert [e.reason for e in d.events] == ["RetrainedModelReceived"]
    assert d.events[0].message == (
        "retraining run fraud-retrain-1 handed back v2, trained on s3://datasets/fraud@2025-03-01"
    )
    (entry,) = d.history
    assert (entry.event, entry.version) == ("RetrainedModelReceived", "v2")
    assert entry.data == run.trained_on

    # Recorded once: the next pass, with that status, announces nothing more.
    again = ModelDeployment.from_body(
        {
            **f.body(level=3),
            "spec": handed_back.spec.wire(),
            "status": {"retraining": d.status.wire()},
        }
    )
    assert decide(again, None, {}, minutes(7)).events == []
