"""What every measurement needs: a throw-away bench cluster, a plain async client,
watches, per-client identities, the apiserver's request counters, the audit log and
/proc figures of a process.

Nothing here decides what is measured; the phase modules (floor, convergence, idle,
canary, flagger) do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import ssl
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from localcluster import ClusterError, LocalCluster, Ports
from localcluster.kubeconfig import write_kubeconfig

ROOT = Path(__file__).resolve().parents[2]
JSON = dict[str, Any]
FIELD_MANAGER = "rung-bench"
BENCH_NAMESPACE = "rung-bench"
"""Where the benchmark's ServiceAccounts live (one identity per measured client)."""
CLIENTS = ("rung", "flagger")
"""Measured clients; each runs as ServiceAccount rung-bench/<name>."""
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "APPLY", "DELETECOLLECTION"})


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------ REST paths
def path(
    api_version: str,
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """The REST path of a collection or an object."""
    prefix = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    parts = [prefix]
    if namespace:
        parts.append(f"namespaces/{namespace}")
    parts.append(plural)
    if name:
        parts.append(name)
    if subresource:
        parts.append(subresource)
    return "/".join(parts)


MD = ("rung.dev/v1alpha1", "modeldeployments")
ISVC = ("serving.kserve.io/v1beta1", "inferenceservices")
DEPLOYMENT = ("apps/v1", "deployments")
CANARY = ("flagger.app/v1beta1", "canaries")


# ------------------------------------------------------------------ the client
@dataclass
class Api:
    """The apiserver as a plain HTTPS client sees it (client certificate or token)."""

    server: str
    ca: str
    cert: tuple[str, str] | None = None
    token: str | None = None

    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca)
        if self.cert:
            ctx.load_cert_chain(*self.cert)
        return ctx

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def sync(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server, verify=self._ssl(), headers=self._headers(), timeout=60
        )

    def aclient(self, concurrency: int = 16) -> httpx.AsyncClient:
        limits = httpx.Limits(
            max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8
        )
        return httpx.AsyncClient(
            base_url=self.server,
            verify=self._ssl(),
            headers=self._headers(),
            timeout=httpx.Timeout(120, connect=10),
            limits=limits,
        )


def check(response: httpx.Response, what: str) -> JSON:
    if response.status_code >= 300:
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.text[:1500]}")
    result: JSON = response.json() if response.content else {}
    return result


def apply(client: httpx.Client, obj: JSON, plural: str) -> JSON:
    """Server-side apply one object (its plural named by the caller)."""
    meta = obj["metadata"]
    url = path(obj["apiVersion"], plural, meta.get("namespace"), meta["name"])
    return check(
        client.patch(
            url,
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
            content=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
        ),
        f"apply {obj['kind']} {meta['name']}",
    )


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


async def bounded(concurrency: int, jobs: Iterable[Callable[[], Any]]) -> list[Any]:
    """Run the coroutine factories `jobs` with at most `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Any]) -> Any:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(one(j) for j in jobs)))


# ------------------------------------------------------------------- watches
class Watch:
    """Lists, then watches, a collection; calls `on_event(type, obj, wall_time)` for
    every object seen (the listed ones as ADDED). Runs until `stop()`."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        collection: str,
        on_event: Callable[[str, JSON, float], None],
    ) -> None:
        self.client, self.collection, self.on_event = client, collection, on_event
        self.last_event = time.monotonic()
        self.events = 0
        self._task: asyncio.Task[None] | None = None
        self.listed = asyncio.Event()

    def start(self) -> Watch:
        self._task = asyncio.create_task(self._run(), name=f"watch {self.collection}")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _list(self) -> str:
        listing = check(await self.client.get(self.collection), f"list {self.collection}")
        now = time.time()
        for item in listing.get("items") or []:
            self._seen("ADDED", item, now)
        self.listed.set()
        return str(listing["metadata"]["resourceVersion"])

    def _seen(self, kind: str, obj: JSON, at: float) -> None:
        self.events += 1
        self.last_event = time.monotonic()
        self.on_event(kind, obj, at)

    async def _run(self) -> None:
        rv = await self._list()
        while True:
            params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true"}
            params["timeoutSeconds"] = "600"
            try:
                async with self.client.stream(
                    "GET", self.collection, params=params, timeout=None
                ) as response:
                    async for line in response.aiter_lines():
                        if not line:
                            continue
                        event = json.loads(line)
                        obj = event["object"]
                        if event["type"] == "ERROR":
                            rv = await self._list()  # 410 Gone: list again
                            break
                        rv = obj["metadata"]["resourceVersion"]
                        if event["type"] != "BOOKMARK":
                            self._seen(event["type"], obj, time.time())
            except (httpx.TransportError, json.JSONDecodeError):
                await asyncio.sleep(0.2)

    async def quiet(self, seconds: float, timeout: float) -> float:
        """Wait until no event has arrived for `seconds` (at most `timeout`); return
        how long it took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if time.monotonic() - self.last_event >= seconds:
                break
            await asyncio.sleep(0.2)
        return time.monotonic() - start


def condition_true(obj: JSON, type_: str) -> bool:
    return any(
        c.get("type") == type_ and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


# ------------------------------------------------------------- bench cluster
AUDIT_POLICY: JSON = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    # One event per request, when it arrives; nothing for anyone but the measured clients.
    "omitStages": ["ResponseStarted", "ResponseComplete", "Panic"],
    "rules": [
        {
            "level": "Metadata",
            "users": [f"system:serviceaccount:{BENCH_NAMESPACE}:{c}" for c in CLIENTS],
        },
        # The replicas of the sharding phase (rung-bench/rung-0, rung-1, ...).
        {"level": "Metadata", "userGroups": [f"system:serviceaccounts:{BENCH_NAMESPACE}"]},
        {"level": "None"},
    ],
}

BENCH_NODE: JSON = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {
        "name": "kwok-bench-0",
        "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        "labels": {
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/os": "linux",
            "kubernetes.io/hostname": "kwok-bench-0",
            "type": "kwok",
        },
    },
    "spec": {},
    "status": {
        "allocatable": {"cpu": "1000000", "memory": "100000Ti", "pods": "30000"},
        "capacity": {"cpu": "1000000", "memory": "100000Ti", "pods": "30000"},
    },
}
"""A kwok node big enough for every pod of a 5,000-object run (KServe's sklearn runtime
asks for 1 CPU and 2 GiB per predictor)."""


@dataclass
class BenchCluster:
    """A fresh local cluster for one phase, started with the benchmark's settings:
    an audit log of the measured clients' requests, and no HPA controller (there is
    no metrics server, so it would only post failures for every InferenceService's
    HPA every 15 s and drown the idle figures)."""

    state_dir: Path
    port_base: int | None
    work: Path
    phase: str
    crd_dir: Path
    """Rung's CRD, generated by the measured operator's own `rung crd`."""
    cluster: LocalCluster = field(init=False)
    api: Api = field(init=False)
    audit_log: Path = field(init=False)
    identities: dict[str, Path] = field(default_factory=dict)

    def up(self) -> BenchCluster:
        self.audit_log = self.work / f"audit-{self.phase}.log"
        self.audit_log.unlink(missing_ok=True)
        policy = self.work / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        ports = Ports.from_base(self.port_base) if self.port_base else Ports.free()
        self.cluster = LocalCluster(
            self.state_dir,
            ports=ports,
            kserve=True,
            extra_args={
                "kube-apiserver": [
                    f"--audit-policy-file={policy}",
                    f"--audit-log-path={self.audit_log}",
                    "--audit-log-maxage=1",
                ],
                "kube-controller-manager": [
                    "--controllers=*,-horizontal-pod-autoscaler-controller"
                ],
            },
            log=lambda m: log(f"cluster: {m}"),
        )
        if self.cluster.is_running():
            log(f"stopping the cluster already running in {self.state_dir}")
            self.cluster.down(discard=True)
        started = time.monotonic()
        try:
            self.cluster.up()
        except ClusterError as error:  # e.g. KServe's manager racing CRD discovery under load
            log(f"{self.phase}: the cluster did not come up ({str(error)[:200]}); once more")
            self.cluster.down(discard=True)
            self.cluster.up()
        log(f"{self.phase}: cluster up in {time.monotonic() - started:.1f}s")
        pki = self.cluster.pki
        self.api = Api(
            self.cluster.server,
            str(pki.ca.cert),
            cert=(str(pki.client("admin").cert), str(pki.client("admin").key)),
        )
        with self.api.sync() as client:
            apply(client, BENCH_NODE, "nodes")
            apply_files(client, sorted(self.crd_dir.glob("*.yaml")))
            wait_for(lambda: node_ready(client, "kwok-bench-0"), "the bench node Ready")
        return self

    def down(self) -> None:
        started = time.monotonic()
        self.cluster.down(discard=True)
        log(f"{self.phase}: cluster down in {time.monotonic() - started:.1f}s")

    def namespace(self, name: str) -> None:
        with self.api.sync() as client:
            apply(
                client,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                "namespaces",
            )
            wait_for(
                lambda: (
                    client.get(path("v1", "serviceaccounts", name, "default")).status_code == 200
                ),
                f"namespace {name}'s default ServiceAccount",
            )

    def identity(self, client_name: str, cluster_role: str = "cluster-admin") -> Path:
        """A kubeconfig for ServiceAccount rung-bench/<client_name>, bound to `cluster_role`."""
        if client_name in self.identities:
            return self.identities[client_name]
        self.namespace(BENCH_NAMESPACE)
        with self.api.sync() as client:
            sa = {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": client_name, "namespace": BENCH_NAMESPACE},
            }
            apply(client, sa, "serviceaccounts")
            binding = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": f"rung-bench-{client_name}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": cluster_role,
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": client_name, "namespace": BENCH_NAMESPACE}
                ],
            }
            apply(client, binding, "clusterrolebindings")
            token = check(
                client.post(
                    path("v1", "serviceaccounts", BENCH_NAMESPACE, client_name, "token"),
                    json={
                        "apiVersion": "authentication.k8s.io/v1",
                        "kind": "TokenRequest",
                        "spec": {"expirationSeconds": 86400},
                    },
                ),
                "TokenRequest",
            )["status"]["token"]
        kubeconfig = self.work / f"{self.phase}-{client_name}.kubeconfig"
        write_kubeconfig(
            kubeconfig,
            server=self.cluster.server,
            ca_cert=self.cluster.pki.ca.cert,
            user=f"system:serviceaccount:{BENCH_NAMESPACE}:{client_name}",
            token=token,
        )
        self.identities[client_name] = kubeconfig
        return kubeconfig

    def metrics(self) -> str:
        with self.api.sync() as client:
            response = client.get("/metrics")
            response.raise_for_status()
            return response.text


def node_ready(client: httpx.Client, name: str) -> bool:
    response = client.get(path("v1", "nodes", name=name))
    return response.status_code == 200 and condition_true(response.json(), "Ready")


_PLURALS = {
    "CustomResourceDefinition": "customresourcedefinitions",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
}


def apply_files(client: httpx.Client, files: Iterable[Path]) -> list[str]:
    """Apply CRDs and cluster roles from YAML files; wait for the CRDs to be Established."""
    crds = []
    for file in files:
        for doc in yaml.safe_load_all(file.read_text()):
            if not doc or doc.get("kind") not in _PLURALS:
                continue
            apply(client, doc, _PLURALS[doc["kind"]])
            if doc["kind"] == "CustomResourceDefinition":
                crds.append(doc["metadata"]["name"])
    for name in crds:
        url = path("apiextensions.k8s.io/v1", "customresourcedefinitions", name=name)
        wait_for(
            lambda u=url: condition_true(client.get(u).json(), "Established"),  # type: ignore[misc]
            f"CRD {name} Established",
        )
    return crds


# ----------------------------------------------- the apiserver's own counters
RequestKey = tuple[str, str, str]
"""(verb, resource as group/resource[/subresource], client or '')"""


def request_counts(metrics_text: str) -> Counter[tuple[str, str]]:
    """apiserver_request_total summed over codes, by (VERB, group/resource[/sub])."""
    counts: Counter[tuple[str, str]] = Counter()
    for line in metrics_text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        counts[(labels.get("verb", ""), resource_name(labels))] += int(
            float(line.rsplit(" ", 1)[1])
        )
    return counts


def resource_name(labels: dict[str, str]) -> str:
    if not labels.get("resource"):
        return labels.get("subresource") or "(none)"  # a non-resource URL such as /apis
    group = labels.get("group") or "core"
    name = f"{group}/{labels.get('resource', '')}"
    if labels.get("subresource"):
        name += f"/{labels['subresource']}"
    return name


@dataclass
class Window:
    """A stretch of time, with the apiserver's counters at both ends."""

    start: float
    end: float
    before: Counter[tuple[str, str]]
    after: Counter[tuple[str, str]]

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def rates(self) -> dict[tuple[str, str], float]:
        return {
            k: (self.after[k] - self.before.get(k, 0)) / self.seconds
            for k in self.after
            if self.after[k] - self.before.get(k, 0) > 0
        }


async def window(cluster: BenchCluster, seconds: float) -> Window:
    before = await asyncio.to_thread(cluster.metrics)
    start = time.time()
    await asyncio.sleep(seconds)
    end = time.time()
    after = await asyncio.to_thread(cluster.metrics)
    return Window(start, end, request_counts(before), request_counts(after))


QUIET_IGNORED = ("coordination.k8s.io/leases", "core/events", "events.k8s.io/events")
"""Writes that never stop (leases renewed by kwok and the controllers, Events)."""


async def cluster_quiet(
    cluster: BenchCluster, timeout: float = 600, step: float = 5, writes_per_second: float = 0.5
) -> float:
    """Wait until the whole cluster stops writing (KServe's, the controller-manager's and
    kwok's backlog done): two `step`s in a row with fewer than `writes_per_second` writes
    per second, leases and Events aside. Returns how long it took."""
    start = time.monotonic()
    quiet_steps = 0
    before = request_counts(await asyncio.to_thread(cluster.metrics))
    while time.monotonic() - start < timeout and quiet_steps < 2:
        await asyncio.sleep(step)
        after = request_counts(await asyncio.to_thread(cluster.metrics))
        writes = sum(
            n - before.get(k, 0)
            for k, n in after.items()
            if k[0] in WRITE_VERBS and k[1] not in QUIET_IGNORED
        )
        quiet_steps = quiet_steps + 1 if writes / step < writes_per_second else 0
        before = after
    return time.monotonic() - start


def audit_counts(audit_log: Path, user: str, start: float, end: float) -> Counter[tuple[str, str]]:
    """The requests `user` sent between `start` and `end` (wall time), from the audit
    log, by (VERB, group/resource[/sub]) in apiserver_request_total's spelling."""
    counts: Counter[tuple[str, str]] = Counter()
    if not audit_log.exists():
        return counts
    with audit_log.open() as fh:
        for line in fh:
            if user not in line:
                continue
            event = json.loads(line)
            if event.get("user", {}).get("username") != user:
                continue
            at = datetime.fromisoformat(
                event["requestReceivedTimestamp"].replace("Z", "+00:00")
            ).timestamp()
            if not start <= at < end:
                continue
            ref = event.get("objectRef") or {}
            labels = {
                "group": ref.get("apiGroup", ""),
                "resource": ref.get("resource", ""),
                "subresource": ref.get("subresource", ""),
            }
            verb = AUDIT_VERBS.get(event["verb"], event["verb"].upper())
            counts[(verb, resource_name(labels) if ref else event.get("requestURI", ""))] += 1
    return counts


AUDIT_VERBS = {
    "get": "GET",
    "list": "LIST",
    "watch": "WATCH",
    "create": "POST",
    "update": "PUT",
    "patch": "PATCH",
    "delete": "DELETE",
    "deletecollection": "DELETECOLLECTION",
}


def rate_table(counts: Counter[tuple[str, str]], seconds: float) -> dict[str, float]:
    """'VERB group/resource' -> requests per second, largest first."""
    return {
        f"{verb} {resource}": round(n / seconds, 3)
        for (verb, resource), n in sorted(counts.items(), key=lambda kv: -kv[1])
        if n
    }


# ----------------------------------------------------------- a process's cost
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_mib(pid: int) -> dict[str, float]:
    """Resident memory now (VmRSS) and at its peak (VmHWM), MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = round(int(rest.split()[0]) / 1024, 1)
    return {"rss_mib": values.get("VmRSS", float("nan")), "peak_rss_mib": values["VmHWM"]}


@dataclass
class CpuMeter:
    """CPU a process used between two points, as a share of one core."""

    pid: int
    cpu: float = 0.0
    at: float = 0.0

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.cpu, self.at = cpu_seconds(self.pid), time.monotonic()

    def read(self) -> dict[str, float]:
        cpu, at = cpu_seconds(self.pid), time.monotonic()
        return {
            "cpu_seconds": round(cpu - self.cpu, 2),
            "cpu_cores": round((cpu - self.cpu) / max(at - self.at, 1e-9), 4),
            "seconds": round(at - self.at, 1),
        }


# --------------------------------------------------------------- statistics
def quantile(values: list[float], q: float) -> float | None:
    """Nearest-rank quantile (q in 0..1); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return round(ordered[rank], 3)


def summary(values: list[float]) -> dict[str, float | int | None]:
    return {
        "count": len(values),
        "p50": quantile(values, 0.5),
        "p90": quantile(values, 0.9),
        "p99": quantile(values, 0.99),
        "max": round(max(values), 3) if values else None,
    }


@contextlib.asynccontextmanager
async def watching(
    client: httpx.AsyncClient, collection: str, on_event: Callable[[str, JSON, float], None]
) -> AsyncIterator[Watch]:
    watch = Watch(client, collection, on_event).start()
    try:
        await asyncio.wait_for(watch.listed.wait(), timeout=60)
        yield watch
    finally:
        await watch.stop()


def work_dir(given: str | None) -> Path:
    directory = Path(given) if given else Path(tempfile.mkdtemp(prefix="rung-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory.absolute()


# ------------------------------------------------------------ measured processes
@dataclass
class Process:
    """A measured client process (Rung or Flagger), stopped at the end of its block."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@contextlib.contextmanager
def process(
    name: str,
    argv: list[str],
    log_path: Path,
    *,
    env: dict[str, str],
    cluster: BenchCluster,
    user: str,
    ready_resource: str,
    timeout: float = 120,
) -> Iterator[Process]:
    """Start `argv`; it is ready once the audit log shows `user` watching
    `ready_resource` (its informers are up). Stopped with SIGINT at the end."""
    with log_path.open("wb") as out:
        popen = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}, cwd=ROOT
        )
    proc = Process(name, popen, log_path)
    started = time.time()
    try:

        def ready() -> bool:
            if popen.poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{proc.log_tail()}")
            counts = audit_counts(cluster.audit_log, user, started, time.time() + 1)
            return any(v == "WATCH" and r.endswith(ready_resource) for v, r in counts)

        wait_for(ready, f"{name} watching {ready_resource}", timeout)
        log(f"{name} is up (pid {popen.pid}) in {time.time() - started:.1f}s")
        yield proc
    finally:
        proc.stop()
