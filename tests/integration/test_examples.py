"""Every example in examples/ is accepted by the API server as written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from integration_kit import ROOT, create_md
from kubernetes import client

pytestmark = pytest.mark.usefixtures("rung_crds")
EXAMPLES = sorted((ROOT / "examples").glob("level-*.yaml"))


def test_there_is_an_example_per_level() -> None:
    levels = {yaml.safe_load(p.read_text())["spec"]["maturity"]["level"] for p in EXAMPLES}
    assert {0, 1, 2, 3, 4} <= levels


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_accepted(kube_api: client.ApiClient, namespace: str, path: Path) -> None:
    for body in yaml.safe_load_all(path.read_text()):
        body["metadata"]["namespace"] = namespace
        created = create_md(kube_api, body)
        assert created["spec"]["maturity"]["level"] == body["spec"]["maturity"]["level"]


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("modeldeployment.spec.maturity.level", "0 Manual, 1 Monitored, 2 Progressive"),
        ("modeldeployment.spec.rollout.steps", "strictly increasing"),
        ("modeldeployment.spec.rollout.analysis.onNoData", "hold the step"),
        ("modeldeployment.status.canary.weight", "Share of traffic on the canary"),
    ],
)
def test_kubectl_explain_documents_the_fields(kubeconfig: str, field: str, expected: str) -> None:
    import os
    import subprocess

    out = subprocess.run(
        ["kubectl", "explain", field],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "KUBECONFIG": kubeconfig},
    ).stdout
    assert expected in " ".join(out.split())
