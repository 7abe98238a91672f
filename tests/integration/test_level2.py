"""Level 2 on real parts: canary rollouts gated by a real Prometheus, with rollback.

Two KServe model-server processes play stable and canary. A bounded load driver
splits requests by the weight currently set in the cluster (the HTTPRoute's
backendRefs, or the InferenceService's canary trafficPercent) and plays the mesh's
part by exporting `istio_requests_total`. Prometheus scrapes both servers and the
driver. The real KServe controller reconciles the InferenceServices (kwok runs their
pods); only the mesh's traffic split is played by the load driver.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from integration_kit import (
    CanaryWeights,
    condition,
    create_md,
    custom,
    get_isvc,
    is_condition,
    md_holds,
    model_deployment,
    patch_md,
    run_operator,
    rung_cli,
    wait_until,
    watch_md,
)
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rung.api.spec import ModelSource
from rung.plan.inference_service import model_hash
from testbed.load import Backend, LoadDriver
from testbed.modelserver import ModelServerProcess, start_model_server
from testbed.prometheus import PrometheusServer, ScrapeTarget

NAME = "fraud"
Obj = dict[str, Any]


def _route(api: client.ApiClient, namespace: str) -> Obj | None:
    try:
        return dict(
            custom(api).get_namespaced_custom_object(
                "gateway.networking.k8s.io", "v1", namespace, "httproutes", NAME
            )
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def gateway_weights(api: client.ApiClient, namespace: str) -> dict[str, int]:
    """Weights the HTTPRoute sets, by role."""
    route = _route(api, namespace)
    weights = {"stable": 100, "canary": 0}
    for ref in ((route or {}).get("spec", {}).get("rules") or [{}])[0].get("backendRefs", []):
        role = "canary" if ref["name"] == f"{NAME}-canary-predictor" else "stable"
        weights[role] = int(ref.get("weight", 1))
    return weights


def kserve_weights(api: client.ApiClient, namespace: str) -> dict[str, int]:
    """Weights the InferenceService's RawDeployment canary sets, by role."""
    isvc = get_isvc(api, namespace, NAME) or {}
    canaries = isvc.get("spec", {}).get("canary") or []
    canary = int(canaries[0].get("trafficPercent", 0)) if canaries else 0
    return {"stable": 100 - canary, "canary": canary}


class CachedWeights:
    """Reads the weights from the cluster at most every 0.3 s (the driver asks per request)."""

    def __init__(self, read: Callable[[], dict[str, int]]) -> None:
        self.read, self.value, self.at = read, {"stable": 100}, 0.0
        self.lock = threading.Lock()

    def __call__(self) -> dict[str, int]:
        with self.lock:
            if time.monotonic() - self.at > 0.3:
                with suppress(Exception):
                    self.value = self.read()
                self.at = time.monotonic()
            return dict(self.value)


@dataclass
class Bench:
    prometheus: PrometheusServer
    load: LoadDriver
    stable: ModelServerProcess
    canary: ModelServerProcess


def _canary_workload(router: str) -> str:
    if router == "gateway-api":
        return f"{NAME}-canary-predictor"
    return f"{NAME}-r-{model_hash(_model('v2'))[:8]}-predictor"


def _model(version: str) -> ModelSource:
    return ModelSource(
        format="sklearn", storage_uri=f"s3://models/{NAME}/{version}", version=version
    )


@contextmanager
def bench(
    tmp_path: Path,
    api: client.ApiClient,
    namespace: str,
    router: str,
    *,
    canary_error_rate: float = 0.0,
) -> Iterator[Bench]:
    stable = start_model_server(NAME, tmp_path, error_rate=0.0)
    canary = start_model_server(NAME, tmp_path, error_rate=canary_error_rate)
    canary_workload = _canary_workload(router)
    read = gateway_weights if router == "gateway-api" else kserve_weights
    load = LoadDriver(
        {
            "stable": Backend(f"{NAME}-predictor", namespace, stable),
            "canary": Backend(canary_workload, namespace, canary),
        },
        weights=CachedWeights(lambda: read(api, namespace)),
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
                {"namespace": namespace, "pod": f"{canary_workload}-6c9b4-q8w2e"},
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


def level2(namespace: str, prometheus_url: str, router: str, **rollout: Any) -> Obj:
    spec_rollout = {
        "router": router,
        "steps": [20, 50, 100],
        "interval": "2s",
        "progressDeadline": "60s",
        "analysis": {"failureLimit": 2, "onNoData": "hold"},
        **rollout,
    }
    if router == "gateway-api":
        spec_rollout.setdefault("gateway", {"name": "inference-gateway"})
    return model_deployment(
        NAME,
        namespace,
        level=2,
        monitoring={
            "prometheus": {"url": prometheus_url},
            "slo": {"maxErrorRate": 0.05, "latencyP95Ms": 500},
            "interval": "2s",
        },
        rollout=spec_rollout,
    )


def _phase(o: Obj) -> str | None:
    return (o.get("status") or {}).get("phase")


def _deploy_v1(api: client.ApiClient, namespace: str, body: Obj) -> None:
    create_md(api, body)
    watch_md(api, namespace, NAME, lambda o: _phase(o) == "Ready", "v1 Ready", timeout=60)


def _to_v2(api: client.ApiClient, namespace: str, **model: Any) -> None:
    patch_md(
        api,
        namespace,
        NAME,
        {"spec": {"model": {"storageUri": f"s3://models/{NAME}/v2", "version": "v2", **model}}},
    )


UNSCHEDULABLE = {"resources": {"requests": {"cpu": "100000"}}}
"""More CPU than the kwok node has: the predictor's pod stays Pending, so KServe never
reports it ready (a real cause of a canary that never becomes ready)."""


def _weights_seen(
    api: client.ApiClient,
    namespace: str,
    done: Callable[[Obj], bool],
    what: str,
    timeout: float = 120,
) -> tuple[list[int], Obj]:
    seen: list[int] = []

    def record(o: Obj) -> bool:
        canary = (o.get("status") or {}).get("canary")
        if canary and (not seen or seen[-1] != canary["weight"]):
            seen.append(canary["weight"])
        return done(o)

    final = watch_md(api, namespace, NAME, record, what, timeout=timeout)
    return seen, final


def _events(api: client.ApiClient, namespace: str) -> list[str]:
    items = client.CoreV1Api(api).list_namespaced_event(namespace).items
    items = [e for e in items if e.involved_object.kind == "ModelDeployment"]
    return [e.reason for e in sorted(items, key=lambda e: e.metadata.creation_timestamp)]


@pytest.mark.usefixtures("operator")
@pytest.mark.parametrize("router", ["gateway-api", "kserve"])
def test_healthy_canary_is_promoted_through_every_step(
    kube_api: client.ApiClient, namespace: str, tmp_path: Path, router: str
) -> None:
    with bench(tmp_path, kube_api, namespace, router) as b:
        _deploy_v1(kube_api, namespace, level2(namespace, b.prometheus.url, router))
        _to_v2(kube_api, namespace)

        seen, md = _weights_seen(
            kube_api,
            namespace,
            lambda o: _phase(o) == "Ready" and o["status"]["stable"]["version"] == "v2",
            "v2 promoted",
        )

        assert seen[0] in (0, 20)  # 0: no traffic until the canary is ready
        assert seen[seen.index(20) :][:3] == [20, 50, 100]
        assert md["status"].get("canary") is None
        assert is_condition(md, "Ready", "True")
        events = [h["event"] for h in md["status"]["history"]]
        assert events[-2:] == ["CanaryStarted", "Promoted"]
        assert all(c["passed"] for c in md["status"]["analysis"]["checks"])
        # the canary really took traffic, and none of it failed
        assert b.load.sent[("canary", 200)] > 0
        assert b.load.sent[("canary", 500)] == 0
        wait_until(
            lambda: _events(kube_api, namespace).count("StepAdvanced") == 2,
            "two StepAdvanced events",
        )
        if router == "gateway-api":
            wait_until(
                lambda: get_isvc(kube_api, namespace, f"{NAME}-canary") is None,
                "canary InferenceService removed",
            )
            assert gateway_weights(kube_api, namespace) == {"stable": 100, "canary": 0}
            isvc = get_isvc(kube_api, namespace, NAME)
            assert isvc["spec"]["predictor"]["model"]["storageUri"].endswith("/v2")
        else:
            isvc = get_isvc(kube_api, namespace, NAME)
            assert not isvc["spec"].get("canary")
            assert isvc["spec"]["predictor"]["name"] == md["status"]["stable"]["predictorName"]


@pytest.mark.usefixtures("operator")
@pytest.mark.parametrize("router", ["gateway-api", "kserve"])
def test_faulty_canary_is_rolled_back_with_traffic_on_stable(
    kube_api: client.ApiClient, namespace: str, tmp_path: Path, router: str
) -> None:
    with bench(tmp_path, kube_api, namespace, router, canary_error_rate=0.5) as b:
        _deploy_v1(kube_api, namespace, level2(namespace, b.prometheus.url, router))
        _to_v2(kube_api, namespace)

        seen, md = _weights_seen(
            kube_api, namespace, lambda o: _phase(o) == "RolledBack", "rolled back"
        )

        # ready (after 0: no traffic until then), never advanced, straight back to 0
        # (on a loaded machine a first analysis over few canary requests can pass one
        # step; never the whole rollout)
        assert seen[seen.index(20)] == 20
        assert seen[-1] == 0
        assert 100 not in seen
        assert md["status"]["analysis"]["failures"] == 2  # the failureLimit
        assert md["status"]["stable"]["version"] == "v1"
        assert md["status"]["rejected"]["version"] == "v2"
        degraded = condition(md, "Degraded")
        assert degraded
        assert degraded["status"] == "True"
        assert degraded["reason"] == "RolledBack"
        failed = [c for c in md["status"]["analysis"]["checks"] if c["passed"] is False]
        assert [c["metric"] for c in failed] == ["error-rate"]
        if router == "gateway-api":
            wait_until(
                lambda: get_isvc(kube_api, namespace, f"{NAME}-canary") is None, "canary removed"
            )
            assert gateway_weights(kube_api, namespace) == {"stable": 100, "canary": 0}
        else:
            isvc = wait_until(
                lambda: (
                    (i := get_isvc(kube_api, namespace, NAME))
                    and not i["spec"].get("canary")
                    and not (i.get("status") or {}).get("canaryStatuses")
                    and i
                ),
                "canary entry removed and KServe reporting no canary",
            )
            assert kserve_weights(kube_api, namespace) == {"stable": 100, "canary": 0}
            assert is_condition(isvc, "Ready", "True")
        # Events follow the status write that decided them (status.outbox): wait for them.
        reasons = wait_until(
            lambda: r if "RolledBack" in (r := _events(kube_api, namespace)) else None,
            "RolledBack Event",
        )
        assert reasons.count("AnalysisFailed") == 2
        assert "FailureLimitReached" in reasons
        # a resync does not retry the rejected model
        again = watch_md(kube_api, namespace, NAME, lambda o: True, "current")
        assert _phase(again) == "RolledBack"


@pytest.mark.usefixtures("operator")
def test_canary_that_never_becomes_ready_fails_at_the_progress_deadline(
    kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    with bench(tmp_path, kube_api, namespace, "gateway-api") as b:
        _deploy_v1(
            kube_api,
            namespace,
            level2(namespace, b.prometheus.url, "gateway-api", progressDeadline="5s"),
        )
        _to_v2(kube_api, namespace, **UNSCHEDULABLE)

        md = watch_md(
            kube_api,
            namespace,
            NAME,
            lambda o: _phase(o) == "RolledBack",
            "rolled back at the deadline",
            timeout=60,
        )

        assert md["status"]["history"][-2]["message"].startswith("ProgressDeadlineExceeded")
        assert gateway_weights(kube_api, namespace) == {"stable": 100, "canary": 0}


@pytest.mark.usefixtures("operator")
def test_manual_gate_holds_until_approved(
    kube_api: client.ApiClient, namespace: str, tmp_path: Path, operator: Any
) -> None:
    with bench(tmp_path, kube_api, namespace, "gateway-api") as b:
        _deploy_v1(
            kube_api, namespace, level2(namespace, b.prometheus.url, "gateway-api", gate="manual")
        )
        _to_v2(kube_api, namespace)
        md = watch_md(
            kube_api,
            namespace,
            NAME,
            lambda o: _phase(o) == "Paused",
            "paused at the gate",
            timeout=120,
        )
        assert md["status"]["canary"]["weight"] == 100

        # three more rollout intervals (2 s) pass without promotion
        md_holds(kube_api, namespace, NAME, lambda o: _phase(o) == "Paused", "Paused", 6)

        status = rung_cli("status", NAME, "-n", namespace)
        assert "phase:    Paused" in status
        assert "canary:   v2" in status
        out = rung_cli("approve", NAME, "-n", namespace)
        assert "approved v2" in out

        md = watch_md(
            kube_api,
            namespace,
            NAME,
            lambda o: _phase(o) == "Ready" and o["status"]["stable"]["version"] == "v2",
            "promoted after approval",
            timeout=60,
        )
        assert [h["event"] for h in md["status"]["history"]][-3:] == [
            "AwaitingApproval",
            "Approved",
            "Promoted",
        ]


def test_operator_restart_mid_rollout_resumes_at_the_same_step(
    kube_api: client.ApiClient, kubeconfig: str, restart_namespace: str, tmp_path: Path
) -> None:
    namespace = restart_namespace
    body = level2(namespace, "", "gateway-api", interval="4s")
    with (
        bench(tmp_path, kube_api, namespace, "gateway-api") as b,
        CanaryWeights(kube_api, namespace) as weights,
    ):
        body["spec"]["monitoring"]["prometheus"]["url"] = b.prometheus.url
        args = ("--verbose", "-n", namespace)
        with run_operator(kubeconfig, tmp_path / "op1.log", *args):
            _deploy_v1(kube_api, namespace, body)
            _to_v2(kube_api, namespace)
            watch_md(
                kube_api,
                namespace,
                NAME,
                lambda o: ((o.get("status") or {}).get("canary") or {}).get("step") == 1,
                "step 2 (50%)",
                timeout=60,
            )
        # The first operator is gone; status holds the rollout, traffic stays at 50%.
        stopped = watch_md(kube_api, namespace, NAME, lambda o: True, "after stop")
        assert stopped["status"]["canary"]["step"] == 1
        assert gateway_weights(kube_api, namespace)["canary"] == 50

        with run_operator(kubeconfig, tmp_path / "op2.log", *args) as second:
            watch_md(
                kube_api,
                namespace,
                NAME,
                lambda o: _phase(o) == "Ready" and o["status"]["stable"]["version"] == "v2",
                "promoted after restart",
                timeout=120,
            )
            log = second.log()
        # Across the restart every step was taken exactly once, in order.
        assert weights.seen[NAME] == [0, 20, 50, 100]
        assert "CanaryStarted" not in log
        assert b.load.sent[("canary", 200)] > 0
