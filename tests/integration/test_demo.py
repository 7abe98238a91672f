"""`make demo` runs end to end (non-interactive: --once) on the cluster under test."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from integration_kit import ROOT

pytestmark = pytest.mark.usefixtures("rung_crds")


def test_demo_reaches_ready(kubeconfig: str) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "e2e" / "demo.py"), "--once"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "KUBECONFIG": kubeconfig},
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "modeldeployment.rung.dev/iris condition met" in result.stdout
    assert "the KServe controller reconciles it" in result.stdout
    assert "inferenceservice.serving.kserve.io/iris condition met" in result.stdout
    assert 'modeldeployment.rung.dev "iris" deleted' in result.stdout
