"""Level 1: scrape configuration and SLO alert rules (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rung.plan.llm_inference_service import VLLM_PORT
from rung.plan.promql import (
    ERROR_RATE,
    TOKENS_PER_SECOND,
    TTFT_P95,
    VLLM_ERROR_RATE,
    VLLM_GENERATION_TOKENS,
    VLLM_ITL_P95,
    VLLM_KV_CACHE_USAGE,
    VLLM_TTFT_P95,
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
KV_CACHE_ALERT = 0.95
"""vLLM KV-cache usage above which an LLMInferenceService's alert fires."""


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
    """A PodMonitor selecting every predictor pod of this deployment (stable and canary).

    LLMInferenceService pods serve vLLM's metrics on port 8000; as KServe documents for
    canaries, their `app.kubernetes.io/name` (the LLMInferenceService) becomes the series
    label `llm_isvc_name`, which tells stable's series from the canary's."""
    if md.spec.model.llm_api() == "LLMInferenceService":
        return {
            "apiVersion": f"{MONITORING_GROUP}/{MONITORING_VERSION}",
            "kind": "PodMonitor",
            "metadata": md.object_meta(f"{md.name}-model-server"),
            "spec": {
                "selector": {"matchLabels": {"rung.dev/model-deployment": md.name}},
                "podMetricsEndpoints": [
                    {
                        "portNumber": VLLM_PORT,
                        "path": "/metrics",
                        "scheme": "http",
                        "interval": SCRAPE_INTERVAL,
                        "relabelings": [
                            {
                                "action": "replace",
                                "sourceLabels": [
                                    "__meta_kubernetes_pod_label_app_kubernetes_io_name"
                                ],
                                "targetLabel": "llm_isvc_name",
                            }
                        ],
                    }
                ],
            },
        }
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
    llm_api = md.spec.model.llm_api()
    latency = indicators(kind, llm_api)["latency_p95_ms"]
    vllm = llm_api == "LLMInferenceService"
    ttft = VLLM_TTFT_P95 if vllm else TTFT_P95
    tokens = VLLM_GENERATION_TOKENS if vllm else TOKENS_PER_SECOND
    errors = VLLM_ERROR_RATE if vllm else ERROR_RATE

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
            f"({render(errors.query, variables)}) > {slo.max_error_rate}",
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
                f"({render(ttft.query, variables)}) > {slo.time_to_first_token_p95_ms:g}",
                f"p95 time to first token above {slo.time_to_first_token_p95_ms:g} ms",
            )
        )
    if slo.min_tokens_per_second is not None:
        rules.append(
            alert(
                "RungModelTokensPerSecondLow",
                f"({render(tokens.query, variables)}) < {slo.min_tokens_per_second:g}",
                f"throughput below {slo.min_tokens_per_second:g} tokens/s",
            )
        )
    if vllm and slo.min_tokens_per_second:
        itl_ms = 1000.0 / slo.min_tokens_per_second
        rules.append(
            alert(
                "RungModelInterTokenLatencyHigh",
                f"({render(VLLM_ITL_P95.query, variables)}) > {itl_ms:g}",
                f"p95 inter-token latency above {itl_ms:g} ms",
            )
        )
    if vllm:
        rules.append(
            alert(
                "RungModelKvCacheNearlyFull",
                f"({render(VLLM_KV_CACHE_USAGE.query, variables)}) > {KV_CACHE_ALERT:g}",
                f"vLLM KV cache over {KV_CACHE_ALERT:.0%} used (requests queue, TTFT grows)",
            )
        )
    return {
        "apiVersion": f"{MONITORING_GROUP}/{MONITORING_VERSION}",
        "kind": "PrometheusRule",
        "metadata": md.object_meta(f"{md.name}-slo"),
        "spec": {"groups": [{"name": f"rung.{md.namespace}.{md.name}.slo", "rules": rules}]},
    }
