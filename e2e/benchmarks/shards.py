"""One vs several Rung replicas (issue 15): N level-0 ModelDeployments, sharded on Leases.

In one fresh cluster per replica count R: start R `rung run` processes with
`--shards R` (`--leader-elect` for R = 1), each as its own ServiceAccount
(rung-bench/rung-<i>, cluster-admin), with `--identity rung-<i>`, the same
`--lease-namespace` and a metrics port of its own; wait until the shards are split
(every replica's `/shards` owns its quota, no shard twice); then create N ModelDeployments
at once with the bench's client and concurrency (as `convergence.py` does), and measure

- status written: first create -> every ModelDeployment has `status.observedGeneration`
  equal to its `metadata.generation` (Rung's own work, as a watch sees it);
- Ready: first create -> every ModelDeployment `status.phase: Ready`, bounded by
  `ready_timeout` (KServe's InferenceService controller runs one worker: it decides this
  figure, whatever the replica count);
- per replica: CPU while converging, peak RSS (VmHWM) and RSS once the status writes have
  settled (VmRSS), its `rung_api_requests_total` and `rung_reconciles_total` (its own
  /metrics), the shards it owns (`/shards`) and its lease transitions;
- single writer: every write of a ModelDeployment or an InferenceService by name (PATCH,
  PUT, DELETE) from the audit log, by replica: objects written by more than one replica,
  and objects written by a replica not owning their shard (`rung.election.shard_of`);
- the machine's 1-minute load average, sampled every 5 s through the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import httpx

from benchmarks.floor import model_deployment
from benchmarks.kit import (
    AUDIT_VERBS,
    BENCH_NAMESPACE,
    ISVC,
    JSON,
    MD,
    WRITE_VERBS,
    BenchCluster,
    CpuMeter,
    Process,
    bounded,
    check,
    log,
    memory_mib,
    path,
    process,
    summary,
    watching,
)

NAMESPACE = "rung"
LEASE_NAMESPACE = "rung-leases"


def _user(i: int) -> str:
    return f"system:serviceaccount:{BENCH_NAMESPACE}:rung-{i}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metrics_ports(port_base: int | None, replicas: int) -> list[int]:
    """Metrics ports of the replicas: base+900+i inside the bench's port block (the
    control plane uses base+257..base+602), else any free ports."""
    if port_base:
        return [port_base + 900 + i for i in range(replicas)]
    return [_free_port() for _ in range(replicas)]


def replica_argv(i: int, replicas: int, metrics_port: int) -> list[str]:
    """`rung run` for replica i of `replicas`: sharded (leader election with one)."""
    argv = ["run", "-n", NAMESPACE, "--identity", f"rung-{i}"]
    argv += ["--lease-namespace", LEASE_NAMESPACE, "--metrics-port", str(metrics_port)]
    argv += ["--shards", str(replicas)] if replicas > 1 else ["--leader-elect"]
    return argv


def _scrape(port: int, route: str) -> httpx.Response:
    response = httpx.get(f"http://127.0.0.1:{port}{route}", timeout=10)
    response.raise_for_status()
    return response


def shards_of(port: int) -> JSON:
    result: JSON = _scrape(port, "/shards").json()
    return result


def counters(text: str, family: str, label: str) -> dict[str, float]:
    """`family`'s samples summed by `label` (e.g. rung_api_requests_total by method)."""
    out: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        if not line.startswith(family + "{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        out[labels.get(label, "")] += float(line.rsplit(" ", 1)[1])
    return {k: round(v) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def split_balanced(snapshots: list[JSON], shards: int) -> bool:
    """Every shard owned by exactly one replica, each at its quota."""
    owned = [s for snap in snapshots for s in snap.get("owned", [])]
    return (
        sorted(owned) == list(range(shards))
        and all(len(snap.get("owned", [])) == snap.get("target") for snap in snapshots)
        and all(len(snap.get("members", [])) == len(snapshots) for snap in snapshots)
    )


def writers(audit_log: Path, users: dict[str, str], until: float) -> dict[str, Counter[str]]:
    """Writes by name of ModelDeployments and InferenceServices in the bench namespace, from
    the audit log, received before `until` (wall time; the replicas are stopped one after
    the other after it, and each one stopping hands its shards to those still running):
    object name -> Counter of 'replica verb resource[/sub]'."""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    if not audit_log.exists():
        return out
    with audit_log.open() as fh:
        for line in fh:
            if "rung-bench:rung-" not in line:
                continue
            event = json.loads(line)
            who = users.get(event.get("user", {}).get("username", ""))
            ref = event.get("objectRef") or {}
            verb = AUDIT_VERBS.get(event.get("verb", ""), "")
            if (
                who is None
                or verb not in WRITE_VERBS
                or ref.get("namespace") != NAMESPACE
                or ref.get("resource") not in (MD[1], ISVC[1])
                or not ref.get("name")
            ):
                continue
            at = datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
            if at.timestamp() >= until:
                continue
            what = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
            out[ref["name"]][f"{who} {verb} {what}"] += 1
    return out


def single_writer(written: dict[str, Counter[str]], owner_of: dict[int, str], shards: int) -> JSON:
    """How the writes split among replicas; objects written by two, or by a non-owner."""
    from rung.election import shard_of

    by_replica: Counter[str] = Counter()
    status_writes: list[float] = []
    status_by_replica: Counter[str] = Counter()
    two, foreign = [], []
    for name, counts in written.items():
        who = {k.split(" ", 1)[0] for k in counts}
        for key, n in counts.items():
            by_replica[key.split(" ", 1)[0]] += n
            if key.endswith(f"{MD[1]}/status"):
                status_by_replica[key.split(" ", 1)[0]] += n
        status_writes.append(sum(n for k, n in counts.items() if k.endswith(f"{MD[1]}/status")))
        if len(who) > 1:
            two.append(name)
        owner = owner_of.get(shard_of((NAMESPACE, name), shards))
        if owner is not None and who - {owner}:
            foreign.append(name)
    return {
        "objects_written": len(written),
        "objects_written_by_more_than_one_replica": len(two),
        "objects_written_by_a_replica_not_owning_their_shard": len(foreign),
        "examples": sorted(two + foreign)[:10],
        "writes_by_replica": dict(sorted(by_replica.items())),
        "status_writes_by_replica": dict(sorted(status_by_replica.items())),
        "status_writes_per_object": summary(status_writes),
    }


def overlaps(snapshots: list[JSON]) -> int:
    """Pairs of tenures of one shard, on different replicas, that overlap in time (from
    every replica's /shards: each stretch of owning a shard, wall-clock start and end;
    an open one ends where its fence would close)."""
    tenures = [
        (t["shard"], t["start"], t["end"], snap["identity"])
        for snap in snapshots
        for t in snap.get("tenures", [])
    ]
    count = 0
    for i, (shard, start, end, who) in enumerate(tenures):
        for other, start2, end2, who2 in tenures[i + 1 :]:
            if other == shard and who2 != who and start < end2 and start2 < end:
                count += 1
    return count


class LoadSampler:
    """The machine's 1-minute load average, every `step` seconds, in the background."""

    def __init__(self, step: float = 5.0) -> None:
        self.step = step
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            await asyncio.sleep(self.step)

    def start(self) -> LoadSampler:
        self._task = asyncio.create_task(self._run(), name="load sampler")
        return self

    async def stop(self) -> JSON:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        s = self.samples
        return {
            "samples": len(s),
            "mean": round(sum(s) / len(s), 2) if s else None,
            "min": round(min(s), 2) if s else None,
            "max": round(max(s), 2) if s else None,
        }


@contextlib.contextmanager
def replicas_running(
    cluster: BenchCluster, work: Path, operator_dir: Path, replicas: int, ports: list[int]
) -> Iterator[list[Process]]:
    """The R replicas, each up (watching ModelDeployments); stopped at the end."""
    with ExitStack() as stack:
        procs = []
        for i in range(replicas):
            kubeconfig = cluster.identity(f"rung-{i}")
            argv = [sys.executable, "-m", "rung", *replica_argv(i, replicas, ports[i])]
            procs.append(
                stack.enter_context(
                    process(
                        f"rung-{i}",
                        argv,
                        work / f"{cluster.phase}-rung-{i}.log",
                        env={
                            "KUBECONFIG": str(kubeconfig),
                            "PYTHONPATH": str(operator_dir),
                            "PYTHONUNBUFFERED": "1",
                        },
                        cluster=cluster,
                        user=_user(i),
                        ready_resource="rung.dev/modeldeployments",
                    )
                )
            )
        yield procs


async def run(
    cluster: BenchCluster,
    work: Path,
    operator_dir: Path,
    count: int,
    replicas: int,
    concurrency: int,
    ready_timeout: float | None,
) -> JSON:
    cluster.namespace(NAMESPACE)
    cluster.namespace(LEASE_NAMESPACE)
    load = LoadSampler().start()
    created_at: dict[str, float] = {}
    status_at: dict[str, float] = {}
    ready_at: dict[str, float] = {}

    def on_md(kind: str, obj: JSON, at: float) -> None:
        status = obj.get("status") or {}
        name = obj["metadata"]["name"]
        if status.get("observedGeneration") == obj["metadata"].get("generation"):
            status_at.setdefault(name, at)
        if status.get("phase") == "Ready":
            ready_at.setdefault(name, at)

    ports = metrics_ports(cluster.port_base, replicas)
    result: JSON = {"count": count, "replicas": replicas, "concurrency": concurrency}
    per: dict[str, JSON] = {}
    try:
        with replicas_running(cluster, work, operator_dir, replicas, ports) as procs:
            names_of = {f"rung-{i}": p for i, p in enumerate(procs)}
            started = time.monotonic()
            while True:  # the shards split before the burst: no handover during it
                snaps = [await asyncio.to_thread(shards_of, port) for port in ports]
                if split_balanced(snaps, replicas):
                    break
                if time.monotonic() - started > 120:
                    raise RuntimeError(f"shards not split after 120 s: {snaps}")
                await asyncio.sleep(0.5)
            result["split_seconds"] = round(time.monotonic() - started, 1)
            owner_of = {s: snap["identity"] for snap in snaps for s in snap["owned"]}
            result["shards_before"] = {snap["identity"]: snap["owned"] for snap in snaps}
            log(f"shards x{replicas}: split {result['shards_before']}")

            async with (
                cluster.api.aclient(concurrency) as client,
                watching(client, path(*MD, NAMESPACE), on_md) as md_watch,
            ):

                async def create(name: str) -> None:
                    body = model_deployment(name, NAMESPACE)
                    check(await client.post(path(*MD, NAMESPACE), json=body), f"create {name}")
                    created_at[name] = time.time()

                cpu = {name: CpuMeter(p.pid) for name, p in names_of.items()}
                start = time.time()
                names = [f"m-{i:05d}" for i in range(count)]
                await bounded(concurrency, [lambda n=n: create(n) for n in names])
                result["creates_seconds"] = round(time.time() - start, 2)
                deadline = time.monotonic() + max(900.0, count * 0.6)
                while len(status_at) < count and time.monotonic() < deadline:
                    for p in procs:
                        if p.popen.poll() is not None:
                            raise RuntimeError(f"{p.name} exited:\n{p.log_tail()}")
                    await asyncio.sleep(0.2)
                done = [status_at[n] for n in names if n in status_at]
                seconds = (max(done) - start) if done else float("nan")
                result["status_written"] = {
                    "count": len(done),
                    "seconds": round(seconds, 2),
                    "objects_per_second": round(len(done) / seconds, 1) if done else 0,
                    "create_to_status_seconds": summary(
                        [status_at[n] - created_at[n] for n in names if n in status_at]
                    ),
                    "load_average_at_end": round(os.getloadavg()[0], 2),
                }
                status_cpu = {name: c.read() for name, c in cpu.items()}
                log(f"shards x{replicas} N={count}: {len(done)} status written in {seconds:.1f}s")
                if len(done) < count:
                    result["error"] = f"only {len(done)} of {count} with status after deadline"

                ready_deadline = time.monotonic() + (
                    ready_timeout if ready_timeout is not None else max(900.0, count * 0.6)
                )
                while len(ready_at) < count and time.monotonic() < ready_deadline:
                    await asyncio.sleep(0.5)
                ready = [ready_at[n] for n in names if n in ready_at]
                window = time.time() - start
                result["ready"] = {
                    "count": len(ready),
                    "all": len(ready) == count,
                    "seconds": round(max(ready) - start, 2) if len(ready) == count else None,
                    "waited_seconds": round(window, 1),
                    "objects_per_second": round(len(ready) / window, 2),
                    "load_average_at_end": round(os.getloadavg()[0], 2),
                }
                log(f"shards x{replicas} N={count}: {len(ready)} Ready in {window:.0f}s")
                settle = await md_watch.quiet(10, timeout=60)
                result["settle_seconds"] = round(settle, 1)
                snaps = [await asyncio.to_thread(shards_of, port) for port in ports]
                for i, (name, p) in enumerate(names_of.items()):
                    text = (await asyncio.to_thread(_scrape, ports[i], "/metrics")).text
                    api = counters(text, "rung_api_requests_total", "method")
                    reconciles = counters(text, "rung_reconciles_total", "result")
                    snap = snaps[i]
                    per[name] = {
                        "shards_owned": snap["owned"],
                        "lease_transitions": counters(
                            text, "rung_lease_transitions_total", "event"
                        ),
                        "tenures": len(snap.get("tenures", [])),
                        "api_requests": sum(api.values()),
                        "api_requests_by_method": api,
                        "reconciles": sum(reconciles.values()),
                        "reconciles_by_result": reconciles,
                        "cpu_until_status_written": status_cpu[name],
                        "cpu_until_settled": cpu[name].read(),
                        **memory_mib(p.pid),  # rss_mib: settled; peak_rss_mib: VmHWM
                    }
                result["shards_after"] = {snap["identity"]: snap["owned"] for snap in snaps}
                result["tenure_overlaps"] = overlaps(snaps)
                measured_until = time.time()
        result["per_replica"] = per
        result["single_writer"] = single_writer(
            await asyncio.to_thread(
                writers,
                cluster.audit_log,
                {_user(i): f"rung-{i}" for i in range(replicas)},
                measured_until,
            ),
            owner_of,
            replicas,
        )
        totals = {
            "api_requests": sum(r["api_requests"] for r in per.values()),
            "reconciles": sum(r["reconciles"] for r in per.values()),
            "peak_rss_mib_max": max(r["peak_rss_mib"] for r in per.values()),
            "peak_rss_mib_sum": round(sum(r["peak_rss_mib"] for r in per.values()), 1),
            "cpu_seconds_until_status_written": round(
                sum(r["cpu_until_status_written"]["cpu_seconds"] for r in per.values()), 1
            ),
        }
        result["totals"] = totals
    finally:
        result["load_average"] = await load.stop()
    return result


def parse_replicas(text: str) -> list[int]:
    """'1,3' -> [1, 3]."""
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise ValueError(f"replica counts must be positive: {text!r}")
    return counts
