"""`rung get` rendering (pure), day-2 commands' annotations (a recording stand-in for the
API client: unit tests only), and one-line errors instead of tracebacks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rung import cli, cli_rollout
from rung.api.resource import PAUSE_ANNOTATION, PROMOTE_ANNOTATION, UNDO_ANNOTATION
from rung.cli_get import render

from .test_cli_rollout import _body


def _isvc(
    name: str, hash_: str, *, ready: str = "True", generation: int = 2, observed: int = 2
) -> Any:
    return {
        "metadata": {
            "name": name,
            "generation": generation,
            "annotations": {"rung.dev/model-hash": hash_},
        },
        "status": {
            "observedGeneration": observed,
            "conditions": [{"type": "Ready", "status": ready, "reason": "Waiting"}],
        },
    }


def _rollout() -> dict[str, Any]:
    body = _body(maturity={"level": 2})
    body["status"]["stable"]["hash"] = "aaaa"
    body["status"]["canary"]["hash"] = "bbbb"
    body["status"]["history"] = [
        {"time": "2026-11-28T12:00:00Z", "event": "CanaryStarted", "message": "v1 -> v2"}
    ]
    return body


def test_get_draws_the_rollout_as_a_plain_tree() -> None:
    text = render(
        _rollout(),
        [_isvc("fraud", "aaaa"), _isvc("fraud-canary", "bbbb", observed=1)],
        color=False,
    )
    assert "\x1b" not in text  # no colour, no cursor moves on a pipe
    lines = text.splitlines()
    assert lines[0].startswith("ModelDeployment team-a/fraud  level 2")
    assert "phase Progressing" in lines[0]
    assert any("stable" in line and "v1" in line and "weight 75%" in line for line in lines)
    assert any("canary" in line and "v2" in line and "weight 25%" in line for line in lines)
    assert "10% ✔ [25%] 50% 100%   step 2/4" in text
    assert "InferenceService fraud  ✔ Ready" in text
    # ready only at the generation applied
    assert "InferenceService fraud-canary  ✖ NotReady" in text
    assert "(observed generation 1 < 2)" in text
    assert "✖ error-rate" in text
    assert "0.2 > max 0.01" in text
    assert "CanaryStarted" in text


def test_get_never_reads_user_text_as_markup() -> None:
    body = _rollout()
    body["status"]["history"][0]["message"] = "[bold]not markup[/] [link=x]"
    assert "[bold]not markup[/] [link=x]" in render(body, [], color=False)


class RecordingApi:
    """Returns one object and records the patches (in place of CustomObjectsApi)."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.patches: list[dict[str, Any]] = []

    def get_namespaced_custom_object(self, *_: Any) -> dict[str, Any]:
        return self.body

    def patch_namespaced_custom_object(self, *args: Any, **_: Any) -> None:
        self.patches.append(args[5]["metadata"]["annotations"])


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> RecordingApi:
    recording = RecordingApi(_rollout())
    monkeypatch.setattr(cli_rollout, "connect", lambda args=None: (recording, "team-a"))
    monkeypatch.setattr(cli_rollout, "whoami", lambda: "alice")
    return recording


def test_promote_names_the_canary_and_its_step(
    api: RecordingApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["promote", "fraud"]) == 0
    assert cli.main(["promote", "fraud", "--full"]) == 0
    step, full = (json.loads(p[PROMOTE_ANNOTATION]) for p in api.patches)
    assert step == {"by": "alice", "canary": "bbbb@2026-11-28T12:00:00Z", "gate": False, "step": 1}
    assert full["step"] is None
    out = capsys.readouterr().out
    assert "v2 skips the analysis of step 2" in out
    assert "v2 goes to 100% now" in out


def test_pause_twice_writes_once_and_resume_removes_it(api: RecordingApi) -> None:
    assert cli.main(["pause", "fraud"]) == 0
    assert json.loads(api.patches[0][PAUSE_ANNOTATION])["by"] == "alice"
    api.body["metadata"]["annotations"] = dict(api.patches[0])
    assert cli.main(["pause", "fraud"]) == 0
    assert len(api.patches) == 1  # idempotent: nothing written the second time
    assert cli.main(["resume", "fraud"]) == 0
    assert api.patches[1] == {PAUSE_ANNOTATION: None}


def test_undo_without_revisions_says_what_is_known(
    api: RecordingApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["undo", "fraud"]) == 1
    assert api.patches == []
    assert "an earlier version is not in status.revisions (known: none yet)" in (
        capsys.readouterr().err
    )
    api.body["status"]["revisions"] = [{"version": "v0", "storageUri": "s3://m/v0", "hash": "0000"}]
    assert cli.main(["undo", "fraud", "--to", "v0"]) == 0
    assert json.loads(api.patches[0][UNDO_ANNOTATION])["to"] == "0000"


@pytest.mark.parametrize("command", ["status", "get", "approve", "retrain", "promote", "abort"])
def test_no_kubeconfig_is_one_line_not_a_traceback(
    command: str,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cli.main([command, "fraud"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no Kubernetes configuration")
    assert "--kubeconfig" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_get_shows_only_conditions_that_are_not_healthy() -> None:
    body = _rollout()
    at = "2026-11-28T12:00:00Z"
    body["status"]["conditions"] = [
        {"type": t, "status": s, "reason": r, "message": m, "lastTransitionTime": at}
        for t, s, r, m in (
            ("Ready", "True", "InferenceServiceReady", "serving"),
            ("Progressing", "True", "CanaryProgressing", "at 25%"),
            ("MonitoringReady", "True", "MetricsAvailable", "scraped"),
            ("Degraded", "True", "RolledBack", "v3 was rolled back"),
        )
    ]
    text = render(body, [], color=False)
    assert "Degraded=True  RolledBack: v3 was rolled back" in text
    for healthy in ("InferenceServiceReady", "CanaryProgressing", "MetricsAvailable"):
        assert healthy not in text


def test_get_shows_an_llms_llm_inference_services_by_their_workloads() -> None:
    isvc = _isvc("fraud", "aaaa")
    isvc["kind"] = "LLMInferenceService"
    isvc["status"]["conditions"] = [
        {"type": "Ready", "status": "Unknown", "reason": "NoGatewayImplementation"},
        {"type": "WorkloadsReady", "status": "True"},
    ]
    text = render(_rollout(), [isvc], color=False)
    assert "LLMInferenceService fraud  ✔ Ready" in text
