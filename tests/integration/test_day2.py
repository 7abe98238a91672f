"""Day-2 commands on real rollouts: `rung get -w`, promote, abort, retry, undo, pause,
resume and approve, on the local cluster with the real KServe controller.

The rollouts use an analysis interval (10 min) and progress deadline (30 min) no test
waits for, and the operator runs with its default settings (safety resync 5 min): a
step that moves during these tests moved because a command woke the operator. How long
each command took to act, from the annotation's write to the status that answers it,
is printed and written to `day2-latency.json` in the test's directory (measured, not
asserted; docs/rollouts.md quotes a run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from integration_kit import (
    ROOT,
    condition,
    create_md,
    custom,
    model_deployment,
    patch_md,
    rung_cli,
    wait_until,
    watch_md,
)
from kubernetes import client, watch

from localcluster.cluster import _kubectl
from rung.api.crd import GROUP, PLURAL, VERSION

NAME = "churn"
Obj = dict[str, Any]
pytestmark = pytest.mark.usefixtures("operator")


def _md(namespace: str, **rollout: Any) -> Obj:
    return model_deployment(
        NAME,
        namespace,
        level=2,
        monitoring={"prometheus": {"url": "http://127.0.0.1:9"}, "interval": "10m"},
        rollout={
            "router": "gateway-api",
            "gateway": {"name": "inference-gateway"},
            "steps": [20, 50, 100],
            "interval": "10m",
            "progressDeadline": "30m",
            **rollout,
        },
    )


def _version(version: str) -> Obj:
    return {"spec": {"model": {"storageUri": f"s3://models/{NAME}/{version}", "version": version}}}


def _status(o: Obj) -> Obj:
    return dict(o.get("status") or {})


def _phase(o: Obj) -> str | None:
    return _status(o).get("phase")


def _canary(o: Obj) -> Obj:
    return dict(_status(o).get("canary") or {})


def _stable(o: Obj) -> str | None:
    return (_status(o).get("stable") or {}).get("version")


class Latencies:
    """Watches the ModelDeployment: when an annotation changed, when status answered."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.measured: dict[str, float] = {}

    def command(self, key: str, done: Callable[[Obj], bool], *args: str) -> Obj:
        """Run `rung ARGS` and wait for `done`; record the time from the annotation's
        write to the first status where `done` holds. The watch starts (from the object's
        current resourceVersion, so it misses no event) before the command runs."""
        before = custom(self.api).get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, NAME
        )
        annotations = dict(before["metadata"].get("annotations") or {})
        seen: list[tuple[float, Obj]] = []

        def follow() -> None:
            stream = watch.Watch().stream(
                custom(self.api).list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                field_selector=f"metadata.name={NAME}",
                resource_version=before["metadata"]["resourceVersion"],
                timeout_seconds=60,
            )
            for event in stream:
                seen.append((time.monotonic(), event["object"]))
                if done(event["object"]):
                    return

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        printed = rung_cli(*args, NAME, "-n", self.namespace)
        assert NAME in printed, printed
        follower.join(timeout=70)
        assert seen, f"{key}: nothing changed"
        written = next(
            t for t, o in seen if (o["metadata"].get("annotations") or {}) != annotations
        )
        answered, final = seen[-1]
        assert done(final), f"{key}: not done within 60 s; last seen {final.get('status')}"
        self.measured[key] = round(answered - written, 3)
        return final


@contextmanager
def get_watch(namespace: str, name: str = NAME) -> Iterator[list[str]]:
    """`rung get NAME -w` with its output on a pipe (not a TTY): the lines it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rung", "get", name, "-n", namespace, "-w"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True)
    reader.start()
    try:
        yield lines
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.join(timeout=10)


def test_day2_commands_act_on_real_rollouts(
    kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    latency = Latencies(kube_api, namespace)
    create_md(kube_api, _md(namespace))
    watch_md(kube_api, namespace, NAME, lambda o: _phase(o) == "Ready", "v1 Ready", timeout=60)

    with get_watch(namespace) as drawn:
        patch_md(kube_api, namespace, NAME, _version("v2"))
        watch_md(kube_api, namespace, NAME, lambda o: _canary(o).get("weight") == 20, "v2 at 20%")
        # pause holds the canary; resume continues at the same step
        paused = latency.command(
            "pause", lambda o: _phase(o) == "Paused" and bool(_canary(o).get("pausedAt")), "pause"
        )
        assert _canary(paused)["weight"] == 20
        assert condition(paused, "Progressing")["reason"] == "PausedByUser"
        latency.command("resume", lambda o: _phase(o) == "Progressing", "resume")
        # promote: this step's analysis is skipped (no analysis would run for 10 min)
        stepped = latency.command("promote", lambda o: _canary(o).get("weight") == 50, "promote")
        assert _status(stepped)["history"][-1]["event"] == "StepSkipped"
        # promote --full: every remaining step
        latency.command(
            "promote --full", lambda o: _phase(o) in ("Promoting", "Ready"), "promote", "--full"
        )
        done = watch_md(
            kube_api, namespace, NAME, lambda o: _phase(o) == "Ready" and _stable(o) == "v2", "v2"
        )
        assert [r["version"] for r in _status(done)["revisions"]] == ["v1"]
        assert "PromotedByUser" in [h["event"] for h in _status(done)["history"]]

    picture = "".join(drawn)
    for weight in ("[20%]", "[50%]"):
        assert weight in picture.replace("\x1b", ""), picture[-3000:]
    assert "InferenceService churn-canary" in picture
    assert "PausedByUser" in picture
    assert "StepSkipped" in picture

    # abort: v3 back to 0 % at once, rejected; retry rolls it out again
    patch_md(kube_api, namespace, NAME, _version("v3"))
    watch_md(kube_api, namespace, NAME, lambda o: _canary(o).get("weight") == 20, "v3 at 20%")
    aborted = latency.command(
        "abort", lambda o: _phase(o) in ("RollingBack", "RolledBack"), "abort"
    )
    assert _canary(aborted).get("weight", 0) == 0
    rolled_back = watch_md(
        kube_api, namespace, NAME, lambda o: _phase(o) == "RolledBack", "v3 rolled back"
    )
    assert _status(rolled_back)["rejected"]["version"] == "v3"
    latency.command(
        "retry", lambda o: _phase(o) == "Progressing" and _canary(o).get("version") == "v3", "retry"
    )
    watch_md(kube_api, namespace, NAME, lambda o: _canary(o).get("weight") == 20, "v3 again")
    latency.command(
        "promote --full (v3)",
        lambda o: _phase(o) == "Promoting" or _stable(o) == "v3",
        "promote",
        "--full",
    )
    watch_md(kube_api, namespace, NAME, lambda o: _stable(o) == "v3", "v3 stable")

    # undo: back to v2 (the last revision) while spec.model still says v3
    undone = latency.command("undo", lambda o: _canary(o).get("version") == "v2", "undo")
    assert condition(undone, "Undone")["status"] == "True"
    watch_md(kube_api, namespace, NAME, lambda o: _canary(o).get("weight") == 20, "v2 canary")
    rung_cli("promote", NAME, "-n", namespace, "--full")
    back = watch_md(
        kube_api, namespace, NAME, lambda o: _phase(o) == "Ready" and _stable(o) == "v2", "v2"
    )
    spec = custom(kube_api).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, NAME)
    assert spec["spec"]["model"]["version"] == "v3"  # the operator never writes spec
    assert "Undone" in [h["event"] for h in _status(back)["history"]]

    # approve at the manual gate
    v4 = _version("v4")
    v4["spec"]["rollout"] = {"gate": "manual", "steps": [100]}
    patch_md(kube_api, namespace, NAME, v4)
    watch_md(kube_api, namespace, NAME, lambda o: _canary(o).get("weight") == 100, "v4 at 100%")
    rung_cli("promote", NAME, "-n", namespace)  # skips the only step: now at the gate
    watch_md(kube_api, namespace, NAME, lambda o: _phase(o) == "Paused", "v4 at the gate")
    approved = latency.command("approve", lambda o: _phase(o) == "Promoting", "approve")
    assert "approved by" in _status(approved)["history"][-1]["message"]

    print("day-2 command latency (s):", json.dumps(latency.measured))
    (tmp_path / "day2-latency.json").write_text(json.dumps(latency.measured, indent=2))
    assert set(latency.measured) >= {"pause", "resume", "promote", "abort", "retry", "undo"}


def test_kubectl_finds_the_plugin(kube_api: client.ApiClient, namespace: str) -> None:
    """`kubectl rung get NAME` through kubectl's plugin lookup (kubectl-rung on PATH)."""
    create_md(kube_api, _md(namespace))
    watch_md(kube_api, namespace, NAME, lambda o: _phase(o) == "Ready", "Ready", timeout=60)
    plugin = shutil.which("kubectl-rung", path=str(Path(sys.executable).parent))
    assert plugin is not None, "kubectl-rung is not installed next to python (pip install -e .)"
    env = {**os.environ, "PATH": f"{Path(plugin).parent}:{os.environ.get('PATH', '')}"}
    listed = subprocess.run(
        [_kubectl(), "plugin", "list"], env=env, capture_output=True, text=True, check=False
    )
    assert "kubectl-rung" in listed.stdout, listed.stdout + listed.stderr
    shown = subprocess.run(
        [_kubectl(), "rung", "get", NAME, "-n", namespace],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"ModelDeployment {namespace}/{NAME}" in shown.stdout
    assert "phase Ready" in shown.stdout
    assert "InferenceService churn" in shown.stdout


def test_get_watch_draws_every_step_of_an_analysed_rollout(
    kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """A healthy gateway-api canary on real Prometheus and model servers: `rung get -w`
    on a pipe prints a picture per change, one of them at each step with its checks."""
    import test_level2 as level2

    name = level2.NAME
    with level2.bench(tmp_path, kube_api, namespace, "gateway-api") as b:
        body = level2.level2(namespace, b.prometheus.url, "gateway-api")
        level2._deploy_v1(kube_api, namespace, body)
        with get_watch(namespace, name) as drawn:
            level2._to_v2(kube_api, namespace)
            watch_md(
                kube_api,
                namespace,
                name,
                lambda o: _phase(o) == "Ready" and _stable(o) == "v2",
                "v2 promoted",
                timeout=120,
            )
            # the last picture: v2 stable, no canary
            wait_until(lambda: "phase Ready" in "".join(drawn).split("-" * 40)[-1], "last picture")
    pictures = "".join(drawn).split("-" * 40 + "\n")
    steps = {mark: [p for p in pictures if f"[{mark}]" in p] for mark in ("20%", "50%", "100%")}
    for mark, shown in steps.items():
        assert shown, f"no picture at step {mark}"
    # from the second step on, each picture carries the analysis that moved it
    assert "✔ error-rate" in steps["50%"][0]
    assert "pass" in steps["100%"][0]
    assert f"InferenceService {name}-canary  ✔ Ready" in steps["20%"][0]
    assert "Promoted" in pictures[-1]
    (tmp_path / "rung-get-w.txt").write_text("".join(drawn))
