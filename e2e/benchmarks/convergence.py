"""Rung with N level-0 ModelDeployments on the real KServe controller.

In one fresh cluster: start `rung run` (as ServiceAccount rung-bench/rung, watching the
bench namespace), create N ModelDeployments at once with the same concurrency as the
floor's client, and measure
- convergence: first create -> every ModelDeployment `status.phase: Ready`;
- create -> InferenceService: each create's response -> its InferenceService in the
  watch, for the burst, and for a paced trickle of creates afterwards (one every
  `paced_interval` seconds, N objects in place);
- idle (benchmarks.idle): requests by verb and resource, CPU, RSS, after the status
  writes have settled; then the operator is stopped and the background is measured;
- the operator's CPU during convergence and its peak RSS.
"""

from __future__ import annotations

import asyncio
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path

from benchmarks import idle
from benchmarks.floor import model_deployment
from benchmarks.kit import (
    BENCH_NAMESPACE,
    ISVC,
    JSON,
    MD,
    BenchCluster,
    CpuMeter,
    Process,
    bounded,
    check,
    cluster_quiet,
    log,
    memory_mib,
    path,
    process,
    summary,
    watching,
)

NAMESPACE = "rung"
USER = f"system:serviceaccount:{BENCH_NAMESPACE}:rung"


def rung_process(
    cluster: BenchCluster, work: Path, operator_dir: Path, namespace: str, *extra: str
) -> AbstractContextManager[Process]:
    """`rung run` for one namespace, as ServiceAccount rung-bench/rung (cluster-admin)."""
    kubeconfig = cluster.identity("rung")
    return process(
        "rung",
        [sys.executable, "-m", "rung", "run", "-n", namespace, *extra],
        work / f"{cluster.phase}-rung.log",
        env={
            "KUBECONFIG": str(kubeconfig),
            "PYTHONPATH": str(operator_dir),
            "PYTHONUNBUFFERED": "1",
        },
        cluster=cluster,
        user=USER,
        ready_resource="rung.dev/modeldeployments",
    )


def _phase(obj: JSON) -> str | None:
    return (obj.get("status") or {}).get("phase")


async def run(
    cluster: BenchCluster,
    work: Path,
    operator_dir: Path,
    count: int,
    concurrency: int,
    idle_seconds: float,
    paced: int,
    paced_interval: float,
) -> JSON:
    cluster.namespace(NAMESPACE)
    created_at: dict[str, float] = {}
    isvc_at: dict[str, float] = {}
    ready_at: dict[str, float] = {}

    def on_md(kind: str, obj: JSON, at: float) -> None:
        if _phase(obj) == "Ready":
            ready_at.setdefault(obj["metadata"]["name"], at)

    def on_isvc(kind: str, obj: JSON, at: float) -> None:
        isvc_at.setdefault(obj["metadata"]["name"], at)

    result: JSON = {"count": count, "concurrency": concurrency}
    with rung_process(cluster, work, operator_dir, NAMESPACE) as op:
        async with (
            cluster.api.aclient(concurrency) as client,
            watching(client, path(*MD, NAMESPACE), on_md) as md_watch,
            watching(client, path(*ISVC, NAMESPACE), on_isvc),
        ):

            async def create(name: str) -> None:
                body = model_deployment(name, NAMESPACE)
                check(await client.post(path(*MD, NAMESPACE), json=body), f"create {name}")
                created_at[name] = time.time()

            cpu = CpuMeter(op.pid)
            start = time.time()
            names = [f"m-{i:05d}" for i in range(count)]
            await bounded(concurrency, [lambda n=n: create(n) for n in names])
            result["creates_seconds"] = round(time.time() - start, 2)
            deadline = time.monotonic() + max(900.0, count * 0.6)
            while len(ready_at) < count and time.monotonic() < deadline:
                if op.popen.poll() is not None:
                    raise RuntimeError(f"rung exited:\n{op.log_tail()}")
                await asyncio.sleep(0.2)
            done = [ready_at[n] for n in names if n in ready_at]
            seconds = (max(done) - start) if done else float("nan")
            result.update(
                ready=len(done),
                seconds=round(seconds, 2),
                objects_per_second=round(len(done) / seconds, 1) if done else 0,
                convergence_cpu=cpu.read(),
                create_to_inference_service_seconds=summary(
                    [isvc_at[n] - created_at[n] for n in names if n in isvc_at]
                ),
            )
            if len(done) < count:
                result["error"] = f"only {len(done)} of {count} Ready after the deadline"
            log(f"rung N={count}: {len(done)} Ready in {seconds:.1f}s")
            settled = await md_watch.quiet(10, timeout=300)
            settled += await cluster_quiet(cluster)
            result["settle_seconds"] = round(settled, 1)
            measured = await idle.measure(cluster, op, "rung", idle_seconds)

            # A paced trickle of creates with N objects in place.
            paced_names = [f"p-{i:04d}" for i in range(paced)]
            for name in paced_names:
                tick = time.monotonic()
                await create(name)
                await asyncio.sleep(max(0.0, paced_interval - (time.monotonic() - tick)))
            deadline = time.monotonic() + 120
            while any(n not in isvc_at for n in paced_names) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            while any(n not in ready_at for n in paced_names) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await md_watch.quiet(10, timeout=120)
            await cluster_quiet(cluster)  # KServe's and Rung's work done
            result["paced"] = {
                "count": paced,
                "interval_seconds": paced_interval,
                "create_to_inference_service_seconds": summary(
                    [isvc_at[n] - created_at[n] for n in paced_names if n in isvc_at]
                ),
            }
            result["peak_rss_mib"] = memory_mib(op.pid)["peak_rss_mib"]
    background = await idle.background(cluster, idle_seconds / 2)
    result["idle"] = idle.report(measured, background)
    return result
