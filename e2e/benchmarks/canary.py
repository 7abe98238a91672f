"""Canary decision latency: C concurrent canaries (default 100) with a 5 s interval.

Level-2 ModelDeployments with the gateway-api router (two InferenceServices and a
weighted HTTPRoute each; the real KServe controller makes both Ready), Rung's default
analysis (error rate and p95 latency from the SLOs) on a real Prometheus. Prometheus
scrapes a stand-in exporter (benchmarks.exporter) that serves fixed healthy traffic for
every stable and canary workload, so every analysis passes and each canary walks
through its steps.

All C ModelDeployments go from v1 to v2 at once; a watch records, per object, when each
status was first seen. A decision is a change of `status.canary.weight`. It was due one
interval after the later of `status.canary.stepStartedAt` and `status.analysis.lastRun`
of the status before it, and not before the canary's InferenceService is Ready (Rung
analyses only a ready canary; KServe makes 100 new InferenceServices Ready at a few per
second here, which holds up the first step), so

    decision latency = weight changed - max(that clock + interval, canary Ready)

with the clock as written in status (RFC 3339, whole seconds): the figure the targets
use, and the clock Rung itself schedules from. Next to it, the same with the clock
replaced by the time the bench first saw the status carrying it (the same watch delay at
both ends, but a step can then look up to 1 s short: Rung counts the interval from the
truncated clock, so it may run the analysis before the interval has passed since the
write).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.convergence import rung_process
from benchmarks.exporter import Exporter
from benchmarks.floor import model_deployment
from benchmarks.kit import (
    ISVC,
    JSON,
    MD,
    BenchCluster,
    CpuMeter,
    bounded,
    check,
    condition_true,
    log,
    memory_mib,
    path,
    summary,
    watching,
)
from testbed.prometheus import PrometheusServer, ScrapeTarget

NAMESPACE = "canary"
STEPS = [20, 40, 60, 80, 100]


def _parse(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _seconds(duration: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(duration[:-1]) * units[duration[-1]]


class Timeline:
    """Per object: the statuses seen, and the decisions between them."""

    def __init__(self, interval: float, version: str) -> None:
        self.interval, self.version = interval, version
        self.first_seen: dict[tuple[str, str], float] = {}
        self.last: dict[str, tuple[int, str]] = {}
        self.started: dict[str, float] = {}
        self.done: dict[str, float] = {}
        self.decisions: list[dict[str, Any]] = []
        self.phases: dict[str, str | None] = {}
        self.canary_ready: dict[str, float] = {}

    def on_isvc(self, kind: str, obj: JSON, at: float) -> None:
        """Analysis is due only once the canary's InferenceService is Ready."""
        name = obj["metadata"]["name"]
        if name.endswith("-canary") and condition_true(obj, "Ready"):
            self.canary_ready.setdefault(name.removesuffix("-canary"), at)

    def on_event(self, kind: str, obj: JSON, at: float) -> None:
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        self.phases[name] = status.get("phase")
        if (status.get("stable") or {}).get("version") == self.version and status.get(
            "phase"
        ) == "Ready":
            self.done.setdefault(name, at)
        canary = status.get("canary") or {}
        if canary.get("version") != self.version:
            return
        self.started.setdefault(name, at)
        clocks = [canary.get("stepStartedAt"), (status.get("analysis") or {}).get("lastRun")]
        clock = max((c for c in clocks if c), key=_parse, default="")
        self.first_seen.setdefault((name, clock), at)
        weight = int(canary.get("weight", 0))
        previous = self.last.get(name)
        self.last[name] = (weight, clock)
        if previous is None or previous[0] == weight or not previous[1]:
            return
        was_clock = previous[1]
        seen = self.first_seen[(name, was_clock)]
        ready = self.canary_ready.get(name, 0.0)
        due = max(seen + self.interval, ready)
        due_by_clock = max(_parse(was_clock) + self.interval, ready)
        self.decisions.append(
            {
                "name": name,
                "from": previous[0],
                "to": weight,
                "step_seconds": at - seen,
                "waited_for_ready": ready > seen + self.interval,
                "latency_seconds": at - due_by_clock,
                "latency_from_first_seen_seconds": at - due,
            }
        )


async def run(
    cluster: BenchCluster,
    work: Path,
    operator_dir: Path,
    canaries: int,
    interval: str,
    concurrency: int,
) -> JSON:
    cluster.namespace(NAMESPACE)
    names = [f"c-{i:03d}" for i in range(canaries)]
    workloads = [w for n in names for w in (f"{n}-predictor", f"{n}-canary-predictor")]
    exporter = Exporter(NAMESPACE, workloads).start()
    prometheus = PrometheusServer(
        work / "prometheus-canary", [ScrapeTarget("stand-in", exporter.address)], "1s"
    )
    prometheus.start()
    seconds = _seconds(interval)
    timeline = Timeline(seconds, "v2")
    result: JSON = {"canaries": canaries, "interval_seconds": seconds, "steps": STEPS}
    try:
        prometheus.wait_for_series("istio_requests_total", timeout=60)
        with rung_process(cluster, work, operator_dir, NAMESPACE) as op:
            async with (
                cluster.api.aclient(concurrency) as client,
                watching(client, path(*MD, NAMESPACE), timeline.on_event) as md_watch,
                watching(client, path(*ISVC, NAMESPACE), timeline.on_isvc),
            ):
                v1_ready: set[str] = set()

                def body(name: str) -> JSON:
                    return model_deployment(
                        name,
                        NAMESPACE,
                        level=2,
                        monitoring={
                            "prometheus": {"url": prometheus.url},
                            "slo": {"maxErrorRate": 0.05, "latencyP95Ms": 500},
                        },
                        rollout={
                            "router": "gateway-api",
                            "gateway": {"name": "inference-gateway"},
                            "steps": STEPS,
                            "interval": interval,
                            "progressDeadline": "10m",
                            "analysis": {"failureLimit": 2, "onNoData": "hold"},
                        },
                    )

                async def create(name: str) -> None:
                    check(await client.post(path(*MD, NAMESPACE), json=body(name)), name)

                start = time.time()
                await bounded(concurrency, [lambda n=n: create(n) for n in names])

                async def all_v1_ready() -> None:
                    while len(v1_ready) < canaries:
                        listing = check(await client.get(path(*MD, NAMESPACE)), "list")
                        v1_ready.update(
                            o["metadata"]["name"]
                            for o in listing["items"]
                            if (o.get("status") or {}).get("phase") == "Ready"
                        )
                        await asyncio.sleep(1)

                await asyncio.wait_for(all_v1_ready(), timeout=600)
                result["v1_ready_seconds"] = round(time.time() - start, 1)
                await md_watch.quiet(5, timeout=120)
                log(f"canary: {canaries} level-2 ModelDeployments Ready at v1; moving to v2")

                async def to_v2(name: str) -> None:
                    patch = {
                        "spec": {"model": {"storageUri": f"s3://models/{name}/v2", "version": "v2"}}
                    }
                    check(
                        await client.patch(
                            path(*MD, NAMESPACE, name),
                            json=patch,
                            headers={"Content-Type": "application/merge-patch+json"},
                        ),
                        f"patch {name}",
                    )

                cpu = CpuMeter(op.pid)
                patched = time.time()
                await bounded(concurrency, [lambda n=n: to_v2(n) for n in names])
                budget = max(600.0, seconds * len(STEPS) * 20)
                deadline = time.monotonic() + budget
                while len(timeline.done) < canaries and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                result["rollout_cpu"] = cpu.read()
                result.update(memory_mib(op.pid))
    finally:
        prometheus.stop()
        exporter.stop()
    latencies = [d["latency_seconds"] for d in timeline.decisions]
    result.update(
        promoted=len(timeline.done),
        rollout_seconds=round(max(timeline.done.values()) - patched, 1) if timeline.done else None,
        decisions=len(timeline.decisions),
        decision_latency_seconds=summary(latencies),
        decision_latency_from_first_seen_seconds=summary(
            [d["latency_from_first_seen_seconds"] for d in timeline.decisions]
        ),
        step_seconds=summary([d["step_seconds"] for d in timeline.decisions]),
        decisions_waiting_for_canary_ready=sum(d["waited_for_ready"] for d in timeline.decisions),
        canary_ready_seconds=summary([t - patched for t in timeline.canary_ready.values()]),
        canary_start_seconds=summary([t - patched for t in timeline.started.values()]),
        not_promoted={n: timeline.phases.get(n) for n in names if n not in timeline.done},
    )
    if len(timeline.done) < canaries:
        result["error"] = f"only {len(timeline.done)} of {canaries} promoted"
    log(
        f"canary: {len(timeline.decisions)} decisions, latency p50 "
        f"{result['decision_latency_seconds']['p50']}s p99 "
        f"{result['decision_latency_seconds']['p99']}s; {len(timeline.done)} promoted"
    )
    return result
