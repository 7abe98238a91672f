"""The fault suite: Rung fails safe on every fault, on real parts.

Real API server, real KServe controller (kwok runs the pods), the operator as a
process. Faults are injected the way they happen: a Prometheus that answers garbage
(the `CraftedPrometheus` stand-in, a tiny HTTP server on 127.0.0.1 returning crafted
JSON, because a real Prometheus cannot be made to), one that accepts connections and
never answers, a real Prometheus stopped and started again, the KServe controller
paused (SIGSTOP) mid-canary, the API server restarted, the operator SIGKILLed at
random points of rollouts, and random specs from the CRD's own schema.

Each test prints what it measured (`recovery: ...`); docs/reliability.md quotes them.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from integration_kit import (
    GROUP,
    PLURAL,
    ROOT,
    VERSION,
    CanaryWeights,
    condition,
    create_md,
    custom,
    get_isvc,
    is_condition,
    model_deployment,
    patch_md,
    run_operator,
    wait_until,
    watch_md,
)
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from testbed.components import kserve_controller_stopped
from testbed.crafted_prometheus import GARBAGE, CraftedPrometheus
from testbed.crdfuzz import name_strategy, spec_strategy

Obj = dict[str, Any]


@pytest.fixture
def crafted() -> Iterator[CraftedPrometheus]:
    with CraftedPrometheus() as server:
        yield server


def _phase(o: Obj) -> str | None:
    return (o.get("status") or {}).get("phase")


def _stable(o: Obj) -> str | None:
    return ((o.get("status") or {}).get("stable") or {}).get("version")


def _ready_v1(o: Obj) -> bool:
    return _phase(o) == "Ready" and _stable(o) == "v1"


def canary_md(
    name: str,
    namespace: str,
    prometheus_url: str,
    *,
    router: str = "kserve",
    **analysis: Any,
) -> Obj:
    """Level 2 with one analysis metric (one query), steps 50/100, a 1s interval."""
    rollout: Obj = {
        "router": router,
        "steps": [50, 100],
        "interval": "1s",
        "progressDeadline": "90s",
        "analysis": {
            "failureLimit": 1,
            "metrics": [
                {
                    "name": "error-rate",
                    "query": 'sum(errors{workload="{{ canary }}"})',
                    "max": 0.01,
                }
            ],
            **analysis,
        },
    }
    if router == "gateway-api":
        rollout["gateway"] = {"name": "inference-gateway"}
    return model_deployment(
        name,
        namespace,
        level=2,
        monitoring={"prometheus": {"url": prometheus_url}, "interval": "5s"},
        rollout=rollout,
    )


def to_v2(api: client.ApiClient, namespace: str, name: str) -> None:
    patch_md(
        api,
        namespace,
        name,
        {"spec": {"model": {"storageUri": f"s3://models/{name}/v2", "version": "v2"}}},
    )


def events(api: client.ApiClient, namespace: str, name: str | None = None) -> list[Any]:
    items = client.CoreV1Api(api).list_namespaced_event(namespace).items
    return sorted(
        (
            e
            for e in items
            if e.involved_object.kind == "ModelDeployment"
            and (name is None or e.involved_object.name == name)
        ),
        key=lambda e: (e.metadata.creation_timestamp, e.metadata.name),
    )


def reasons(api: client.ApiClient, namespace: str, name: str) -> list[str]:
    return [e.reason for e in events(api, namespace, name)]


def wait_all(
    api: client.ApiClient,
    namespace: str,
    names: list[str],
    predicate: Callable[[Obj], bool],
    what: str,
    timeout: float = 90,
) -> dict[str, Obj]:
    deadline = time.monotonic() + timeout
    return {
        name: watch_md(
            api, namespace, name, predicate, f"{name}: {what}", max(1, deadline - time.monotonic())
        )
        for name in names
    }


# --- 1, 3: garbage from Prometheus is a failed measurement, never "no data" ---------------


@pytest.mark.usefixtures("operator")
def test_garbage_from_prometheus_never_promotes(
    kube_api: client.ApiClient, namespace: str, crafted: CraftedPrometheus
) -> None:
    """Every kind of garbage, under onNoData pass and hold: the canary fails analysis
    and is rolled back with an Event naming the garbage; nothing is promoted."""
    names = []
    for i, mode in enumerate(GARBAGE):
        name = f"g-{mode}"
        names.append(name)
        crafted.set(name, mode)
        policy = "pass" if i % 2 == 0 else "hold"
        create_md(kube_api, canary_md(name, namespace, crafted.url_for(name), onNoData=policy))
    wait_all(kube_api, namespace, names, _ready_v1, "v1 Ready")
    started = time.monotonic()
    for name in names:
        to_v2(kube_api, namespace, name)
    done = wait_all(kube_api, namespace, names, lambda o: _phase(o) == "RolledBack", "rolled back")
    print(
        f"recovery: {len(names)} garbage canaries rolled back in {time.monotonic() - started:.1f}s"
    )
    for name, md in done.items():
        assert _stable(md) == "v1", name
        assert md["status"]["rejected"]["version"] == "v2"
        failed = [c for c in md["status"]["analysis"]["checks"] if c.get("passed") is False]
        assert failed, name
        assert failed[0]["message"].startswith("invalid measurement"), failed
        seen = reasons(kube_api, namespace, name)
        assert "AnalysisFailed" in seen, (name, seen)
        assert "Promoted" not in seen
        assert "Promoting" not in seen
        assert condition(md, "Degraded")["reason"] == "RolledBack"


@pytest.mark.usefixtures("operator")
def test_an_empty_answer_is_no_data_and_on_no_data_pass_promotes(
    kube_api: client.ApiClient, namespace: str, crafted: CraftedPrometheus
) -> None:
    """The one answer that is "no data": a well-formed empty vector."""
    crafted.set("empty", "empty")
    create_md(kube_api, canary_md("empty", namespace, crafted.url_for("empty"), onNoData="pass"))
    watch_md(kube_api, namespace, "empty", _ready_v1, "v1 Ready")
    to_v2(kube_api, namespace, "empty")
    md = watch_md(
        kube_api, namespace, "empty", lambda o: _stable(o) == "v2" and _phase(o) == "Ready", "v2"
    )
    assert [c.get("passed") for c in md["status"]["analysis"]["checks"]] == [None]


# --- 8, 3: a Prometheus that never answers: timeouts, the error limit ---------------------


@pytest.mark.usefixtures("operator")
def test_a_hanging_prometheus_is_reported_as_a_timeout_and_rolls_back_at_the_error_limit(
    kube_api: client.ApiClient, namespace: str, crafted: CraftedPrometheus
) -> None:
    name = "hang"
    crafted.set(name, "value:0")
    create_md(kube_api, canary_md(name, namespace, crafted.url_for(name), consecutiveErrorLimit=1))
    watch_md(kube_api, namespace, name, _ready_v1, "v1 Ready")
    crafted.set(name, "hang")
    started = time.monotonic()
    to_v2(kube_api, namespace, name)
    md = watch_md(
        kube_api, namespace, name, lambda o: _phase(o) == "RolledBack", "rolled back", timeout=120
    )
    print(f"recovery: hanging Prometheus -> rolled back in {time.monotonic() - started:.1f}s")
    assert _stable(md) == "v1"
    seen = events(kube_api, namespace, name)
    errors = [e.message for e in seen if e.reason == "AnalysisError"]
    assert len(errors) == 2, errors
    assert all("timed out" in m and "refused" not in m for m in errors), errors
    assert "ConsecutiveErrorLimitReached" in [e.reason for e in seen]
    monitoring = condition(md, "MonitoringReady")
    assert monitoring is not None
    assert monitoring["status"] == "False"
    assert "timed out" in monitoring["message"]
    assert "refused" not in monitoring["message"]
    assert md["status"]["analysis"]["consecutiveErrors"] == 2
    assert is_condition(md, "Degraded", "True")


# --- 5: steps changed mid-canary ----------------------------------------------------------


@pytest.mark.usefixtures("operator")
def test_steps_changed_mid_canary_move_to_the_next_weight_not_to_the_end(
    kube_api: client.ApiClient, namespace: str, crafted: CraftedPrometheus
) -> None:
    name = "steps"
    crafted.set(name, "empty")  # no data: the canary holds at its first step
    body = canary_md(name, namespace, crafted.url_for(name), onNoData="hold")
    body["spec"]["rollout"]["steps"] = [10, 20, 100]
    create_md(kube_api, body)
    watch_md(kube_api, namespace, name, _ready_v1, "v1 Ready")
    to_v2(kube_api, namespace, name)
    watch_md(
        kube_api,
        namespace,
        name,
        lambda o: ((o.get("status") or {}).get("canary") or {}).get("weight") == 10,
        "canary at 10%",
    )
    patch_md(kube_api, namespace, name, {"spec": {"rollout": {"steps": [50, 100]}}})
    crafted.set(name, "value:0")
    weights = [10]  # where it was held, just before the steps changed

    def record(o: Obj) -> bool:
        canary = (o.get("status") or {}).get("canary")
        if canary and (not weights or weights[-1] != canary["weight"]):
            weights.append(canary["weight"])
        return _stable(o) == "v2" and _phase(o) == "Ready"

    watch_md(kube_api, namespace, name, record, "v2 promoted")
    assert weights[:2] == [10, 50], weights


# --- 6, 2: traffic and promotion only at the generation Rung applied ----------------------


def _canary_weight(o: Obj) -> int | None:
    canary = (o.get("status") or {}).get("canary")
    return None if canary is None else int(canary["weight"])


def _isvc_canary_percent(api: client.ApiClient, namespace: str, name: str) -> int | None:
    entries = ((get_isvc(api, namespace, name) or {}).get("spec") or {}).get("canary") or []
    return int(entries[0].get("trafficPercent", 0)) if entries else None


@pytest.mark.usefixtures("operator")
def test_a_canary_kserve_has_not_deployed_gets_no_traffic(
    kube_api: client.ApiClient, namespace: str, crafted: CraftedPrometheus
) -> None:
    """KServe's controller is stopped when the canary starts: Rung declares the canary
    with 0 % and keeps it there until KServe has deployed it, then gives it the step."""
    name = "notready"
    crafted.set(name, "value:0")
    create_md(kube_api, canary_md(name, namespace, crafted.url_for(name)))
    watch_md(kube_api, namespace, name, _ready_v1, "v1 Ready")
    with kserve_controller_stopped(kube_api):
        to_v2(kube_api, namespace, name)
        watch_md(kube_api, namespace, name, lambda o: _canary_weight(o) == 0, "canary at 0%")
        percents = set()
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            percents.add(_isvc_canary_percent(kube_api, namespace, name))
            md = watch_md(kube_api, namespace, name, lambda o: True, "now")
            assert _canary_weight(md) == 0, md["status"]
            time.sleep(0.5)
        assert 0 in percents, percents  # declared, with no traffic
        assert percents <= {0, None}, percents
        resumed = time.monotonic()
    md = watch_md(kube_api, namespace, name, lambda o: (_canary_weight(o) or 0) > 0, "traffic")
    took = time.monotonic() - resumed
    print(f"recovery: KServe resumed -> canary ready and given traffic in {took:.1f}s")
    assert _canary_weight(md) == 50
    wait_until(lambda: "CanaryReady" in reasons(kube_api, namespace, name), "CanaryReady Event")


@pytest.mark.usefixtures("operator")
def test_no_promotion_on_readiness_from_a_previous_generation(
    kube_api: client.ApiClient, namespace: str, crafted: CraftedPrometheus
) -> None:
    """KServe's controller is stopped when the canary passes its last step: Rung points
    stable at the new model, but KServe's Ready=True still describes the old spec, so
    Rung waits in Promoting (canary kept) until KServe has acted on it."""
    name = "stale"
    crafted.set(name, "empty")  # hold at the only step until the test says so
    body = canary_md(name, namespace, crafted.url_for(name))
    body["spec"]["rollout"]["steps"] = [100]
    create_md(kube_api, body)
    watch_md(kube_api, namespace, name, _ready_v1, "v1 Ready")
    to_v2(kube_api, namespace, name)
    watch_md(kube_api, namespace, name, lambda o: _canary_weight(o) == 100, "canary at 100%")
    with kserve_controller_stopped(kube_api):
        crafted.set(name, "value:0")
        watch_md(
            kube_api,
            namespace,
            name,
            lambda o: _phase(o) == "Promoting" or _stable(o) == "v2",
            "Promoting (or, wrongly, promoted)",
        )
        time.sleep(6)  # many passes, each seeing Ready=True from the previous spec
        md = watch_md(kube_api, namespace, name, lambda o: True, "now")
        assert _phase(md) == "Promoting", md["status"]
        assert md["status"]["canary"]["version"] == "v2"
        assert _stable(md) == "v1"
        assert "Promoted" not in reasons(kube_api, namespace, name)
        isvc = get_isvc(kube_api, namespace, name) or {}
        assert is_condition(isvc, "Ready", "True")  # KServe's stale word
        resumed = time.monotonic()
    md = watch_md(
        kube_api,
        namespace,
        name,
        lambda o: _stable(o) == "v2" and _phase(o) == "Ready",
        "promoted once KServe acted",
    )
    print(f"recovery: KServe resumed -> promoted in {time.monotonic() - resumed:.1f}s")
    assert md["status"].get("canary") is None


# --- 4: launch errors are visible -----------------------------------------------------------


@pytest.mark.usefixtures("operator")
def test_a_run_whose_pods_are_refused_is_failed_with_the_real_message(
    kube_api: client.ApiClient, namespace: str, crafted: CraftedPrometheus
) -> None:
    """The Job is created, but the Job controller cannot create its pods (a missing
    ServiceAccount): the run is reported Failed with that message, not left Running."""
    name = "sa"
    trainer = {"name": "train", "image": "registry.example/trainer:1"}
    template = {
        "backoffLimit": 0,
        "template": {"spec": {"serviceAccountName": "no-such-account", "containers": [trainer]}},
    }
    body = model_deployment(
        name,
        namespace,
        level=3,
        monitoring={"prometheus": {"url": crafted.url_for(name)}, "interval": "5s"},
        retraining={"pipeline": {"type": "job", "job": {"template": template}}},
    )
    create_md(kube_api, body)
    watch_md(kube_api, namespace, name, _ready_v1, "v1 Ready")
    started = time.monotonic()
    patch_md(kube_api, namespace, name, {"metadata": {"annotations": {"rung.dev/retrain": "1"}}})

    def runs(o: Obj) -> list[Obj]:
        return list(((o.get("status") or {}).get("retraining") or {}).get("runs") or [])

    md = watch_md(
        kube_api,
        namespace,
        name,
        lambda o: bool(runs(o)) and runs(o)[-1]["outcome"] == "Failed",
        "the run reported Failed",
        timeout=90,
    )
    print(f"recovery: refused Job pods reported Failed in {time.monotonic() - started:.1f}s")
    message = runs(md)[-1]["message"]
    assert "pods cannot be created" in message
    assert "no-such-account" in message
    wait_until(
        lambda: "RetrainingFailed" in reasons(kube_api, namespace, name), "RetrainingFailed Event"
    )
    job = client.BatchV1Api(kube_api).read_namespaced_job(runs(md)[-1]["name"], namespace)
    assert job.spec.suspend is True  # it will not start later behind the report's back


# --- outbound URLs: --allowed-hosts -----------------------------------------------------


@pytest.mark.usefixtures("rung_crds")
def test_urls_outside_the_allowed_hosts_are_never_called(
    kube_api: client.ApiClient,
    kubeconfig: str,
    restart_namespace: str,
    crafted: CraftedPrometheus,
    tmp_path: Path,
) -> None:
    """An operator allowed to call `localhost` only: a ModelDeployment naming
    127.0.0.1 (the same server, by address) is refused without a request."""
    namespace = restart_namespace
    port = crafted.base_url.rsplit(":", 1)[1]
    crafted.set("ok", "value:0.5")
    crafted.set("bad", "value:0.5")
    ok = model_deployment("ok", namespace, level=1)
    ok["spec"]["monitoring"] = {"prometheus": {"url": f"http://localhost:{port}/ok"}}
    bad = model_deployment("bad", namespace, level=1)
    bad["spec"]["monitoring"] = {"prometheus": {"url": f"http://127.0.0.1:{port}/bad"}}
    args = ("--verbose", "-n", namespace)
    env = {"RUNG_ALLOWED_HOSTS": "localhost"}
    with run_operator(kubeconfig, tmp_path / "op.log", *args, env=env):
        create_md(kube_api, ok)
        create_md(kube_api, bad)
        watch_md(
            kube_api, namespace, "ok", lambda o: is_condition(o, "MonitoringReady", "True"), "ok"
        )
        md = watch_md(
            kube_api,
            namespace,
            "bad",
            lambda o: is_condition(o, "MonitoringReady", "False"),
            "refused",
        )
    message = condition(md, "MonitoringReady")["message"]  # type: ignore[index]
    assert "refused" in message
    assert "not among the operator's allowed hosts (localhost" in message
    assert crafted.queries.get("bad", 0) == 0
    assert crafted.queries.get("ok", 0) > 0


# --- no lost decisions: the outbox -------------------------------------------------------


class Sink:
    """An audit sink (CloudEvents over HTTP) that can be told to fail (503)."""

    def __init__(self) -> None:
        import threading

        from cloudevents.http import from_http

        from testbed.loopback import LoopbackServer, QuietHandler

        self.events: list[Any] = []
        self.failing = False
        self.lock = threading.Lock()
        sink = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
                data = self.rfile.read(int(self.headers.get("content-length") or 0))
                if sink.failing:
                    self.send_response(503)
                else:
                    with sink.lock:
                        sink.events.append(from_http(dict(self.headers), data))
                    self.send_response(202)
                self.end_headers()

        self.server = LoopbackServer(Handler, "/events")

    @property
    def url(self) -> str:
        return self.server.url

    def ids(self, reason: str) -> list[str]:
        with self.lock:
            return [e["id"] for e in self.events if e.data["reason"] == reason]


@contextlib.contextmanager
def events_refused(api: client.ApiClient, namespace: str) -> Iterator[None]:
    """A ValidatingAdmissionPolicy refusing every Event created in `namespace` (an Event
    API that fails while decisions are taken)."""
    admission = client.AdmissionregistrationV1Api(api)
    name = f"refuse-events-{namespace}"
    admission.create_validating_admission_policy(
        {
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["events"],
                        }
                    ],
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": namespace}
                    },
                },
                "validations": [{"expression": "false", "message": "Events refused by the test"}],
            },
        }
    )
    admission.create_validating_admission_policy_binding(
        {
            "metadata": {"name": name},
            "spec": {"policyName": name, "validationActions": ["Deny"]},
        }
    )
    core = client.CoreV1Api(api)
    probe = {
        "metadata": {"generateName": "probe.", "namespace": namespace},
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "probe",
            "namespace": namespace,
        },
        "reason": "Probe",
        "message": "probe",
    }

    def refused() -> bool:
        try:
            core.create_namespaced_event(namespace, probe)
        except client.exceptions.ApiException as error:
            if "Events refused by the test" in str(error.body):
                return True
            raise
        return False

    wait_until(refused, "the Event refusal in force")
    try:
        yield
    finally:
        admission.delete_validating_admission_policy_binding(name)
        admission.delete_validating_admission_policy(name)
        wait_until(lambda: not refused(), "Events accepted again")


@pytest.mark.usefixtures("rung_crds")
def test_decisions_not_delivered_when_the_operator_dies_are_delivered_after_restart(
    kube_api: client.ApiClient, kubeconfig: str, restart_namespace: str, tmp_path: Path
) -> None:
    """The Event API refuses and the audit sink fails while Rung decides; the operator is
    SIGKILLed; the next operator delivers both, with the ids the decision was given."""
    namespace, name = restart_namespace, "outbox"
    sink = Sink()
    body = model_deployment(name, namespace, level=0)
    body["spec"]["maturity"]["overrides"] = {"payloadLogging": True}
    args = ("--verbose", "-n", namespace)
    with sink.server:
        body["spec"]["explainability"] = {"payloadLogging": {"url": sink.url}}
        sink.failing = True
        with events_refused(kube_api, namespace):
            with run_operator(kubeconfig, tmp_path / "op1.log", *args) as first:
                create_md(kube_api, body)
                md = watch_md(
                    kube_api,
                    namespace,
                    name,
                    lambda o: bool((o.get("status") or {}).get("outbox")),
                    "a decision in the outbox",
                )
                time.sleep(2)  # several delivery attempts, all failing
                first.process.kill()  # SIGKILL: no goodbye
                first.process.wait()
            pending = md["status"]["outbox"]
            assert [e["reason"] for e in pending] == ["Deploying"]
        sink.failing = False
        with run_operator(kubeconfig, tmp_path / "op2.log", *args):
            restarted = time.monotonic()
            watch_md(
                kube_api,
                namespace,
                name,
                lambda o: not (o.get("status") or {}).get("outbox"),
                "the outbox delivered",
            )
            took = time.monotonic() - restarted
            print(f"recovery: undelivered decisions delivered {took:.1f}s after the restart")
            wait_until(lambda: sink.ids("Deploying"), "the CloudEvent")
    entry = pending[0]
    event = client.CoreV1Api(kube_api).read_namespaced_event(f"{name}.{entry['id']}", namespace)
    assert (event.reason, event.type) == ("Deploying", "Normal")
    assert set(sink.ids("Deploying")) == {entry["id"]}  # re-sent with its id: de-duplicable


# --- a planner that fails mid-canary: the fail-safe -------------------------------------

FAIL_PLANNING = "test.rung.dev/fail-planning"
PLANNING_FAULT = f"""
# A fault injected into the operator process for the test of the fail-safe (not part of
# Rung): planning raises for every ModelDeployment annotated {FAIL_PLANNING}.
import rung.reconciler

_plan = rung.reconciler.plan


def _failing_plan(observation):
    if "{FAIL_PLANNING}" in observation.md.annotations:
        raise RuntimeError("injected planning fault")
    return _plan(observation)


rung.reconciler.plan = _failing_plan
"""


def _canary_percent(api: client.ApiClient, namespace: str, name: str, router: str) -> int:
    """The share of requests the cluster's objects give the canary now."""
    if router == "kserve":
        return _isvc_canary_percent(api, namespace, name) or 0
    try:
        route = custom(api).get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", namespace, "httproutes", name
        )
    except ApiException:
        return 0
    refs = [r for rule in route["spec"]["rules"] for r in rule.get("backendRefs") or []]
    return sum(int(r.get("weight", 1)) for r in refs if r["name"] == f"{name}-canary-predictor")


@pytest.mark.usefixtures("rung_crds")
@pytest.mark.parametrize(
    ("router", "patched"), [("kserve", "InferenceService"), ("gateway-api", "HTTPRoute")]
)
def test_a_canary_whose_planning_keeps_failing_is_rolled_back_by_the_fail_safe(
    kube_api: client.ApiClient,
    kubeconfig: str,
    restart_namespace: str,
    crafted: CraftedPrometheus,
    tmp_path: Path,
    router: str,
    patched: str,
) -> None:
    """A canary holds 50 % when planning starts to raise for its object (a fault injected
    into the operator process through sitecustomize: the only way to give a real operator
    a bug). At the third failure in a row the operator, without the planner, writes
    RollingBack and takes the canary out of the traffic path (the real KServe webhooks
    accept the patch, its controller removes the canary); once planning works again the
    rollout ends RolledBack as any other. For both routers: KServe's canary entry, and
    Rung's HTTPRoute."""
    import os

    namespace, name = restart_namespace, "failsafe"
    fault = tmp_path / "fault"
    fault.mkdir()
    (fault / "sitecustomize.py").write_text(PLANNING_FAULT)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(fault), os.environ.get("PYTHONPATH")]))}
    crafted.set(name, "value:0")
    body = canary_md(name, namespace, crafted.url_for(name), router=router)
    body["spec"]["rollout"].update(interval="10m", progressDeadline="15m")  # hold at 50 %
    with run_operator(kubeconfig, tmp_path / "op.log", "-n", namespace, env=env) as op:
        create_md(kube_api, body)
        watch_md(kube_api, namespace, name, _ready_v1, "v1 Ready")
        to_v2(kube_api, namespace, name)
        watch_md(kube_api, namespace, name, lambda o: _canary_weight(o) == 50, "canary at 50%")
        wait_until(
            lambda: _canary_percent(kube_api, namespace, name, router) == 50, "routed at 50%"
        )

        patch_md(kube_api, namespace, name, {"metadata": {"annotations": {FAIL_PLANNING: "1"}}})
        broken = time.monotonic()
        md = watch_md(
            kube_api, namespace, name, lambda o: _phase(o) == "RollingBack", "RollingBack"
        )
        wait_until(
            lambda: _canary_percent(kube_api, namespace, name, router) == 0,
            "no request routed to the canary",
        )
        took = time.monotonic() - broken
        print(f"recovery: planning broken -> canary out of the traffic path in {took:.1f}s")
        assert _canary_weight(md) == 0
        assert is_condition(md, "Degraded", "True")
        assert "RuntimeError: injected planning fault" in condition(md, "Degraded")["message"]
        assert md["status"]["history"][-1]["message"].startswith(
            "FailSafeRollback: 3 reconciles in a row failed: RuntimeError: injected planning"
        )
        wait_until(
            lambda: "FailSafeRollback" in reasons(kube_api, namespace, name),
            "FailSafeRollback Event",
        )
        wait_until(
            lambda: f"fail-safe: traffic moved to stable ({patched}/failsafe)" in op.log(),
            "the fail-safe in the operator's log",
        )

        patch_md(kube_api, namespace, name, {"metadata": {"annotations": {FAIL_PLANNING: None}}})
        md = watch_md(kube_api, namespace, name, lambda o: _phase(o) == "RolledBack", "RolledBack")
    assert md["status"]["stable"]["version"] == "v1"
    assert md["status"]["rejected"]["version"] == "v2"
    degraded = condition(md, "Degraded")
    assert degraded is not None
    assert degraded["reason"] != "ReconcileFailed"  # the planner's own again


# --- fuzzed input: refused naming a field, or reconciled -----------------------------------

CRD = yaml.safe_load((ROOT / "crds" / "rung.dev_modeldeployments.yaml").read_text())
FIELD = re.compile(r"\b(spec|metadata)\.[A-Za-z]")
FUZZ = {
    "deadline": None,
    "database": None,
    "derandomize": True,  # the same specs every run: a failure reproduces
    "suppress_health_check": list(HealthCheck),
}


def reconcile_offline(stored: Obj) -> None:
    """What a reconcile computes for an accepted object, in-process: parse it, read
    plan, plan, apply manifests, then again with that status written back."""
    from datetime import UTC, datetime

    from rung.api.resource import ModelDeployment
    from rung.plan.diff import needs_apply, with_applied_hash
    from rung.plan.live import LiveObjects
    from rung.plan.reads import interpret, reads
    from rung.plan.reconcile import Observation, plan

    now = datetime.now(UTC)
    body = {**stored, "metadata": {**stored["metadata"], "uid": "fuzz", "generation": 1}}
    for _ in range(2):
        md = ModelDeployment.from_body(body)
        to_read = reads(md, LiveObjects(), now, None)
        answers = interpret(md, to_read, {}, now)
        decided = plan(
            Observation(
                md=md,
                now=now,
                slo=answers.slo,
                measurements=answers.measurements,
                analysis_error=answers.analysis_error,
                invalid_measurements=answers.invalid_measurements,
                retraining_readings=answers.retraining_readings,
            )
        )
        for manifest in decided.desired:
            assert needs_apply(None, with_applied_hash(manifest))
        body = {**body, "status": decided.status.wire()}


def _refused_naming_a_field(error: ApiException) -> str:
    assert error.status == 422, (error.status, error.body)
    message = str(json.loads(error.body)["message"])
    assert FIELD.search(message), message
    return message


def test_fuzzed_specs_and_patches_are_refused_naming_a_field_or_reconciled(
    kube_api: client.ApiClient, namespace: str, operator: Any
) -> None:
    """1,000+ random specs (creates) and spec patches from the CRD's own schema, sent to
    the API server: each is refused with a message naming a field, or accepted and
    reconciled without an exception (in-process for all of them; by the operator for a
    sample created for real)."""
    api = custom(kube_api)
    seen: Counter[str] = Counter()
    real: list[str] = []

    @settings(max_examples=800, **FUZZ)
    @given(name=name_strategy(), spec=spec_strategy(CRD))
    def create(name: str, spec: Obj) -> None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment"}
        body |= {"metadata": {"name": name, "namespace": namespace}, "spec": spec}
        try:
            stored = api.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, body, dry_run="All"
            )
        except ApiException as error:
            if error.status == 409:
                seen["name taken"] += 1  # a name drawn twice: refused, naming no field
                return
            _refused_naming_a_field(error)
            seen["refused"] += 1
            return
        seen["accepted"] += 1
        reconcile_offline(stored)
        if seen["accepted"] % 25 == 1 and name not in real:  # a sample, for the operator
            api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
            real.append(name)

    create()
    base = model_deployment("fuzz-base", namespace, level=2, monitoring={})
    stored_base = create_md(kube_api, base)

    @settings(max_examples=450, **FUZZ)
    @given(spec=spec_strategy(CRD))
    def patch(spec: Obj) -> None:
        try:
            stored = api.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                "fuzz-base",
                {"spec": spec},
                dry_run="All",
                _content_type="application/merge-patch+json",
            )
        except ApiException as error:
            _refused_naming_a_field(error)
            seen["patch refused"] += 1
            return
        seen["patch accepted"] += 1
        reconcile_offline({**stored, "status": stored_base.get("status") or {}})

    patch()
    total = sum(seen.values())
    print(f"fuzz: {total} specs and patches sent: {dict(seen)}; {len(real)} created for real")
    # Most draws must reach validation; a name drawn twice is refused before it (409).
    assert seen["name taken"] < total // 4
    assert total >= 1000
    assert all(seen[k] for k in ("accepted", "refused", "patch accepted", "patch refused")), seen
    for name in [*real, "fuzz-base"]:
        md = watch_md(
            kube_api,
            namespace,
            name,
            lambda o: (
                (o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"]
            ),
            f"{name} reconciled",
        )
        degraded = condition(md, "Degraded") or {}
        assert degraded.get("reason") != "ReconcileFailed", (name, degraded, md["spec"])
    assert "ReconcileFailed" not in [e.reason for e in events(kube_api, namespace)]


# --- Prometheus down (a real one) ------------------------------------------------------------


@pytest.mark.usefixtures("operator")
def test_a_prometheus_down_mid_canary_holds_it_and_the_rollout_goes_on_when_it_is_back(
    kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    from testbed.prometheus import PrometheusServer, ScrapeTarget

    name = "promdown"
    prometheus = PrometheusServer(tmp_path / "prometheus", [])
    prometheus.targets.append(ScrapeTarget("self", f"127.0.0.1:{prometheus.port}"))
    prometheus.start()
    try:
        prometheus.wait_for_series('up{job="self"}')
        body = canary_md(name, namespace, prometheus.url, consecutiveErrorLimit=30)
        metric = body["spec"]["rollout"]["analysis"]["metrics"][0]
        metric["query"] = 'sum(up{job="self"}) - 1'  # 0 while Prometheus scrapes itself
        create_md(kube_api, body)
        watch_md(kube_api, namespace, name, _ready_v1, "v1 Ready")
        prometheus.stop()
        to_v2(kube_api, namespace, name)
        wait_until(
            lambda: reasons(kube_api, namespace, name).count("AnalysisError") >= 2,
            "analysis errors while Prometheus is down",
        )
        md = watch_md(kube_api, namespace, name, lambda o: True, "now")
        assert _canary_weight(md) == 50  # held at its first step
        assert md["status"]["analysis"]["consecutiveErrors"] >= 2
        prometheus.start()
        back = time.monotonic()
        md = watch_md(
            kube_api,
            namespace,
            name,
            lambda o: _stable(o) == "v2" and _phase(o) == "Ready",
            "promoted once Prometheus is back",
        )
        print(f"recovery: Prometheus back -> canary promoted in {time.monotonic() - back:.1f}s")
    finally:
        prometheus.stop()
    errors = [e.message for e in events(kube_api, namespace, name) if e.reason == "AnalysisError"]
    assert all("connection refused" in m for m in errors), errors
    assert "RollingBack" not in [h["event"] for h in md["status"]["history"]]


# --- the operator SIGKILLed at random points of rollouts -------------------------------------


KILLS = 4
"""SIGKILLs, each at a random moment of all ten rollouts at once."""


def test_operator_sigkilled_at_random_points_of_ten_rollouts_loses_and_repeats_nothing(
    kube_api: client.ApiClient,
    kubeconfig: str,
    restart_namespace: str,
    crafted: CraftedPrometheus,
    tmp_path: Path,
) -> None:
    """Ten canaries (steps 25/50/100) run while the operator is SIGKILLed at random
    moments and started again: every one is promoted through every step in order, and
    each decision is announced exactly once (Events are named by their outbox id)."""
    import random

    namespace = restart_namespace
    names = [f"r{i}" for i in range(10)]
    rng = random.Random(14)
    args = ("--verbose", "-n", namespace)
    for name in names:
        crafted.set(name, "value:0")
    with run_operator(kubeconfig, tmp_path / "op-0.log", *args):
        for name in names:
            body = canary_md(name, namespace, crafted.url_for(name))
            body["spec"]["rollout"]["steps"] = [25, 50, 100]
            create_md(kube_api, body)
        wait_all(kube_api, namespace, names, _ready_v1, "v1 Ready")
    kills, restarts = 0, []
    deadline = time.monotonic() + 150
    with CanaryWeights(kube_api, namespace) as weights:
        for name in names:
            to_v2(kube_api, namespace, name)

        def promoted() -> bool:
            items = api_list(kube_api, namespace)
            return all(_stable(o) == "v2" and _phase(o) == "Ready" for o in items)

        while not promoted() and kills < KILLS:
            assert time.monotonic() < deadline, weights.seen
            started = time.monotonic()
            with run_operator(kubeconfig, tmp_path / f"op-{kills + 1}.log", *args) as op:
                restarts.append(time.monotonic() - started)
                time.sleep(rng.uniform(1.0, 3.5))
                op.process.kill()  # SIGKILL, wherever it is
                op.process.wait()
                kills += 1
        with run_operator(kubeconfig, tmp_path / "op-last.log", *args):
            wait_until(promoted, "every rollout promoted", timeout=120)
            wait_until(
                lambda: (
                    not any(
                        (o.get("status") or {}).get("outbox") for o in api_list(kube_api, namespace)
                    )
                ),
                "every outbox delivered",
            )
            time.sleep(1)
    print(
        f"recovery: {kills} SIGKILLs over 10 rollouts; restart to serving"
        f" {sum(restarts) / len(restarts):.1f}s on average (max {max(restarts):.1f}s)"
    )
    assert kills >= 2
    for name in names:
        assert [w for w in weights.seen[name] if w] == [25, 50, 100], (name, weights.seen)
        told = reasons(kube_api, namespace, name)
        for decision in ("CanaryStarted", "CanaryReady", "Promoting", "Promoted"):
            assert told.count(decision) == 1, (name, decision, told)
        assert "ReconcileFailed" not in told


def api_list(api: client.ApiClient, namespace: str) -> list[Obj]:
    return list(
        custom(api).list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
    )


# --- the API server restarted (last: every component reconnects) --------------------------


def test_an_apiserver_restart_mid_canary_is_survived_without_a_log_flood(
    kube_api: client.ApiClient, namespace: str, crafted: CraftedPrometheus, operator: Any
) -> None:
    from testbed.components import restart

    name = "apiserver"
    crafted.set(name, "empty")  # the canary holds at its first step through the outage
    create_md(kube_api, canary_md(name, namespace, crafted.url_for(name)))
    watch_md(kube_api, namespace, name, _ready_v1, "v1 Ready")
    to_v2(kube_api, namespace, name)
    watch_md(kube_api, namespace, name, lambda o: _canary_weight(o) == 50, "canary at 50%")
    before = len(operator.log().splitlines())
    down = time.monotonic()
    restart("kube-apiserver", down_seconds=3)
    wait_until(lambda: _api_ready(kube_api), "the API server ready again", timeout=120)
    back = time.monotonic()
    lines = operator.log().splitlines()[before:]
    loud = [line for line in lines if " WARNING " in line or " ERROR " in line]
    crafted.set(name, "value:0")
    watch_md(
        kube_api,
        namespace,
        name,
        lambda o: _stable(o) == "v2" and _phase(o) == "Ready",
        "promoted after the restart",
        timeout=120,
    )
    print(
        f"recovery: API server down {back - down:.0f}s; canary promoted"
        f" {time.monotonic() - back:.1f}s after it was back; operator log during the outage:"
        f" {len(lines)} lines ({len(loud)} warnings or errors)"
    )
    assert len(loud) <= 40, "\n".join(loud[-60:])


def _api_ready(api: client.ApiClient) -> bool:
    try:
        client.CoreV1Api(api).list_namespace(limit=1)
    except Exception:
        return False
    return True
