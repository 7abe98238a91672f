"""Flagger side by side: N Canary objects on the same kind of cluster, measured the same way.

Flagger (built from its Go module by `e2e/cluster/build.sh flagger`, version pinned in
e2e/versions.env) runs as a process against the bench cluster's apiserver, as
ServiceAccount rung-bench/flagger bound to Flagger's own ClusterRole (from its
module's artifacts/flagger/account.yaml), with its CRDs from
artifacts/flagger/crd.yaml, `-mesh-provider kubernetes` and `-metrics-server` pointing
at a real Prometheus. Each Canary targets a Deployment whose pods kwok runs, with an
analysis that has one Prometheus metric (a MetricTemplate). Flagger's defaults are
kept otherwise (client QPS 100, burst 250, 2 workers).

Measured: time until every Canary is `Initialized` (Flagger has created the
`-primary` Deployment and the three Services, and scaled the target to zero), then
idle requests by verb and resource, CPU and RSS (benchmarks.idle).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

from benchmarks import idle
from benchmarks.exporter import Exporter
from benchmarks.kit import (
    BENCH_NAMESPACE,
    CANARY,
    DEPLOYMENT,
    JSON,
    BenchCluster,
    CpuMeter,
    apply_files,
    bounded,
    check,
    cluster_quiet,
    log,
    memory_mib,
    path,
    process,
    watching,
)
from localcluster.versions import cache_dir, read_versions
from testbed.modelserver import free_port
from testbed.prometheus import PrometheusServer, ScrapeTarget

NAMESPACE = "flagger"
MODULE = "github.com/fluxcd/flagger"


def version() -> str:
    return read_versions()["FLAGGER_VERSION"]


def binary() -> Path:
    built = cache_dir() / "bin" / f"flagger-{version()}" / "flagger"
    if not built.exists():
        raise RuntimeError(f"{built} is missing: run `bash e2e/cluster/build.sh flagger`")
    return built


def module_dir() -> Path:
    """Flagger's module directory (`go mod download -json`), for its CRDs and RBAC."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{MODULE}@{version()}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=cache_dir(),
    ).stdout
    return Path(json.loads(out)["Dir"])


def deployment(name: str) -> JSON:
    labels = {"app": name}
    return {
        "apiVersion": DEPLOYMENT[0],
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "podinfo",
                            "image": "ghcr.io/stefanprodan/podinfo:6.0.0",
                            "ports": [{"name": "http", "containerPort": 9898}],
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                        }
                    ]
                },
            },
        },
    }


def canary(name: str, interval: str) -> JSON:
    return {
        "apiVersion": CANARY[0],
        "kind": "Canary",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "progressDeadlineSeconds": 600,
            "service": {"port": 80, "targetPort": 9898},
            "analysis": {
                "interval": interval,
                "threshold": 2,
                "iterations": 5,
                "metrics": [
                    {
                        "name": "error-rate",
                        "templateRef": {"name": "error-rate", "namespace": NAMESPACE},
                        "thresholdRange": {"max": 0.01},
                        "interval": interval,
                    }
                ],
            },
        },
    }


def metric_template(prometheus_url: str) -> JSON:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": "error-rate", "namespace": NAMESPACE},
        "spec": {
            "provider": {"type": "prometheus", "address": prometheus_url},
            "query": (
                'sum(rate(istio_requests_total{destination_workload_namespace="{{ namespace }}",'
                'destination_workload=~"{{ target }}",response_code=~"5.."}[{{ interval }}]))'
                " or vector(0)"
            ),
        },
    }


async def run(
    cluster: BenchCluster,
    work: Path,
    count: int,
    concurrency: int,
    idle_seconds: float,
    interval: str,
) -> JSON:
    module = module_dir()
    with cluster.api.sync() as client:
        apply_files(client, [module / "artifacts/flagger/crd.yaml"])
        apply_files(client, [module / "artifacts/flagger/account.yaml"])  # ClusterRole only
    kubeconfig = cluster.identity("flagger", cluster_role="flagger")
    cluster.namespace(NAMESPACE)
    exporter = Exporter(NAMESPACE, []).start()
    prometheus = PrometheusServer(
        work / "prometheus-flagger", [ScrapeTarget("stand-in", exporter.address)], "15s"
    )
    prometheus.start()
    initialized: dict[str, float] = {}

    def on_canary(kind: str, obj: JSON, at: float) -> None:
        if (obj.get("status") or {}).get("phase") == "Initialized":
            initialized.setdefault(obj["metadata"]["name"], at)

    result: JSON = {"count": count, "version": version(), "analysis_interval": interval}
    port = free_port()
    argv = [
        str(binary()),
        f"-kubeconfig={kubeconfig}",
        "-mesh-provider=kubernetes",
        f"-metrics-server={prometheus.url}",
        f"-port={port}",
        "-log-level=info",
        "-enable-leader-election=false",
    ]
    try:
        with process(
            "flagger",
            argv,
            work / f"{cluster.phase}-flagger.log",
            env={},
            cluster=cluster,
            user=f"system:serviceaccount:{BENCH_NAMESPACE}:flagger",
            ready_resource="flagger.app/canaries",
        ) as proc:
            async with (
                cluster.api.aclient(concurrency) as client,
                watching(client, path(*CANARY, NAMESPACE), on_canary) as watch,
            ):
                check(
                    await client.post(
                        path("flagger.app/v1beta1", "metrictemplates", NAMESPACE),
                        json=metric_template(prometheus.url),
                    ),
                    "MetricTemplate",
                )
                names = [f"f-{i:05d}" for i in range(count)]

                async def create(name: str) -> None:
                    check(
                        await client.post(path(*DEPLOYMENT, NAMESPACE), json=deployment(name)),
                        f"deployment {name}",
                    )
                    check(
                        await client.post(path(*CANARY, NAMESPACE), json=canary(name, interval)),
                        f"canary {name}",
                    )

                cpu = CpuMeter(proc.pid)
                start = time.time()
                await bounded(concurrency, [lambda n=n: create(n) for n in names])
                result["creates_seconds"] = round(time.time() - start, 2)
                deadline = time.monotonic() + max(900.0, count * 0.6)
                while len(initialized) < count and time.monotonic() < deadline:
                    if proc.popen.poll() is not None:
                        raise RuntimeError(f"flagger exited:\n{proc.log_tail()}")
                    await asyncio.sleep(0.5)
                seconds = (max(initialized.values()) - start) if initialized else float("nan")
                result.update(
                    initialized=len(initialized),
                    seconds=round(seconds, 2),
                    objects_per_second=round(len(initialized) / seconds, 1) if initialized else 0,
                    convergence_cpu=cpu.read(),
                )
                if len(initialized) < count:
                    result["error"] = f"only {len(initialized)} of {count} Initialized"
                log(f"flagger N={count}: {len(initialized)} Initialized in {seconds:.1f}s")
                settled = await watch.quiet(10, timeout=300) + await cluster_quiet(cluster)
                result["settle_seconds"] = round(settled, 1)
                measured = await idle.measure(cluster, proc, "flagger", idle_seconds)
                result["peak_rss_mib"] = memory_mib(proc.pid)["peak_rss_mib"]
        background = await idle.background(cluster, idle_seconds / 2)
        result["idle"] = idle.report(measured, background)
    finally:
        prometheus.stop()
        exporter.stop()
    return result
