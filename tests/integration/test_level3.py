"""Level 3 on real parts: retraining triggered by a drift metric in a real Prometheus.

The drift score is a gauge served by a prometheus_client HTTP server in the test (a
drift detector such as Evidently or Alibi Detect would export it in a real cluster)
and scraped by a real Prometheus. Retraining Jobs are created in the real API
server; the real Job controller and kwok's simulated node run them (kwok's default
stages complete every Job pod). A failing run comes from the real Job controller
too: a pod that no node can take, and `activeDeadlineSeconds`, end in
`DeadlineExceeded`. The real KServe controller reconciles the InferenceServices.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import from_http
from integration_kit import (
    condition,
    create_md,
    is_condition,
    model_deployment,
    patch_md,
    rung_cli,
    wait_until,
    watch_md,
)
from kubernetes import client
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from testbed.loopback import LoopbackServer, QuietHandler
from testbed.modelserver import free_port
from testbed.prometheus import PrometheusServer, ScrapeTarget

pytestmark = pytest.mark.usefixtures("operator")
NAME = "fraud"
Obj = dict[str, Any]
DRIFT_QUERY = 'max(model_drift_score{namespace="{{ namespace }}", model="{{ name }}"})'
TRAINER = {"name": "train", "image": "registry.example/fraud-trainer:1", "command": ["train"]}
JOB_TEMPLATE = {"backoffLimit": 0, "template": {"spec": {"containers": [TRAINER]}}}
FAILING_TEMPLATE = {
    "backoffLimit": 0,
    "activeDeadlineSeconds": 3,
    "template": {
        "spec": {
            # No node has this label: the pod stays Pending until the deadline.
            "nodeSelector": {"rung.dev/test-no-such-node": "true"},
            "containers": [TRAINER],
        }
    },
}


@dataclass
class Drift:
    """A drift score the test sets, scraped by a real Prometheus."""

    gauge: Gauge
    prometheus: PrometheusServer
    namespace: str

    def set(self, value: float) -> None:
        self.gauge.labels(self.namespace, NAME).set(value)


@pytest.fixture
def drift(tmp_path: Path, namespace: str) -> Iterator[Drift]:
    registry = CollectorRegistry()
    gauge = Gauge(
        "model_drift_score",
        "Data drift of the model's inputs (0 none .. 1 total)",
        ["namespace", "model"],
        registry=registry,
    )
    gauge.labels(namespace, NAME).set(0.05)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    prometheus = PrometheusServer(
        tmp_path / "prometheus", [ScrapeTarget("drift-detector", f"127.0.0.1:{port}")]
    )
    prometheus.start()
    try:
        prometheus.wait_for_series(f'model_drift_score{{namespace="{namespace}"}}')
        yield Drift(gauge, prometheus, namespace)
    finally:
        prometheus.stop()
        server.shutdown()
        thread.join(timeout=5)


def level3(
    namespace: str,
    prometheus_url: str,
    pipeline: Obj,
    *,
    triggers: list[Obj] | None = None,
    cooldown: str = "1h",
) -> Obj:
    return model_deployment(
        NAME,
        namespace,
        level=3,
        monitoring={"prometheus": {"url": prometheus_url}, "interval": "1s"},
        rollout={
            "steps": [50, 100],
            "interval": "2s",
            "progressDeadline": "60s",
            "analysis": {"onNoData": "hold"},
        },
        retraining={
            "triggers": triggers
            if triggers is not None
            else [{"type": "drift", "query": DRIFT_QUERY, "above": 0.3, "for": "2s"}],
            "cooldown": cooldown,
            "maxRunsPerDay": 3,
            "pipeline": pipeline,
        },
    )


def _retraining(o: Obj) -> Obj:
    return dict((o.get("status") or {}).get("retraining") or {})


def _runs(o: Obj) -> list[Obj]:
    return list(_retraining(o).get("runs") or [])


def _trigger(o: Obj) -> Obj:
    triggers = _retraining(o).get("triggers") or [{}]
    return dict(triggers[0])


def _jobs(api: client.ApiClient, namespace: str) -> list[client.V1Job]:
    return list(client.BatchV1Api(api).list_namespaced_job(namespace).items)


def _events(api: client.ApiClient, namespace: str) -> list[client.CoreV1Event]:
    items = client.CoreV1Api(api).list_namespaced_event(namespace).items
    return [e for e in items if e.involved_object.kind == "ModelDeployment"]


def _reasons(api: client.ApiClient, namespace: str) -> list[str]:
    return [e.reason for e in _events(api, namespace)]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _watch(
    api: client.ApiClient,
    namespace: str,
    predicate: Callable[[Obj], bool],
    what: str,
    timeout: float = 60,
) -> Obj:
    return watch_md(api, namespace, NAME, predicate, what, timeout=timeout)


def _passes(api: client.ApiClient, namespace: str, count: int) -> Obj:
    """Wait for `count` more trigger evaluations (one a second), then return the object."""
    seen: list[str] = []

    def evaluated(o: Obj) -> bool:
        at = _retraining(o).get("evaluatedAt")
        if at and at not in seen:
            seen.append(at)
        return len(seen) > count

    return _watch(api, namespace, evaluated, f"{count} trigger evaluations", timeout=30)


def test_drift_launches_one_job_then_cooldown_holds_and_a_new_model_starts_a_canary(
    kube_api: client.ApiClient, namespace: str, drift: Drift
) -> None:
    pipeline = {"type": "job", "job": {"template": JOB_TEMPLATE}}
    create_md(kube_api, level3(namespace, drift.prometheus.url, pipeline))
    md = _watch(
        kube_api,
        namespace,
        lambda o: _trigger(o).get("value") == 0.05,
        "the drift trigger evaluated below its threshold",
    )
    assert is_condition(md, "RetrainingReady", "True")
    _passes(kube_api, namespace, 3)
    assert _jobs(kube_api, namespace) == []

    # Drift crosses the threshold: after `for` (2s), exactly one Job.
    drift.set(0.9)
    md = _watch(kube_api, namespace, lambda o: bool(_runs(o)), "a retraining run")
    (run,) = _runs(md)
    assert run["name"] == f"{NAME}-retrain-1"
    assert run["trigger"] == "drift"
    assert run["reason"] == "drift: 0.9 above 0.3 for 2s"
    assert (run["version"], run["storageUri"]) == ("v1", f"s3://models/{NAME}/v1")
    crossed = _time(_trigger(md)["since"])
    assert (_time(run["startedAt"]) - crossed).total_seconds() >= 2
    wait_until(lambda: _jobs(kube_api, namespace), "the retraining Job")
    (job,) = _jobs(kube_api, namespace)
    assert job.metadata.name == f"{NAME}-retrain-1"
    assert job.metadata.labels["rung.dev/model-deployment"] == NAME
    assert job.metadata.labels["app.kubernetes.io/managed-by"] == "rung"
    (owner,) = job.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == (
        "ModelDeployment",
        NAME,
        md["metadata"]["uid"],
    )
    env = {e.name: e.value for e in job.spec.template.spec.containers[0].env}
    assert env == {
        "RUNG_MODEL_DEPLOYMENT": NAME,
        "RUNG_NAMESPACE": namespace,
        "RUNG_MODEL_VERSION": "v1",
        "RUNG_STORAGE_URI": f"s3://models/{NAME}/v1",
        "RUNG_TRIGGER_REASON": "drift: 0.9 above 0.3 for 2s",
        "RUNG_TRIGGER": "drift",
        "RUNG_RUN": f"{NAME}-retrain-1",
        # the lineage of the model being retrained (integration_kit.training_data)
        "RUNG_DATA_URI": f"s3://datasets/{NAME}",
        "RUNG_DATA_VERSION": "2025-02-01",
        "RUNG_DATA_DIGEST": None,  # unknown: an empty value, which the API server drops
    }

    # kwok's node runs the pod to completion; the Job controller marks it Complete.
    md = _watch(
        kube_api,
        namespace,
        lambda o: _runs(o)[0]["outcome"] != "Running",
        "the run's outcome",
        timeout=90,
    )
    (run,) = _runs(md)
    assert run["outcome"] == "Succeeded", run
    assert run["message"] == f"Job {NAME}-retrain-1 completed (1 succeeded)"
    events = [h["event"] for h in md["status"]["history"]]
    assert events[-2:] == ["Retrained", "RetrainingSucceeded"]
    wait_until(
        lambda: {"RetrainingStarted", "RetrainingSucceeded"} <= set(_reasons(kube_api, namespace)),
        "RetrainingStarted and RetrainingSucceeded events",
    )

    # Cooldown (1h): drift stays high, no second run.
    md = _passes(kube_api, namespace, 5)
    assert len(_jobs(kube_api, namespace)) == 1
    retraining = _retraining(md)
    assert retraining["runsStarted"] == 1
    assert len(retraining["runs"]) == 1
    started = _time(retraining["lastTriggeredAt"])
    assert (_time(retraining["nextAllowedAt"]) - started).total_seconds() == 3600
    assert _trigger(md)["blockedBy"].startswith(f"cooldown 1h after {NAME}-retrain-1")

    # A new crossing during the cooldown is announced once, however long it lasts.
    drift.set(0.1)
    _watch(kube_api, namespace, lambda o: not _trigger(o).get("firing"), "drift cleared")
    drift.set(0.8)
    _watch(
        kube_api,
        namespace,
        lambda o: bool(_trigger(o).get("blockedBy")) and _trigger(o).get("value") == 0.8,
        "drift blocked by the cooldown",
    )
    _passes(kube_api, namespace, 5)
    blocked = [e for e in _events(kube_api, namespace) if e.reason == "RetrainingBlocked"]
    assert len(blocked) == 1
    assert (blocked[0].count or 1) == 1
    assert "cooldown 1h" in blocked[0].message
    assert len(_jobs(kube_api, namespace)) == 1

    # The pipeline hands its model back by patching spec.model: a canary starts.
    patch_md(
        kube_api,
        namespace,
        NAME,
        {"spec": {"model": {"storageUri": f"s3://models/{NAME}/v2", "version": "v2"}}},
    )
    md = _watch(
        kube_api,
        namespace,
        lambda o: ((o.get("status") or {}).get("canary") or {}).get("version") == "v2",
        "a canary of the retrained model",
    )
    assert md["status"]["phase"] == "Progressing"
    assert md["status"]["stable"]["version"] == "v1"
    assert "CanaryStarted" in [h["event"] for h in md["status"]["history"]]


def test_a_failed_job_is_reported_with_its_reason(
    kube_api: client.ApiClient, namespace: str
) -> None:
    pipeline = {"type": "job", "job": {"template": FAILING_TEMPLATE}}
    # Prometheus is unreachable: the drift trigger cannot be read, manual still works.
    create_md(kube_api, level3(namespace, "http://127.0.0.1:9", pipeline))
    md = _watch(
        kube_api,
        namespace,
        lambda o: is_condition(o, "RetrainingReady", "False"),
        "RetrainingReady False",
    )
    ready = condition(md, "RetrainingReady")
    assert ready is not None
    assert ready["reason"] == "TriggerQueryFailed"
    assert "127.0.0.1:9" in ready["message"]
    assert _runs(md) == []

    out = rung_cli("retrain", NAME, "-n", namespace)
    assert "retraining requested" in out

    md = _watch(
        kube_api,
        namespace,
        lambda o: bool(_runs(o)) and _runs(o)[0]["outcome"] != "Running",
        "the run's outcome",
        timeout=90,
    )
    (run,) = _runs(md)
    assert run["trigger"] == "manual"
    assert run["outcome"] == "Failed"
    assert run["message"].startswith("DeadlineExceeded: ")
    assert _retraining(md)["lastManualToken"] in out
    assert md["status"]["history"][-1]["event"] == "RetrainingFailed"
    (job,) = _jobs(kube_api, namespace)
    failed = [c for c in job.status.conditions or [] if c.type == "Failed"]
    assert failed
    assert failed[0].reason == "DeadlineExceeded"
    wait_until(
        lambda: [
            e
            for e in _events(kube_api, namespace)
            if e.reason == "RetrainingFailed" and e.type == "Warning"
        ],
        "a RetrainingFailed warning",
    )
    status = rung_cli("status", NAME, "-n", namespace)
    assert f"{NAME}-retrain-1" in status
    assert "DeadlineExceeded" in status


class CloudEventReceiver(LoopbackServer):
    """An HTTP endpoint on 127.0.0.1 that accepts whatever is POSTed (202)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()

        super().__init__(Handler, "/retrain")


def test_webhook_pipeline_delivers_a_cloudevent(kube_api: client.ApiClient, namespace: str) -> None:
    with CloudEventReceiver() as receiver:
        pipeline = {"type": "webhook", "webhook": {"url": receiver.url}}
        create_md(kube_api, level3(namespace, "http://127.0.0.1:9", pipeline, triggers=[]))
        _watch(kube_api, namespace, lambda o: is_condition(o, "RetrainingReady", "True"), "ready")
        token = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        patch_md(
            kube_api, namespace, NAME, {"metadata": {"annotations": {"rung.dev/retrain": token}}}
        )

        md = _watch(
            kube_api,
            namespace,
            lambda o: bool(_runs(o)) and _runs(o)[0]["outcome"] == "Succeeded",
            "the webhook run delivered",
        )

        (headers, body) = receiver.received[0]
        event = from_http(headers, body)
        assert event["type"] == "dev.rung.retraining.requested"
        assert event["source"] == f"rung/{namespace}/{NAME}"
        assert event.data["run"] == f"{NAME}-retrain-1"
        assert event.data["model"] == NAME
        assert event.data["version"] == "v1"
        assert event.data["reason"] == f"manual: requested with rung retrain (token {token})"
        assert len(receiver.received) == 1
        assert _retraining(md)["lastManualToken"] == token


def test_a_run_the_api_server_refuses_is_retried_then_reported_failed(
    kube_api: client.ApiClient, namespace: str
) -> None:
    # A container name that is not a DNS label passes Rung's admission (which checks that
    # containers exist) but not the Job's: every launch gets a 422 from the API server.
    bad = {"containers": [{"name": "Not_A_Label", "image": "trainer:1"}]}
    pipeline = {"type": "job", "job": {"template": {"template": {"spec": bad}}}}
    create_md(kube_api, level3(namespace, "http://127.0.0.1:9", pipeline, triggers=[]))
    _watch(kube_api, namespace, lambda o: is_condition(o, "RetrainingReady", "True"), "ready")
    patch_md(kube_api, namespace, NAME, {"metadata": {"annotations": {"rung.dev/retrain": "1"}}})

    md = _watch(
        kube_api,
        namespace,
        lambda o: bool(_runs(o)) and _runs(o)[0]["outcome"] == "Failed",
        "the run reported failed",
    )

    (run,) = _runs(md)
    assert run["attempts"] == 3
    assert run["message"].startswith("not launched after 3 attempts: creating Job fraud-retrain-1:")
    assert "422" in run["message"]
    assert _jobs(kube_api, namespace) == []
    wait_until(
        lambda: (
            _reasons(kube_api, namespace).count("RetrainingLaunchFailed") == 3
            and "RetrainingFailed" in _reasons(kube_api, namespace)
        ),
        "three RetrainingLaunchFailed events and RetrainingFailed",
    )
    assert is_condition(md, "RetrainingReady", "True")  # nothing left to relaunch
