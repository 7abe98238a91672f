"""Benchmark: how fast and how heavy the operator is, measured (never asserted).

Runs on the local control plane (or $KUBECONFIG): creates N level-0 ModelDeployments
in a fresh namespace, lets the real KServe controller make their InferenceServices ready,
and measures
  - time from creating the N objects until all are Ready,
  - the operator's reconcile duration (its own histogram on /metrics),
  - API write requests during an idle period (should be 0),
  - the operator process's resident memory,
  - pure planning throughput (plan() calls per second, no cluster).
Writes e2e/benchmarks/reconcile-report.md and .json.

    .venv/bin/python e2e/benchmarks/bench_reconcile.py [--count 50]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "e2e"), str(ROOT / "tests" / "integration"), str(ROOT / "operator")]

import httpx  # noqa: E402
from integration_kit import (  # noqa: E402
    create_md,
    install_crds,
    model_deployment,
    run_operator,
    wait_until,
    write_requests,
)
from kubernetes import client, config  # noqa: E402

from localcluster import LocalCluster  # noqa: E402
from testbed.modelserver import free_port  # noqa: E402

OUT = ROOT / "e2e" / "benchmarks"


def histogram_quantile(text: str, name: str, q: float) -> float | None:
    buckets = []
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = re.search(r'le="([^"]+)"', line)
            if le:
                buckets.append((float(le.group(1)), float(line.rsplit(" ", 1)[1])))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return None
    target = q * buckets[-1][1]
    for bound, count in buckets:
        if count >= target:
            return bound
    return None


def counter(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def plan_throughput(seconds: float = 2.0) -> float:
    from rung.api.resource import ModelDeployment
    from rung.plan.reconcile import ClusterFeatures, Observation, plan

    md = ModelDeployment.from_body(
        model_deployment("bench", "bench", level=1)
        | {"metadata": {"name": "bench", "namespace": "bench", "uid": "u", "generation": 1}}
    )
    features = ClusterFeatures(prometheus_operator=True)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        plan(Observation(md=md, now=datetime.now(UTC), features=features))
        calls += 1
    return calls / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args()
    cluster = None
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig:
        cluster = LocalCluster()
        kubeconfig = str(cluster.up())
    api = config.new_client_from_config(config_file=kubeconfig)
    install_crds(api)
    core = client.CoreV1Api(api)
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    port = free_port()
    log = OUT / ".operator.log"
    results: dict[str, object] = {}
    try:
        with run_operator(
            kubeconfig,
            log,
            "--resync-seconds",
            "5",
            "--verbose",
            "--metrics-port",
            str(port),
            "-n",
            namespace,
        ) as op:
            metrics_url = f"http://127.0.0.1:{port}/metrics"
            wait_until(lambda: httpx.get(metrics_url).status_code == 200, "metrics")
            start = time.monotonic()
            for i in range(args.count):
                create_md(api, model_deployment(f"model-{i:03d}", namespace))

            def ready() -> bool:
                items = client.CustomObjectsApi(api).list_namespaced_custom_object(
                    "rung.dev", "v1alpha1", namespace, "modeldeployments"
                )["items"]
                return (
                    sum((i.get("status") or {}).get("phase") == "Ready" for i in items)
                    == args.count
                )

            wait_until(ready, f"{args.count} Ready", timeout=600)
            results["all_ready_seconds"] = round(time.monotonic() - start, 2)
            before = write_requests(api)
            text0 = httpx.get(metrics_url).text
            idle_start = time.monotonic()
            time.sleep(12)  # a benchmark window: two full resync rounds of idle time
            idle = time.monotonic() - idle_start
            text = httpx.get(metrics_url).text
            results["idle_write_requests"] = write_requests(api) - before
            noop = counter(text, "rung_reconciles_total", result="noop") - counter(
                text0, "rung_reconciles_total", result="noop"
            )
            results["idle_reconciles_per_second"] = round(noop / idle, 2)
            results["reconcile_p50_seconds_le"] = histogram_quantile(
                text, "rung_reconcile_duration_seconds", 0.5
            )
            results["reconcile_p95_seconds_le"] = histogram_quantile(
                text, "rung_reconcile_duration_seconds", 0.95
            )
            results["reconciles_total"] = counter(text, "rung_reconciles_total")
            results["operator_rss_mib"] = round(rss_mib(op.process.pid), 1)
    finally:
        core.delete_namespace(namespace)
        if cluster is not None and cluster.started_here:
            cluster.down()
    results["plan_calls_per_second"] = round(plan_throughput(), 1)
    results.update(
        count=args.count,
        machine=f"{platform.machine()}, {os.cpu_count()} cores",
        when=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    (OUT / "reconcile-report.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = "\n".join(f"| {k} | {v} |" for k, v in results.items())
    (OUT / "reconcile-report.md").write_text(
        "# Reconcile benchmark\n\nProduced by `make bench` (e2e/benchmarks/bench_reconcile.py)"
        f" with {args.count} level-0 ModelDeployments on the local control plane.\n"
        "Histogram quantiles are bucket upper bounds.\n\n| measure | value |\n|---|---|\n"
        + rows
        + "\n"
    )
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
