"""Idle cost of a client (Rung or Flagger) with N objects in place and nothing changing:
API requests per second by verb and resource, CPU and resident memory.

Two sources for the requests, side by side:
- the apiserver's own `apiserver_request_total`, as the delta over the client's idle
  window minus the same cluster's background rate (a window of the same length right
  after the client is stopped: kube-controller-manager, the scheduler, kwok and KServe
  keep running);
- the apiserver's audit log, which the bench cluster keeps for the measured clients'
  ServiceAccounts only: exactly this client's requests.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from benchmarks.kit import (
    BENCH_NAMESPACE,
    JSON,
    WRITE_VERBS,
    BenchCluster,
    CpuMeter,
    Process,
    Window,
    audit_counts,
    log,
    memory_mib,
    rate_table,
    window,
)


@dataclass
class Idle:
    """The client's idle window, measured while it runs."""

    client: str
    window: Window
    cpu: dict[str, float]
    memory: dict[str, float]
    audit: Counter[tuple[str, str]]


async def measure(cluster: BenchCluster, proc: Process, client: str, seconds: float) -> Idle:
    """Measure `seconds` of idle time while `proc` runs."""
    cpu = CpuMeter(proc.pid)
    win = await window(cluster, seconds)
    usage = cpu.read()
    memory = memory_mib(proc.pid)
    user = f"system:serviceaccount:{BENCH_NAMESPACE}:{client}"
    audit = audit_counts(cluster.audit_log, user, win.start, win.end)
    log(
        f"{client} idle: {sum(audit.values()) / win.seconds:.2f} req/s (audit), "
        f"CPU {usage['cpu_cores']:.3f} cores, RSS {memory['rss_mib']} MiB"
    )
    return Idle(client, win, usage, memory, audit)


async def background(cluster: BenchCluster, seconds: float) -> Window:
    """The cluster's own request rate with no measured client running."""
    return await window(cluster, seconds)


def report(idle: Idle, background: Window) -> JSON:
    """Idle figures of one client, against the background it was measured on."""
    seconds = idle.window.seconds
    during = idle.window.rates()
    base = background.rates()
    delta = {k: round(during.get(k, 0.0) - base.get(k, 0.0), 3) for k in set(during) | set(base)}
    audit_total = sum(idle.audit.values())
    audit_writes = sum(n for (verb, _), n in idle.audit.items() if verb in WRITE_VERBS)
    metric_total = sum(delta.values())
    metric_writes = sum(v for (verb, _), v in delta.items() if verb in WRITE_VERBS)
    return {
        "window_seconds": round(seconds, 1),
        "background_window_seconds": round(background.seconds, 1),
        "requests_per_second": round(audit_total / seconds, 3),
        "write_requests": audit_writes,
        "write_requests_per_second": round(audit_writes / seconds, 3),
        "by_verb_and_resource": rate_table(idle.audit, seconds),
        "apiserver_request_total": {
            "requests_per_second_during": round(sum(during.values()), 3),
            "requests_per_second_background": round(sum(base.values()), 3),
            "requests_per_second_delta": round(metric_total, 3),
            "write_requests_per_second_delta": round(metric_writes, 3),
            "delta_by_verb_and_resource": {
                f"{verb} {resource}": v
                for (verb, resource), v in sorted(delta.items(), key=lambda kv: -abs(kv[1]))
                if abs(v) >= 0.005
            },
        },
        "cpu_cores": idle.cpu["cpu_cores"],
        "cpu_seconds": idle.cpu["cpu_seconds"],
        **idle.memory,
    }
