"""Level 1: scrape configuration and SLO alert rules (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rung.plan.promql import (
    ERROR_RATE,
    TOKENS_PER_SECOND,
    TTFT_P95,
    Targets,
    indicators,
    query_variables,
    render,
)
from rung.plan.slo import effective_slo

if TYPE_CHECKING:
    from rung.api.resource import ModelDeployment
    from rung.plan.observation import ClusterFeatures

MONITORING_GROUP = "monitoring.coreos.com"
MONITORING_VERSION = "v1"
MODEL_SERVER_PORT = 8080
SCRAPE_ANNOTATIONS = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": str(MODEL_SERVER_PORT),
    "prometheus.io/path": "/metrics",
}
KSERVE_SCRAPE_ANNOTATION = "serving.kserve.io/enable-prometheus-scraping"
ALERT_WINDOW = "5m"
SCRAPE_INTERVAL = "15s"
"""How often the PodMonitor has the model server scraped."""


@dataclass
class MonitoringPlan:
    """What monitoring adds to the cluster for one ModelDeployment."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    """PodMonitor and PrometheusRule (when the Prometheus Operator is installed)."""
    predictor_annotations: dict[str, str] = field(default_factory=dict)
    """Annotations on the InferenceService for annotation-based scraping."""
    description: str = ""
    """How scraping is set up, for the MonitoringReady condition."""


def plan_monitoring(
    md: ModelDeployment, features: ClusterFeatures, targets: Targets
) -> MonitoringPlan:
    """PodMonitor + PrometheusRule, or scrape annotations when the CRDs are absent.

    `targets` names the predictor workloads (from the router) the alert rules watch.
    """
    annotations = {KSERVE_SCRAPE_ANNOTATION: "true", **SCRAPE_ANNOTATIONS}
    if not features.prometheus_operator:
        return MonitoringPlan(
            predictor_annotations=annotations,
            description="scraped through prometheus.io annotations (no Prometheus Operator)",
        )
    return MonitoringPlan(
        objects=[build_pod_monitor(md), build_prometheus_rule(md, targets)],
        predictor_annotations={KSERVE_SCRAPE_ANNOTATION: "true"},
        description=f"scraped through PodMonitor {md.name}-model-server",
    )


def build_pod_monitor(md: ModelDeployment) -> dict[str, Any]:
    """A PodMonitor selecting every predictor pod of this deployment (stable and canary)."""
    return {
        "apiVersion": f"{MONITORING_GROUP}/{MONITORING_VERSION}",
        "kind": "PodMonitor",
        "metadata": md.object_meta(f"{md.name}-model-server"),
        "spec": {
            "selector": {"matchLabels": {"rung.dev/model-deployment": md.name}},
            "podMetricsEndpoints": [
                {"portNumber": MODEL_SERVER_PORT, "path": "/metrics", "interval": SCRAPE_INTERVAL}
            ],
        },
    }


def build_prometheus_rule(md: ModelDeployment, targets: Targets) -> dict[str, Any]:
    """SLO alerts built from spec.monitoring.slo (with the kind's defaults)."""
    kind = md.spec.model.kind
    slo = effective_slo(kind, md.spec.monitoring.slo if md.spec.monitoring else None)
    variables = query_variables(md, targets, ALERT_WINDOW)
    labels = {"severity": "warning", "rung_dev_model_deployment": md.name}
    latency = indicators(kind)["latency_p95_ms"]

    def alert(name: str, expr: str, summary: str) -> dict[str, Any]:
        return {
            "alert": name,
            "expr": expr,
            "for": "5m",
            "labels": labels,
            "annotations": {
                "summary": summary,
                "description": f"ModelDeployment {md.namespace}/{md.name}: {summary}",
            },
        }

    rules = [
        alert(
            "RungModelErrorRateHigh",
            f"({render(ERROR_RATE.query, variables)}) > {slo.max_error_rate}",
            f"error rate above {slo.max_error_rate:g}",
        ),
        alert(
            "RungModelLatencyP95High",
            f"({render(latency.query, variables)}) > {slo.latency_p95_ms:g}",
            f"p95 latency above {slo.latency_p95_ms:g} ms",
        ),
    ]
    if slo.time_to_first_token_p95_ms is not None:
        rules.append(
            alert(
                "RungModelTimeToFirstTokenHigh",
                f"({render(TTFT_P95.query, variables)}) > {slo.time_to_first_token_p95_ms:g}",
                f"p95 time to first token above {slo.time_to_first_token_p95_ms:g} ms",
            )
        )
    if slo.min_tokens_per_second is not None:
        rules.append(
            alert(
                "RungModelTokensPerSecondLow",
                f"({render(TOKENS_PER_SECOND.query, variables)}) < {slo.min_tokens_per_second:g}",
                f"throughput below {slo.min_tokens_per_second:g} tokens/s",
            )
        )
    return {
        "apiVersion": f"{MONITORING_GROUP}/{MONITORING_VERSION}",
        "kind": "PrometheusRule",
        "metadata": md.object_meta(f"{md.name}-slo"),
        "spec": {"groups": [{"name": f"rung.{md.namespace}.{md.name}.slo", "rules": rules}]},
    }
