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
    assert {0, 1, 2} <= levels


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_accepted(kube_api: client.ApiClient, namespace: str, path: Path) -> None:
    for body in yaml.safe_load_all(path.read_text()):
        body["metadata"]["namespace"] = namespace
        created = create_md(kube_api, body)
        assert created["spec"]["maturity"]["level"] == body["spec"]["maturity"]["level"]
