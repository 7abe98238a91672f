"""rung.plan.fail_safe: a canary whose object keeps failing to reconcile is rolled back
without the planner (table tests), and each router's patches that send every request
to stable, read from live objects only."""

from __future__ import annotations

from typing import Any

import pytest

from rung.api.kinds import HTTP_ROUTE, INFERENCE_SERVICE, LLM_INFERENCE_SERVICE
from rung.api.status import CanaryStatus, ModelDeploymentStatus, ModelRef
from rung.plan.conditions import get_condition
from rung.plan.fail_safe import FAILURE_LIMIT, fail_safe_due, fail_safe_rollback
from rung.plan.live import LiveObjects
from rung.plan.routers import router_for
from rung.plan.routers.base import TrafficPatch, route_to_stable

from . import factories as f

STABLE = ModelRef(version="v1", storage_uri="s3://m/v1", hash="h1")
CANARY = CanaryStatus(
    version="v2", storage_uri="s3://m/v2", hash="h2", weight=25, step=1, started_at=f.NOW_TEXT
)
BUG = "KeyError: 'predictor'"


def status(phase: str | None, canary: CanaryStatus | None = CANARY) -> ModelDeploymentStatus:
    return ModelDeploymentStatus(phase=phase, stable=STABLE, canary=canary)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("phase", "canary", "failures", "due"),
    [
        ("Progressing", CANARY, FAILURE_LIMIT, True),
        ("Progressing", CANARY, FAILURE_LIMIT + 5, True),
        ("Progressing", CANARY, FAILURE_LIMIT - 1, False),
        ("Shadowing", CANARY, FAILURE_LIMIT, True),
        ("Paused", CANARY, FAILURE_LIMIT, True),
        ("Promoting", CANARY, FAILURE_LIMIT, True),
        ("RollingBack", CANARY, FAILURE_LIMIT, True),
        ("Ready", None, FAILURE_LIMIT, False),
        ("RolledBack", None, FAILURE_LIMIT, False),
        ("Failed", None, FAILURE_LIMIT, False),
    ],
)
def test_due_after_the_limit_while_a_canary_exists(
    phase: str, canary: CanaryStatus | None, failures: int, due: bool
) -> None:
    assert fail_safe_due(status(phase, canary), failures) is due


def test_the_canary_is_rolled_back_at_weight_0_with_the_error() -> None:
    after, events = fail_safe_rollback(status("Progressing"), BUG, FAILURE_LIMIT, 4, f.NOW)
    assert after.phase == "RollingBack"
    assert after.canary is not None
    assert (after.canary.version, after.canary.weight) == ("v2", 0)
    assert after.stable == STABLE
    (event,) = events
    assert (event.reason, event.type) == ("FailSafeRollback", "Warning")
    assert event.message == f"3 reconciles in a row failed: {BUG}; rolling back to v1"
    entry = after.history[-1]
    assert (entry.event, entry.version) == ("RollingBack", "v2")
    assert entry.message == f"FailSafeRollback: 3 reconciles in a row failed: {BUG}"
    degraded = get_condition(after.conditions, "Degraded")
    assert degraded is not None
    assert (degraded.status, degraded.reason, degraded.message) == ("True", "ReconcileFailed", BUG)
    assert degraded.observed_generation == 4


def test_already_rolling_back_changes_nothing_and_announces_nothing() -> None:
    rolling_back = status("RollingBack", CANARY.model_copy(update={"weight": 0}))
    after, events = fail_safe_rollback(rolling_back, BUG, FAILURE_LIMIT, 1, f.NOW)
    assert after == rolling_back
    assert events == []


# --- each router's patches, from live objects only --------------------------------------


def _route(*backends: tuple[str, int], mirror_to: str | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [
            {"kind": "Service", "name": n, "port": 80, "weight": w} for n, w in backends
        ],
    }
    if mirror_to:
        rule["filters"] = [
            {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": mirror_to}}}
        ]
    return {"metadata": {"name": f.NAME}, "spec": {"rules": [rule]}}


def _weights(patch: TrafficPatch) -> dict[str, int]:
    (rule,) = patch.patch["spec"]["rules"]
    return {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}


def test_an_http_route_sends_everything_to_stable_and_mirrors_nothing() -> None:
    route = _route(("fraud-predictor", 75), ("fraud-canary-predictor", 25))
    route["spec"]["rules"][0]["filters"] = [
        {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "x"}}},
        {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": []}},
    ]
    patch = route_to_stable(route, {"fraud-canary-predictor"})
    assert patch is not None
    assert (patch.kind, patch.name) == (HTTP_ROUTE, f.NAME)
    assert _weights(patch) == {"fraud-predictor": 100, "fraud-canary-predictor": 0}
    (rule,) = patch.patch["spec"]["rules"]
    assert [x["type"] for x in rule["filters"]] == ["RequestHeaderModifier"]
    assert rule["matches"] == route["spec"]["rules"][0]["matches"]


def test_an_http_route_already_on_stable_needs_no_patch() -> None:
    route = _route(("fraud-predictor", 100), ("fraud-canary-predictor", 0))
    assert route_to_stable(route, {"fraud-canary-predictor"}) is None
    assert route_to_stable(None, {"fraud-canary-predictor"}) is None


def test_gateway_api_router() -> None:
    md = f.md(level=2, rollout={"router": "gateway-api"})
    live = LiveObjects(
        {}, {f.NAME: _route(("fraud-predictor", 90), ("fraud-canary-predictor", 10))}, {}
    )
    (patch,) = router_for("gateway-api").traffic_to_stable(md, live)
    assert _weights(patch) == {"fraud-predictor": 100, "fraud-canary-predictor": 0}
    shadow = LiveObjects(
        {},
        {
            f.NAME: _route(
                ("fraud-predictor", 100),
                ("fraud-canary-predictor", 0),
                mirror_to="fraud-canary-predictor-predictor",
            )
        },
        {},
    )
    (patch,) = router_for("gateway-api").traffic_to_stable(md, shadow)
    assert patch.patch["spec"]["rules"][0]["filters"] == []


@pytest.mark.parametrize(
    ("mode", "spec", "patches"),
    [
        (
            "RawDeployment",
            {"predictor": {}, "canary": [{"predictor": {"name": "r-1"}, "trafficPercent": 25}]},
            [{"spec": {"canary": None}}],
        ),
        ("RawDeployment", {"predictor": {}}, []),
        (
            "Serverless",
            {"predictor": {"canaryTrafficPercent": 25}},
            [{"spec": {"predictor": {"canaryTrafficPercent": 0}}}],
        ),
        ("Serverless", {"predictor": {"canaryTrafficPercent": 0}}, []),
        ("Serverless", {"predictor": {}}, []),
    ],
)
def test_kserve_router(mode: str, spec: dict[str, Any], patches: list[dict[str, Any]]) -> None:
    md = f.md(level=2, rollout={"router": "kserve"}, serving={"deploymentMode": mode})
    live = LiveObjects({f.NAME: {"metadata": {"name": f.NAME}, "spec": spec}}, {}, {})
    got = router_for("kserve").traffic_to_stable(md, live)
    assert [(p.kind, p.name) for p in got] == [(INFERENCE_SERVICE, f.NAME)] * len(patches)
    assert [p.patch for p in got] == patches


def _llm_isvc(name: str, weight: int | None) -> dict[str, Any]:
    route: dict[str, Any] = {} if weight is None else {"weight": weight}
    return {"metadata": {"name": name}, "spec": {"router": {"route": route}}}


def test_llm_router_route_group_weights() -> None:
    md = f.md(level=2, model_fields=LLM)
    live = LiveObjects(
        {},
        {},
        {},
        llm_inference_services={
            f.NAME: _llm_isvc(f.NAME, 80),
            f"{f.NAME}-canary": _llm_isvc(f"{f.NAME}-canary", 20),
        },
    )
    got = router_for("llm").traffic_to_stable(md, live)
    assert [(p.kind, p.name, p.patch) for p in got] == [
        (LLM_INFERENCE_SERVICE, f"{f.NAME}-canary", {"spec": {"router": {"route": {"weight": 0}}}}),
        (LLM_INFERENCE_SERVICE, f.NAME, {"spec": {"router": {"route": {"weight": 100}}}}),
    ]


LLM = {"kind": "llm", "format": "huggingface", "data": None, "storageUri": "hf://org/llm-v1"}
