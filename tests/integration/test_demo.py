"""`make demo` runs end to end (non-interactive: --once) on the cluster under test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from integration_kit import ROOT


@pytest.mark.usefixtures("rung_crds")
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


def test_ctrl_c_through_a_closed_pipe_still_stops_the_cluster(tmp_path: Path) -> None:
    """`make demo | tee log` then Ctrl-C: tee dies first, so every later write of the
    demo meets a closed pipe; the cluster the demo started must still go down."""
    from localcluster import LocalCluster, Ports

    state = tmp_path / "cluster"
    ports = Ports.free()
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(
        RUNG_CLUSTER_DIR=str(state),
        RUNG_CLUSTER_PORT_BASE=str(ports.apiserver - 443),
        RUNG_CLUSTER_KSERVE="0",  # the demo is interrupted before it needs KServe
    )
    demo = subprocess.Popen(
        [sys.executable, str(ROOT / "e2e" / "demo.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert demo.stdout is not None
    for line in demo.stdout:
        if "kubectl apply" in line:  # cluster up, operator started
            break
    cluster = LocalCluster(state_dir=state)
    assert cluster.is_running()
    demo.stdout.close()  # tee is gone
    demo.send_signal(signal.SIGINT)
    assert demo.wait(timeout=120) == 0
    assert not cluster.is_running()
    assert ports.busy() == []  # every component stopped
