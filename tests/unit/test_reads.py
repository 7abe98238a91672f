"""rung.plan.reads: what is due now, and when the object next needs attention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rung.plan.live import LiveObjects
from rung.plan.reads import reads

from . import factories as f

NOW = f.NOW


def at(seconds: float) -> str:
    return (NOW + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


MONITORED = {
    "conditions": [
        {
            "type": "MonitoringReady",
            "status": "True",
            "reason": "x",
            "message": "",
            "lastTransitionTime": at(-60),
        }
    ]
}


def canary_status(step_started: float, last_run: float | None) -> dict[str, Any]:
    stable = {
        "version": "v1",
        "storageUri": "s3://models/fraud/v1",
        "hash": "h1",
        "model": f.model(),
    }
    return {
        "stable": stable,
        "phase": "Progressing",
        "canary": {
            "version": "v2",
            "storageUri": "s3://models/fraud/v2",
            "hash": "h2",
            "weight": 10,
            "step": 0,
            "startedAt": at(step_started),
            "stepStartedAt": at(step_started),
        },
        "analysis": {"failures": 0, **({"lastRun": at(last_run)} if last_run is not None else {})},
        **MONITORED,
        "slo": {"measuredAt": at(-5)},
    }


@pytest.mark.parametrize(
    ("md_kwargs", "next_in"),
    [
        ({"level": 0}, None),
        ({"level": 1, "status": {**MONITORED, "slo": {"measuredAt": at(-10)}}}, 20),
        ({"level": 1, "status": {**MONITORED, "slo": {"measuredAt": at(-29)}}}, 1),
        (
            {
                "level": 2,
                "rollout": {"interval": "3s"},
                "model_fields": {"storageUri": "s3://models/fraud/v2", "version": "v2"},
                "status": canary_status(step_started=-1, last_run=None),
            },
            2,
        ),
        (
            {
                "level": 2,
                "rollout": {"interval": "1m"},
                "model_fields": {"storageUri": "s3://models/fraud/v2", "version": "v2"},
                "status": canary_status(step_started=-50, last_run=-20),
            },
            25,  # the SLO snapshot (30 s) comes before the next analysis (40 s)
        ),
    ],
    ids=[
        "level0-nothing-periodic",
        "slo-in-20s",
        "slo-in-1s",
        "analysis-in-2s",
        "earliest-of-slo-and-analysis",
    ],
)
def test_next_due(md_kwargs: dict[str, Any], next_in: float | None) -> None:
    plan = reads(f.md(**md_kwargs), LiveObjects(), NOW, "http://prometheus:9090")
    if next_in is None:
        assert plan.next_due is None
    else:
        assert plan.next_due is not None
        assert (plan.next_due - NOW).total_seconds() == pytest.approx(next_in)


def test_the_prometheus_url_is_the_spec_s_else_the_operator_s() -> None:
    own = {"monitoring": {"prometheus": {"url": "http://own:9090"}}}
    assert reads(f.md(level=1, **own), LiveObjects(), NOW, "http://d").prometheus_url == (
        "http://own:9090"
    )
    assert reads(f.md(level=1), LiveObjects(), NOW, "http://d").prometheus_url == "http://d"


def test_a_due_slo_snapshot_lists_its_queries_once() -> None:
    plan = reads(f.md(level=1), LiveObjects(), NOW, "http://d")
    assert plan.slo is not None
    assert len(plan.promql()) == len(plan.slo) == 3


@pytest.mark.parametrize(("interval", "poll"), [("3s", 3), ("1m", 5), ("1s", 1)])
def test_a_canary_waiting_on_the_cluster_is_polled_never_looped(interval: str, poll: float) -> None:
    """Analysis overdue but the canary not ready at its generation (nothing live here):
    the next look is a short poll from now, not a time already past (a busy loop)."""
    md = f.md(
        level=2,
        rollout={"interval": interval},
        model_fields={"storageUri": "s3://models/fraud/v2", "version": "v2"},
        status={**canary_status(step_started=-120, last_run=-90), "slo": {"measuredAt": at(0)}},
    )
    plan = reads(md, LiveObjects(), NOW, "http://prometheus:9090")
    assert plan.analysis is None  # not ready: nothing to query
    assert plan.next_due is not None
    assert (plan.next_due - NOW).total_seconds() == pytest.approx(poll)
