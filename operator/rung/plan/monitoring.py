"""Level 1: scrape configuration, SLO alert rules and the SLO verdict (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rung.api.spec import Slo
from rung.api.status import SloSnapshot
from rung.plan.promql import ERROR_RATE, TOKENS_PER_SECOND, TTFT_P95, indicators, render

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


@dataclass(frozen=True)
class EffectiveSlo:
    """spec.monitoring.slo with the defaults for the model kind filled in."""

    max_error_rate: float
    latency_p95_ms: float
    time_to_first_token_p95_ms: float | None = None
    min_tokens_per_second: float | None = None


def effective_slo(kind: str, slo: Slo | None) -> EffectiveSlo:
    """The objectives in force: the spec's, or defaults that fit `kind`."""
    slo = slo or Slo()
    if kind == "llm":
        return EffectiveSlo(
            max_error_rate=slo.max_error_rate if slo.max_error_rate is not None else 0.01,
            latency_p95_ms=slo.latency_p95_ms or 10_000,
            time_to_first_token_p95_ms=slo.time_to_first_token_p95_ms or 1_000,
            min_tokens_per_second=(
                slo.min_tokens_per_second if slo.min_tokens_per_second is not None else 10.0
            ),
        )
    return EffectiveSlo(
        max_error_rate=slo.max_error_rate if slo.max_error_rate is not None else 0.01,
        latency_p95_ms=slo.latency_p95_ms or 250,
    )


@dataclass
class MonitoringPlan:
    """What monitoring adds to the cluster for one ModelDeployment."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    """PodMonitor and PrometheusRule (when the Prometheus Operator is installed)."""
    predictor_annotations: dict[str, str] = field(default_factory=dict)
    """Annotations on the InferenceService for annotation-based scraping."""
    description: str = ""
    """How scraping is set up, for the MonitoringReady condition."""


def query_variables(
    md: ModelDeployment,
    target: str | None = None,
    interval: str = "1m",
    *,
    stable: str | None = None,
    canary: str | None = None,
) -> dict[str, str]:
    """Template variables for queries about the workload `target` (default: stable)."""
    stable = stable or f"{md.name}-predictor"
    return {
        "namespace": md.namespace,
        "name": md.name,
        "target": target or stable,
        "stable": stable,
        "canary": canary or f"{md.name}-canary-predictor",
        "interval": interval,
    }


def plan_monitoring(md: ModelDeployment, features: ClusterFeatures) -> MonitoringPlan:
    """PodMonitor + PrometheusRule, or scrape annotations when the CRDs are absent."""
    annotations = {KSERVE_SCRAPE_ANNOTATION: "true", **SCRAPE_ANNOTATIONS}
    if not features.prometheus_operator:
        return MonitoringPlan(
            predictor_annotations=annotations,
            description="scraped through prometheus.io annotations (no Prometheus Operator)",
        )
    return MonitoringPlan(
        objects=[build_pod_monitor(md), build_prometheus_rule(md)],
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
                {"portNumber": MODEL_SERVER_PORT, "path": "/metrics", "interval": "15s"}
            ],
        },
    }


def build_prometheus_rule(md: ModelDeployment) -> dict[str, Any]:
    """SLO alerts built from spec.monitoring.slo (with the kind's defaults)."""
    kind = md.spec.model.kind
    slo = effective_slo(kind, md.spec.monitoring.slo if md.spec.monitoring else None)
    variables = query_variables(md, interval=ALERT_WINDOW)
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


def within_slo(snapshot: SloSnapshot, slo: EffectiveSlo) -> bool | None:
    """Whether every measured indicator meets its objective; None when nothing was measured."""
    verdicts: list[bool] = []
    if snapshot.error_rate is not None:
        verdicts.append(snapshot.error_rate <= slo.max_error_rate)
    if snapshot.latency_p95_ms is not None:
        verdicts.append(snapshot.latency_p95_ms <= slo.latency_p95_ms)
    if snapshot.time_to_first_token_p95_ms is not None and slo.time_to_first_token_p95_ms:
        verdicts.append(snapshot.time_to_first_token_p95_ms <= slo.time_to_first_token_p95_ms)
    if snapshot.tokens_per_second is not None and slo.min_tokens_per_second is not None:
        verdicts.append(snapshot.tokens_per_second >= slo.min_tokens_per_second)
    return all(verdicts) if verdicts else None
