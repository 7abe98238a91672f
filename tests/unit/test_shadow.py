"""The shadow stage (spec.rollout.shadow): the state machine's Shadowing phase, when its
analysis is due, its metrics, the gateway-api router's RequestMirror filter, and how
status, the CLI and the Argo CD health check show it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from rung.api.spec import ModelDeploymentSpec
from rung.api.status import ShadowStatus
from rung.plan.analysis import shadow_metrics, stage_metrics
from rung.plan.commands import Abort, Commands, canary_id
from rung.plan.live import LiveObjects
from rung.plan.rollout import (
    Observed,
    RolloutState,
    ShadowSettings,
    analysis_due,
)
from rung.plan.routers import Traffic
from rung.plan.routers.gateway_api import GatewayApiRouter, mirror_percent
from rung.plan.routers.kserve import KServeRouter

from . import factories as f
from .test_rollout import (
    SETTINGS,
    V1,
    V2,
    V3,
    Case,
    at,
    canary,
    outcome,
    ready,
    simulate,
    state,
    text,
)

SHADOW = replace(SETTINGS, shadow=ShadowSettings(mirror_percent=50, runs=2))
"""Two passed runs on 50 % mirrored requests, then the steps 10, 25, 50, 100."""
TIMED = replace(SETTINGS, shadow=ShadowSettings(duration_seconds=150))


def shadowed(*, started: float | None = 0, runs: int = 0, step_started: float | None = None) -> Any:
    """A canary in the shadow stage: mirrored since `started` (None: not ready yet)."""
    return canary(weight=0, step_started=step_started).model_copy(
        update={
            "shadow": ShadowStatus(
                mirror_percent=50,
                started_at=None if started is None else text(started),
                runs_passed=runs,
            )
        }
    )


WAITING = shadowed(started=None)
MIRRORED = shadowed(started=0)
ONE_RUN = shadowed(started=0, runs=1, step_started=60)


SHADOW_CASES: dict[str, Case] = {
    "new-model-starts-in-the-shadow-stage": Case(
        state=state(),
        desired=V2,
        settings=SHADOW,
        phase="Shadowing",
        canary=(0, 0),
        events=("CanaryStarted",),
        history=("CanaryStarted",),
    ),
    "not-ready-waits": Case(
        state=state("Shadowing", WAITING),
        desired=V2,
        settings=SHADOW,
        observed=Observed(canary_ready=False),
        now=at(30),
        phase="Shadowing",
        canary=(0, 0),
    ),
    "not-ready-past-the-deadline-rolls-back": Case(
        state=state("Shadowing", WAITING),
        desired=V2,
        settings=SHADOW,
        observed=Observed(canary_ready=False),
        now=at(601),
        phase="RollingBack",
        canary=(0, 0),
        events=("ProgressDeadlineExceeded",),
        history=("RollingBack",),
    ),
    "ready-starts-mirroring-not-traffic": Case(
        state=state("Shadowing", WAITING),
        desired=V2,
        settings=SHADOW,
        observed=ready(0),
        now=at(30),
        phase="Shadowing",
        canary=(0, 0),
        events=("ShadowStarted",),
        history=("ShadowStarted",),
    ),
    "mirrored-without-a-run-waits": Case(
        state=state("Shadowing", MIRRORED),
        desired=V2,
        settings=SHADOW,
        observed=ready(0),
        now=at(30),
        phase="Shadowing",
        canary=(0, 0),
    ),
    "passed-run-counts-and-stays": Case(
        state=state("Shadowing", MIRRORED),
        desired=V2,
        settings=SHADOW,
        observed=ready(0, "pass"),
        now=at(60),
        phase="Shadowing",
        canary=(0, 0),
    ),
    "last-passed-run-moves-to-the-first-step": Case(
        state=state("Shadowing", ONE_RUN, last_run=60),
        desired=V2,
        settings=SHADOW,
        observed=ready(0, "pass"),
        now=at(120),
        phase="Progressing",
        canary=(0, 10),
        events=("ShadowPassed",),
        history=("ShadowPassed",),
    ),
    "failed-run-counts": Case(
        state=state("Shadowing", MIRRORED),
        desired=V2,
        settings=SHADOW,
        observed=ready(0, "fail"),
        now=at(60),
        phase="Shadowing",
        canary=(0, 0),
        events=("AnalysisFailed",),
    ),
    "failure-limit-rejects-in-the-shadow-stage": Case(
        state=state("Shadowing", MIRRORED, failures=1, last_run=60),
        desired=V2,
        settings=SHADOW,
        observed=ready(0, "fail"),
        now=at(120),
        phase="RollingBack",
        canary=(0, 0),
        events=("AnalysisFailed", "ShadowFailed"),
        history=("RollingBack",),
    ),
    "no-data-holds": Case(
        state=state("Shadowing", MIRRORED),
        desired=V2,
        settings=SHADOW,
        observed=ready(0, "hold"),
        now=at(60),
        phase="Shadowing",
        canary=(0, 0),
    ),
    "no-data-past-the-deadline-rolls-back": Case(
        state=state("Shadowing", MIRRORED, last_run=540),
        desired=V2,
        settings=SHADOW,
        observed=ready(0, "hold"),
        now=at(601),
        phase="RollingBack",
        canary=(0, 0),
        events=("AnalysisNoData",),
        history=("RollingBack",),
    ),
    "mirror-still-on-holds-the-rollback": Case(
        state=state("RollingBack", MIRRORED),
        desired=V2,
        settings=SHADOW,
        observed=replace(ready(0), live_mirror=True),
        now=at(60),
        phase="RollingBack",
        canary=(0, 0),
    ),
    "mirror-off-rejects-the-version": Case(
        state=state("RollingBack", MIRRORED),
        desired=V2,
        settings=SHADOW,
        observed=ready(0),
        now=at(60),
        phase="RolledBack",
        canary=None,
        rejected="v2",
        events=("RolledBack",),
        history=("RolledBack",),
    ),
    "abort-in-the-shadow-stage": Case(
        state=state("Shadowing", MIRRORED),
        desired=V2,
        settings=SHADOW,
        observed=ready(0, commands=Commands(abort=Abort(canary_id(MIRRORED), "alice"))),
        now=at(30),
        phase="RollingBack",
        canary=(0, 0),
        events=("Aborted",),
        history=("RollingBack",),
    ),
    "new-model-supersedes-a-shadowed-canary": Case(
        state=state("Shadowing", MIRRORED),
        desired=V3,
        settings=SHADOW,
        observed=ready(0),
        now=at(30),
        phase="Shadowing",
        canary=(0, 0),
        events=("CanarySuperseded", "CanaryStarted"),
        history=("CanarySuperseded", "CanaryStarted"),
    ),
    "duration-not-over-keeps-shadowing": Case(
        state=state("Shadowing", MIRRORED),
        desired=V2,
        settings=TIMED,
        observed=ready(0, "pass"),
        now=at(120),
        phase="Shadowing",
        canary=(0, 0),
    ),
    "duration-over-passes-at-the-next-passed-run": Case(
        state=state("Shadowing", ONE_RUN, last_run=120),
        desired=V2,
        settings=TIMED,
        observed=ready(0, "pass"),
        now=at(180),
        phase="Progressing",
        canary=(0, 10),
        events=("ShadowPassed",),
        history=("ShadowPassed",),
    ),
}


@pytest.mark.parametrize("name", list(SHADOW_CASES))
def test_advance_in_the_shadow_stage(name: str) -> None:
    case = SHADOW_CASES[name]
    expected = (case.phase, case.canary, case.stable, case.rejected, case.events, case.history)
    assert outcome(case.run()) == expected


@pytest.mark.parametrize("name", list(SHADOW_CASES))
def test_a_shadowed_canary_never_gets_user_traffic_before_the_stage_passes(name: str) -> None:
    decided = SHADOW_CASES[name].run().state
    if decided.phase in ("Shadowing", "RollingBack") and decided.canary is not None:
        assert decided.canary.weight == 0
        assert decided.canary.shadow is not None
        assert decided.canary.shadow.passed_at is None


def test_mirroring_starts_when_the_canary_is_ready() -> None:
    d = SHADOW_CASES["ready-starts-mirroring-not-traffic"].run()
    assert d.state.canary is not None
    assert d.state.canary.shadow is not None
    assert d.state.canary.shadow.started_at == text(30)
    assert d.state.canary.step_started_at == text(30)
    assert d.events[0].message == (
        "canary v2 is ready: mirroring 50% of requests to it (responses discarded);"
        " no user traffic until the shadow stage passes"
    )


def test_passing_the_stage_starts_the_steps_afresh() -> None:
    d = SHADOW_CASES["last-passed-run-moves-to-the-first-step"].run()
    assert d.state.canary is not None
    assert d.state.canary.shadow is not None
    assert d.state.canary.shadow.runs_passed == 2
    assert d.state.canary.shadow.passed_at == text(120)
    assert d.state.canary.step_started_at == text(120)
    assert d.state.analysis is not None
    assert d.state.analysis.failures == 0
    assert d.events[0].message == (
        "canary v2 passed the shadow stage (2 analysis runs on mirrored requests): weight 0% -> 10%"
    )


def test_failed_shadow_stage_says_no_user_request_was_served() -> None:
    d = SHADOW_CASES["failure-limit-rejects-in-the-shadow-stage"].run()
    assert d.events[0].message.startswith("canary v2 failed shadow analysis (2/2)")
    assert "no user request was served by it" in d.events[1].message
    assert d.history[0].message.startswith("ShadowFailed: 2 failed shadow analysis runs")
    rejected = SHADOW_CASES["mirror-off-rejects-the-version"].run()
    assert rejected.history[0].message == (
        "v2 rolled back in the shadow stage, before serving any user request"
    )


def test_canary_started_names_the_shadow_stage() -> None:
    d = SHADOW_CASES["new-model-starts-in-the-shadow-stage"].run()
    assert d.events[0].message == (
        "rolling out v2 next to v1: shadow stage (50% mirrored), then steps 10%, 25%, 50%, 100%"
    )
    assert d.state.canary is not None
    assert d.state.canary.shadow == ShadowStatus(mirror_percent=50)


@pytest.mark.parametrize(
    ("current", "now", "due"),
    [
        (state("Shadowing", WAITING), at(3600), False),
        (state("Shadowing", MIRRORED), at(59), False),
        (state("Shadowing", MIRRORED), at(60), True),
        (state("Shadowing", ONE_RUN, last_run=60), at(100), False),
        (state("Shadowing", ONE_RUN, last_run=60), at(120), True),
    ],
    ids=["not-mirrored-yet", "interval-not-elapsed", "interval-elapsed", "after-a-run", "next"],
)
def test_shadow_analysis_due(current: RolloutState, now: Any, due: bool) -> None:
    assert analysis_due(current, SHADOW, True, now) is due


def test_shadow_then_every_step_to_ready() -> None:
    run = simulate(SHADOW, lambda _: "pass")
    assert run.reasons == [
        "CanaryStarted",
        "ShadowStarted",
        "ShadowPassed",
        "StepAdvanced",
        "StepAdvanced",
        "StepAdvanced",
        "Promoting",
        "Promoted",
    ]
    assert run.weights == [0, 10, 25, 50, 100]


def test_faulty_canary_is_rejected_in_the_shadow_stage_without_traffic() -> None:
    run = simulate(SHADOW, lambda _: "fail")
    assert run.reasons == [
        "CanaryStarted",
        "ShadowStarted",
        "AnalysisFailed",
        "AnalysisFailed",
        "ShadowFailed",
        "RolledBack",
    ]
    assert run.weights == [0]
    assert run.state.phase == "RolledBack"
    assert run.state.rejected is not None
    assert run.state.rejected.version == "v2"


def test_without_a_shadow_stage_nothing_changes() -> None:
    assert simulate(SETTINGS, lambda _: "pass").reasons[:2] == ["CanaryStarted", "CanaryReady"]


# --- metrics ---------------------------------------------------------------------------------


def spec(**rollout: Any) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {
            "maturity": {"level": 2},
            "model": f.model(),
            "rollout": {"router": "gateway-api", "gateway": {"name": "gw"}, **rollout},
        }
    )


def test_shadow_metrics_default_to_the_rollouts_absolute_thresholds() -> None:
    metrics = [
        {"name": "errors", "query": "e", "max": 0.01, "maxIncreaseOverStable": 0.005},
        {"name": "relative-only", "query": "r", "maxIncreaseOverStable": 0.1},
        {"name": "throughput", "query": "t", "min": 5},
    ]
    s = spec(analysis={"metrics": metrics}, shadow={})
    shadowing = shadow_metrics(s)
    assert [(m.name, m.max, m.min, m.max_increase_over_stable) for m in shadowing] == [
        ("errors", 0.01, None, None),
        ("throughput", None, 5, None),
    ]
    assert stage_metrics(s, shadowing=False)[1].name == "relative-only"


def test_shadow_metrics_of_its_own() -> None:
    s = spec(shadow={"metrics": [{"name": "disagreement", "query": "d", "max": 0.02}]})
    assert [m.name for m in stage_metrics(s, shadowing=True)] == ["disagreement"]
    assert [m.name for m in stage_metrics(s, shadowing=False)] == ["error-rate", "latency-p95"]


# --- the routers -----------------------------------------------------------------------------


def md(**rollout: Any) -> Any:
    return f.md(level=2, rollout={"router": "gateway-api", "gateway": {"name": "gw"}, **rollout})


def test_gateway_api_mirrors_to_the_canary_service_in_the_shadow_stage() -> None:
    deployment = md(shadow={"mirrorPercent": 50})
    traffic = Traffic(stable=V1, canary=V2, canary_weight=0, mirror_percent=50)
    route = GatewayApiRouter().objects(deployment, traffic)[-1]
    rule = route["spec"]["rules"][0]
    assert rule["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {
                "backendRef": {
                    "group": "",
                    "kind": "Service",
                    "name": "fraud-canary-predictor",
                    "port": 80,
                },
                "percent": 50,
            },
        }
    ]
    assert [b["weight"] for b in rule["backendRefs"]] == [100, 0]
    live = LiveObjects(http_routes={"fraud": route})
    assert GatewayApiRouter().canary_mirrored(deployment, live)
    assert GatewayApiRouter().canary_weight(deployment, live) == 0


@pytest.mark.parametrize(
    "traffic",
    [
        Traffic(stable=V1, canary=V2, canary_weight=10),
        Traffic(stable=V1, canary=V2, canary_weight=0, rolling_back=True),
        Traffic(stable=V1, canary=V2, promoting=True, mirror_percent=50),
        Traffic(stable=V1),
    ],
    ids=["steps", "rolling-back", "promoting", "no-canary"],
)
def test_no_mirror_outside_the_shadow_stage(traffic: Traffic) -> None:
    deployment = md()
    route = GatewayApiRouter().objects(deployment, traffic)[-1]
    assert "filters" not in route["spec"]["rules"][0]
    live = LiveObjects(http_routes={"fraud": route})
    assert not GatewayApiRouter().canary_mirrored(deployment, live)


@pytest.mark.parametrize(
    ("mirror", "percent"),
    [
        ({"percent": 25}, 25),
        ({}, 100),
        ({"fraction": {"numerator": 1, "denominator": 1000}}, 1),
        ({"fraction": {"numerator": 1}}, 1),
        ({"fraction": {"numerator": 0}}, 0),
    ],
    ids=["percent", "neither-mirrors-all", "tiny-fraction", "fraction-of-100", "zero"],
)
def test_mirror_percent_read_back(mirror: dict[str, Any], percent: int) -> None:
    backend = {"backendRef": {"name": "fraud-canary-predictor", "port": 80}}
    route = {
        "spec": {
            "rules": [
                {"filters": [{"type": "RequestMirror", "requestMirror": {**backend, **mirror}}]}
            ]
        }
    }
    assert mirror_percent(route, "fraud-canary-predictor") == percent
    assert mirror_percent(route, "other") == 0


def test_only_the_gateway_api_router_mirrors() -> None:
    assert GatewayApiRouter.mirrors
    assert not KServeRouter.mirrors
    assert not KServeRouter().canary_mirrored(md(), LiveObjects())


def test_settings_carry_the_shadow_stage_only_where_the_router_mirrors() -> None:
    from rung.ladder import capabilities
    from rung.plan.reads import rollout_settings

    ladder = capabilities(2, None)
    gateway = md(shadow={"mirrorPercent": 30, "duration": "5m"})
    assert rollout_settings(gateway, ladder).shadow == ShadowSettings(30, None, 300.0)
    assert rollout_settings(md(shadow={}), ladder).shadow == ShadowSettings(100, None, None)
    # a kserve spec stored before admission refused it: no shadow stage, never a stall
    stored = f.md(level=2, rollout={"router": "kserve", "shadow": {"analysisRuns": 2}})
    assert rollout_settings(stored, ladder).shadow is None
    assert rollout_settings(md(), ladder).shadow is None


def test_default_runs_complete_the_stage() -> None:
    settings = ShadowSettings()
    assert not settings.complete(ShadowStatus(started_at=text(0), runs_passed=2), at(999))
    assert settings.complete(ShadowStatus(started_at=text(0), runs_passed=3), at(999))


# --- how it is shown: rung status, rung get, Argo CD -----------------------------------------


def _shadowing_body() -> dict[str, Any]:
    from .test_cli_rollout import _body

    body = _body(maturity={"level": 2})
    body["spec"]["rollout"] = {
        "router": "gateway-api",
        "gateway": {"name": "gw"},
        "shadow": {"analysisRuns": 3, "mirrorPercent": 50},
    }
    body["status"]["phase"] = "Shadowing"
    body["status"]["canary"].update(
        weight=0,
        step=0,
        shadow={"mirrorPercent": 50, "startedAt": "2026-11-28T12:00:00Z", "runsPassed": 1},
    )
    return body


def test_rung_status_shows_the_shadow_stage() -> None:
    from rung.cli_rollout import render_status

    text = render_status(_shadowing_body())
    assert "phase:    Shadowing" in text
    assert "weight 0%  shadow stage" in text
    assert "steps:    [shadow] 10% 25% 50% 100%" in text
    assert (
        "shadow:   mirroring 50% of requests since 2026-11-28T12:00:00Z (responses discarded,"
        " no user traffic): 1 analysis runs passed of 3"
    ) in text


def test_rung_get_shows_the_shadow_stage() -> None:
    from rung.cli_get import render

    text = render(_shadowing_body(), [], color=False)
    assert "phase Shadowing" in text
    assert "shadow    mirroring 50% of requests" in text
    assert "[" not in text.split("steps", 1)[1].splitlines()[0]  # no step is current


def test_argocd_health_of_a_shadowed_canary_is_progressing() -> None:
    from testbed.argocd import health

    body = _shadowing_body()
    body["metadata"]["generation"] = 1
    body["status"]["observedGeneration"] = 1
    result = health(body)
    assert result.status == "Progressing"
    assert result.message.startswith(
        "Shadowing: canary v2 gets 50% of requests mirrored, no user traffic"
    )


# --- plan(): the shadow stage end to end on the gateway-api router ---------------------------


def test_plan_mirrors_then_moves_traffic_after_the_shadow_stage() -> None:
    from datetime import timedelta

    from rung.plan.reconcile import plan

    from .test_reconcile_rollouts import T0, after, routing, settle, summary

    shadow = {"shadow": {"analysisRuns": 1, "mirrorPercent": 40}}
    cluster, settled = settle("gateway-api", rollout=shadow)
    started = plan(cluster.observe(after(settled, "gateway-api", rollout=shadow), T0))
    assert started.status.phase == "Shadowing"
    route = next(o for o in started.desired if o["kind"] == "HTTPRoute")
    assert "filters" not in route["spec"]["rules"][0]  # not ready: nothing mirrored yet
    cluster.apply(started.desired)

    mirrored = plan(cluster.observe(after(started, "gateway-api", rollout=shadow), T0))
    assert [e.reason for e in mirrored.events] == ["ShadowStarted"]
    route = next(o for o in mirrored.desired if o["kind"] == "HTTPRoute")
    assert route["spec"]["rules"][0]["filters"][0]["requestMirror"]["percent"] == 40
    assert routing("gateway-api", mirrored.desired)[2] == 0
    assert summary(mirrored, "Progressing")[1] == "ShadowStarted"
    cluster.apply(mirrored.desired)

    md = after(mirrored, "gateway-api", rollout=shadow)
    live = LiveObjects(
        cluster.inference_services,
        cluster.http_routes,
        f.predictor_deployments(cluster.inference_services),
    )
    from rung.plan.reads import analysis_queries

    now = T0 + timedelta(seconds=60)
    queries = analysis_queries(md, live, now)
    assert queries is not None
    assert [q.metric_name for q in queries] == ["error-rate", "latency-p95"]
    assert all(q.stable is None and "fraud-canary-predictor" in q.canary for q in queries)

    healthy = {"error-rate": (0.0, None), "latency-p95": (100.0, None)}
    passed = plan(cluster.observe(md, now, measurements=healthy))
    assert [e.reason for e in passed.events] == ["ShadowPassed"]
    assert passed.status.phase == "Progressing"
    route = next(o for o in passed.desired if o["kind"] == "HTTPRoute")
    assert "filters" not in route["spec"]["rules"][0]
    assert routing("gateway-api", passed.desired)[2] == 10


def test_plan_rejects_a_faulty_canary_in_the_shadow_stage() -> None:
    from datetime import timedelta

    from rung.plan.reconcile import plan

    from .test_reconcile_rollouts import T0, after, settle

    shadow = {"shadow": {"analysisRuns": 3}, "analysis": {"failureLimit": 1}}
    cluster, settled = settle("gateway-api", rollout=shadow)
    p = plan(cluster.observe(after(settled, "gateway-api", rollout=shadow), T0))
    cluster.apply(p.desired)
    p = plan(cluster.observe(after(p, "gateway-api", rollout=shadow), T0))
    cluster.apply(p.desired)
    faulty = {"error-rate": (0.5, None), "latency-p95": (100.0, None)}
    now = T0 + timedelta(seconds=60)
    p = plan(cluster.observe(after(p, "gateway-api", rollout=shadow), now, measurements=faulty))
    assert [e.reason for e in p.events] == ["AnalysisFailed", "ShadowFailed"]
    assert p.status.phase == "RollingBack"
    route = next(o for o in p.desired if o["kind"] == "HTTPRoute")
    assert "filters" not in route["spec"]["rules"][0]
    cluster.apply(p.desired)
    p = plan(cluster.observe(after(p, "gateway-api", rollout=shadow), now))
    assert [e.reason for e in p.events] == ["RolledBack"]
    assert p.status.phase == "RolledBack"
    assert p.status.rejected is not None
    assert p.status.rejected.version == "v2"
