"""Git write-back (spec.gitops): which decision is due (pure), how the manifest is edited,
what status says afterwards, and the reconciler doing it once, with a stand-in writer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from rung.api.resource import RETRAINED_MODEL_ANNOTATION, ModelDeployment
from rung.api.spec import ModelSource
from rung.api.status import ModelDeploymentStatus
from rung.gitrepo import Credentials, GitError, Written
from rung.plan.gitops import (
    GIT_WRITE_BACK,
    GitWriteOutcome,
    ManifestError,
    edit_manifest,
    manifest_model,
    recorded,
    retrained_model_problem,
    write_back,
    write_failed,
)
from rung.plan.inference_service import model_hash

from . import factories as f

GITOPS = {"repository": "https://git.example.com/platform/models.git", "path": "apps/fraud.yaml"}
V1 = {"format": "sklearn", "storageUri": "s3://models/fraud/v1", "version": "v1"}
V2 = {
    "format": "sklearn",
    "storageUri": "s3://models/fraud/v2",
    "version": "v2",
    "resources": {"requests": {"cpu": "2"}},
}
H1 = model_hash(ModelSource.model_validate(V1))
H2 = model_hash(ModelSource.model_validate(V2))
DECISION = f"rollback:{H2}@2025-03-01T12:05:00Z"


def rolled_back(**more: Any) -> dict[str, Any]:
    """Status after v2 was rolled back to v1."""
    return {
        "phase": "RolledBack",
        "stable": {"version": "v1", "storageUri": V1["storageUri"], "hash": H1, "model": V1},
        "rejected": {
            "version": "v2",
            "storageUri": V2["storageUri"],
            "hash": H2,
            "model": V2,
            "rejectedAt": "2025-03-01T12:05:00Z",
        },
        "history": [
            {
                "time": "2025-03-01T12:04:00Z",
                "event": "RollingBack",
                "message": "FailureLimitReached: 2 failed analysis runs: error-rate: 0.5 > 0.01",
            }
        ],
        **more,
    }


def md(
    status: dict[str, Any] | None = None,
    *,
    model: dict[str, Any] = V2,
    annotations: dict[str, str] | None = None,
    gitops: dict[str, Any] | None = GITOPS,
) -> ModelDeployment:
    return f.md(
        level=2,
        model_fields=model,
        status=status if status is not None else rolled_back(),
        annotations=annotations,
        gitops=gitops,
    )


def handed_back(**value: Any) -> dict[str, str]:
    body = {
        "run": "fraud-retrain-3",
        "storageUri": "s3://models/fraud/v3",
        "version": "v3",
        "data": {"uri": "s3://datasets/fraud", "version": "2025-03-01"},
        **value,
    }
    return {RETRAINED_MODEL_ANNOTATION: json.dumps(body)}


# --- which decision is due ----------------------------------------------------------------


def test_a_rollback_while_spec_names_the_rejected_model_restores_stable() -> None:
    write = write_back(md())
    assert write is not None
    assert write.kind == "rollback"
    assert write.decision == DECISION
    assert write.version == "v1"
    assert dict(write.model) == V1
    assert write.replace_model
    assert write.subject == "rung: roll fraud back to v1 (v2 rejected)"
    message = write.message(md())
    assert "FailureLimitReached: 2 failed analysis runs" in message
    assert f"Rung-Decision: {DECISION}\n" in message
    assert "Rung-ModelDeployment: team-a/fraud\n" in message


@pytest.mark.parametrize(
    ("deployment", "why"),
    [
        (md(gitops=None), "no spec.gitops"),
        (md(model=V1), "spec back on stable (the sync applied the commit)"),
        (md(rolled_back(phase="Ready")), "not rolled back"),
        (
            md(
                rolled_back(
                    gitops={
                        "commits": [
                            {
                                "decision": DECISION,
                                "time": "2025-03-01T12:05:01Z",
                                "version": "v1",
                            }
                        ]
                    }
                )
            ),
            "written already",
        ),
    ],
    ids=["no-gitops", "synced", "not-rolled-back", "written"],
)
def test_nothing_is_due(deployment: ModelDeployment, why: str) -> None:
    assert write_back(deployment) is None, why


def test_a_retrained_model_handed_back_is_committed_not_patched() -> None:
    write = write_back(md({"phase": "Ready"}, model=V1, annotations=handed_back()))
    assert write is not None
    assert write.kind == "retrained"
    assert write.decision == "retrained:fraud-retrain-3:v3"
    assert dict(write.model) == {
        "storageUri": "s3://models/fraud/v3",
        "version": "v3",
        "data": {
            "uri": "s3://datasets/fraud",
            "version": "2025-03-01",
            "trainingRun": "fraud-retrain-3",
        },
    }
    assert not write.replace_model
    assert write.subject == "rung: fraud v3 from retraining run fraud-retrain-3"
    assert "trained on s3://datasets/fraud@2025-03-01" in write.body


def test_a_retrained_model_already_in_spec_is_not_written() -> None:
    synced = dict(V1, storageUri="s3://models/fraud/v3", version="v3")
    assert write_back(md({"phase": "Ready"}, model=synced, annotations=handed_back())) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"run": "r"}', "missing storageUri, version"),
    ],
)
def test_an_unreadable_hand_back_is_a_problem_not_a_write(value: str, problem: str) -> None:
    annotations = {RETRAINED_MODEL_ANNOTATION: value}
    assert problem in (retrained_model_problem(annotations) or "")
    assert write_back(md({"phase": "Ready"}, model=V1, annotations=annotations)) is None


# --- the manifest ---------------------------------------------------------------------------

MANIFEST = """\
# The fraud model, synced by Argo CD.
apiVersion: v1
kind: Namespace
metadata:
  name: team-a
---
apiVersion: rung.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: fraud   # keep the name short
spec:
  maturity: {level: 2}
  model:
    format: sklearn
    storageUri: s3://models/fraud/v2   # bumped by the platform team
    version: v2
    resources:
      requests: {cpu: "2"}
  rollout:
    steps: [10, 50, 100]
"""


def test_rollback_restores_the_stable_model_and_keeps_the_rest() -> None:
    deployment = md()
    write = write_back(deployment)
    assert write is not None
    edited = edit_manifest(MANIFEST, deployment, write)
    assert edited is not None
    assert manifest_model(edited, deployment) == V1
    # comments, flow style, other documents and fields are kept
    assert edited.startswith("# The fraud model, synced by Argo CD.\n")
    assert "name: fraud   # keep the name short" in edited
    assert "kind: Namespace" in edited
    assert "steps: [10, 50, 100]" in edited
    assert "maturity: {level: 2}" in edited
    assert "resources" not in edited
    # applied twice, the second changes nothing: nothing to commit
    assert edit_manifest(edited, deployment, write) is None


def test_retrained_model_sets_only_its_fields() -> None:
    deployment = md({"phase": "Ready"}, model=V1, annotations=handed_back())
    write = write_back(deployment)
    assert write is not None
    edited = edit_manifest(MANIFEST, deployment, write)
    assert edited is not None
    model = manifest_model(edited, deployment)
    assert model is not None
    assert model["version"] == "v3"
    assert model["storageUri"] == "s3://models/fraud/v3"
    assert model["data"]["trainingRun"] == "fraud-retrain-3"
    assert model["format"] == "sklearn"
    assert model["resources"] == {"requests": {"cpu": "2"}}


def test_a_manifest_without_the_deployment_is_an_error() -> None:
    deployment = md()
    write = write_back(deployment)
    assert write is not None
    with pytest.raises(ManifestError, match="no ModelDeployment fraud in the manifest"):
        edit_manifest("kind: ConfigMap\nmetadata: {name: fraud}\n", deployment, write)
    with pytest.raises(ManifestError, match="not YAML"):
        edit_manifest("a: [\n", deployment, write)


# --- status ---------------------------------------------------------------------------------


def test_a_commit_is_recorded_with_its_decision() -> None:
    deployment = md()
    write = write_back(deployment)
    assert write is not None
    status, events = recorded(deployment, write, GitWriteOutcome(commit="ab" * 20), "T1")
    assert status.gitops is not None
    [entry] = status.gitops.commits
    assert (entry.decision, entry.commit, entry.version) == (write.decision, "ab" * 20, "v1")
    [event] = events
    assert event.reason == "GitCommitted"
    assert event.message.startswith(f"committed {'ab' * 6} to {GITOPS['repository']} main:")
    condition = next(c for c in status.conditions if c.type == GIT_WRITE_BACK)
    assert (condition.status, condition.reason) == ("True", "GitCommitted")
    # recorded: nothing more is due
    after = f.md(level=2, model_fields=V2, status=status.wire(), gitops=GITOPS, annotations=None)
    assert write_back(after) is None


def test_a_manifest_in_sync_is_recorded_without_a_commit() -> None:
    deployment = md()
    write = write_back(deployment)
    assert write is not None
    status, events = recorded(deployment, write, GitWriteOutcome(commit=None), "T1")
    assert status.gitops is not None
    assert status.gitops.commits[0].commit is None
    assert [e.reason for e in events] == ["GitInSync"]


def test_a_failed_write_is_a_condition_and_one_warning() -> None:
    deployment = md()
    write = write_back(deployment)
    assert write is not None
    outcome = GitWriteOutcome(error="HTTPUnauthorized: No valid credentials provided")
    status, events = recorded(deployment, write, outcome, "T1")
    condition = next(c for c in status.conditions if c.type == GIT_WRITE_BACK)
    assert condition.status == "False"
    assert condition.reason == "GitWriteFailed"
    assert condition.message.endswith("HTTPUnauthorized: No valid credentials provided")
    assert [(e.reason, e.type) for e in events] == [("GitWriteFailed", "Warning")]
    assert status.gitops is None  # not recorded: tried again
    again = f.md(level=2, model_fields=V2, status=status.wire(), gitops=GITOPS)
    _, repeated = recorded(again, write, outcome, "T2")
    assert repeated == []  # the same failure is announced once
    _, missing = write_failed(again, "credentials Secret git not found", "T3")
    assert [e.reason for e in missing] == ["GitWriteFailed"]


# --- the reconciler -------------------------------------------------------------------------


@dataclass
class FakeGit:
    """Records writes; applies the edit to `manifest` like a repository would."""

    manifest: str = MANIFEST
    fail: str | None = None
    writes: list[dict[str, Any]] = field(default_factory=list)

    def write(
        self,
        url: str,
        branch: str,
        path: str,
        edit: Any,
        message: str,
        author: str,
        credentials: Credentials | None,
    ) -> Written:
        if self.fail:
            raise GitError(self.fail)
        changed = edit(self.manifest)
        self.writes.append({"url": url, "path": path, "message": message, "changed": changed})
        if changed is None:
            return Written(None, 1)
        self.manifest = changed
        return Written(f"{len(self.writes):040x}", 1)


def _world(git: FakeGit, status: dict[str, Any], **kw: Any) -> Any:
    from rung.reconciler import Reconciler
    from rung.settings import OperatorSettings

    from .test_reconciler import FakeKube, Recorder

    kube = FakeKube()
    kube.put(f.body(level=2, model_fields=V2, status=status, gitops=GITOPS, **kw))
    events = Recorder()
    reconciler = Reconciler(
        kube,  # type: ignore[arg-type]
        OperatorSettings(),
        events,
        clock=lambda: f.NOW,
        git=git,  # type: ignore[arg-type]
    )
    return kube, events, reconciler


def test_the_reconciler_commits_a_rollback_once() -> None:
    git = FakeGit()
    kube, events, reconciler = _world(git, rolled_back())
    reconciler.reconcile(f.NAMESPACE, f.NAME)
    reconciler.reconcile(f.NAMESPACE, f.NAME)
    assert len(git.writes) == 1
    assert f"Rung-Decision: {DECISION}" in git.writes[0]["message"]
    stored = ModelDeploymentStatus.model_validate(
        kube.objects[("ModelDeployment", f.NAMESPACE, f.NAME)]["status"]
    )
    assert stored.gitops is not None
    assert [c.decision for c in stored.gitops.commits] == [DECISION]
    assert "GitCommitted" in [e.reason for e in events.events]
    # a new operator (a new Reconciler, same status) writes nothing
    from rung.reconciler import Reconciler
    from rung.settings import OperatorSettings

    Reconciler(kube, OperatorSettings(), events, clock=lambda: f.NOW, git=git).reconcile(  # type: ignore[arg-type]
        f.NAMESPACE, f.NAME
    )
    assert len(git.writes) == 1


def test_the_reconciler_reports_a_failed_write_and_keeps_going() -> None:
    git = FakeGit(fail="HTTPUnauthorized: No valid credentials provided")
    kube, events, reconciler = _world(git, rolled_back())
    result = reconciler.reconcile(f.NAMESPACE, f.NAME)
    status = kube.objects[("ModelDeployment", f.NAMESPACE, f.NAME)]["status"]
    condition = next(c for c in status["conditions"] if c["type"] == GIT_WRITE_BACK)
    assert condition["status"] == "False"
    assert "No valid credentials provided" in condition["message"]
    assert status["phase"] == "RolledBack"
    assert result.requeue_after is not None
    assert result.requeue_after <= 30
    assert [e.reason for e in events.events].count("GitWriteFailed") == 1
    reconciler.reconcile(f.NAMESPACE, f.NAME)
    assert [e.reason for e in events.events].count("GitWriteFailed") == 1


def test_a_repository_outside_the_allowed_hosts_is_refused() -> None:
    from rung.reconciler import Reconciler
    from rung.settings import OperatorSettings

    from .test_reconciler import FakeKube, Recorder

    git = FakeGit()
    kube = FakeKube()
    kube.put(f.body(level=2, model_fields=V2, status=rolled_back(), gitops=GITOPS))
    settings = OperatorSettings(allowed_hosts=("git.internal.example",))
    reconciler = Reconciler(
        kube,  # type: ignore[arg-type]
        settings,
        Recorder(),
        clock=lambda: f.NOW,
        git=git,  # type: ignore[arg-type]
    )
    reconciler.reconcile(f.NAMESPACE, f.NAME)
    assert git.writes == []
    status = kube.objects[("ModelDeployment", f.NAMESPACE, f.NAME)]["status"]
    condition = next(c for c in status["conditions"] if c["type"] == GIT_WRITE_BACK)
    assert condition["status"] == "False"
    assert condition["message"].startswith("refused: ")


def test_rung_status_shows_the_last_write_back() -> None:
    from rung.cli_rollout import render_status

    body = f.body(level=2, model_fields=V2, status=rolled_back(), gitops=GITOPS)
    body["status"]["gitops"] = {
        "commits": [
            {
                "decision": DECISION,
                "commit": "0123456789abcdef" * 2 + "01234567",
                "time": "2025-03-01T12:05:01Z",
                "version": "v1",
                "message": "rung: roll fraud back to v1 (v2 rejected)",
            }
        ]
    }
    text = render_status(body)
    assert (
        "  gitops:   0123456789ab  rung: roll fraud back to v1 (v2 rejected)"
        "  (2025-03-01T12:05:01Z)"
    ) in text
