"""rung.plan.monitoring, rung.plan.slo and query variables: SLO defaults, scrape setup,
alert rules and the SLO verdict."""

from __future__ import annotations

from typing import Any

import pytest

from rung.api.spec import Slo
from rung.api.status import SloSnapshot
from rung.plan.monitoring import (
    KSERVE_SCRAPE_ANNOTATION,
    build_pod_monitor,
    build_prometheus_rule,
    plan_monitoring,
)
from rung.plan.observation import ClusterFeatures
from rung.plan.promql import Targets, query_variables
from rung.plan.slo import EffectiveSlo, effective_slo, within_slo

from . import factories as f

STABLE = Targets(stable="fraud-predictor", canary=None)

# --- effective_slo -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "slo", "expected"),
    [
        ("predictive", None, EffectiveSlo(0.01, 250)),
        ("predictive", Slo(), EffectiveSlo(0.01, 250)),
        ("predictive", Slo(max_error_rate=0.05), EffectiveSlo(0.05, 250)),
        ("predictive", Slo(max_error_rate=0.0), EffectiveSlo(0.0, 250)),
        ("predictive", Slo(latency_p95_ms=100), EffectiveSlo(0.01, 100)),
        (
            "predictive",
            Slo(time_to_first_token_p95_ms=500, min_tokens_per_second=5),
            EffectiveSlo(0.01, 250),
        ),
        ("llm", None, EffectiveSlo(0.01, 10_000, 1_000, 10.0)),
        ("llm", Slo(), EffectiveSlo(0.01, 10_000, 1_000, 10.0)),
        ("llm", Slo(max_error_rate=0.0), EffectiveSlo(0.0, 10_000, 1_000, 10.0)),
        ("llm", Slo(latency_p95_ms=2_000), EffectiveSlo(0.01, 2_000, 1_000, 10.0)),
        ("llm", Slo(time_to_first_token_p95_ms=300), EffectiveSlo(0.01, 10_000, 300, 10.0)),
        ("llm", Slo(min_tokens_per_second=0), EffectiveSlo(0.01, 10_000, 1_000, 0.0)),
        ("llm", Slo(min_tokens_per_second=42.5), EffectiveSlo(0.01, 10_000, 1_000, 42.5)),
    ],
)
def test_effective_slo(kind: str, slo: Slo | None, expected: EffectiveSlo) -> None:
    assert effective_slo(kind, slo) == expected


# --- within_slo ----------------------------------------------------------------------

PREDICTIVE = EffectiveSlo(max_error_rate=0.01, latency_p95_ms=250)
LLM = EffectiveSlo(
    max_error_rate=0.01,
    latency_p95_ms=10_000,
    time_to_first_token_p95_ms=1_000,
    min_tokens_per_second=10.0,
)


def snap(**fields: float) -> SloSnapshot:
    return SloSnapshot(measured_at=f.NOW_TEXT, **fields)


@pytest.mark.parametrize(
    ("snapshot", "slo", "verdict"),
    [
        (snap(), PREDICTIVE, None),
        (snap(request_rate=5.0), PREDICTIVE, None),
        (snap(error_rate=0.0), PREDICTIVE, True),
        (snap(error_rate=0.01), PREDICTIVE, True),
        (snap(error_rate=0.011), PREDICTIVE, False),
        (snap(latency_p95_ms=250.0), PREDICTIVE, True),
        (snap(latency_p95_ms=250.1), PREDICTIVE, False),
        (snap(error_rate=0.001, latency_p95_ms=100.0), PREDICTIVE, True),
        (snap(error_rate=0.5, latency_p95_ms=100.0), PREDICTIVE, False),
        (snap(error_rate=0.001, latency_p95_ms=900.0), PREDICTIVE, False),
        (snap(time_to_first_token_p95_ms=99_999.0), PREDICTIVE, None),
        (snap(tokens_per_second=0.0), PREDICTIVE, None),
        (snap(time_to_first_token_p95_ms=1_000.0), LLM, True),
        (snap(time_to_first_token_p95_ms=1_001.0), LLM, False),
        (snap(tokens_per_second=10.0), LLM, True),
        (snap(tokens_per_second=9.9), LLM, False),
        (
            snap(
                error_rate=0.0,
                latency_p95_ms=5_000.0,
                time_to_first_token_p95_ms=200.0,
                tokens_per_second=50.0,
            ),
            LLM,
            True,
        ),
        (
            snap(
                error_rate=0.0,
                latency_p95_ms=5_000.0,
                time_to_first_token_p95_ms=200.0,
                tokens_per_second=1.0,
            ),
            LLM,
            False,
        ),
    ],
)
def test_within_slo(snapshot: SloSnapshot, slo: EffectiveSlo, verdict: bool | None) -> None:
    assert within_slo(snapshot, slo) is verdict


# --- query variables and scraping ----------------------------------------------------


def test_query_variables_name_predictor_workloads() -> None:
    targets = Targets(stable="fraud-predictor", canary="fraud-canary-predictor")
    assert query_variables(f.md(), targets, "5m", target="fraud-canary-predictor") == {
        "namespace": f.NAMESPACE,
        "name": f.NAME,
        "target": "fraud-canary-predictor",
        "stable": f"{f.NAME}-predictor",
        "canary": f"{f.NAME}-canary-predictor",
        "interval": "5m",
    }


def test_query_variables_default_target_is_stable() -> None:
    variables = query_variables(f.md(), Targets("fraud-r-1a2b3c4d-predictor", None))
    assert variables["target"] == variables["stable"] == "fraud-r-1a2b3c4d-predictor"


def test_without_prometheus_operator_scrape_annotations_and_no_objects() -> None:
    plan = plan_monitoring(f.md(level=1), ClusterFeatures(prometheus_operator=False), STABLE)
    assert plan.objects == []
    assert plan.predictor_annotations == {
        KSERVE_SCRAPE_ANNOTATION: "true",
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
        "prometheus.io/path": "/metrics",
    }
    assert "annotations" in plan.description


def test_with_prometheus_operator_pod_monitor_and_rule() -> None:
    plan = plan_monitoring(f.md(level=1), ClusterFeatures(prometheus_operator=True), STABLE)
    assert [o["kind"] for o in plan.objects] == ["PodMonitor", "PrometheusRule"]
    assert plan.predictor_annotations == {KSERVE_SCRAPE_ANNOTATION: "true"}
    assert "PodMonitor fraud-model-server" in plan.description


def test_pod_monitor_selects_every_predictor_pod_of_the_deployment() -> None:
    monitor = build_pod_monitor(f.md(level=1))
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["name"] == "fraud-model-server"
    assert monitor["spec"]["selector"] == {"matchLabels": {"rung.dev/model-deployment": f.NAME}}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["portNumber"] == 8080
    assert endpoint["path"] == "/metrics"


@pytest.mark.parametrize("build", [build_pod_monitor, lambda md: build_prometheus_rule(md, STABLE)])
def test_monitoring_objects_are_owned_and_labelled(build: Any) -> None:
    md = f.md(level=1)
    meta = build(md)["metadata"]
    assert meta["namespace"] == f.NAMESPACE
    assert meta["ownerReferences"] == [md.owner_reference()]
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "rung"
    assert meta["labels"]["rung.dev/model-deployment"] == f.NAME


# --- PrometheusRule ------------------------------------------------------------------


def rules_of(md_kwargs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rule = build_prometheus_rule(f.md(level=1, **md_kwargs), STABLE)
    (group,) = rule["spec"]["groups"]
    assert group["name"] == f"rung.{f.NAMESPACE}.{f.NAME}.slo"
    return {r["alert"]: r for r in group["rules"]}


def test_prometheus_rule_identity() -> None:
    rule = build_prometheus_rule(f.md(level=1), STABLE)
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    assert rule["metadata"]["name"] == "fraud-slo"


@pytest.mark.parametrize(
    ("kind", "alerts"),
    [
        ("predictive", {"RungModelErrorRateHigh", "RungModelLatencyP95High"}),
        (
            "llm",
            {
                "RungModelErrorRateHigh",
                "RungModelLatencyP95High",
                "RungModelTimeToFirstTokenHigh",
                "RungModelTokensPerSecondLow",
            },
        ),
    ],
)
def test_alerts_per_kind(kind: str, alerts: set[str]) -> None:
    assert set(rules_of({"model_fields": _plain(kind)})) == alerts


def _plain(kind: str) -> dict[str, Any]:
    """model fields of `kind`; an LLM on a plain InferenceService (huggingface runtime).
    LLMInferenceServices' alerts: tests/unit/test_llm_router.py."""
    if kind == "llm":
        return {"kind": kind, "llm": {"api": "InferenceService"}}
    return {"kind": kind}


def test_predictive_ignores_llm_objectives() -> None:
    rules = rules_of(
        {
            "monitoring": {
                "slo": {"timeToFirstTokenP95Ms": 100, "minTokensPerSecond": 5},
            }
        }
    )
    assert set(rules) == {"RungModelErrorRateHigh", "RungModelLatencyP95High"}


@pytest.mark.parametrize(
    ("kind", "slo", "alert", "expr_end", "summary"),
    [
        ("predictive", None, "RungModelErrorRateHigh", ") > 0.01", "error rate above 0.01"),
        ("predictive", None, "RungModelLatencyP95High", ") > 250", "p95 latency above 250 ms"),
        (
            "predictive",
            {"maxErrorRate": 0.05, "latencyP95Ms": 120},
            "RungModelErrorRateHigh",
            ") > 0.05",
            "error rate above 0.05",
        ),
        (
            "predictive",
            {"maxErrorRate": 0.05, "latencyP95Ms": 120},
            "RungModelLatencyP95High",
            ") > 120",
            "p95 latency above 120 ms",
        ),
        ("llm", None, "RungModelLatencyP95High", ") > 10000", "p95 latency above 10000 ms"),
        (
            "llm",
            None,
            "RungModelTimeToFirstTokenHigh",
            ") > 1000",
            "p95 time to first token above 1000 ms",
        ),
        (
            "llm",
            None,
            "RungModelTokensPerSecondLow",
            ") < 10",
            "throughput below 10 tokens/s",
        ),
        (
            "llm",
            {"timeToFirstTokenP95Ms": 400, "minTokensPerSecond": 25.5},
            "RungModelTimeToFirstTokenHigh",
            ") > 400",
            "p95 time to first token above 400 ms",
        ),
        (
            "llm",
            {"timeToFirstTokenP95Ms": 400, "minTokensPerSecond": 25.5},
            "RungModelTokensPerSecondLow",
            ") < 25.5",
            "throughput below 25.5 tokens/s",
        ),
    ],
)
def test_alert_thresholds_follow_the_slo(
    kind: str, slo: dict[str, Any] | None, alert: str, expr_end: str, summary: str
) -> None:
    kwargs: dict[str, Any] = {"model_fields": {"kind": kind}}
    if slo is not None:
        kwargs["monitoring"] = {"slo": slo}
    rule = rules_of(kwargs)[alert]
    assert rule["expr"].startswith("(")
    assert rule["expr"].endswith(expr_end)
    assert rule["annotations"]["summary"] == summary
    assert rule["annotations"]["description"] == f"ModelDeployment team-a/fraud: {summary}"


@pytest.mark.parametrize("kind", ["predictive", "llm"])
def test_alert_queries_are_rendered_for_the_stable_service_over_5m(kind: str) -> None:
    for name, rule in rules_of({"model_fields": _plain(kind)}).items():
        assert "{{" not in rule["expr"], name
        assert 'namespace="team-a"' in rule["expr"], name
        assert "fraud-predictor" in rule["expr"], name
        assert "canary" not in rule["expr"], name
        assert "[5m]" in rule["expr"], name
        assert rule["for"] == "5m"
        assert rule["labels"] == {"severity": "warning", "rung_dev_model_deployment": f.NAME}


@pytest.mark.parametrize(
    ("kind", "metric"),
    [("predictive", "request_predict_seconds_bucket"), ("llm", "vllm:e2e_request_latency")],
)
def test_latency_alert_uses_the_kind_histogram(kind: str, metric: str) -> None:
    assert metric in rules_of({"model_fields": {"kind": kind}})["RungModelLatencyP95High"]["expr"]


def test_llm_only_rules_query_vllm() -> None:
    rules = rules_of({"model_fields": {"kind": "llm"}})
    assert "vllm:time_to_first_token_seconds" in rules["RungModelTimeToFirstTokenHigh"]["expr"]
    assert "vllm:generation_tokens_total" in rules["RungModelTokensPerSecondLow"]["expr"]
