"""The operator's own Prometheus metrics (served on `--metrics-port` at /metrics)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

RECONCILES = Counter(
    "rung_reconciles",
    "Reconcile passes, by resource kind and result (noop, changed, error).",
    ["kind", "result"],
)
RECONCILE_ERRORS = Counter(
    "rung_reconcile_errors",
    "Reconcile passes that failed, by resource kind and error class.",
    ["kind", "error"],
)
RECONCILE_DURATION = Histogram(
    "rung_reconcile_duration_seconds",
    "Time one reconcile pass took, by resource kind.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OBJECTS_APPLIED = Counter(
    "rung_objects_applied", "Owned objects created or updated, by kind.", ["kind"]
)
OBJECTS_DELETED = Counter("rung_objects_deleted", "Owned objects deleted, by kind.", ["kind"])
DECISIONS = Counter(
    "rung_decisions", "Decisions announced as Events, by reason.", ["reason", "type"]
)
ROLLOUTS = Counter("rung_rollouts", "Finished canary rollouts, by outcome.", ["outcome"])
ANALYSIS_CHECKS = Counter(
    "rung_analysis_checks", "Canary analysis checks, by metric and result.", ["metric", "result"]
)
AUDIT_EVENTS = Counter(
    "rung_audit_events",
    "Decisions sent to the audit sink as CloudEvents, by result"
    " (delivered, failed after retries, dropped when the queue was full, invalid).",
    ["result"],
)
API_REQUESTS = Counter(
    "rung_api_requests",
    "Requests the operator sent to the Kubernetes API server (watches excluded), by HTTP"
    " method and resource. Reads served from the watch caches are not requests.",
    ["method", "resource"],
)
RETRAINING_RUNS = Counter(
    "rung_retraining_runs", "Retraining runs, by launcher and outcome.", ["launcher", "outcome"]
)
SHARD_OWNED = Gauge(
    "rung_shard_owned",
    "1 while this replica owns the shard (holds its Lease, renewed within the renew"
    " deadline), else 0. With one shard (leader election), 1 on the leader.",
    ["shard"],
)
SHARDS_OWNED = Gauge("rung_shards_owned", "Shards this replica owns now.")
SHARD_HOLDER = Gauge(
    "rung_shard_holder",
    "1 while the replica named by `identity` (its --identity, the Pod name in the chart)"
    " owns the shard, else 0: who holds which shard, without relying on scrape labels.",
    ["shard", "identity"],
)
LEASE_TRANSITIONS = Counter(
    "rung_lease_transitions",
    "Shard Leases acquired, released (rebalancing, stopping) or lost (not renewed in"
    " time, taken by another replica).",
    ["event"],
)


def serve(
    port: int,
    registry: CollectorRegistry = REGISTRY,
    routes: Mapping[str, Callable[[], Any]] | None = None,
) -> None:
    """Serve /metrics on all interfaces at `port` (in a background thread); each of
    `routes` (path -> callable) answers GET with the callable's result as JSON."""
    if not routes:
        start_http_server(port, registry=registry)
        return
    import json
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer

    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        route = routes.get(environ.get("PATH_INFO", ""))
        if route is None or environ.get("REQUEST_METHOD") != "GET":
            return list(metrics_app(environ, start_response))
        body = json.dumps(route(), indent=1).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    httpd = make_server("0.0.0.0", port, app, ThreadingWSGIServer, handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True, name="rung-metrics").start()
