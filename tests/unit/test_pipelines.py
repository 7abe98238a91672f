"""rung.pipelines: what each launcher sends, how it reads a run back, and its I/O.

The webhook and Kubeflow Pipelines launchers talk to real HTTP servers on 127.0.0.1
started here: a CloudEvent receiver, and `KfpStandIn`, which plays the part of the
KFP API server's v2beta1 runs endpoint (no KFP runs in the test environment).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from cloudevents.http import from_http
from kubernetes.client.exceptions import ApiException

from rung.api.resource import MANAGED_BY_LABEL, OWNER_LABEL, ModelDeployment
from rung.pipelines import LAUNCHERS, PipelineError, launcher_for
from rung.pipelines.argo import ArgoWorkflowLauncher, build_workflow, workflow_outcome
from rung.pipelines.base import EVENT_TYPE, RUN_LABEL, run_env, run_parameters
from rung.pipelines.job import JobLauncher, build_job, job_outcome
from rung.pipelines.kfp import KubeflowPipelineLauncher, name_filter, run_body, run_outcome
from rung.pipelines.webhook import WebhookLauncher, build_event
from rung.plan.observation import RunOutcome
from rung.plan.retraining import LaunchRequest
from testbed.loopback import LoopbackServer, QuietHandler

from . import factories as f

TEMPLATE = {
    "backoffLimit": 1,
    "template": {
        "metadata": {"labels": {"team": "fraud"}},
        "spec": {
            "initContainers": [{"name": "fetch", "image": "fetch:1"}],
            "containers": [
                {
                    "name": "train",
                    "image": "trainer:1",
                    "env": [
                        {"name": "EPOCHS", "value": "3"},
                        {"name": "RUNG_TRIGGER_REASON", "value": "stale"},
                    ],
                },
                {"name": "report", "image": "report:1"},
            ],
        },
    },
}
PIPELINES: dict[str, dict[str, Any]] = {
    "job": {"type": "job", "job": {"template": TEMPLATE}},
    "argo-workflow": {"type": "argo-workflow", "argoWorkflow": {"workflowTemplate": "retrain"}},
    "kubeflow-pipeline": {
        "type": "kubeflow-pipeline",
        "kubeflowPipeline": {
            "endpoint": "http://127.0.0.1:1",
            "pipelineId": "p-123",
            "experimentId": "e-9",
        },
    },
    "webhook": {"type": "webhook", "webhook": {"url": "http://127.0.0.1:1/hook"}},
}
RUN_ENV = {
    "RUNG_MODEL_DEPLOYMENT": "fraud",
    "RUNG_NAMESPACE": "team-a",
    "RUNG_MODEL_VERSION": "v1",
    "RUNG_STORAGE_URI": "s3://models/fraud/v1",
    "RUNG_TRIGGER_REASON": "drift: 0.5 above 0.3 for 2m",
    "RUNG_TRIGGER": "drift",
    "RUNG_RUN": "fraud-retrain-4",
}


def deployment(pipeline: dict[str, Any]) -> ModelDeployment:
    return f.md(level=3, retraining={"pipeline": pipeline})


def request(kind: str = "job", pipeline: dict[str, Any] | None = None) -> LaunchRequest:
    md = deployment(pipeline or PIPELINES[kind])
    assert md.spec.retraining is not None
    assert md.spec.retraining.pipeline is not None
    return LaunchRequest(
        md=md,
        run="fraud-retrain-4",
        reason="drift: 0.5 above 0.3 for 2m",
        trigger="drift",
        version="v1",
        storage_uri="s3://models/fraud/v1",
        pipeline=md.spec.retraining.pipeline,
        data=md.spec.model.data,
    )


# --- the factory -------------------------------------------------------------------


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_for_each_type(name: str) -> None:
    assert launcher_for(name).name == name


def test_launcher_for_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown retraining launcher 'airflow'; known: job"):
        launcher_for("airflow")


def test_every_run_receives_the_model_its_version_and_the_reason() -> None:
    assert run_parameters(request()) == {
        "model": "fraud",
        "namespace": "team-a",
        "version": "v1",
        "storageUri": "s3://models/fraud/v1",
        "reason": "drift: 0.5 above 0.3 for 2m",
        "trigger": "drift",
        "run": "fraud-retrain-4",
        "dataUri": "s3://datasets/fraud",
        "dataVersion": "2025-02-01",
        "dataDigest": "",
    }


def test_a_run_without_known_data_receives_empty_lineage() -> None:
    assert run_env(replace(request(), data=None))["RUNG_DATA_URI"] == ""


# --- job ---------------------------------------------------------------------------


def test_job_is_named_after_the_run_owned_and_labelled() -> None:
    job = build_job(request())
    meta = job["metadata"]
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert (meta["name"], meta["namespace"]) == ("fraud-retrain-4", "team-a")
    assert meta["labels"] == {
        MANAGED_BY_LABEL: "rung",
        OWNER_LABEL: "fraud",
        RUN_LABEL: "fraud-retrain-4",
    }
    (owner,) = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "ModelDeployment",
        "fraud",
        f.UID,
        True,
    )
    assert meta["annotations"]["rung.dev/trigger-reason"] == "drift: 0.5 above 0.3 for 2m"


def test_job_spec_is_the_template_with_rung_env_in_every_container() -> None:
    job = build_job(request())
    spec = job["spec"]
    assert spec["backoffLimit"] == 1
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    for container in pod["initContainers"] + pod["containers"]:
        env = {e["name"]: e["value"] for e in container["env"]}
        assert {k: env[k] for k in RUN_ENV} == RUN_ENV
    train = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert train["EPOCHS"] == "3"  # the template's own variables stay
    assert [e["name"] for e in pod["containers"][0]["env"]].count("RUNG_TRIGGER_REASON") == 1
    labels = spec["template"]["metadata"]["labels"]
    assert labels["team"] == "fraud"
    assert labels[RUN_LABEL] == "fraud-retrain-4"


def test_building_a_job_leaves_the_spec_untouched() -> None:
    r = request()
    build_job(r)
    assert r.pipeline.job is not None
    assert r.pipeline.job.template == TEMPLATE


def test_a_template_restart_policy_is_kept() -> None:
    template = {"template": {"spec": {"restartPolicy": "OnFailure", "containers": []}}}
    job = build_job(request(pipeline={"type": "job", "job": {"template": template}}))
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


def _job(status: dict[str, Any], uid: str = f.UID, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "fraud-retrain-4", "ownerReferences": [{"uid": uid}]},
        "spec": spec,
        "status": status,
    }


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (None, RunOutcome("NotFound")),
        (_job({}), RunOutcome("Running")),
        (_job({"active": 1}), RunOutcome("Running")),
        (
            _job(
                {
                    "succeeded": 1,
                    "conditions": [
                        {"type": "SuccessCriteriaMet", "status": "True"},
                        {"type": "Complete", "status": "True"},
                    ],
                }
            ),
            RunOutcome("Succeeded", "Job fraud-retrain-4 completed (1 succeeded)"),
        ),
        (
            _job({"succeeded": 2}, completions=2),
            RunOutcome("Succeeded", "Job fraud-retrain-4 completed (2 succeeded)"),
        ),
        (_job({"succeeded": 1, "active": 1}, completions=2), RunOutcome("Running")),
        (
            _job(
                {
                    "failed": 1,
                    "conditions": [
                        {
                            "type": "Failed",
                            "status": "True",
                            "reason": "DeadlineExceeded",
                            "message": "Job was active longer than specified deadline",
                        }
                    ],
                }
            ),
            RunOutcome("Failed", "DeadlineExceeded: Job was active longer than specified deadline"),
        ),
        (
            _job({"conditions": [{"type": "Failed", "status": "False"}]}),
            RunOutcome("Running"),
        ),
        (
            _job({"succeeded": 1}, uid="someone-else"),
            RunOutcome("Failed", "a Job named fraud-retrain-4 exists but belongs to another owner"),
        ),
    ],
    ids=[
        "missing",
        "new",
        "active",
        "complete",
        "all-completions",
        "partly-done",
        "failed",
        "not-failed",
        "foreign",
    ],
)
def test_job_outcome(job: dict[str, Any] | None, expected: RunOutcome) -> None:
    assert job_outcome(job, f.UID) == expected


@dataclass
class FakeBatch:
    """A BatchV1Api stand-in for the launcher's error handling (no API server here)."""

    create_status: int | None = None
    read_status: int | None = None
    created: list[dict[str, Any]] = field(default_factory=list)

    class api_client:  # noqa: N801 - mirrors BatchV1Api.api_client
        @staticmethod
        def sanitize_for_serialization(obj: Any) -> Any:
            return obj

    def create_namespaced_job(self, namespace: str, body: dict[str, Any]) -> None:
        if self.create_status:
            raise ApiException(status=self.create_status, reason="Nope")
        self.created.append(body)

    def read_namespaced_job(self, name: str, namespace: str) -> dict[str, Any]:
        if self.read_status:
            raise ApiException(status=self.read_status, reason="Nope")
        return _job({"succeeded": 1})


def test_job_launcher_creates_the_job() -> None:
    batch = FakeBatch()
    JobLauncher(batch).launch(request())  # type: ignore[arg-type]
    assert [j["metadata"]["name"] for j in batch.created] == ["fraud-retrain-4"]


def test_job_launcher_relaunch_of_an_existing_job_is_fine() -> None:
    JobLauncher(FakeBatch(create_status=409)).launch(request())  # type: ignore[arg-type]


def test_job_launcher_reports_refusals() -> None:
    with pytest.raises(PipelineError, match="creating Job fraud-retrain-4: 403 Nope"):
        JobLauncher(FakeBatch(create_status=403)).launch(request())  # type: ignore[arg-type]


def test_job_launcher_outcomes() -> None:
    md = request().md
    assert JobLauncher(FakeBatch()).outcome(md, "fraud-retrain-4").state == "Succeeded"  # type: ignore[arg-type]
    missing = JobLauncher(FakeBatch(read_status=404))  # type: ignore[arg-type]
    assert missing.outcome(md, "fraud-retrain-4") == RunOutcome("NotFound")
    with pytest.raises(PipelineError, match="reading Job"):
        JobLauncher(FakeBatch(read_status=500)).outcome(md, "fraud-retrain-4")  # type: ignore[arg-type]


# --- argo --------------------------------------------------------------------------


def test_workflow_runs_the_template_with_the_parameters() -> None:
    wf = build_workflow(request("argo-workflow"))
    assert (wf["apiVersion"], wf["kind"]) == ("argoproj.io/v1alpha1", "Workflow")
    assert wf["metadata"]["name"] == "fraud-retrain-4"
    assert wf["metadata"]["ownerReferences"][0]["uid"] == f.UID
    assert wf["metadata"]["labels"][OWNER_LABEL] == "fraud"
    assert wf["spec"]["workflowTemplateRef"] == {"name": "retrain"}
    params = {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}
    assert params == run_parameters(request("argo-workflow"))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({}, RunOutcome("Running")),
        ({"phase": "Pending"}, RunOutcome("Running")),
        ({"phase": "Running", "message": "step 2/3"}, RunOutcome("Running", "step 2/3")),
        ({"phase": "Succeeded"}, RunOutcome("Succeeded", "Workflow fraud-retrain-4 succeeded")),
        (
            {"phase": "Failed", "message": "child 'train' failed"},
            RunOutcome("Failed", "Failed: child 'train' failed"),
        ),
        ({"phase": "Error"}, RunOutcome("Failed", "Error: the Workflow did not succeed")),
    ],
)
def test_workflow_outcome(status: dict[str, Any], expected: RunOutcome) -> None:
    wf = {"metadata": {"name": "fraud-retrain-4", "ownerReferences": [{"uid": f.UID}]}}
    assert workflow_outcome({**wf, "status": status}, f.UID) == expected
    assert workflow_outcome(None, f.UID) == RunOutcome("NotFound")


class FakeCustom:
    def __init__(self, status: int | None = None) -> None:
        self.status, self.created = status, []  # type: list[Any]

    def create_namespaced_custom_object(self, *args: Any) -> None:
        if self.status:
            raise ApiException(status=self.status, reason="Nope")
        self.created.append(args)

    def get_namespaced_custom_object(self, *args: Any) -> None:
        raise ApiException(status=404, reason="Not Found")


def test_argo_launcher_creates_and_reads() -> None:
    custom = FakeCustom()
    launcher = ArgoWorkflowLauncher(custom)  # type: ignore[arg-type]
    launcher.launch(request("argo-workflow"))
    group, version, namespace, plural, body = custom.created[0]
    assert (group, version, namespace, plural) == ("argoproj.io", "v1alpha1", "team-a", "workflows")
    assert body["metadata"]["name"] == "fraud-retrain-4"
    ArgoWorkflowLauncher(FakeCustom(409)).launch(request("argo-workflow"))  # type: ignore[arg-type]
    with pytest.raises(PipelineError, match="404"):
        ArgoWorkflowLauncher(FakeCustom(404)).launch(request("argo-workflow"))  # type: ignore[arg-type]
    md = request("argo-workflow").md
    assert launcher.outcome(md, "fraud-retrain-4") == RunOutcome("NotFound")


# --- local HTTP servers ------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class Server(LoopbackServer):
    """A threaded HTTP server on 127.0.0.1 answering with `respond(received)`."""

    def __init__(self, respond: Any) -> None:
        self.received: list[Received] = []
        outer = self

        class Handler(QuietHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                url = urlparse(self.path)
                got = Received(
                    self.command,
                    url.path,
                    parse_qs(url.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                outer.received.append(got)
                status, payload = respond(got)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle  # noqa: N815

        super().__init__(Handler)


# --- webhook -----------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Server]:
    answers = iter([(202, {})] * 10)
    with Server(lambda _: next(answers)) as server:
        yield server


def webhook_request(url: str) -> LaunchRequest:
    return request(pipeline={"type": "webhook", "webhook": {"url": url}})


def test_webhook_delivers_a_valid_structured_cloudevent(receiver: Server) -> None:
    r = webhook_request(receiver.url + "/retrain")
    launcher = WebhookLauncher()
    assert launcher.outcome(r.md, r.run) == RunOutcome("NotFound")

    launcher.launch(r)

    (got,) = receiver.received
    assert (got.method, got.path) == ("POST", "/retrain")
    assert got.headers["content-type"].startswith("application/cloudevents+json")
    event = from_http(got.headers, got.body)
    assert event["specversion"] == "1.0"
    assert event["type"] == EVENT_TYPE == "dev.rung.retraining.requested"
    assert event["source"] == "rung/team-a/fraud"
    assert event["id"] == f"team-a/fraud-retrain-4.{f.UID[:8]}"
    assert event["subject"] == "fraud-retrain-4"
    assert event.data == {
        "model": "fraud",
        "namespace": "team-a",
        "version": "v1",
        "storageUri": "s3://models/fraud/v1",
        "reason": "drift: 0.5 above 0.3 for 2m",
        "trigger": "drift",
        "run": "fraud-retrain-4",
        "data": {"uri": "s3://datasets/fraud", "version": "2025-02-01"},
    }
    outcome = launcher.outcome(r.md, r.run)
    assert outcome.state == "Succeeded"
    assert "delivered" in outcome.message
    assert "(202)" in outcome.message


def test_a_relaunch_sends_the_same_event_id(receiver: Server) -> None:
    r = webhook_request(receiver.url)
    WebhookLauncher().launch(r)
    WebhookLauncher().launch(r)
    ids = [from_http(g.headers, g.body)["id"] for g in receiver.received]
    assert ids[0] == ids[1]


def test_webhook_refusal_is_a_launch_failure() -> None:
    with Server(lambda _: (503, {"error": "busy"})) as server:
        r = webhook_request(server.url)
        launcher = WebhookLauncher()
        with pytest.raises(PipelineError, match="503"):
            launcher.launch(r)
        assert launcher.outcome(r.md, r.run) == RunOutcome("NotFound")


def test_webhook_unreachable_is_a_launch_failure() -> None:
    with pytest.raises(PipelineError, match=r"POST http://127\.0\.0\.1:1/hook"):
        WebhookLauncher(timeout=2).launch(request("webhook"))


def test_event_carries_its_time() -> None:
    from datetime import UTC, datetime

    event = build_event(request("webhook"), datetime(2025, 3, 1, 12, 0, tzinfo=UTC))
    assert event["time"] == "2025-03-01T12:00:00+00:00"


# --- kubeflow pipelines ------------------------------------------------------------


class KfpStandIn:
    """Plays the KFP API server's v2beta1 runs endpoint: create, and list by filter."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []
        self.server = Server(self.respond)

    def respond(self, got: Received) -> tuple[int, dict[str, Any]]:
        if got.path != "/apis/v2beta1/runs":
            return 404, {"error": "not found"}
        if got.method == "POST":
            run = json.loads(got.body)
            run.update(run_id=f"run-{len(self.runs) + 1}", state="PENDING")
            self.runs.append(run)
            return 200, run
        predicates = json.loads(got.query["filter"][0])["predicates"]
        wanted = {p["key"]: p["string_value"] for p in predicates if p["operation"] == "EQUALS"}
        found = [r for r in self.runs if all(r.get(k) == v for k, v in wanted.items())]
        return 200, {"runs": found, "total_size": len(found)} if found else {}


@pytest.fixture
def kfp() -> Iterator[KfpStandIn]:
    stand_in = KfpStandIn()
    with stand_in.server:
        yield stand_in


def kfp_request(endpoint: str) -> LaunchRequest:
    pipeline = {
        "type": "kubeflow-pipeline",
        "kubeflowPipeline": {"endpoint": endpoint, "pipelineId": "p-123", "experimentId": "e-9"},
    }
    return request(pipeline=pipeline)


def test_kfp_run_body() -> None:
    body = run_body(request("kubeflow-pipeline"))
    assert body == {
        "display_name": f"team-a/fraud-retrain-4.{f.UID[:8]}",
        "description": "Rung retraining of team-a/fraud: drift: 0.5 above 0.3 for 2m",
        "pipeline_version_reference": {"pipeline_id": "p-123"},
        "runtime_config": {"parameters": run_parameters(request("kubeflow-pipeline"))},
        "experiment_id": "e-9",
    }


def test_kfp_filter_selects_by_display_name() -> None:
    assert json.loads(name_filter("a/b")) == {
        "predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": "a/b"}]
    }


def test_kfp_launcher_posts_a_run_once_and_polls_it(kfp: KfpStandIn) -> None:
    r = kfp_request(kfp.server.url)
    launcher = KubeflowPipelineLauncher()
    assert launcher.outcome(r.md, r.run) == RunOutcome("NotFound")

    launcher.launch(r)
    launcher.launch(r)  # a relaunch finds the run and posts nothing

    posts = [g for g in kfp.server.received if g.method == "POST"]
    assert len(posts) == 1
    assert json.loads(posts[0].body) == run_body(r)
    assert kfp.server.received[0].query["experiment_id"] == ["e-9"]
    assert launcher.outcome(r.md, r.run) == RunOutcome("Running")
    kfp.runs[0]["state"] = "SUCCEEDED"
    assert launcher.outcome(r.md, r.run) == RunOutcome("Succeeded", "KFP run run-1 succeeded")
    kfp.runs[0].update(state="FAILED", error={"code": 2, "message": "train: OOMKilled"})
    assert launcher.outcome(r.md, r.run) == RunOutcome("Failed", "FAILED: train: OOMKilled")


@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        ("PENDING", "Running"),
        ("RUNNING", "Running"),
        ("PAUSED", "Running"),
        ("CANCELING", "Running"),
        ("SKIPPED", "Succeeded"),
        ("CANCELED", "Failed"),
        (None, "Running"),
    ],
)
def test_kfp_states(state: str | None, outcome: str) -> None:
    assert run_outcome({"run_id": "r", "state": state}).state == outcome


def test_kfp_server_errors_are_pipeline_errors() -> None:
    with Server(lambda _: (500, {"error": "db down"})) as server:
        r = kfp_request(server.url)
        with pytest.raises(PipelineError, match="500"):
            KubeflowPipelineLauncher().launch(r)
        with pytest.raises(PipelineError, match="500"):
            KubeflowPipelineLauncher().outcome(r.md, r.run)


def test_the_level_3_example_builds_a_job_with_the_run_env() -> None:
    from pathlib import Path

    import yaml

    body = yaml.safe_load((Path(__file__).parents[2] / "examples" / "level-3.yaml").read_text())
    md = ModelDeployment.from_body(
        {**body, "metadata": {**body["metadata"], "namespace": "team-a", "uid": f.UID}}
    )
    assert md.spec.retraining is not None
    assert md.spec.retraining.pipeline is not None
    job = build_job(
        LaunchRequest(
            md=md,
            run="fraud-retrain-1",
            reason="schedule: 0 3 * * 0 (slot 2025-03-02T03:00:00Z)",
            trigger="schedule",
            version="v8",
            storage_uri="s3://models/fraud/v8",
            pipeline=md.spec.retraining.pipeline,
        )
    )
    (train,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in train["env"]}
    assert env["RUNG_STORAGE_URI"] == "s3://models/fraud/v8"
    assert "$(RUNG_STORAGE_URI)" in train["args"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
