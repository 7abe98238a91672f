"""rung.reconciler.Reconciler with a fake Kube: read, plan, apply, write status once.

The fake keeps objects in memory and counts every call, so each test states exactly
which API requests a reconcile makes. (Unit tests only: integration tests use a real
API server.)
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from rung.kube import INFERENCE_SERVICE, MODEL_DEPLOYMENT, Kind, ObjectGoneError, kind_of
from rung.metrics import MetricsUnavailableError
from rung.plan.events import Event
from rung.plan.outbox import OUTBOX_CLEAR_SECONDS
from rung.reconciler import Reconciler, TransientError
from rung.settings import OperatorSettings

from . import factories as f

Obj = dict[str, Any]


@dataclass
class FakeKube:
    """The handful of calls Reconciler makes, against dicts, with a call log."""

    objects: dict[tuple[str, str, str], Obj] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    fail_apply: ApiException | None = None
    conflicts: int = 0
    """How many status writes answer 409 before one succeeds."""
    gone: bool = False
    """The ModelDeployment was deleted behind the cache's back (status writes: 404)."""
    api_client: Any = None

    def put(self, obj: Obj) -> None:
        meta = obj["metadata"]
        self.objects[(obj["kind"], meta["namespace"], meta["name"])] = obj

    def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        self.calls.append(f"get {kind.kind}")
        found = self.objects.get((kind.kind, namespace, name))
        return copy.deepcopy(found)

    def list_owned(self, kind: Kind, namespace: str, owner: str, uid: str) -> list[Obj]:
        self.calls.append(f"list {kind.kind}")
        return [
            copy.deepcopy(o)
            for (k, ns, _), o in self.objects.items()
            if k == kind.kind and ns == namespace
        ]

    def list_labelled(self, kind: Kind, namespace: str, owner: str) -> list[Obj]:
        """KServe's predictor Deployments, as KServe leaves them once it acted on the
        InferenceServices held here (their annotations copied, rolled out)."""
        self.calls.append(f"list {kind.kind}")
        services = {
            name: o
            for (k, ns, name), o in self.objects.items()
            if k == "InferenceService" and ns == namespace
        }
        return list(f.predictor_deployments(services).values())

    def apply(self, manifest: Obj) -> Obj:
        self.calls.append(f"apply {manifest['kind']}")
        if self.fail_apply is not None:
            raise self.fail_apply
        stored = copy.deepcopy(manifest)
        old = self.objects.get((manifest["kind"], f.NAMESPACE, manifest["metadata"]["name"]))
        if old is not None and "status" in old:
            stored["status"] = old["status"]
        self.put(stored)
        return stored

    def patch(self, kind: Kind, namespace: str, name: str, patch: Obj) -> Obj:
        """A JSON merge patch (RFC 7386: None removes a key)."""
        self.calls.append(f"patch {kind.kind}")

        def merge(target: Any, change: Any) -> Any:
            if not isinstance(change, dict):
                return change
            out = dict(target) if isinstance(target, dict) else {}
            for key, value in change.items():
                if value is None:
                    out.pop(key, None)
                else:
                    out[key] = merge(out.get(key), value)
            return out

        stored = merge(self.objects[(kind.kind, namespace, name)], patch)
        self.put(stored)
        return copy.deepcopy(stored)

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        self.calls.append(f"delete {kind.kind}")
        self.objects.pop((kind.kind, namespace, name), None)

    def replace_status(self, body: Obj, status: Obj) -> Obj:
        self.calls.append("status ModelDeployment")
        if self.gone:
            raise ObjectGoneError(f.NAMESPACE, f.NAME)
        if self.conflicts:
            self.conflicts -= 1
            raise ApiException(status=409, reason="Conflict")
        stored = self.objects[("ModelDeployment", f.NAMESPACE, f.NAME)]
        stored["status"] = copy.deepcopy(status)
        return copy.deepcopy(stored)

    def has_crd(self, kind: Kind) -> bool:
        return True

    def writes(self) -> list[str]:
        return [c for c in self.calls if not c.startswith(("get", "list"))]


@dataclass
class Recorder:
    events: list[Event] = field(default_factory=list)
    down: bool = False
    """Answer False (not delivered), as the Event poster does while the API refuses."""

    def post(self, body: Obj, event: Event) -> bool:
        if self.down:
            return False
        self.events.append(event)
        return True


@dataclass
class FakeProvider:
    answer: Callable[[str], float | None] = lambda query: 0.0
    asked: list[str] = field(default_factory=list)

    def run_query(self, query: str) -> float | None:
        self.asked.append(query)
        return self.answer(query)


@dataclass
class World:
    kube: FakeKube
    events: Recorder
    provider: FakeProvider
    clock: list[datetime]
    reconciler: Reconciler

    def reconcile(self) -> Any:
        self.kube.calls.clear()
        return self.reconciler.reconcile(f.NAMESPACE, f.NAME)

    def md(self) -> Obj:
        return self.kube.objects[("ModelDeployment", f.NAMESPACE, f.NAME)]

    def make_isvc_ready(self) -> None:
        isvc = self.kube.objects[("InferenceService", f.NAMESPACE, f.NAME)]
        isvc["status"] = {
            "conditions": [{"type": "Ready", "status": "True"}],
            "url": "http://fraud.team-a",
        }


def world(**md_kwargs: Any) -> World:
    kube = FakeKube()
    body = f.body(**md_kwargs)
    body["metadata"]["resourceVersion"] = "1"
    kube.put(body)
    events, provider, clock = Recorder(), FakeProvider(), [f.NOW]
    reconciler = Reconciler(
        kube,  # type: ignore[arg-type]
        OperatorSettings(prometheus_url="http://prometheus:9090"),
        events,
        clock=lambda: clock[0],
        providers=lambda name, url: provider,
    )
    return World(kube, events, provider, clock, reconciler)


def test_read_plan_apply_then_idle() -> None:
    w = world()

    first = w.reconcile()
    assert first.applied == ["InferenceService/fraud"]
    # the decision and its announcement (status.outbox), then the apply; the delivered
    # announcement leaves status with the next write (rung.plan.outbox)
    assert w.kube.writes() == ["status ModelDeployment", "apply InferenceService"]
    assert [e.reason for e in w.events.events] == ["Deploying"]
    assert w.md()["status"]["phase"] == "Progressing"
    assert [e["reason"] for e in w.md()["status"]["outbox"]] == ["Deploying"]
    assert first.requeue_after is not None
    assert first.requeue_after <= OUTBOX_CLEAR_SECONDS

    w.make_isvc_ready()
    second = w.reconcile()
    assert second.applied == []
    assert w.kube.writes() == ["status ModelDeployment"]  # Ready, and Deploying dropped
    assert w.md()["status"]["phase"] == "Ready"
    assert "Deploying" not in [e["reason"] for e in w.md()["status"].get("outbox") or []]

    _clear_delivered(w)
    third = w.reconcile()
    assert (third.applied, third.status_written, third.events) == ([], False, [])
    assert w.kube.writes() == []


def _clear_delivered(w: World) -> None:
    """Let the delivered announcements' wait run out and clear them (one write)."""
    w.reconcile()  # before their time: nothing is written for them
    assert w.kube.writes() == []
    waiting = bool(w.md()["status"].get("outbox"))
    w.clock[0] += timedelta(seconds=OUTBOX_CLEAR_SECONDS)
    w.reconcile()
    assert w.kube.writes() == (["status ModelDeployment"] if waiting else [])
    assert not w.md()["status"].get("outbox")


def test_a_delivered_announcement_waits_for_the_next_write_or_is_cleared_on_its_own() -> None:
    """One status write per decision, not two: the entries delivered leave status.outbox
    with the object's next status write; without one, a write of their own clears them
    OUTBOX_CLEAR_SECONDS after delivery. Nothing is posted twice."""
    w = world()
    w.reconcile()
    assert [e["reason"] for e in w.md()["status"]["outbox"]] == ["Deploying"]
    w.clock[0] += timedelta(seconds=OUTBOX_CLEAR_SECONDS / 2)
    waiting = w.reconcile()
    assert w.kube.writes() == []  # only the clear would change: it waits
    assert waiting.requeue_after == pytest.approx(OUTBOX_CLEAR_SECONDS / 2)
    w.clock[0] += timedelta(seconds=OUTBOX_CLEAR_SECONDS / 2)
    w.reconcile()
    assert w.kube.writes() == ["status ModelDeployment"]
    assert not w.md()["status"].get("outbox")
    assert [e.reason for e in w.events.events] == ["Deploying"]


def test_a_conflict_on_the_status_write_reads_again_and_retries() -> None:
    w = world()
    w.kube.conflicts = 1
    result = w.reconcile()
    assert result.status_written
    assert w.kube.calls.count("get ModelDeployment") == 2
    assert w.kube.calls.count("status ModelDeployment") == 2  # 409, then written


def test_conflicts_that_persist_are_transient_errors() -> None:
    w = world()
    w.kube.conflicts = 10
    with pytest.raises(TransientError):
        w.reconcile()


def refusal(message: str) -> ApiException:
    error = ApiException(status=400, reason="Bad Request")
    error.body = json.dumps({"kind": "Status", "message": message, "code": 400})
    return error


def test_an_apply_failure_is_degraded_once_with_the_message() -> None:
    w = world()
    w.kube.fail_apply = refusal('admission webhook "x" denied the request: no')

    w.reconcile()
    status = w.md()["status"]
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ApplyFailed")
    assert "denied the request: no" in degraded["message"]
    assert status["phase"] == "Failed"
    assert "ApplyFailed" in [e.reason for e in w.events.events]

    w.events.events.clear()
    again = w.reconcile()
    assert w.kube.writes() == ["apply InferenceService"]  # tried again, status untouched
    assert (again.status_written, w.events.events) == (False, [])
    w.clock[0] += timedelta(seconds=OUTBOX_CLEAR_SECONDS)
    w.reconcile()  # the delivered announcement leaves status: the refusal is not new
    assert w.kube.writes() == ["status ModelDeployment", "apply InferenceService"]
    assert (w.events.events, w.md()["status"].get("outbox")) == ([], [])

    w.kube.fail_apply = None
    w.reconcile()
    degraded = next(c for c in w.md()["status"]["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "False"


def test_server_errors_on_apply_are_reported_not_raised() -> None:
    w = world()
    w.kube.fail_apply = ApiException(status=500, reason="Internal Server Error")
    w.reconcile()
    degraded = next(c for c in w.md()["status"]["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "ApplyFailed"


def test_level_1_reads_the_slo_when_due_and_not_before() -> None:
    w = world(level=1)
    w.provider.answer = lambda query: 0.5 if "5.." in query else 12.0
    w.reconcile()
    slo = w.md()["status"]["slo"]
    assert slo["errorRate"] == 0.5
    assert slo["withinSlo"] is False
    asked = len(w.provider.asked)
    assert asked == 3  # request rate, error rate, p95 latency

    w.reconcile()
    assert len(w.provider.asked) == asked  # fresh: nothing due

    w.clock[0] = f.NOW + timedelta(seconds=31)
    w.reconcile()
    assert len(w.provider.asked) == 2 * asked


def test_an_unreachable_prometheus_is_a_condition_not_an_exception() -> None:
    w = world(level=1)

    def down(query: str) -> float | None:
        raise MetricsUnavailableError("Prometheus at http://prometheus:9090: timed out")

    w.provider.answer = down
    w.reconcile()
    ready = next(c for c in w.md()["status"]["conditions"] if c["type"] == "MonitoringReady")
    assert (ready["status"], ready["reason"]) == ("False", "PrometheusUnreachable")
    assert "timed out" in ready["message"]


def test_a_deleted_model_deployment_reads_nothing_more() -> None:
    w = world()
    w.kube.objects.clear()
    result = w.reconcile()
    assert w.kube.calls == ["get ModelDeployment"]
    assert not result.applied


def test_owned_objects_no_longer_wanted_are_deleted() -> None:
    w = world()
    stray = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "fraud-model-server", "namespace": f.NAMESPACE},
    }
    w.kube.put(stray)
    assert kind_of(stray).kind == "PodMonitor"
    result = w.reconcile()
    assert result.deleted == ["PodMonitor/fraud-model-server"]
    assert ("PodMonitor", f.NAMESPACE, "fraud-model-server") not in w.kube.objects
    assert INFERENCE_SERVICE.kind == "InferenceService"
    assert MODEL_DEPLOYMENT.kind == "ModelDeployment"


def test_a_provider_that_raises_anything_is_an_error_reading_not_a_crash() -> None:
    w = world(level=1)

    def broken(query: str) -> float | None:
        return float("not a number")  # ValueError, as a non-numeric sample once did

    w.provider.answer = broken
    w.reconcile()
    ready = next(c for c in w.md()["status"]["conditions"] if c["type"] == "MonitoringReady")
    assert (ready["status"], ready["reason"]) == ("False", "PrometheusUnreachable")
    assert "ValueError" in ready["message"]


def test_garbage_from_the_provider_is_invalid_not_missing() -> None:
    from rung.metrics import InvalidMeasurementError

    w = world(level=1)

    def garbage(query: str) -> float | None:
        if "5.." in query:
            raise InvalidMeasurementError("sample value is NaN")
        return 1.0

    w.provider.answer = garbage
    w.reconcile()
    status = w.md()["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "MonitoringReady")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidMeasurement")
    assert "NaN" in ready["message"]
    assert "errorRate" not in status["slo"]


# --- every error of a reconcile is a condition and an Event -----------------------------


def test_a_reconcile_that_fails_is_degraded_with_the_message_and_one_event() -> None:
    w = world()
    del w.md()["spec"]["model"]["storageUri"]  # what the models cannot parse
    with pytest.raises(ValidationError):
        w.reconcile()
    degraded = next(c for c in w.md()["status"]["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ReconcileFailed")
    assert degraded["message"] == (
        "invalid ModelDeploymentSpec: model: Value error, storageUri is required unless"
        " source is external"
    )
    assert [(e.reason, e.type) for e in w.events.events] == [("ReconcileFailed", "Warning")]

    with pytest.raises(ValidationError):
        w.reconcile()  # the same failure again: reported once
    assert len(w.events.events) == 1
    assert w.kube.writes() == []

    w.md()["spec"]["model"]["storageUri"] = "s3://models/fraud/v1"
    w.reconcile()
    degraded = next(c for c in w.md()["status"]["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] != "ReconcileFailed"


def test_an_object_found_gone_is_dropped_quietly_and_not_retried() -> None:
    """Its namespace went and no DELETED event came: the status write's 404 ends it, with
    no error, no report, no retry (it was retried forever, every 60 s)."""
    w = world(level=1, monitoring={"prometheus": {"url": "http://prometheus:9090"}})
    w.kube.gone = True
    result = w.reconcile()
    assert result.requeue_after is None
    assert w.kube.writes() == ["status ModelDeployment"]
    assert w.events.events == []


def test_transient_errors_are_not_reported_as_failures() -> None:
    w = world()
    w.kube.conflicts = 10
    with pytest.raises(TransientError):
        w.reconcile()
    assert w.events.events == []


def test_a_launcher_that_breaks_on_its_input_is_a_launch_failure_not_a_crash() -> None:
    from rung.api.resource import RETRAIN_ANNOTATION

    class Broken:
        name = "job"

        def launch(self, request: Any) -> None:
            raise ValueError("1 validation error for Job: spec.template Field required")

        def outcome(self, md: Any, run: str) -> Any:
            from rung.plan.observation import RunOutcome

            return RunOutcome("NotFound")

    pipeline = {"type": "job", "job": {"template": {}}}
    w = world(
        level=3,
        retraining={"pipeline": pipeline},
        annotations={RETRAIN_ANNOTATION: "1"},
    )
    w.reconciler = Reconciler(
        w.kube,  # type: ignore[arg-type]
        OperatorSettings(prometheus_url="http://prometheus:9090"),
        w.events,
        clock=lambda: w.clock[0],
        providers=lambda name, url: w.provider,
        launchers=lambda name: Broken(),  # type: ignore[arg-type,return-value]
    )
    w.events.down = True  # the API refuses Events: the failure waits in the outbox
    w.reconcile()
    assert w.events.events == []
    waiting = [e for e in w.md()["status"]["outbox"] if e["reason"] == "RetrainingLaunchFailed"]
    assert len(waiting) == 1
    w.events.down = False
    w.reconcile()  # the next pass (a restarted operator alike) delivers it, with its id
    failed = [e for e in w.events.events if e.reason == "RetrainingLaunchFailed"]
    assert [e.id for e in failed if "(attempt 1)" in e.message] == [waiting[0]["id"]]
    assert "ValueError: 1 validation error for Job" in failed[0].message
    w.clock[0] += timedelta(seconds=OUTBOX_CLEAR_SECONDS)
    w.reconcile()  # delivered: it leaves status, and is not posted again
    assert waiting[0]["id"] not in [e["id"] for e in w.md()["status"].get("outbox") or []]
    assert [e.id for e in w.events.events].count(waiting[0]["id"]) == 1


# --- outbound URLs: --allowed-hosts ------------------------------------------------------


def test_a_prometheus_outside_the_allowed_hosts_is_never_called() -> None:
    w = world(level=1, monitoring={"prometheus": {"url": "http://169.254.169.254/"}})
    w.reconciler = Reconciler(
        w.kube,  # type: ignore[arg-type]
        OperatorSettings(
            prometheus_url="http://prometheus:9090", allowed_hosts=("*.monitoring.svc",)
        ),
        w.events,
        clock=lambda: w.clock[0],
        providers=lambda name, url: w.provider,
    )
    w.reconcile()
    assert w.provider.asked == []
    ready = next(c for c in w.md()["status"]["conditions"] if c["type"] == "MonitoringReady")
    assert ready["status"] == "False"
    assert "refused: http://169.254.169.254/: host 169.254.169.254 is not among" in ready["message"]


def test_the_operators_own_prometheus_is_trusted() -> None:
    w = world(level=1)
    w.reconciler = Reconciler(
        w.kube,  # type: ignore[arg-type]
        OperatorSettings(prometheus_url="http://prometheus:9090", allowed_hosts=("10.0.0.0/8",)),
        w.events,
        clock=lambda: w.clock[0],
        providers=lambda name, url: w.provider,
    )
    w.reconcile()
    assert len(w.provider.asked) == 3


# --- the outbox: announcements are not lost ------------------------------------------


def test_an_announcement_not_delivered_stays_in_the_outbox_until_it_is() -> None:
    w = world()
    w.events.down = True
    w.reconcile()
    (entry,) = w.md()["status"]["outbox"]
    assert (entry["reason"], entry["type"]) == ("Deploying", "Normal")
    assert entry["time"] == "2025-03-01T12:00:00Z"

    w.events.down = False
    w.reconcile()  # the next pass (a restarted operator alike) delivers it, with its id
    assert [(e.reason, e.id, e.time) for e in w.events.events] == [
        ("Deploying", entry["id"], entry["time"])
    ]
    _clear_delivered(w)
    assert len(w.events.events) == 1


def test_an_outbox_left_by_a_stopped_operator_is_delivered_by_the_next() -> None:
    w = world()
    w.reconcile()
    w.md()["status"]["outbox"] = [
        {
            "id": "0123456789abcdef",
            "reason": "Promoted",
            "message": "v2 is now stable",
            "type": "Normal",
            "time": "2025-03-01T11:59:00Z",
        }
    ]
    w.events.events.clear()
    w.reconcile()
    assert [(e.reason, e.id) for e in w.events.events] == [("Promoted", "0123456789abcdef")]
    _clear_delivered(w)
    assert len(w.events.events) == 1


# --- the fail-safe: a canary whose reconciles keep failing ------------------------------


def test_a_canary_whose_reconciles_keep_failing_is_rolled_back_without_the_planner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug in planning during a canary: reported at once, and at the third failure in
    a row the canary is rolled back (status, then traffic) with the planner out of the
    loop; later failures write nothing more."""
    stable = {"version": "v1", "storageUri": "s3://models/fraud/v1", "hash": "h1"}
    canary = {**stable, "version": "v2", "storageUri": "s3://models/fraud/v2", "hash": "h2"}
    w = world(
        level=2,
        monitoring={"prometheus": {"url": "http://prometheus:9090"}},
        rollout={"router": "kserve"},
        status={
            "phase": "Progressing",
            "stable": stable,
            "canary": {**canary, "weight": 25, "step": 1, "startedAt": f.NOW_TEXT},
        },
    )
    isvc = f.live_isvc()
    isvc["spec"]["canary"] = [{"predictor": {"name": "r-h2"}, "trafficPercent": 25}]
    w.kube.put(isvc)

    def broken_plan(observation: Any) -> Any:
        raise KeyError("predictor")

    monkeypatch.setattr("rung.reconciler.plan", broken_plan)
    for attempt in range(1, 4):
        with pytest.raises(KeyError):
            w.reconcile()
        status = w.md()["status"]
        degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
        assert (degraded["reason"], degraded["message"]) == (
            "ReconcileFailed",
            "KeyError: 'predictor'",
        )
        if attempt < 3:
            assert status["phase"] == "Progressing"
            assert "canary" in w.kube.objects[("InferenceService", f.NAMESPACE, f.NAME)]["spec"]
    assert w.kube.writes() == ["status ModelDeployment", "patch InferenceService"]
    assert (status["phase"], status["canary"]["weight"]) == ("RollingBack", 0)
    stored_isvc = w.kube.objects[("InferenceService", f.NAMESPACE, f.NAME)]
    assert "canary" not in stored_isvc["spec"]
    assert stored_isvc["spec"]["predictor"] == isvc["spec"]["predictor"]
    assert [e.reason for e in w.events.events] == ["ReconcileFailed", "FailSafeRollback"]
    assert "3 reconciles in a row failed" in w.events.events[-1].message
    assert [e["reason"] for e in status["outbox"]] == ["FailSafeRollback"]  # delivered

    with pytest.raises(KeyError):
        w.reconcile()
    assert w.kube.writes() == []  # traffic already on stable, all reported
