"""High availability and sharding on Leases, with real `rung run` processes.

- Two replicas with `--leader-elect`: the standby makes no write; the leader is
  SIGKILLed, and separately cut off from the API server (the partition stand-in,
  `testbed.partition.PartitionProxy`, between it and the API server), each in the middle
  of a canary rollout on a real Prometheus. The standby takes over (the time is
  measured and printed), the old leader writes nothing after it lost the Lease (its own
  `rung_api_requests_total`, and the API server's APF counter of its ServiceAccount's
  writes), and every decision of the rollout is taken once (history and Events).
- Three replicas with `--shards 6` and 300 ModelDeployments: each replica's /shards
  tenures never overlap another's for the same shard (sampled all along), every object
  has exactly one owner once settled, a killed replica's shards are taken over and a
  new replica gets its share; every reconcile a replica logged falls inside one of its
  tenures of that object's shard.

Measured times are printed (run with -s) and written to $RUNG_HA_REPORT when set.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import itertools
import json
import os
import re
import signal
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from integration_kit import (
    GROUP,
    PLURAL,
    VERSION,
    CanaryWeights,
    OperatorProcess,
    _raw_metrics,
    create_md,
    custom,
    model_deployment,
    run_operator,
    wait_until,
    watch_md,
)
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from test_level2 import NAME, _deploy_v1, _phase, _to_v2, bench, level2

from rung.election import LEASE_DURATION, RENEW_DEADLINE, shard_of
from testbed.modelserver import free_port
from testbed.partition import PartitionProxy

pytestmark = pytest.mark.usefixtures("rung_crds", "kserve_controller")
MEASURED: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    if MEASURED:
        print("\nHA measurements (s):", json.dumps(MEASURED, indent=1))
        path = os.environ.get("RUNG_HA_REPORT")
        if path:
            Path(path).write_text(json.dumps(MEASURED, indent=1) + "\n")


@pytest.fixture
def ha_namespace(kube_api: client.ApiClient) -> Iterator[str]:
    """A namespace no session operator watches (they watch `t-<session>-*`); the
    replicas under test keep their Leases in it too."""
    name = f"ha-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_until(
        lambda: (
            core.list_namespaced_service_account(name, field_selector="metadata.name=default").items
        ),
        "the default ServiceAccount",
    )
    try:
        yield name
    finally:
        core.delete_namespace(name)


# --- replicas --------------------------------------------------------------------------------


@dataclass
class Replica:
    identity: str
    op: OperatorProcess
    port: int

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
            return str(r.read().decode())

    def shards(self) -> dict[str, Any]:
        return dict(json.loads(self.get("/shards")))

    def writes(self) -> dict[tuple[str, str], float]:
        """Requests other than reads, Leases aside, from its own rung_api_requests_total."""
        return {
            key: n
            for key, n in self.op.api_requests().items()
            if key[0] not in ("GET", "HEAD") and key[1] != "leases"
        }

    def reconciles(self) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in self.get("/metrics").splitlines()
            if line.startswith("rung_reconciles_total{")
        )


@contextlib.contextmanager
def replica(
    kubeconfig: str | Path, tmp_path: Path, identity: str, namespace: str, *extra: str
) -> Iterator[Replica]:
    port = free_port()
    args = ["-n", namespace, "--leader-elect", "--lease-namespace", namespace]
    args += ["--identity", identity, "--metrics-port", str(port), *extra]
    with run_operator(str(kubeconfig), tmp_path / f"{identity}.log", *args) as op:
        yield Replica(identity, op, port)


def holder(api: client.ApiClient, namespace: str, lease: str = "rung-leader") -> str | None:
    try:
        found = client.CoordinationV1Api(api).read_namespaced_lease(lease, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return found.spec.holder_identity or None


def md_events(api: client.ApiClient, namespace: str) -> list[client.CoreV1Event]:
    items = client.CoreV1Api(api).list_namespaced_event(namespace).items
    items = [e for e in items if e.involved_object.kind == "ModelDeployment"]
    return sorted(items, key=lambda e: (e.metadata.creation_timestamp, e.metadata.name))


def assert_each_decision_once(md: dict[str, Any], events: list[client.CoreV1Event]) -> None:
    """No decision twice, none missing: no two Events or history entries say the same
    thing, and the rollout's decisions are there exactly as often as it takes them."""
    said = collections.Counter((e.reason, e.message) for e in events)
    assert [k for k, n in said.items() if n > 1] == [], said
    recorded = [(h["event"], h["message"], h.get("version")) for h in md["status"]["history"]]
    assert [k for k, n in collections.Counter(recorded).items() if n > 1] == [], recorded
    reasons = collections.Counter(e.reason for e in events)
    assert (reasons["CanaryStarted"], reasons["StepAdvanced"], reasons["Promoted"]) == (1, 2, 1)
    history = collections.Counter(event for event, _, _ in recorded)
    assert (history["CanaryStarted"], history["Promoted"]) == (1, 1), recorded


def rollout_to_step_1(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> None:
    """v1 deployed, v2 canary at step 2 (50 %) in status: the leader is stopped right
    then, perhaps before it posted that step's Event (the next owner delivers what is
    left in status.outbox)."""
    _deploy_v1(api, namespace, body)
    _to_v2(api, namespace)
    watch_md(
        api,
        namespace,
        NAME,
        lambda o: ((o.get("status") or {}).get("canary") or {}).get("step") == 1,
        "step 2 (50%)",
        timeout=90,
    )


def promoted(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    """The ModelDeployment once v2 is promoted, and its Promoted Event posted."""
    md = watch_md(
        api,
        namespace,
        NAME,
        lambda o: _phase(o) == "Ready" and o["status"]["stable"]["version"] == "v2",
        "v2 promoted",
        timeout=120,
    )
    wait_until(
        lambda: [e for e in md_events(api, namespace) if e.reason == "Promoted"],
        "the Promoted Event",
    )
    return md


# --- failover --------------------------------------------------------------------------------


def test_the_standby_finishes_a_rollout_when_the_leader_is_killed(
    kube_api: client.ApiClient, kubeconfig: str, ha_namespace: str, tmp_path: Path
) -> None:
    ns = ha_namespace
    body = level2(ns, "", "gateway-api", interval="3s")
    with (
        bench(tmp_path, kube_api, ns, "gateway-api") as testbed,
        CanaryWeights(kube_api, ns) as weights,
    ):
        body["spec"]["monitoring"]["prometheus"]["url"] = testbed.prometheus.url
        with replica(kubeconfig, tmp_path, "rung-a", ns) as a:
            wait_until(lambda: holder(kube_api, ns) == "rung-a", "rung-a leads", timeout=30)
            with replica(kubeconfig, tmp_path, "rung-b", ns) as b:
                rollout_to_step_1(kube_api, ns, body)

                # The standby watched all along and did nothing.
                assert b.writes() == {}
                assert b.reconciles() == 0
                assert b.shards()["owned"] == []

                killed = time.monotonic()
                a.op.process.kill()
                wait_until(lambda: holder(kube_api, ns) == "rung-b", "rung-b leads", timeout=40)
                takeover = time.monotonic() - killed
                final = promoted(kube_api, ns)
                took_over_log = b.op.log()

    MEASURED["takeover after SIGKILL"] = round(takeover, 2)
    print(f"takeover after SIGKILL: {takeover:.2f} s")
    assert weights.seen[NAME] == [0, 20, 50, 100]  # every step once, in order, across the failover
    assert "acquired Lease" in took_over_log
    events = md_events(kube_api, ns)
    assert_each_decision_once(final, events)
    # The dead leader's lease had to expire: not before the renew deadline, and within
    # the lease duration plus the time to see it (the standby wakes when it expires).
    assert RENEW_DEADLINE - 1 < takeover < LEASE_DURATION + 3


def sa_kubeconfig(
    api: client.ApiClient, admin: str, namespace: str, account: str, server: str, path: Path
) -> Path:
    """A kubeconfig for ServiceAccount `namespace/account` against `server`."""
    token = (
        client.CoreV1Api(api)
        .create_namespaced_service_account_token(
            account,
            namespace,
            client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
            ),
        )
        .status.token
    )
    config = yaml.safe_load(Path(admin).read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    ca = cluster["cluster"].get("certificate-authority")
    if ca and not Path(ca).is_absolute():
        ca = str(Path(admin).parent / ca)
    cluster_entry: dict[str, Any] = {"server": server}
    if ca:
        cluster_entry["certificate-authority"] = ca
    else:
        cluster_entry["certificate-authority-data"] = cluster["cluster"][
            "certificate-authority-data"
        ]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster_entry}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": account}}],
                "current-context": "c",
            }
        )
    )
    path.chmod(0o600)
    return path


@contextlib.contextmanager
def admin_account(api: client.ApiClient, namespace: str, account: str) -> Iterator[None]:
    """ServiceAccount `account` bound to cluster-admin (the test's own credentials, but
    a user of its own, so that the API server counts its requests apart)."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    binding = f"{namespace}-{account}"
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": binding},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        }
    )
    try:
        yield
    finally:
        rbac.delete_cluster_role_binding(binding)


@contextlib.contextmanager
def write_counter(
    api: client.ApiClient, namespace: str, account: str
) -> Iterator[Callable[[], int]]:
    """The API server's own count of `account`'s writes to what Rung writes: a
    FlowSchema of its own matches them (API Priority and Fairness), and
    apiserver_flowcontrol_dispatched_requests_total counts what it dispatched."""
    name = f"{namespace}-{account}-writes"
    rules = [
        ("rung.dev", ["modeldeployments", "modeldeployments/status"]),
        ("serving.kserve.io", ["inferenceservices"]),
        ("gateway.networking.k8s.io", ["httproutes"]),
        ("monitoring.coreos.com", ["podmonitors", "prometheusrules"]),
        ("", ["events"]),
    ]
    flow = client.FlowcontrolApiserverV1Api(api)
    flow.create_flow_schema(
        {
            "metadata": {"name": name},
            "spec": {
                "matchingPrecedence": 1000,
                "priorityLevelConfiguration": {"name": "workload-low"},
                "rules": [
                    {
                        "subjects": [
                            {
                                "kind": "ServiceAccount",
                                "serviceAccount": {"name": account, "namespace": namespace},
                            }
                        ],
                        "resourceRules": [
                            {
                                "verbs": ["create", "update", "patch", "delete"],
                                "apiGroups": [group],
                                "resources": resources,
                                "namespaces": [namespace],
                            }
                            for group, resources in rules
                        ],
                    }
                ],
            },
        }
    )
    pattern = re.compile(
        r'^apiserver_flowcontrol_dispatched_requests_total\{[^}]*flow_schema="'
        + re.escape(name)
        + r'"[^}]*\} (\S+)$',
        re.M,
    )

    def count() -> int:
        return sum(int(float(n)) for n in pattern.findall(_raw_metrics(api)))

    try:
        yield count
    finally:
        flow.delete_flow_schema(name)


def test_a_leader_cut_off_from_the_api_server_stops_writing_and_the_standby_takes_over(
    kube_api: client.ApiClient, kubeconfig: str, ha_namespace: str, tmp_path: Path
) -> None:
    ns = ha_namespace
    body = level2(ns, "", "gateway-api", interval="3s")
    server = kube_api.configuration.host
    with (
        PartitionProxy.to_server(server) as proxy,
        admin_account(kube_api, ns, "rung-a"),
        write_counter(kube_api, ns, "rung-a") as apiserver_writes_of_a,
        bench(tmp_path, kube_api, ns, "gateway-api") as testbed,
        CanaryWeights(kube_api, ns) as weights,
    ):
        body["spec"]["monitoring"]["prometheus"]["url"] = testbed.prometheus.url
        a_config = sa_kubeconfig(
            kube_api, kubeconfig, ns, "rung-a", proxy.url, tmp_path / "rung-a.kubeconfig"
        )
        with replica(a_config, tmp_path, "rung-a", ns) as a:
            wait_until(lambda: holder(kube_api, ns) == "rung-a", "rung-a leads", timeout=30)
            with replica(kubeconfig, tmp_path, "rung-b", ns) as b:
                rollout_to_step_1(kube_api, ns, body)
                assert b.writes() == {}
                wait_until(apiserver_writes_of_a, "the API server counted rung-a's writes")

                cut = time.monotonic()
                proxy.cut()
                wait_until(lambda: not a.shards()["owned"], "rung-a steps down", timeout=20)
                stepped_down = time.monotonic() - cut
                a_writes, apiserver_writes = a.writes(), apiserver_writes_of_a()
                wait_until(lambda: holder(kube_api, ns) == "rung-b", "rung-b leads", timeout=40)
                takeover = time.monotonic() - cut
                final = promoted(kube_api, ns)

                proxy.heal()  # rung-a is back: it finds the Lease taken and stays a standby
                wait_until(
                    lambda: (
                        "the Lease is now held by rung-b" in a.op.log()
                        or "not renewed within the renew deadline" in a.op.log()
                    ),
                    "rung-a saw it lost",
                )
                time.sleep(LEASE_DURATION / 3)  # a few rounds of rung-a after the heal
                assert a.shards()["owned"] == []
                assert a.writes() == a_writes  # its own count: nothing after the loss
                assert apiserver_writes_of_a() == apiserver_writes  # the API server's count
                tenure = a.shards()["tenures"][-1]

    MEASURED["leader steps down after the cut"] = round(stepped_down, 2)
    MEASURED["takeover after the cut"] = round(takeover, 2)
    print(f"cut: rung-a stepped down after {stepped_down:.2f} s, took over after {takeover:.2f} s")
    assert weights.seen[NAME] == [0, 20, 50, 100]
    events = md_events(kube_api, ns)
    assert_each_decision_once(final, events)
    # No Event from rung-a after its fence closed (the Events name their replica).
    late = [
        e.reason
        for e in events
        if e.reporting_instance == "rung-a"
        and e.metadata.creation_timestamp.timestamp() > tenure["end"] + 0.5
    ]
    assert late == []
    assert {e.reporting_instance for e in events} == {"rung-a", "rung-b"}
    # The fence closes at the renew deadline after the last renewal; the standby needs the
    # lease unchanged for the lease duration: the two never overlap.
    assert stepped_down < RENEW_DEADLINE + 1
    assert takeover > stepped_down


# --- sharding --------------------------------------------------------------------------------

SHARDS = 6
COUNT = 300
LOG_TIME = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO rung.reconciler reconciled (\S+)/(\S+):"
)


@dataclass
class OwnershipMonitor:
    """Samples every replica's /shards and the Lease objects all along."""

    api: client.ApiClient
    namespace: str
    replicas: dict[str, Replica] = field(default_factory=dict)
    tenures: dict[tuple[str, int, float], dict[str, Any]] = field(default_factory=dict)
    """(replica, shard, start) -> the latest report of that tenure"""
    lease_samples: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> OwnershipMonitor:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def owned(self) -> dict[str, list[int]]:
        return {name: r.shards()["owned"] for name, r in list(self.replicas.items())}

    def _run(self) -> None:
        coordination = client.CoordinationV1Api(self.api)
        while not self._stop.wait(0.25):
            for name, rep in list(self.replicas.items()):
                if rep.op.process.poll() is not None:
                    continue
                try:
                    report = rep.shards()
                except OSError:
                    continue
                for t in report["tenures"]:
                    self.tenures[(name, t["shard"], t["start"])] = t
            leases = coordination.list_namespaced_lease(self.namespace).items
            self.lease_samples += 1
            for lease in leases:
                who = lease.spec.holder_identity
                if "-shard-" in lease.metadata.name and who and who not in self.identities:
                    self.errors.append(f"{lease.metadata.name} held by a stranger: {who}")

    @property
    def identities(self) -> set[str]:
        return {"rung-a", "rung-b", "rung-c", "rung-d"}

    def leases_agree(self) -> bool:
        """Each shard Lease's holder is the one replica that reports owning that shard."""
        leases = client.CoordinationV1Api(self.api).list_namespaced_lease(self.namespace).items
        holders = {
            int(lease.metadata.name.rsplit("-", 1)[1]): lease.spec.holder_identity
            for lease in leases
            if "-shard-" in lease.metadata.name
        }
        owners: dict[int, list[str]] = collections.defaultdict(list)
        for name, owned in self.owned().items():
            for s in owned:
                owners[s].append(name)
        return all(owners.get(s) == [holders.get(s)] for s in range(SHARDS))

    def overlaps(self) -> list[str]:
        """Pairs of tenures of one shard, by different replicas, that overlap in time."""
        found = []
        by_shard = collections.defaultdict(list)
        for (name, shard, start), t in self.tenures.items():
            by_shard[shard].append((start, t["end"], name))
        for shard, spans in by_shard.items():
            spans.sort()
            for (s1, e1, n1), (s2, _, n2) in itertools.pairwise(spans):
                if n1 != n2 and s2 < e1:
                    found.append(f"shard {shard}: {n1} [{s1:.3f}, {e1:.3f}], {n2} from {s2:.3f}")
        return found

    def covered(self, name: str, shard: int, at: float) -> bool:
        return any(
            n == name and s == shard and t["start"] - 0.01 <= at <= t["end"] + 1.0
            for (n, s, _), t in self.tenures.items()
        )


def log_time(log: str, text: str, last: bool = False) -> float:
    """The time of the first (or last) log line containing `text`."""
    lines = [line for line in log.splitlines() if text in line]
    assert lines, text
    stamp = (lines[-1] if last else lines[0])[:23]
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def observed_generations(api: client.ApiClient, namespace: str) -> dict[str, int]:
    items = custom(api).list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
    return {
        o["metadata"]["name"]: (o.get("status") or {}).get("observedGeneration") or 0 for o in items
    }


def bump(api: client.ApiClient, namespace: str, names: list[str]) -> None:
    """A spec change (a new model version) for each of `names`: generation 2."""
    custom_ = custom(api)
    for name in names:
        custom_.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"spec": {"model": {"version": "v2", "storageUri": f"s3://models/{name}/v2"}}},
            _content_type="application/merge-patch+json",
        )


def test_three_sharded_replicas_share_300_models_and_rebalance(
    kube_api: client.ApiClient, kubeconfig: str, ha_namespace: str, tmp_path: Path
) -> None:
    ns = ha_namespace
    names = [f"m{i:03d}" for i in range(COUNT)]
    shard = {n: shard_of((ns, n), SHARDS) for n in names}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: create_md(kube_api, model_deployment(n, ns)), names))

    extra = ("--shards", str(SHARDS))
    with contextlib.ExitStack() as stack, OwnershipMonitor(kube_api, ns) as monitor:
        for identity in ("rung-a", "rung-b", "rung-c"):
            monitor.replicas[identity] = stack.enter_context(
                replica(kubeconfig, tmp_path, identity, ns, *extra)
            )

        def split() -> list[int]:
            return sorted(len(o) for o in monitor.owned().values())

        wait_until(lambda: split() == [2, 2, 2], "two shards each", timeout=60)
        wait_until(monitor.leases_agree, "the Leases name the owners", timeout=10)
        wait_until(
            lambda: min(observed_generations(kube_api, ns).values()) == 1,
            "every ModelDeployment reconciled",
            timeout=180,
        )
        owners = monitor.owned()
        for n in names:  # exactly one owner each
            assert len([r for r, o in owners.items() if shard[n] in o]) == 1, (n, owners)

        # rung-c dies: its shards go to the others once their Leases expired.
        lost = owners["rung-c"]
        killed = time.monotonic()
        monitor.replicas.pop("rung-c").op.process.kill()
        wait_until(
            lambda: sorted(s for o in monitor.owned().values() for s in o) == list(range(SHARDS)),
            "rung-c's shards taken over",
            timeout=60,
        )
        taken_over = time.monotonic() - killed
        wait_until(monitor.leases_agree, "the Leases name the owners", timeout=10)
        orphans = [n for n in names if shard[n] in lost][:20]
        bump(kube_api, ns, orphans)
        wait_until(
            lambda: all(observed_generations(kube_api, ns)[n] == 2 for n in orphans),
            "rung-c's objects reconciled by their new owners",
            timeout=60,
        )

        # rung-d joins: it gets two shards, released by those above their share.
        monitor.replicas["rung-d"] = d = stack.enter_context(
            replica(kubeconfig, tmp_path, "rung-d", ns, *extra)
        )
        wait_until(lambda: split() == [2, 2, 2], "rebalanced to two each", timeout=60)
        rebalanced = log_time(d.op.log(), "acquired Lease", last=True) - log_time(
            d.op.log(), "leader election: identity"
        )
        wait_until(monitor.leases_agree, "the Leases name the owners", timeout=10)
        moved = [n for n in names if shard[n] in monitor.owned()["rung-d"]][:20]
        bump(kube_api, ns, moved)
        wait_until(
            lambda: all(observed_generations(kube_api, ns)[n] == 2 for n in moved),
            "rung-d reconciles its objects",
            timeout=60,
        )
        time.sleep(0.5)  # one more sample of every tenure
        for rep in monitor.replicas.values():  # all at once: no handing over at the end
            rep.op.process.send_signal(signal.SIGINT)
        logs = {name: rep.op.log() for name, rep in monitor.replicas.items()}
        logs["rung-c"] = (tmp_path / "rung-c.log").read_text()

    MEASURED["sharding: killed replica's shards taken over"] = round(taken_over, 2)
    MEASURED["sharding: new replica has its share (from its start)"] = round(rebalanced, 2)
    print(f"shards taken over {taken_over:.2f} s after the kill, rebalanced {rebalanced:.2f} s")
    assert monitor.errors == []
    assert monitor.lease_samples > 20
    assert monitor.overlaps() == []
    # Every reconcile a replica logged happened while it owned that object's shard.
    outside = []
    for name, text in logs.items():
        for line in text.splitlines():
            found = LOG_TIME.match(line)
            if not found or found.group(2) != ns:
                continue
            at = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if not monitor.covered(name, shard[found.group(3)], at):
                outside.append(f"{name}: {line}")
    assert outside == []
