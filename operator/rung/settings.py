"""Operator settings: flags override environment variables override defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class OperatorSettings:
    """How the operator runs. Each field has a `RUNG_*` environment variable."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch (RUNG_NAMESPACES, comma separated); empty means all."""
    json_logs: bool = False
    """Log one JSON object per line (RUNG_JSON_LOGS)."""
    liveness_endpoint: str | None = None
    """Serve a liveness probe here, e.g. http://0.0.0.0:8080/healthz (RUNG_LIVENESS)."""
    metrics_port: int | None = None
    """Serve the operator's Prometheus metrics on this port (RUNG_METRICS_PORT)."""
    peering: str | None = None
    """Deprecated (RUNG_PEERING): kopf peering is not leader election. Setting it now
    turns on `leader_elect`, with Leases named after it."""
    prometheus_url: str | None = None
    """Prometheus used when a ModelDeployment names none (RUNG_PROMETHEUS_URL)."""
    allowed_hosts: tuple[str, ...] = ()
    """Hosts (`name`, `*.domain`) and networks (CIDR) that URLs in ModelDeployments may
    name for the operator to call: Prometheus, audit sink, webhook and Kubeflow Pipelines
    endpoints (RUNG_ALLOWED_HOSTS, comma separated); empty allows every host."""
    resync_seconds: float = 300.0
    """The safety net (RUNG_RESYNC_SECONDS): every ModelDeployment is queued this often
    even without changes. Rollouts, SLO snapshots and triggers do not wait for it: each
    object is woken when its own next analysis, deadline or snapshot falls due."""
    workers: int = 8
    """Reconciles that may run at once, on different objects (RUNG_WORKERS)."""
    verbose: bool = False
    """Debug logging (RUNG_VERBOSE)."""
    leader_elect: bool = False
    """High availability (RUNG_LEADER_ELECT): only the holder of a coordination.k8s.io
    Lease reconciles and writes; the other replicas stand by with warm caches."""
    lease_namespace: str | None = None
    """Where the Leases live (RUNG_LEASE_NAMESPACE); default $POD_NAMESPACE, else the
    kubeconfig context's or the service account's namespace."""
    lease_name: str = "rung"
    """Prefix of the Lease names (RUNG_LEASE_NAME): replicas with one prefix share the work."""
    shards: int = 1
    """Shards of the ModelDeployments, each owned through its own Lease (RUNG_SHARDS); more
    than one turns on leader election per shard."""
    identity: str | None = None
    """This replica among the others (RUNG_IDENTITY); default hostname-pid."""

    @property
    def elects(self) -> bool:
        """Whether replicas coordinate through Leases."""
        return self.leader_elect or self.shards > 1 or self.peering is not None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> OperatorSettings:
        """Settings from RUNG_* environment variables."""
        env = dict(os.environ if env is None else env)

        def flag(name: str) -> bool:
            return env.get(name, "").lower() in ("1", "true", "yes", "on")

        port = env.get("RUNG_METRICS_PORT")
        return cls(
            namespaces=tuple(n for n in env.get("RUNG_NAMESPACES", "").split(",") if n),
            json_logs=flag("RUNG_JSON_LOGS"),
            liveness_endpoint=env.get("RUNG_LIVENESS") or None,
            metrics_port=int(port) if port else None,
            peering=env.get("RUNG_PEERING") or None,
            prometheus_url=env.get("RUNG_PROMETHEUS_URL") or None,
            allowed_hosts=tuple(
                h.strip() for h in env.get("RUNG_ALLOWED_HOSTS", "").split(",") if h.strip()
            ),
            resync_seconds=float(env.get("RUNG_RESYNC_SECONDS") or 300.0),
            workers=int(env.get("RUNG_WORKERS") or 8),
            verbose=flag("RUNG_VERBOSE"),
            leader_elect=flag("RUNG_LEADER_ELECT"),
            lease_namespace=env.get("RUNG_LEASE_NAMESPACE") or None,
            lease_name=env.get("RUNG_LEASE_NAME") or "rung",
            shards=int(env.get("RUNG_SHARDS") or 1),
            identity=env.get("RUNG_IDENTITY") or None,
        )
