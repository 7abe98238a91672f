"""Level 1 on real parts: a KServe model server under load, a real Prometheus, the operator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from integration_kit import (
    create_md,
    custom,
    get_isvc,
    is_condition,
    model_deployment,
    patch_md,
    wait_until,
    watch_md,
)
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from testbed.load import Backend, LoadDriver
from testbed.modelserver import ModelServerProcess, start_model_server
from testbed.prometheus import PrometheusServer, ScrapeTarget

pytestmark = pytest.mark.usefixtures("operator")
ERROR_SHARE = 0.2


@pytest.fixture
def model_server(tmp_path: Path) -> Iterator[ModelServerProcess]:
    server = start_model_server("fraud", tmp_path, error_rate=ERROR_SHARE)
    yield server
    server.stop()


@pytest.fixture
def observed(
    tmp_path: Path, namespace: str, model_server: ModelServerProcess
) -> Iterator[PrometheusServer]:
    """The model server under a bounded load, scraped by a real Prometheus.

    Prometheus gets the labels a PodMonitor would attach (namespace, pod).
    """
    load = LoadDriver(
        {"stable": Backend("fraud-predictor", namespace, model_server)},
        weights=lambda: {"stable": 100},
        rate=25,
        max_seconds=300,
    ).start()
    prometheus = PrometheusServer(
        tmp_path / "prometheus",
        [
            ScrapeTarget(
                "model-server",
                f"127.0.0.1:{model_server.port}",
                {"namespace": namespace, "pod": "fraud-predictor-7d9f-abcde"},
            ),
            ScrapeTarget("mesh", load.metrics_address),
        ],
    )
    prometheus.start()
    prometheus.wait_for_series(
        f'istio_requests_total{{destination_workload_namespace="{namespace}"}}'
    )
    yield prometheus
    prometheus.stop()
    load.stop()


def _level1(namespace: str, prometheus_url: str) -> dict:
    return model_deployment(
        "fraud",
        namespace,
        level=1,
        monitoring={
            "prometheus": {"url": prometheus_url},
            "interval": "1s",
            "slo": {"maxErrorRate": 0.05, "latencyP95Ms": 500},
        },
    )


def test_measured_slo_appears_in_status(
    kube_api: client.ApiClient, namespace: str, observed: PrometheusServer
) -> None:
    create_md(kube_api, _level1(namespace, observed.url))
    wait_until(lambda: get_isvc(kube_api, namespace, "fraud"), "InferenceService")

    md = watch_md(
        kube_api,
        namespace,
        "fraud",
        lambda o: (
            ((o.get("status") or {}).get("slo") or {}).get("errorRate", 0) > 0
            and o["status"]["slo"].get("latencyP95Ms") is not None
            and o["status"]["slo"].get("requestRate", 0) > 0
        ),
        "measured error rate, latency and request rate",
        timeout=90,
    )

    slo = md["status"]["slo"]
    assert 0 < slo["errorRate"] < 0.6  # the model server fails ~20% of requests
    assert slo["latencyP95Ms"] > 0
    assert slo["withinSlo"] is False  # 20% errors breach maxErrorRate 0.05
    assert is_condition(md, "MonitoringReady", "True")
    assert md["status"]["capabilities"] == ["serving", "monitoring"]


def test_monitoring_ready_follows_prometheus(
    kube_api: client.ApiClient, namespace: str, observed: PrometheusServer
) -> None:
    create_md(kube_api, _level1(namespace, observed.url))
    watch_md(
        kube_api,
        namespace,
        "fraud",
        lambda o: is_condition(o, "MonitoringReady", "True"),
        "MonitoringReady True",
        timeout=90,
    )

    observed.stop()
    md = watch_md(
        kube_api,
        namespace,
        "fraud",
        lambda o: is_condition(o, "MonitoringReady", "False"),
        "MonitoringReady False",
        timeout=60,
    )
    cond = next(c for c in md["status"]["conditions"] if c["type"] == "MonitoringReady")
    assert cond["reason"] == "PrometheusUnreachable"
    assert observed.url.split("//")[1] in cond["message"] or "Prometheus" in cond["message"]

    observed.start()
    watch_md(
        kube_api,
        namespace,
        "fraud",
        lambda o: is_condition(o, "MonitoringReady", "True"),
        "MonitoringReady True again",
        timeout=90,
    )


def _exists(api: client.ApiClient, plural: str, namespace: str, name: str) -> bool:
    try:
        custom(api).get_namespaced_custom_object(
            "monitoring.coreos.com", "v1", namespace, plural, name
        )
        return True
    except ApiException as error:
        if error.status == 404:
            return False
        raise


def test_monitoring_objects_follow_the_level(kube_api: client.ApiClient, namespace: str) -> None:
    create_md(
        kube_api,
        model_deployment(
            "fraud", namespace, level=1, monitoring={"prometheus": {"url": "http://127.0.0.1:1"}}
        ),
    )

    wait_until(
        lambda: _exists(kube_api, "podmonitors", namespace, "fraud-model-server"), "PodMonitor"
    )
    wait_until(
        lambda: _exists(kube_api, "prometheusrules", namespace, "fraud-slo"), "PrometheusRule"
    )
    rule = custom(kube_api).get_namespaced_custom_object(
        "monitoring.coreos.com", "v1", namespace, "prometheusrules", "fraud-slo"
    )
    alerts = [r["alert"] for r in rule["spec"]["groups"][0]["rules"]]
    assert alerts == ["RungModelErrorRateHigh", "RungModelLatencyP95High"]
    assert rule["metadata"]["ownerReferences"][0]["name"] == "fraud"

    watch_md(
        kube_api,
        namespace,
        "fraud",
        lambda o: (o.get("status") or {}).get("level") == 1,
        "level 1 in status",
    )
    patch_md(kube_api, namespace, "fraud", {"spec": {"maturity": {"level": 0}}})

    wait_until(
        lambda: not _exists(kube_api, "podmonitors", namespace, "fraud-model-server"),
        "PodMonitor removed",
    )
    wait_until(
        lambda: not _exists(kube_api, "prometheusrules", namespace, "fraud-slo"),
        "PrometheusRule removed",
    )
    md = watch_md(
        kube_api,
        namespace,
        "fraud",
        lambda o: (o.get("status") or {}).get("capabilities") == ["serving"],
        "capabilities back to serving",
    )
    assert not is_condition(md, "MonitoringReady", "True")
    # what level 1 added to the InferenceService is gone again
    isvc = wait_until(
        lambda: (
            (i := get_isvc(kube_api, namespace, "fraud"))
            and "serving.kserve.io/enable-prometheus-scraping" not in i["metadata"]["annotations"]
            and i
        ),
        "scrape annotation removed",
    )
    assert isvc["metadata"]["labels"]["rung.dev/model-deployment"] == "fraud"
    assert any(h["event"] == "LevelChanged" for h in md["status"]["history"])
