"""Git write-back (spec.gitops) on real parts: a real Git server and a real API server.

The Git server is `git http-backend` (smart HTTP, as git ships it) behind a small HTTP
server with basic auth on 127.0.0.1 (testbed.gitserver), holding a repository with the
examples and the test's own manifest. Argo CD's sync is played by the test: it reads the
manifest from Git and replaces the ModelDeployment's spec with it, as a sync does. The
real KServe controller reconciles the InferenceServices.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from integration_kit import (
    condition,
    create_md,
    custom,
    is_condition,
    model_deployment,
    patch_md,
    run_operator,
    wait_until,
    watch_md,
)
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rung.api.crd import GROUP, PLURAL, VERSION
from rung.gitrepo import Credentials, GitWriter
from testbed.gitserver import GitServer

pytestmark = pytest.mark.usefixtures("rung_crds")
NAME = "fraud"
REPO = "platform"
PATH = "apps/fraud.yaml"
SECRET = "git-credentials"
PASSWORD = "s3cret-t0ken"
ROOT = Path(__file__).resolve().parents[2]
RUNG_AUTHOR = "Rung <rung@users.noreply.rung.dev>"
UNSCHEDULABLE = {"requests": {"cpu": "100000"}}
"""More CPU than the kwok node has: the canary's pod stays Pending, never ready."""
Obj = dict[str, Any]


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitServer]:
    server = GitServer(tmp_path / "git", {"rung": PASSWORD, "platform": "team"}).start()
    (tmp_path / "git").mkdir(exist_ok=True)
    try:
        yield server
    finally:
        server.stop()


def _seed(server: GitServer, manifest: Obj) -> None:
    """The repository: the examples, and the manifest of the test's ModelDeployment."""
    examples = ROOT / "examples"
    files = {
        f"examples/{p.relative_to(examples)}": p.read_text()
        for p in sorted(examples.rglob("*"))
        if p.is_file()
    }
    text = "# The fraud model, synced to the cluster by Argo CD.\n" + yaml.safe_dump(
        manifest, sort_keys=False
    )
    server.seed(REPO, {**files, PATH: text})


def _manifest(namespace: str, server: GitServer, **spec: Any) -> Obj:
    body = model_deployment(NAME, namespace, **spec)
    body["spec"]["gitops"] = {
        "repository": server.url(REPO),
        "branch": "main",
        "path": PATH,
        "credentialsSecretRef": {"name": SECRET},
    }
    del body["metadata"]["namespace"]  # as in Git: `kubectl apply -n` / Argo CD pick it
    return body


def _secret(api: client.ApiClient, namespace: str, password: str = PASSWORD) -> None:
    data = {"username": "rung", "password": password}
    client.CoreV1Api(api).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=SECRET),
            data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        ),
    )


def _in_git(server: GitServer) -> Obj:
    """The ModelDeployment as Git has it now."""
    documents = list(yaml.safe_load_all(server.show(REPO, PATH)))
    return next(d for d in documents if d and d.get("kind") == "ModelDeployment")


def sync(api: client.ApiClient, namespace: str, server: GitServer) -> Obj:
    """Argo CD's part: make the cluster's spec what Git says (create or replace)."""
    desired = _in_git(server)
    desired["metadata"]["namespace"] = namespace
    api_ = custom(api)
    try:
        live = api_.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, NAME)
    except ApiException as error:
        if error.status != 404:
            raise
        return create_md(api, desired)
    live["spec"] = desired["spec"]
    return dict(
        api_.replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, NAME, live)
    )


def _rung_commits(server: GitServer) -> list[dict[str, str]]:
    return [c for c in server.log(REPO) if c["author"] == RUNG_AUTHOR]


def _phase(o: Obj) -> str | None:
    return (o.get("status") or {}).get("phase")


def _commits(o: Obj) -> list[Obj]:
    return list(((o.get("status") or {}).get("gitops") or {}).get("commits") or [])


def test_a_rollback_is_committed_once_across_an_operator_restart(
    kube_api: client.ApiClient,
    kubeconfig: str,
    restart_namespace: str,
    tmp_path: Path,
    git_server: GitServer,
) -> None:
    namespace = restart_namespace
    manifest = _manifest(
        namespace,
        git_server,
        level=2,
        monitoring={"prometheus": {"url": "http://127.0.0.1:9"}},
        rollout={"router": "kserve", "interval": "2s", "progressDeadline": "5s"},
    )
    _seed(git_server, manifest)
    _secret(kube_api, namespace)
    args = ("--verbose", "-n", namespace)
    with run_operator(kubeconfig, tmp_path / "op1.log", *args) as first:
        sync(kube_api, namespace, git_server)
        watch_md(kube_api, namespace, NAME, lambda o: _phase(o) == "Ready", "v1 Ready", 60)

        # The platform team bumps the model in Git; the sync applies it; it never gets ready.
        bumped = _in_git(git_server)
        bumped["spec"]["model"].update(
            storageUri=f"s3://models/{NAME}/v2", version="v2", resources=UNSCHEDULABLE
        )
        text = git_server.show(REPO, PATH).split("apiVersion:")[0] + yaml.safe_dump(
            bumped, sort_keys=False
        )
        git_server.commit(REPO, PATH, text, "fraud: v2")
        sync(kube_api, namespace, git_server)

        md = watch_md(
            kube_api, namespace, NAME, lambda o: bool(_commits(o)), "the rollback in Git", 90
        )
        log = first.log()
    assert _phase(md) == "RolledBack"
    assert md["spec"]["model"]["version"] == "v2"  # the operator never writes spec
    (recorded,) = _commits(md)
    assert recorded["version"] == "v1"
    assert recorded["decision"].startswith("rollback:")
    assert is_condition(md, "GitWriteBack", "True")

    # Exactly one commit by Rung, on top of the platform team's, restoring v1 exactly.
    history = git_server.log(REPO)
    assert [c["author"] for c in history[:2]] == [
        RUNG_AUTHOR,
        "Platform Team <platform@example.com>",
    ]
    (commit,) = _rung_commits(git_server)
    assert commit["sha"] == recorded["commit"]
    assert commit["subject"] == "rung: roll fraud back to v1 (v2 rejected)"
    assert "ProgressDeadlineExceeded" in commit["message"]
    assert f"Rung-Decision: {recorded['decision']}" in commit["message"]
    in_git = _in_git(git_server)
    assert in_git["spec"]["model"] == manifest["spec"]["model"]
    assert git_server.show(REPO, PATH).startswith("# The fraud model, synced to the cluster")
    assert PASSWORD not in log

    # A new operator: it resumes from status and writes nothing to Git again.
    with run_operator(kubeconfig, tmp_path / "op2.log", *args) as second:
        wait_until(
            lambda: f"{namespace}/{NAME}" in second.log(), "the second operator's first pass"
        )
        assert len(_rung_commits(git_server)) == 1
        # Argo CD syncs Git's v1: Git, the sync and the cluster agree again.
        sync(kube_api, namespace, git_server)
        md = watch_md(
            kube_api,
            namespace,
            NAME,
            lambda o: _phase(o) == "Ready" and o["status"]["stable"]["version"] == "v1",
            "back in sync",
            60,
        )
        assert is_condition(md, "Degraded", "False")
        assert len(_rung_commits(git_server)) == 1
        assert PASSWORD not in second.log()


TRAINER = {"name": "train", "image": "registry.example/fraud-trainer:1", "command": ["train"]}
PIPELINE = {
    "type": "job",
    "job": {"template": {"backoffLimit": 0, "template": {"spec": {"containers": [TRAINER]}}}},
}


@pytest.mark.usefixtures("operator")
def test_a_retraining_result_is_committed_instead_of_patched(
    kube_api: client.ApiClient, namespace: str, git_server: GitServer
) -> None:
    manifest = _manifest(
        namespace,
        git_server,
        level=3,
        monitoring={"prometheus": {"url": "http://127.0.0.1:9"}},
        rollout={"interval": "2s", "progressDeadline": "60s"},
        retraining={"triggers": [], "pipeline": PIPELINE},
    )
    _seed(git_server, manifest)
    _secret(kube_api, namespace)
    sync(kube_api, namespace, git_server)
    watch_md(kube_api, namespace, NAME, lambda o: _phase(o) == "Ready", "v1 Ready", 60)
    patch_md(kube_api, namespace, NAME, {"metadata": {"annotations": {"rung.dev/retrain": "1"}}})
    md = watch_md(
        kube_api,
        namespace,
        NAME,
        lambda o: (
            [
                r.get("outcome")
                for r in (o.get("status") or {}).get("retraining", {}).get("runs", [])
            ]
            == ["Succeeded"]
        ),
        "the retraining run succeeded",
        90,
    )
    run = md["status"]["retraining"]["runs"][0]["name"]

    # The pipeline's last step under GitOps: hand the model back, not patch spec.model.
    handed = {
        "run": run,
        "storageUri": f"s3://models/{NAME}/v2",
        "version": "v2",
        "data": {"uri": f"s3://datasets/{NAME}", "version": "2025-03-01"},
    }
    patch_md(
        kube_api,
        namespace,
        NAME,
        {"metadata": {"annotations": {"rung.dev/retrained-model": json.dumps(handed)}}},
    )
    md = watch_md(kube_api, namespace, NAME, lambda o: bool(_commits(o)), "committed to Git", 60)

    assert md["spec"]["model"]["version"] == "v1"  # not patched: Git decides
    (recorded,) = _commits(md)
    assert recorded["decision"] == f"retrained:{run}:v2"
    (commit,) = _rung_commits(git_server)
    assert commit["subject"] == f"rung: fraud v2 from retraining run {run}"
    model = _in_git(git_server)["spec"]["model"]
    assert (model["version"], model["storageUri"]) == ("v2", f"s3://models/{NAME}/v2")
    assert model["data"] == {**handed["data"], "trainingRun": run}
    assert model["format"] == "sklearn"

    # The sync applies it: the retrained model starts a canary; nothing more is committed.
    sync(kube_api, namespace, git_server)
    md = watch_md(
        kube_api,
        namespace,
        NAME,
        lambda o: ((o.get("status") or {}).get("canary") or {}).get("version") == "v2",
        "a canary of the retrained model",
        60,
    )
    assert [r.get("resultVersion") for r in md["status"]["retraining"]["runs"]] == ["v2"]
    assert len(_rung_commits(git_server)) == 1


@pytest.mark.usefixtures("operator")
def test_a_wrong_credential_is_a_condition_not_a_crash(
    kube_api: client.ApiClient, namespace: str, git_server: GitServer
) -> None:
    manifest = _manifest(namespace, git_server, level=0)
    _seed(git_server, manifest)
    _secret(kube_api, namespace, password="not-the-token")
    sync(kube_api, namespace, git_server)
    watch_md(kube_api, namespace, NAME, lambda o: _phase(o) == "Ready", "v1 Ready", 60)
    handed = {"run": f"{NAME}-retrain-9", "storageUri": f"s3://models/{NAME}/v9", "version": "v9"}
    patch_md(
        kube_api,
        namespace,
        NAME,
        {"metadata": {"annotations": {"rung.dev/retrained-model": json.dumps(handed)}}},
    )

    md = watch_md(
        kube_api,
        namespace,
        NAME,
        lambda o: is_condition(o, "GitWriteBack", "False"),
        "the failed write as a condition",
        60,
    )
    failed = condition(md, "GitWriteBack")
    assert failed is not None
    assert failed["reason"] == "GitWriteFailed"
    assert "HTTPUnauthorized" in failed["message"]
    assert "No valid credentials provided" in failed["message"]
    assert is_condition(md, "Ready", "True")  # still serving, still reconciled
    assert _phase(md) == "Ready"
    assert not _rung_commits(git_server)
    assert "not-the-token" not in json.dumps(md["status"])
    events = client.CoreV1Api(kube_api).list_namespaced_event(namespace).items
    warnings = [e for e in events if e.reason == "GitWriteFailed"]
    assert warnings
    assert all("not-the-token" not in (e.message or "") for e in events)
    assert 401 in {status for _, _, status in git_server.requests}


def test_a_concurrent_push_is_retried_on_a_fresh_fetch(git_server: GitServer) -> None:
    git_server.seed(REPO, {PATH: "kind: ModelDeployment\nversion: v2\n"})
    pushed: list[str] = []

    def edit(text: str) -> str:
        if not pushed:  # someone pushes between our fetch and our push
            pushed.append(git_server.commit(REPO, "other.yaml", "x: 1\n", "unrelated change"))
        return text.replace("v2", "v1")

    written = GitWriter().write(
        git_server.url(REPO),
        "main",
        PATH,
        edit,
        "rung: back to v1\n",
        RUNG_AUTHOR,
        Credentials("rung", PASSWORD),
    )

    assert written.attempts == 2
    history = git_server.log(REPO)
    assert history[0]["sha"] == written.commit
    assert history[1]["sha"] == pushed[0]  # the concurrent commit is kept, not overwritten
    assert git_server.show(REPO, PATH) == "kind: ModelDeployment\nversion: v1\n"
    assert git_server.show(REPO, "other.yaml") == "x: 1\n"
