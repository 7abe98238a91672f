"""rung.plan.reconcile at level 2: canaries through plan() and analysis_queries(), per router."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from rung.api.resource import (
    APPROVE_ANNOTATION,
    PROMOTE_ANNOTATION,
    RETRY_ANNOTATION,
    UNDO_ANNOTATION,
    ModelDeployment,
)
from rung.api.spec import ModelSource
from rung.api.status import Condition, ModelDeploymentStatus, ModelRef
from rung.plan.commands import canary_id, command_value, rejection_id
from rung.plan.conditions import get_condition
from rung.plan.inference_service import MODEL_HASH_ANNOTATION, model_hash
from rung.plan.promql import ERROR_RATE, LATENCY_P95, Targets, query_variables, render
from rung.plan.reconcile import AnalysisQuery, Observation, Plan, analysis_queries, plan

from . import factories as f

T0 = f.NOW
V1_FIELDS = {"storageUri": "s3://models/fraud/v1", "version": "v1"}
V2_FIELDS = {"storageUri": "s3://models/fraud/v2", "version": "v2"}
V3_FIELDS = {"storageUri": "s3://models/fraud/v3", "version": "v3"}
V1_SOURCE = ModelSource.model_validate(f.model(**V1_FIELDS))
V2_HASH = model_hash(ModelSource.model_validate(f.model(**V2_FIELDS)))
V1_HASH = model_hash(V1_SOURCE)
STABLE = ModelRef(version="v1", storage_uri="s3://models/fraud/v1", hash=V1_HASH, model=V1_SOURCE)

ROUTERS: dict[str, dict[str, Any]] = {
    "kserve-raw": {"rollout": {"router": "kserve"}},
    "kserve-serverless": {
        "rollout": {"router": "kserve"},
        "serving": {"deploymentMode": "Serverless"},
    },
    "gateway-api": {"rollout": {"router": "gateway-api"}},
}
ALL = list(ROUTERS)


def deployment(
    router: str,
    *,
    status: ModelDeploymentStatus | dict[str, Any] | None = None,
    level: int = 2,
    model: dict[str, Any] = V2_FIELDS,
    rollout: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> ModelDeployment:
    """A ModelDeployment on `router` whose spec names `model`, with `status` written back."""
    spec = copy.deepcopy(ROUTERS[router])
    spec["rollout"].update(rollout or {})
    if isinstance(status, ModelDeploymentStatus):
        status = status.wire()
    return f.md(level=level, model_fields=model, status=status, annotations=annotations, **spec)


def stable_status() -> ModelDeploymentStatus:
    """Level 2 status serving v1, with its full model so that changes become canaries."""
    return ModelDeploymentStatus(
        observed_generation=1,
        level=2,
        capabilities=["serving", "monitoring", "canary"],
        phase="Ready",
        inference_service=f.NAME,
        stable=STABLE,
    )


# --- a stand-in for KServe and the Gateway API implementation ------------------------


@dataclass
class Cluster:
    """Live objects as KServe leaves them once the planned objects are applied.

    Tests play the KServe controller here (see DESIGN.md §4): every InferenceService
    becomes Ready, canary predictors report their readiness and traffic, Serverless
    predictors get a revision per model.
    """

    inference_services: dict[str, dict[str, Any]] = field(default_factory=dict)
    http_routes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def apply(self, desired: list[dict[str, Any]], *, canary_ready: bool = True) -> None:
        previous = self.inference_services
        self.inference_services, self.http_routes = {}, {}
        for manifest in desired:
            obj = copy.deepcopy(manifest)
            name = obj["metadata"]["name"]
            if obj["kind"] == "HTTPRoute":
                self.http_routes[name] = obj
            elif obj["kind"] == "InferenceService":
                obj["status"] = self._status(obj, previous.get(name), canary_ready)
                self.inference_services[name] = obj

    @staticmethod
    def _status(
        obj: dict[str, Any], before: dict[str, Any] | None, canary_ready: bool
    ) -> dict[str, Any]:
        meta, spec = obj["metadata"], obj["spec"]
        is_canary = meta["labels"]["rung.dev/role"] == "canary"
        ready = canary_ready or not is_canary
        status: dict[str, Any] = {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "url": f"http://{meta['name']}.team-a.example.com",
        }
        if spec.get("canary"):
            status["canaryStatuses"] = [
                {
                    "name": c["predictor"]["name"],
                    "ready": canary_ready,
                    "trafficPercent": c["trafficPercent"],
                }
                for c in spec["canary"]
            ]
        if meta["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless":
            old = ((before or {}).get("status") or {}).get("components", {}).get("predictor", {})
            latest = f"{meta['name']}-predictor-{meta['annotations'][MODEL_HASH_ANNOTATION][:5]}"
            rolled = old.get("latestReadyRevision")
            is_new = latest != old.get("latestCreatedRevision")
            has_canary = "canaryTrafficPercent" in spec["predictor"]
            predictor = {
                "latestCreatedRevision": latest,
                "latestReadyRevision": latest if canary_ready or not has_canary else rolled,
                "previousRolledoutRevision": (
                    rolled if is_new and rolled else old.get("previousRolledoutRevision")
                ),
            }
            status["components"] = {"predictor": {k: v for k, v in predictor.items() if v}}
        return status

    def observe(self, md: ModelDeployment, now: datetime, **more: Any) -> Observation:
        return Observation(
            md=md,
            now=now,
            inference_services=copy.deepcopy(self.inference_services),
            http_routes=copy.deepcopy(self.http_routes),
            deployments=f.predictor_deployments(self.inference_services),
            **more,
        )


def after(p: Plan, router: str, **kwargs: Any) -> ModelDeployment:
    """The ModelDeployment once `p`'s status has been written back."""
    return deployment(router, status=p.status, **kwargs)


def settle(router: str, **kwargs: Any) -> tuple[Cluster, Plan]:
    """v1 deployed at level 2 and Ready, its objects applied."""
    cluster = Cluster()
    md = deployment(router, status=stable_status(), model=V1_FIELDS, **kwargs)
    first = plan(cluster.observe(md, T0 - timedelta(minutes=10)))
    cluster.apply(first.desired)
    settled = plan(cluster.observe(after(first, router, model=V1_FIELDS, **kwargs), T0))
    assert settled.events == []
    assert settled.status.phase == "Ready"
    return cluster, settled


def start(
    router: str, *, canary_ready: bool = True, model: dict[str, Any] = V2_FIELDS, **kwargs: Any
) -> tuple[Cluster, Plan]:
    """spec.model changed to v2 (or `model`) at T0: the canary starts; its objects are applied."""
    cluster, settled = settle(router, **kwargs)
    started = plan(cluster.observe(after(settled, router, model=model, **kwargs), T0))
    cluster.apply(started.desired, canary_ready=canary_ready)
    if canary_ready:  # ready at the spec applied: the first step's traffic, at T0 as well
        ready = plan(cluster.observe(after(started, router, model=model, **kwargs), T0))
        assert [e.reason for e in ready.events] == ["CanaryReady"]
        cluster.apply(ready.desired)
        started = replace(ready, events=started.events + ready.events)
    return cluster, started


def routing(router: str, desired: list[dict[str, Any]]) -> tuple[str | None, str | None, Any]:
    """(model in the stable slot, canary model, canary weight) in the desired objects.

    Serverless keeps stable as the previous revision, so only the canary is in the spec.
    """
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in desired}
    isvc = by_name["InferenceService", "fraud"]
    uri = isvc["spec"]["predictor"]["model"]["storageUri"]
    if router == "kserve-raw":
        canaries = isvc["spec"].get("canary") or [{}]
        canary = canaries[0].get("predictor", {}).get("model", {}).get("storageUri")
        return uri, canary, canaries[0].get("trafficPercent")
    if router == "kserve-serverless":
        percent = isvc["spec"]["predictor"].get("canaryTrafficPercent")
        return (uri, None, None) if percent is None else (None, uri, percent)
    canary_isvc = by_name.get(("InferenceService", "fraud-canary"))
    route = by_name["HTTPRoute", "fraud"]
    weights = {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}
    return (
        uri,
        canary_isvc["spec"]["predictor"]["model"]["storageUri"] if canary_isvc else None,
        weights.get("fraud-canary-predictor"),
    )


def condition(p: Plan, type_: str) -> Condition:
    found = get_condition(p.status.conditions, type_)
    assert found is not None, f"no {type_} condition in {p.status.conditions}"
    return found


def summary(p: Plan, type_: str) -> tuple[str, str, str]:
    c = condition(p, type_)
    return c.status, c.reason, c.message


V1_URI, V2_URI, V3_URI = (
    "s3://models/fraud/v1",
    "s3://models/fraud/v2",
    "s3://models/fraud/v3",
)
STABLE_ONLY = {
    "kserve-raw": (V1_URI, None, None),
    "kserve-serverless": (V1_URI, None, None),
    "gateway-api": (V1_URI, None, None),
}


# --- the canary starts ---------------------------------------------------------------


@pytest.mark.parametrize("router", ALL)
def test_settled_level_2_routes_everything_to_stable(router: str) -> None:
    _, settled = settle(router)
    assert routing(router, settled.desired) == STABLE_ONLY[router]
    assert settled.status.canary is None
    assert summary(settled, "Progressing")[:2] == ("False", "Deployed")


@pytest.mark.parametrize(
    ("router", "expected"),
    [
        ("kserve-raw", (V1_URI, V2_URI, 10)),
        ("kserve-serverless", (None, V2_URI, 10)),
        ("gateway-api", (V1_URI, V2_URI, 10)),
    ],
)
def test_model_change_starts_a_canary(router: str, expected: tuple[Any, ...]) -> None:
    _, p = start(router)
    assert routing(router, p.desired) == expected
    assert p.status.phase == "Progressing"
    assert p.status.canary is not None
    assert (p.status.canary.version, p.status.canary.step, p.status.canary.weight) == (
        "v2",
        0,
        10,
    )
    assert p.status.canary.hash == V2_HASH
    assert p.status.canary.model is not None
    assert p.status.stable == STABLE
    assert [e.reason for e in p.events] == ["CanaryStarted", "CanaryReady"]
    assert p.status.history[-1].event == "CanaryStarted"
    assert summary(p, "Progressing") == ("True", "CanaryProgressing", "canary v2 at 10% (step 1)")


@pytest.mark.parametrize(
    ("router", "expected"),
    [
        ("kserve-raw", (V1_URI, V2_URI, 0)),
        ("kserve-serverless", (None, V2_URI, 0)),
        ("gateway-api", (V1_URI, V2_URI, 0)),
    ],
)
def test_a_canary_not_ready_yet_gets_no_traffic(router: str, expected: tuple[Any, ...]) -> None:
    _, p = start(router, canary_ready=False)
    assert routing(router, p.desired) == expected
    assert p.status.canary is not None
    assert p.status.canary.weight == 0
    assert [e.reason for e in p.events] == ["CanaryStarted"]
    assert summary(p, "Degraded")[:2] == ("False", "AsExpected")


@pytest.mark.parametrize("router", ALL)
def test_stable_without_its_model_is_replaced_directly(router: str) -> None:
    """A status written before stable.model existed cannot keep stable serving."""
    old = stable_status().model_copy(update={"stable": STABLE.model_copy(update={"model": None})})
    p = plan(Cluster().observe(deployment(router, status=old), T0))
    assert [e.reason for e in p.events] == ["ModelReplaced"]
    assert p.status.canary is None
    assert p.status.stable is not None
    assert (p.status.stable.version, p.status.stable.hash) == ("v2", V2_HASH)
    (isvc,) = [o for o in p.desired if o["kind"] == "InferenceService"]
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == V2_URI
    assert "canary" not in isvc["spec"]


@pytest.mark.parametrize("router", ALL)
def test_stable_stays_ready_during_a_canary(router: str) -> None:
    cluster, started = start(router)
    p = plan(cluster.observe(after(started, router), T0 + timedelta(seconds=30)))
    assert summary(p, "Ready") == ("True", "InferenceServiceReady", "model v1 is serving")


@pytest.mark.parametrize("router", ALL)
def test_resync_during_a_canary_changes_nothing(router: str) -> None:
    cluster, started = start(router)
    p1 = plan(cluster.observe(after(started, router), T0 + timedelta(seconds=20)))
    p2 = plan(cluster.observe(after(p1, router), T0 + timedelta(seconds=40)))
    assert (p1.events, p2.events) == ([], [])
    assert p2.status == p1.status
    assert p2.desired == p1.desired == started.desired


# --- analysis queries ----------------------------------------------------------------

SERVERLESS_V1 = f"fraud-predictor-{V1_HASH[:5]}"
SERVERLESS_V2 = f"fraud-predictor-{V2_HASH[:5]}"
TARGETS = {
    "kserve-raw": ("fraud-predictor", f"fraud-r-{V2_HASH[:8]}-predictor"),
    "kserve-serverless": (SERVERLESS_V1, SERVERLESS_V2),
    "gateway-api": ("fraud-predictor", "fraud-canary-predictor"),
}


@pytest.mark.parametrize("router", ALL)
def test_default_queries_target_the_canary(router: str) -> None:
    cluster, started = start(router)
    md = after(started, router)
    stable, canary = TARGETS[router]
    variables = query_variables(md, Targets(stable, canary), "1m", target=canary)
    queries = analysis_queries(md, cluster.observe(md, T0).live, T0 + timedelta(seconds=60))
    assert queries == [
        AnalysisQuery("error-rate", render(ERROR_RATE.query, variables), None),
        AnalysisQuery("latency-p95", render(LATENCY_P95.query, variables), None),
    ]
    assert f'destination_workload=~"{canary}.*"' in queries[0].canary
    assert f'pod=~"{canary}-.*"' in queries[1].canary
    assert 'namespace="team-a"' in queries[1].canary


@pytest.mark.parametrize("router", ALL)
def test_relative_and_custom_queries_render_both_targets(router: str) -> None:
    metrics = [
        {
            "name": "share",
            "query": "s{a='{{ canary }}', b='{{ stable }}'}[{{ interval }}]",
            "max": 1,
        },
        {
            "name": "drift",
            "query": "d{t='{{ target }}', n='{{ name }}'}",
            "maxIncreaseOverStable": 0,
        },
    ]
    rollout = {"interval": "2m", "analysis": {"metrics": metrics}}
    cluster, started = start(router, rollout=rollout)
    md = after(started, router, rollout=rollout)
    stable, canary = TARGETS[router]
    queries = analysis_queries(md, cluster.observe(md, T0).live, T0 + timedelta(minutes=2))
    assert queries == [
        AnalysisQuery("share", f"s{{a='{canary}', b='{stable}'}}[2m]", None),
        AnalysisQuery("drift", f"d{{t='{canary}', n='fraud'}}", f"d{{t='{stable}', n='fraud'}}"),
    ]


@pytest.mark.parametrize(("interval", "window"), [("5s", "10s"), ("10s", "10s"), ("2m", "2m")])
def test_query_window_is_the_interval_but_at_least_10s(interval: str, window: str) -> None:
    rollout = {"interval": interval}
    cluster, started = start("gateway-api", rollout=rollout)
    md = after(started, "gateway-api", rollout=rollout)
    queries = analysis_queries(md, cluster.observe(md, T0).live, T0 + timedelta(minutes=5))
    assert queries is not None
    assert f"[{window}]" in queries[0].canary


def _no_canary(router: str) -> tuple[ModelDeployment, Cluster, datetime]:
    cluster, settled = settle(router)
    return after(settled, router, model=V1_FIELDS), cluster, T0 + timedelta(hours=1)


def _not_due(router: str) -> tuple[ModelDeployment, Cluster, datetime]:
    cluster, started = start(router)
    return after(started, router), cluster, T0 + timedelta(seconds=59)


def _not_ready(router: str) -> tuple[ModelDeployment, Cluster, datetime]:
    cluster, started = start(router, canary_ready=False)
    return after(started, router), cluster, T0 + timedelta(minutes=5)


def _paused(router: str) -> tuple[ModelDeployment, Cluster, datetime]:
    cluster, started = start(router)
    paused = started.status.model_copy(update={"phase": "Paused"})
    return deployment(router, status=paused), cluster, T0 + timedelta(minutes=5)


def _level_1(router: str) -> tuple[ModelDeployment, Cluster, datetime]:
    cluster, started = start(router)
    return after(started, router, level=1), cluster, T0 + timedelta(minutes=5)


def _stable_without_model(router: str) -> tuple[ModelDeployment, Cluster, datetime]:
    cluster, started = start(router)
    assert started.status.stable is not None
    old = started.status.model_copy(
        update={"stable": started.status.stable.model_copy(update={"model": None})}
    )
    return deployment(router, status=old), cluster, T0 + timedelta(minutes=5)


@pytest.mark.parametrize(
    "situation", [_no_canary, _not_due, _not_ready, _paused, _level_1, _stable_without_model]
)
@pytest.mark.parametrize("router", ALL)
def test_no_queries_when_analysis_is_not_due(router: str, situation: Any) -> None:
    md, cluster, now = situation(router)
    assert analysis_queries(md, cluster.observe(md, now).live, now) is None


# --- analysis results drive the canary -----------------------------------------------

Measurements = dict[str, tuple[float | None, float | None]]
HEALTHY: Measurements = {"error-rate": (0.0, None), "latency-p95": (100.0, None)}
FAULTY: Measurements = {"error-rate": (0.5, None), "latency-p95": (100.0, None)}


@pytest.mark.parametrize(
    ("router", "weight"), [("kserve-raw", 25), ("kserve-serverless", 25), ("gateway-api", 25)]
)
def test_passed_analysis_moves_traffic(router: str, weight: int) -> None:
    cluster, started = start(router)
    now = T0 + timedelta(seconds=60)
    p = plan(cluster.observe(after(started, router), now, measurements=HEALTHY))
    assert [e.reason for e in p.events] == ["StepAdvanced"]
    assert routing(router, p.desired)[2] == weight
    assert p.status.analysis is not None
    assert [(c.metric, c.passed) for c in p.status.analysis.checks] == [
        ("error-rate", True),
        ("latency-p95", True),
    ]
    assert p.status.analysis.last_run == "2025-03-01T12:01:00Z"
    assert summary(p, "Progressing")[2] == "canary v2 at 25% (step 2)"


@pytest.mark.parametrize("router", ALL)
def test_failed_analysis_holds_traffic_and_counts(router: str) -> None:
    cluster, started = start(router)
    now = T0 + timedelta(seconds=60)
    p = plan(cluster.observe(after(started, router), now, measurements=FAULTY))
    assert [e.reason for e in p.events] == ["AnalysisFailed"]
    assert routing(router, p.desired)[2] == 10
    assert p.status.analysis is not None
    assert p.status.analysis.failures == 1


@pytest.mark.parametrize("router", ALL)
def test_unreachable_prometheus_holds_the_step_and_counts_an_error(router: str) -> None:
    cluster, started = start(router)
    unanswered = {"error-rate": (None, None), "latency-p95": (None, None)}
    p = plan(
        cluster.observe(
            after(started, router),
            T0 + timedelta(seconds=60),
            measurements=unanswered,
            analysis_error="connection refused",
        )
    )
    assert [(e.reason, e.type) for e in p.events] == [("AnalysisError", "Warning")]
    assert "connection refused" in p.events[0].message
    assert p.status.canary == started.status.canary
    assert p.status.analysis is not None
    assert (p.status.analysis.consecutive_errors, p.status.analysis.failures) == (1, 0)
    assert p.status.analysis.last_error == "connection refused"
    assert [(c.passed, c.message) for c in p.status.analysis.checks] == [
        (None, "connection refused"),
        (None, "connection refused"),
    ]
    assert summary(p, "Progressing")[:2] == ("True", "AnalysisError")
    assert "connection refused" in summary(p, "Progressing")[2]


UNANSWERED: Measurements = {"error-rate": (None, None), "latency-p95": (None, None)}


def _run_analyses(
    router: str,
    results: list[tuple[Measurements, str | None, dict[str, str]]],
    rollout: dict[str, Any] | None = None,
) -> tuple[Plan, list[str]]:
    """Analysis runs every 60s with (measurements, provider error, invalid) each."""
    cluster, p = start(router, rollout=rollout)
    seen: list[str] = []
    for i, (measured, error, invalid) in enumerate(results, start=1):
        md = after(p, router, rollout=rollout)
        p = plan(
            cluster.observe(
                md,
                T0 + timedelta(seconds=60 * i),
                measurements=measured,
                analysis_error=error,
                invalid_measurements=invalid,
            )
        )
        cluster.apply(p.desired)
        seen += [e.reason for e in p.events]
    return p, seen


@pytest.mark.parametrize("router", ALL)
def test_errors_in_a_row_beyond_the_limit_roll_back(router: str) -> None:
    p, seen = _run_analyses(router, [(UNANSWERED, "timed out", {})] * 5)
    assert seen == ["AnalysisError"] * 5 + ["ConsecutiveErrorLimitReached"]
    assert p.status.phase == "RollingBack"
    assert p.status.analysis is not None
    assert p.status.analysis.consecutive_errors == 5


@pytest.mark.parametrize("router", ALL)
def test_a_measured_run_resets_the_errors_in_a_row(router: str) -> None:
    runs = [(UNANSWERED, "timed out", {})] * 4 + [(HEALTHY, None, {})]
    runs += [(UNANSWERED, "timed out", {})] * 4
    p, seen = _run_analyses(router, runs)
    assert "ConsecutiveErrorLimitReached" not in seen
    assert p.status.phase == "Progressing"
    assert p.status.analysis is not None
    assert p.status.analysis.consecutive_errors == 4


@pytest.mark.parametrize("limit", [0, 1])
def test_consecutive_error_limit_is_the_errors_tolerated(limit: int) -> None:
    rollout = {"analysis": {"consecutiveErrorLimit": limit}}
    p, seen = _run_analyses("gateway-api", [(UNANSWERED, "timed out", {})] * (limit + 1), rollout)
    assert seen[-1] == "ConsecutiveErrorLimitReached"
    assert p.status.phase == "RollingBack"


@pytest.mark.parametrize("on_no_data", ["hold", "pass", "fail"])
def test_an_error_never_advances_whatever_on_no_data_says(on_no_data: str) -> None:
    rollout = {"analysis": {"onNoData": on_no_data}}
    p, seen = _run_analyses("gateway-api", [(UNANSWERED, "refused", {})] * 3, rollout)
    assert seen == ["AnalysisError"] * 3
    assert p.status.canary is not None
    assert p.status.canary.weight == 10


@pytest.mark.parametrize("on_no_data", ["hold", "pass"])
@pytest.mark.parametrize(
    "garbage",
    [
        "canary: sample value is NaN",
        "canary: query returned 2 series, expected one",
        "canary: query returned a 'matrix' result",
        "canary: sample value '+Inf' is not finite",
    ],
)
def test_garbage_is_a_failed_check_never_no_data(on_no_data: str, garbage: str) -> None:
    rollout = {"analysis": {"onNoData": on_no_data}}
    measured: Measurements = {"error-rate": (None, None), "latency-p95": (100.0, None)}
    p, seen = _run_analyses("gateway-api", [(measured, None, {"error-rate": garbage})], rollout)
    assert seen == ["AnalysisFailed"]
    assert p.status.analysis is not None
    assert p.status.analysis.failures == 1
    failed = [c for c in p.status.analysis.checks if c.passed is False]
    assert [(c.metric, c.message) for c in failed] == [
        ("error-rate", f"invalid measurement: {garbage}")
    ]
    assert p.status.canary is not None
    assert p.status.canary.weight == 10


def test_garbage_fails_even_when_prometheus_also_errs() -> None:
    measured: Measurements = {"error-rate": (None, None), "latency-p95": (None, None)}
    _, seen = _run_analyses("gateway-api", [(measured, "timed out", {"error-rate": "canary: NaN"})])
    assert seen == ["AnalysisFailed"]


# --- rollback ------------------------------------------------------------------------


def roll_back(router: str) -> tuple[Cluster, Plan, Plan]:
    """A canary failing twice (the default failureLimit), then its traffic removed."""
    cluster, p = start(router)
    for seconds in (60, 120):
        p = plan(
            cluster.observe(after(p, router), T0 + timedelta(seconds=seconds), measurements=FAULTY)
        )
        cluster.apply(p.desired)
    rolling_back = p
    assert rolling_back.status.phase == "RollingBack"
    rolled_back = plan(cluster.observe(after(p, router), T0 + timedelta(seconds=150)))
    cluster.apply(rolled_back.desired)
    return cluster, rolling_back, rolled_back


@pytest.mark.parametrize("router", ALL)
def test_failing_canary_rolls_back(router: str) -> None:
    _, rolling_back, rolled_back = roll_back(router)
    assert [e.reason for e in rolling_back.events] == ["AnalysisFailed", "FailureLimitReached"]
    # No traffic on the canary: weight 0, or (KServe RawDeployment) no canary entry at all.
    assert routing(router, rolling_back.desired)[2] == (None if router == "kserve-raw" else 0)
    assert summary(rolling_back, "Progressing")[:2] == ("True", "RollingBack")
    assert [e.reason for e in rolled_back.events] == ["RolledBack"]
    assert rolled_back.status.phase == "RolledBack"
    assert rolled_back.status.canary is None
    assert rolled_back.status.rejected is not None
    assert rolled_back.status.rejected.version == "v2"
    assert rolled_back.status.stable == STABLE
    assert routing(router, rolled_back.desired) == STABLE_ONLY[router]
    assert condition(rolled_back, "Degraded").status == "True"
    assert condition(rolled_back, "Degraded").reason == "RolledBack"


@pytest.mark.parametrize("router", ALL)
def test_rolled_back_stays_degraded_until_spec_changes(router: str) -> None:
    cluster, _, rolled_back = roll_back(router)
    again = plan(cluster.observe(after(rolled_back, router), T0 + timedelta(minutes=30)))
    assert again.events == []
    assert again.status.phase == "RolledBack"
    assert summary(again, "Degraded") == (
        "True",
        "RolledBack",
        "v2 was rolled back; change spec.model, or `rung retry`, to try again",
    )
    back = plan(cluster.observe(after(again, router, model=V1_FIELDS), T0 + timedelta(minutes=31)))
    assert back.events == []
    assert back.status.phase == "Ready"
    assert back.status.rejected is None
    assert summary(back, "Degraded")[:2] == ("False", "AsExpected")


@pytest.mark.parametrize("router", ALL)
def test_retry_rolls_the_rejected_version_out_again_once(router: str) -> None:
    cluster, _, rolled_back = roll_back(router)
    rejected = rolled_back.status.rejected
    assert rejected is not None
    retry = {RETRY_ANNOTATION: command_value(rejected=rejection_id(rejected), by="alice")}
    again = plan(
        cluster.observe(after(rolled_back, router, annotations=retry), T0 + timedelta(minutes=5))
    )
    assert [e.reason for e in again.events] == ["Retried", "CanaryStarted"]
    assert again.status.phase == "Progressing"
    assert again.status.canary is not None
    assert again.status.canary.version == "v2"
    assert "asked by alice" in again.status.history[-2].message


@pytest.mark.parametrize("router", ALL)
def test_undo_serves_the_last_revision_while_spec_names_the_newer_model(router: str) -> None:
    cluster, p = start(router)
    assert p.status.canary is not None
    promote = {
        PROMOTE_ANNOTATION: command_value(canary=canary_id(p.status.canary), step=None, by="a")
    }
    for seconds in (1, 2, 3):
        p = plan(
            cluster.observe(after(p, router, annotations=promote), T0 + timedelta(seconds=seconds))
        )
        cluster.apply(p.desired)
    assert p.status.stable is not None
    assert p.status.stable.version == "v2"
    assert [r.version for r in p.status.revisions] == ["v1"]
    undo = {UNDO_ANNOTATION: command_value(to=V1_HASH, version="v1", spec=V2_HASH, by="bob")}
    undone = plan(cluster.observe(after(p, router, annotations=undo), T0 + timedelta(minutes=1)))
    assert [e.reason for e in undone.events] == ["Undone", "CanaryStarted"]
    assert undone.status.canary is not None
    assert undone.status.canary.version == "v1"
    assert summary(undone, "Undone")[:2] == ("True", "Undone")
    assert "spec.model v2" in summary(undone, "Undone")[2]
    # a new spec.model rolls forward: the undo no longer applies
    forward = plan(
        cluster.observe(
            after(undone, router, annotations=undo, model=V3_FIELDS), T0 + timedelta(minutes=2)
        )
    )
    assert forward.status.canary is not None
    assert forward.status.canary.version == "v3"
    assert condition_or_none(forward, "Undone") is None


def test_unreadable_command_is_a_condition_not_an_action() -> None:
    cluster, p = start("gateway-api")
    bad = {PROMOTE_ANNOTATION: "{not json"}
    again = plan(
        cluster.observe(after(p, "gateway-api", annotations=bad), T0 + timedelta(seconds=5))
    )
    assert again.status.canary == p.status.canary
    status, reason, message = summary(again, "CommandsAccepted")
    assert (status, reason) == ("False", "InvalidCommand")
    assert "rung.dev/promote: not JSON" in message


def condition_or_none(p: Plan, type_: str) -> Condition | None:
    return get_condition(p.status.conditions, type_)


def test_rolled_back_message_names_the_version_at_once() -> None:
    _, _, rolled_back = roll_back("kserve-raw")
    assert summary(rolled_back, "Degraded")[2] == (
        "v2 was rolled back; change spec.model, or `rung retry`, to try again"
    )


@pytest.mark.parametrize("router", ALL)
def test_reverting_spec_model_mid_canary_removes_the_canary(router: str) -> None:
    cluster, p = start(router)
    reasons: list[str] = []
    for seconds in (30, 60, 90, 120):
        md = after(p, router, model=V1_FIELDS)
        p = plan(cluster.observe(md, T0 + timedelta(seconds=seconds)))
        cluster.apply(p.desired)
        reasons += [e.reason for e in p.events]
    assert reasons.count("CanaryAborted") == 1
    assert p.status.canary is None
    assert routing(router, p.desired) == STABLE_ONLY[router]


# --- the canary capability switched off ----------------------------------------------


@pytest.mark.parametrize(
    ("router", "model", "uri"),
    [(r, m, u) for r in ALL for m, u in ((V2_FIELDS, V2_URI), (V3_FIELDS, V3_URI))],
)
def test_lowering_the_level_mid_canary_deploys_the_spec_model(
    router: str, model: dict[str, Any], uri: str
) -> None:
    cluster, started = start(router)
    md = after(started, router, level=1, model=model)
    p = plan(cluster.observe(md, T0 + timedelta(seconds=30)))
    assert [(e.reason, e.type) for e in p.events] == [
        ("LevelChanged", "Normal"),
        ("ModelReplaced", "Normal"),
        ("CanaryAbandoned", "Warning"),
    ]
    assert [h.event for h in p.status.history[-3:]] == [
        "LevelChanged",
        "ModelReplaced",
        "CanaryAbandoned",
    ]
    assert p.status.history[-1].version == "v2"
    assert p.status.canary is None
    assert p.status.stable is not None
    assert p.status.stable.storage_uri == uri
    assert p.status.capabilities == ["serving", "monitoring"]
    (isvc,) = p.desired
    assert isvc["kind"] == "InferenceService"
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == uri
    assert "canary" not in isvc["spec"]
    assert "canaryTrafficPercent" not in isvc["spec"]["predictor"]


# --- whole rollouts through plan() ---------------------------------------------------


@dataclass
class Rollout:
    reasons: list[str] = field(default_factory=list)
    weights: list[int] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    last: Plan | None = None


def drive(
    router: str,
    measurements: Measurements,
    *,
    rollout: dict[str, Any] | None = None,
    approve_at: datetime | None = None,
    passes: int = 40,
    model: dict[str, Any] = V2_FIELDS,
) -> Rollout:
    """Run the operator's loop every 30s with a cooperative cluster until things settle."""
    cluster, p = start(router, rollout=rollout, model=model)
    seen = Rollout(reasons=[e.reason for e in p.events], last=p)
    now = T0
    for _ in range(passes):
        now += timedelta(seconds=30)
        approved = approve_at is not None and now >= approve_at
        md = after(
            p,
            router,
            rollout=rollout,
            model=model,
            annotations={APPROVE_ANNOTATION: "v2"} if approved else None,
        )
        due = analysis_queries(md, cluster.observe(md, now).live, now)
        p = plan(cluster.observe(md, now, measurements=measurements if due is not None else None))
        cluster.apply(p.desired)
        seen.reasons += [e.reason for e in p.events]
        if p.status.canary is not None and (
            not seen.weights or seen.weights[-1] != p.status.canary.weight
        ):
            seen.weights.append(p.status.canary.weight)
        if not seen.phases or seen.phases[-1] != p.status.phase:
            seen.phases.append(str(p.status.phase))
    seen.last = p
    return seen


@pytest.mark.parametrize("router", ALL)
def test_healthy_rollout_ends_ready_on_the_new_model(router: str) -> None:
    run = drive(router, HEALTHY)
    assert run.reasons == [
        "CanaryStarted",
        "CanaryReady",
        "StepAdvanced",
        "StepAdvanced",
        "StepAdvanced",
        "Promoting",
        "Promoted",
    ]
    assert run.weights == [10, 25, 50, 100]
    assert run.phases == ["Progressing", "Promoting", "Ready"]
    assert run.last is not None
    status = run.last.status
    assert status.canary is None
    assert status.stable is not None
    assert (status.stable.version, status.stable.hash) == ("v2", V2_HASH)
    assert routing(router, run.last.desired) == (V2_URI, None, None)
    assert summary(run.last, "Ready")[:2] == ("True", "InferenceServiceReady")
    assert summary(run.last, "Progressing")[:2] == ("False", "Deployed")
    assert [h.event for h in status.history][-2:] == ["CanaryStarted", "Promoted"]


def test_kserve_raw_promotes_a_same_uri_canary_in_place() -> None:
    """KServe refuses a predictor rename without a new storageUri: a canary that changes
    only resources is promoted into the stable predictor, which keeps its name."""
    resources_only = {**V1_FIELDS, "version": "v2", "resources": {"requests": {"cpu": "2"}}}
    run = drive("kserve-raw", HEALTHY, model=resources_only)
    assert run.reasons[-2:] == ["Promoting", "Promoted"]
    assert run.last is not None
    assert run.last.status.stable is not None
    assert run.last.status.stable.predictor_name is None
    predictor = run.last.desired[0]["spec"]["predictor"]
    assert "name" not in predictor or predictor["name"] is None
    assert predictor["model"]["resources"]["requests"] == {"cpu": "2"}


def test_kserve_raw_promotion_keeps_the_canary_predictor() -> None:
    """Promotion retargets predictor.name to the canary's, so no pod restarts."""
    run = drive("kserve-raw", HEALTHY)
    assert run.last is not None
    assert run.last.status.stable is not None
    name = f"r-{V2_HASH[:8]}"
    assert run.last.status.stable.predictor_name == name
    assert run.last.desired[0]["spec"]["predictor"]["name"] == name


@pytest.mark.parametrize("router", ALL)
def test_manual_gate_waits_for_the_approval_annotation(router: str) -> None:
    run = drive(router, HEALTHY, rollout={"gate": "manual"}, approve_at=T0 + timedelta(minutes=10))
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
    assert run.phases == ["Progressing", "Paused", "Promoting", "Ready"]
    assert run.last is not None
    assert run.last.status.stable is not None
    assert run.last.status.stable.version == "v2"
    assert [h.event for h in run.last.status.history][-3:] == [
        "AwaitingApproval",
        "Approved",
        "Promoted",
    ]


@pytest.mark.parametrize("router", ALL)
def test_faulty_rollout_ends_rolled_back_on_the_old_model(router: str) -> None:
    run = drive(router, FAULTY)
    assert run.reasons == [
        "CanaryStarted",
        "CanaryReady",
        "AnalysisFailed",
        "AnalysisFailed",
        "FailureLimitReached",
        "RolledBack",
    ]
    assert run.weights == [10, 0]
    assert run.phases == ["Progressing", "RollingBack", "RolledBack"]
    assert run.last is not None
    assert run.last.status.stable == STABLE
    assert routing(router, run.last.desired) == STABLE_ONLY[router]


# --- steps changed mid-canary ----------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "weight"),
    [
        ([50, 100], 50),  # the next weight of the new list, not its second index (100)
        ([10, 20, 100], 20),
        ([5, 100], 100),
        ([100], 100),
    ],
)
def test_steps_changed_mid_canary_never_skip_a_weight(steps: list[int], weight: int) -> None:
    cluster, started = start("gateway-api")
    assert started.status.canary is not None
    assert started.status.canary.weight == 10
    md = after(started, "gateway-api", rollout={"steps": steps})
    p = plan(cluster.observe(md, T0 + timedelta(seconds=60), measurements=HEALTHY))
    assert p.status.canary is not None
    assert p.status.canary.weight == weight
    assert p.status.phase == "Progressing"
    assert [e.reason for e in p.events] == ["StepAdvanced"]


def test_steps_all_below_the_canary_promote_after_a_passed_run() -> None:
    cluster, started = start("gateway-api")
    md = after(started, "gateway-api", rollout={"steps": [5]})
    p = plan(cluster.observe(md, T0 + timedelta(seconds=60), measurements=HEALTHY))
    assert [e.reason for e in p.events] == ["Promoting"]


# --- a template stored before admission checked it ---------------------------------------


def test_a_template_error_at_run_time_is_a_failed_check_with_the_message() -> None:
    from rung.plan.reads import interpret, reads

    rollout = {
        "analysis": {"metrics": [{"name": "bad", "query": "up{ns='{{ namesapce }}'}", "max": 1}]}
    }
    cluster, started = start("gateway-api", rollout=rollout)
    md = after(started, "gateway-api", rollout=rollout)
    now = T0 + timedelta(seconds=60)
    to_read = reads(md, cluster.observe(md, now).live, now, "http://prometheus:9090")
    assert to_read.analysis is not None
    assert to_read.analysis[0].error is not None
    assert all("namesapce" not in q for q in to_read.promql())
    answers = interpret(md, to_read, {}, now)
    p = plan(
        cluster.observe(
            md,
            now,
            measurements=answers.measurements,
            invalid_measurements=answers.invalid_measurements,
        )
    )
    assert [e.reason for e in p.events] == ["AnalysisFailed"]
    assert "unknown template variable {{ namesapce }}" in p.events[0].message
