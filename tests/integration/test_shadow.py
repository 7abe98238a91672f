"""The shadow stage on real parts: a canary that first receives mirrored requests only.

As in test_level2, two KServe model-server processes play stable and canary behind the
load driver, which splits user requests by the HTTPRoute's weights and, like a gateway
honouring the route's RequestMirror filter, sends the mirrored copies to the canary and
discards their answers (counted apart: `sent` holds what users were answered with,
`mirrored` the copies). Real Prometheus judges the canary on what it answered to the
copies; the real KServe controller runs both InferenceServices.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from integration_kit import create_md, get_isvc, model_deployment, wait_until, watch_md
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from test_level2 import (
    NAME,
    Bench,
    _deploy_v1,
    _events,
    _phase,
    _route,
    _to_v2,
    gateway_weights,
    level2,
)

from rung.plan.routers.gateway_api import mirror_percent
from testbed.load import Backend, LoadDriver
from testbed.modelserver import start_model_server
from testbed.prometheus import PrometheusServer, ScrapeTarget

Obj = dict[str, Any]
CANARY_SERVICE = f"{NAME}-canary-predictor"


class Cached:
    """`read()` at most every 0.3 s (the driver asks per request), `initial` until then."""

    def __init__(self, read: Callable[[], dict[str, int]], initial: dict[str, int]) -> None:
        self.read, self.value, self.at = read, initial, 0.0
        self.lock = threading.Lock()

    def __call__(self) -> dict[str, int]:
        with self.lock:
            if time.monotonic() - self.at > 0.3:
                with suppress(Exception):
                    self.value = self.read()
                self.at = time.monotonic()
            return dict(self.value)


def gateway_mirrors(api: client.ApiClient, namespace: str) -> dict[str, int]:
    """Percent of requests the HTTPRoute mirrors to the canary."""
    return {"canary": mirror_percent(_route(api, namespace), CANARY_SERVICE)}


@contextmanager
def shadow_bench(
    tmp_path: Path, api: client.ApiClient, namespace: str, *, canary_error_rate: float = 0.0
) -> Iterator[Bench]:
    stable = start_model_server(NAME, tmp_path, error_rate=0.0)
    canary = start_model_server(NAME, tmp_path, error_rate=canary_error_rate)
    load = LoadDriver(
        {
            "stable": Backend(f"{NAME}-predictor", namespace, stable),
            "canary": Backend(CANARY_SERVICE, namespace, canary),
        },
        weights=Cached(lambda: gateway_weights(api, namespace), {"stable": 100}),
        mirrors=Cached(lambda: gateway_mirrors(api, namespace), {}),
        rate=25,
        max_seconds=300,
    ).start()
    prometheus = PrometheusServer(
        tmp_path / "prometheus",
        [
            ScrapeTarget(
                "stable",
                f"127.0.0.1:{stable.port}",
                {"namespace": namespace, "pod": f"{NAME}-predictor-5f7d8-x2x9k"},
            ),
            ScrapeTarget(
                "canary",
                f"127.0.0.1:{canary.port}",
                {"namespace": namespace, "pod": f"{CANARY_SERVICE}-6c9b4-q8w2e"},
            ),
            ScrapeTarget("mesh", load.metrics_address),
        ],
    )
    prometheus.start()
    try:
        yield Bench(prometheus, load, stable, canary)
    finally:
        load.stop()
        prometheus.stop()
        stable.stop()
        canary.stop()


def _total(counter: Any, backend: str) -> int:
    return sum(n for (name, _code), n in counter.items() if name == backend)


@pytest.mark.usefixtures("operator")
def test_faulty_canary_is_rejected_in_the_shadow_stage_without_serving_a_user(
    kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    with shadow_bench(tmp_path, kube_api, namespace, canary_error_rate=0.5) as b:
        body = level2(namespace, b.prometheus.url, "gateway-api", shadow={"analysisRuns": 3})
        _deploy_v1(kube_api, namespace, body)
        _to_v2(kube_api, namespace)

        phases: list[str] = []

        def record(o: Obj) -> bool:
            phase = _phase(o)
            if phase and (not phases or phases[-1] != phase):
                phases.append(phase)
            canary = (o.get("status") or {}).get("canary")
            assert canary is None or canary["weight"] == 0, canary  # never any user traffic
            return phase == "RolledBack"

        md = watch_md(kube_api, namespace, NAME, record, "rejected in the shadow stage", 120)

        assert phases[-3:] == ["Shadowing", "RollingBack", "RolledBack"]
        assert "Progressing" not in phases[phases.index("Shadowing") :]
        # the load driver's count: not one user request answered by the canary ...
        assert _total(b.load.sent, "canary") == 0
        assert _total(b.load.sent, "stable") > 0
        # ... while mirrored copies reached it, and failed as the model does
        assert b.load.mirrored[("canary", 500)] > 0
        assert b.load.mirrored[("canary", 200)] > 0
        assert md["status"]["rejected"]["version"] == "v2"
        assert md["status"]["stable"]["version"] == "v1"
        history = md["status"]["history"]
        assert [h["event"] for h in history][-4:] == [
            "CanaryStarted",
            "ShadowStarted",
            "RollingBack",
            "RolledBack",
        ]
        assert history[-2]["message"].startswith("ShadowFailed: 2 failed shadow analysis runs")
        assert history[-1]["message"] == (
            "v2 rolled back in the shadow stage, before serving any user request"
        )
        failed = [c["metric"] for c in md["status"]["analysis"]["checks"] if not c["passed"]]
        assert failed == ["error-rate"]
        wait_until(
            lambda: get_isvc(kube_api, namespace, f"{NAME}-canary") is None, "canary removed"
        )
        route = _route(kube_api, namespace)
        assert mirror_percent(route, CANARY_SERVICE) == 0
        assert gateway_weights(kube_api, namespace) == {"stable": 100, "canary": 0}
        # Events follow the status write that decided them (status.outbox): wait for them.
        reasons = wait_until(
            lambda: r if "RolledBack" in (r := _events(kube_api, namespace)) else None,
            "RolledBack Event",
        )
        assert reasons.count("AnalysisFailed") == 2
        for reason in ("ShadowStarted", "ShadowFailed"):
            assert reason in reasons


@pytest.mark.usefixtures("operator")
def test_healthy_canary_goes_from_shadow_to_the_first_step(
    kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    with shadow_bench(tmp_path, kube_api, namespace) as b:
        body = level2(
            namespace,
            b.prometheus.url,
            "gateway-api",
            shadow={"analysisRuns": 2, "mirrorPercent": 50},
        )
        _deploy_v1(kube_api, namespace, body)
        _to_v2(kube_api, namespace)

        def mirrored_and_judged(o: Obj) -> bool:
            shadow = ((o.get("status") or {}).get("canary") or {}).get("shadow") or {}
            return _phase(o) == "Shadowing" and shadow.get("runsPassed", 0) >= 1

        watch_md(kube_api, namespace, NAME, mirrored_and_judged, "a passed shadow run", 120)
        # One run passed on mirrored requests; no user request has reached the canary.
        assert mirror_percent(_route(kube_api, namespace), CANARY_SERVICE) == 50
        assert gateway_weights(kube_api, namespace)["canary"] == 0
        assert _total(b.load.mirrored, "canary") > 0
        assert _total(b.load.sent, "canary") == 0

        md = watch_md(
            kube_api,
            namespace,
            NAME,
            lambda o: (o.get("status") or {}).get("canary", {}).get("weight") == 20,
            "the first step after the shadow stage",
            60,
        )
        shadow = md["status"]["canary"]["shadow"]
        assert shadow["runsPassed"] == 2
        assert shadow["passedAt"]
        assert md["status"]["phase"] == "Progressing"
        assert [h["event"] for h in md["status"]["history"]][-3:] == [
            "CanaryStarted",
            "ShadowStarted",
            "ShadowPassed",
        ]
        # traffic moved: the mirror is gone and users are now answered by the canary
        wait_until(
            lambda: mirror_percent(_route(kube_api, namespace), CANARY_SERVICE) == 0,
            "mirror filter removed",
        )
        wait_until(lambda: _total(b.load.sent, "canary") > 0, "user requests on the canary")
        assert b.load.sent[("canary", 500)] == 0


def test_a_shadow_stage_on_the_kserve_router_is_refused_naming_the_field(
    kube_api: client.ApiClient, namespace: str, rung_crds: None
) -> None:
    body = model_deployment(NAME, namespace, level=2, rollout={"router": "kserve"})
    body["spec"]["rollout"]["shadow"] = {"analysisRuns": 2}
    with pytest.raises(ApiException) as refused:
        create_md(kube_api, body)
    assert refused.value.status == 422
    message = refused.value.body
    assert "spec.rollout.shadow" in message
    assert "needs router gateway-api" in message
    # the default router is kserve too
    del body["spec"]["rollout"]["router"]
    with pytest.raises(ApiException) as refused_by_default:
        create_md(kube_api, body)
    assert "spec.rollout.shadow" in refused_by_default.value.body
