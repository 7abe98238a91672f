"""`rung assess` wiring: arguments, the context's namespace, paging, and the missing-CRD error.

The Kubernetes calls are replaced here only to reach paths a shared test cluster cannot
show (no ModelDeployment CRD, several pages); tests/integration/test_assess.py runs the
command against a real API server.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import config as k8s_config

from rung import cli
from rung.kube import Kind, Kube

from . import factories as f


class FakeCustom:
    """Stands in for CustomObjectsApi.list_*: serves `pages` in order."""

    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self.pages = pages
        self.calls: list[tuple[str | None, str | None]] = []

    def _page(self, namespace: str | None, token: str | None) -> dict[str, Any]:
        self.calls.append((namespace, token))
        index = int(token or 0)
        more = index + 1 < len(self.pages)
        return {
            "items": self.pages[index],
            "metadata": {"continue": str(index + 1) if more else ""},
        }

    def list_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, **kw: Any
    ) -> dict[str, Any]:
        return self._page(namespace, kw.get("_continue"))

    def list_cluster_custom_object(
        self, group: str, version: str, plural: str, **kw: Any
    ) -> dict[str, Any]:
        return self._page(None, kw.get("_continue"))


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A kubeconfig whose context namespace is `team-a`; CRDs and pages set by the test."""
    state: dict[str, Any] = {"crds": {"modeldeployments"}, "custom": FakeCustom([[]])}
    monkeypatch.setattr(k8s_config, "load_kube_config", lambda *a, **k: None)
    monkeypatch.setattr(
        k8s_config,
        "list_kube_config_contexts",
        lambda *a, **k: ([], {"name": "c", "context": {"namespace": "team-a"}}),
    )
    monkeypatch.setattr(Kube, "has_crd", lambda self, kind: kind.plural in state["crds"])
    original_init = Kube.__init__

    def init(self: Kube, api_client: Any) -> None:
        original_init(self, api_client)
        self.custom = state["custom"]

    monkeypatch.setattr(Kube, "__init__", init)
    return state


def test_missing_model_deployment_crd_is_a_clear_error(
    cluster: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    cluster["crds"] = set()

    code = cli.main(["assess"])

    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert "ModelDeployment CRD (modeldeployments.rung.dev) is not installed" in err


def test_namespace_defaults_to_the_context_and_pages_are_followed(
    cluster: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = f.body(level=0), f.body(level=1)
    second["metadata"]["name"] = "other"
    cluster["custom"] = FakeCustom([[first], [second]])
    cluster["crds"] = {"modeldeployments", "podmonitors", "prometheusrules"}

    code = cli.main(["assess", "-o", "json"])

    assert code == 0
    assert cluster["custom"].calls == [("team-a", None), ("team-a", "1")]
    doc = json.loads(capsys.readouterr().out)
    assert doc["scope"]["namespace"] == "team-a"
    assert [d["name"] for d in doc["deployments"]] == [f.NAME, "other"]
    installed = {c["name"]: c["installed"] for c in doc["components"]}
    assert installed == {
        "KServe": False,
        "KServe LLMInferenceService": False,
        "Prometheus Operator": True,
        "Gateway API": False,
        "Argo Workflows": False,
        "Kubeflow Pipelines": False,
        "Knative Eventing": False,
    }


def test_all_namespaces_lists_cluster_wide(
    cluster: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["assess", "-A", "--prometheus-url", "http://prom:9090", "-o", "markdown"])

    assert code == 0
    assert cluster["custom"].calls == [(None, None)]
    out = capsys.readouterr().out
    assert "Scope: all namespaces." in out
    assert "No ModelDeployments found in any namespace." in out


@pytest.mark.parametrize(
    "argv",
    [["assess", "-n", "a", "-A"], ["assess", "-o", "yaml"]],
)
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2


def test_assess_discovers_each_component_crd(
    cluster: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def has_crd(self: Kube, kind: Kind) -> bool:
        asked.append(f"{kind.plural}.{kind.group}")
        return True

    monkeypatch.setattr(Kube, "has_crd", has_crd)

    assert cli.main(["assess", "-n", "x"]) == 0
    assert asked == [
        "modeldeployments.rung.dev",
        "inferenceservices.serving.kserve.io",
        "llminferenceservices.serving.kserve.io",
        "podmonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
        "httproutes.gateway.networking.k8s.io",
        "workflowtemplates.argoproj.io",
        "scheduledworkflows.kubeflow.org",
        "brokers.eventing.knative.dev",
    ]


def test_output_choices_are_the_renderer_formats() -> None:
    from rung.assess.render import FORMATS

    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assess = sub.choices["assess"]  # type: ignore[index]
    (output,) = [a for a in assess._actions if a.dest == "output"]
    assert tuple(output.choices or ()) == FORMATS
