"""Per-object scheduling with the operator's default settings (300 s safety resync):
a canary decides at its own interval, and a hanging Prometheus on one object does
not hold up another."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from integration_kit import create_md, model_deployment, watch_md
from kubernetes import client
from test_level2 import NAME, _deploy_v1, _to_v2, bench, level2

from rung.plan.events import parse_time

pytestmark = pytest.mark.usefixtures("operator")
INTERVAL = 3


def test_a_canary_advances_at_its_interval_not_at_the_resync(
    kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """interval 3 s, steps 25/50/100, real Prometheus and model servers: every analysis
    runs within interval + 1 s of the previous one, and each step follows the analysis
    that passed it at once (the operator's own timestamps in status)."""
    with bench(tmp_path, kube_api, namespace, "gateway-api") as b:
        body = level2(
            namespace, b.prometheus.url, "gateway-api", interval=f"{INTERVAL}s", steps=[25, 50, 100]
        )
        _deploy_v1(kube_api, namespace, body)
        _to_v2(kube_api, namespace)
        runs: list[str] = []
        steps: dict[int, str] = {}

        def record(o: dict[str, Any]) -> bool:
            status = o.get("status") or {}
            canary, analysis = status.get("canary"), status.get("analysis") or {}
            if canary and analysis.get("lastRun") and analysis["lastRun"] not in runs:
                runs.append(analysis["lastRun"])
            if canary and canary.get("stepStartedAt"):
                steps.setdefault(canary["step"], canary["stepStartedAt"])
            return status.get("phase") == "Ready" and status["stable"]["version"] == "v2"

        watch_md(kube_api, namespace, NAME, record, "v2 promoted", timeout=120)

    assert sorted(steps) == [0, 1, 2], steps
    times = [parse_time(t) for t in runs]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    # Status times have whole seconds: a gap of at most interval + 1 s reads as <= 4.
    assert gaps, runs
    assert all(gap <= INTERVAL + 1 for gap in gaps), (runs, steps)
    # Each later step started with the analysis run that passed the step before it.
    assert {steps[1], steps[2]} <= set(runs)


@contextmanager
def hanging_server() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        listener.close()


def test_a_hanging_prometheus_on_one_object_does_not_delay_another(
    kube_api: client.ApiClient, namespace: str
) -> None:
    """`slow` (level 1) reads its SLOs from a Prometheus that never answers; `quick`,
    created after it, is Ready and reported before `slow` gets any status at all."""
    with hanging_server() as url:
        slow = model_deployment("slow", namespace, level=1, monitoring={"prometheus": {"url": url}})
        create_md(kube_api, slow)
        create_md(kube_api, model_deployment("quick", namespace))
        watch_md(
            kube_api,
            namespace,
            "quick",
            lambda o: (o.get("status") or {}).get("phase") == "Ready",
            "quick Ready",
        )
        hanging = watch_md(kube_api, namespace, "slow", lambda o: True, "slow now")
        assert not (hanging.get("status") or {}).get("phase"), "slow was not waiting"
        # It is not stuck either: the query times out and MonitoringReady says why.
        done = watch_md(
            kube_api,
            namespace,
            "slow",
            lambda o: any(
                c["type"] == "MonitoringReady" and c["status"] == "False"
                for c in (o.get("status") or {}).get("conditions") or []
            ),
            "slow reports its Prometheus",
            timeout=90,
        )
    ready = next(c for c in done["status"]["conditions"] if c["type"] == "MonitoringReady")
    assert url.split("//")[1] in ready["message"] or "Prometheus" in ready["message"]
