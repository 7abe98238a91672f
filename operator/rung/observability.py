"""The operator's own Prometheus metrics (served on `--metrics-port` at /metrics)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server

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


def serve(port: int, registry: CollectorRegistry = REGISTRY) -> None:
    """Serve /metrics on all interfaces at `port` (in a background thread)."""
    start_http_server(port, registry=registry)
