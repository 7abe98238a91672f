"""Canary analysis verdicts (pure): one metric's check, and a run's verdict."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rung.api.spec import AnalysisMetric, ModelDeploymentSpec, NoDataPolicy
from rung.api.status import CheckResult
from rung.plan.promql import (
    ERROR_RATE,
    INTER_TOKEN_LATENCY_P95,
    LATENCY_P95,
    LLM_LATENCY_P95,
    TTFT_P95,
    VLLM_ERROR_RATE,
    VLLM_ITL_P95,
    VLLM_KV_CACHE_USAGE,
    VLLM_LATENCY_P95,
    VLLM_QUEUE_TIME_P95,
    VLLM_TTFT_P95,
)
from rung.plan.slo import EffectiveSlo, effective_slo

Verdict = Literal["pass", "fail", "hold", "error"]


@dataclass(frozen=True)
class Measurement:
    """What the metric provider returned for one analysis metric."""

    metric: AnalysisMetric
    canary: float | None
    stable: float | None = None
    """Only measured for relative thresholds (maxIncreaseOverStable)."""


def analysis_metrics(spec: ModelDeploymentSpec) -> list[AnalysisMetric]:
    """spec.rollout.analysis.metrics, or defaults for the model kind from the SLOs."""
    analysis = spec.rollout.analysis if spec.rollout else None
    if analysis is not None and analysis.metrics:
        return list(analysis.metrics)
    slo = effective_slo(spec.model.kind, spec.monitoring.slo if spec.monitoring else None)
    if spec.model.llm_api() == "LLMInferenceService":
        return vllm_metrics(slo)
    if spec.model.kind == "llm":
        metrics = [
            AnalysisMetric(name="error-rate", query=ERROR_RATE.query, max=slo.max_error_rate),
            AnalysisMetric(
                name="time-to-first-token-p95",
                query=TTFT_P95.query,
                max=slo.time_to_first_token_p95_ms,
            ),
            AnalysisMetric(name="latency-p95", query=LLM_LATENCY_P95.query, max=slo.latency_p95_ms),
        ]
        if slo.min_tokens_per_second:
            metrics.append(
                AnalysisMetric(
                    name="inter-token-latency-p95",
                    query=INTER_TOKEN_LATENCY_P95.query,
                    max=1000.0 / slo.min_tokens_per_second,
                )
            )
        return metrics
    return [
        AnalysisMetric(name="error-rate", query=ERROR_RATE.query, max=slo.max_error_rate),
        AnalysisMetric(name="latency-p95", query=LATENCY_P95.query, max=slo.latency_p95_ms),
    ]


def shadow_metrics(spec: ModelDeploymentSpec) -> list[AnalysisMetric]:
    """The checks of the shadow stage: spec.rollout.shadow.metrics, or the rollout's
    metrics with their absolute thresholds only (the canary's own signals: stable answers
    the same requests, but a relative comparison is not what the stage judges). A metric
    with no absolute threshold is left out."""
    shadow = spec.rollout.shadow if spec.rollout else None
    if shadow is not None and shadow.metrics:
        return list(shadow.metrics)
    return [
        m.model_copy(update={"max_increase_over_stable": None})
        for m in analysis_metrics(spec)
        if m.max is not None or m.min is not None
    ]


def stage_metrics(spec: ModelDeploymentSpec, shadowing: bool) -> list[AnalysisMetric]:
    """The metrics that judge the canary now: the shadow stage's, or the steps'."""
    return shadow_metrics(spec) if shadowing else analysis_metrics(spec)


def needs_stable(metric: AnalysisMetric) -> bool:
    """Whether the metric's threshold compares the canary with stable."""
    return metric.max_increase_over_stable is not None


def check(measurement: Measurement, invalid: str | None = None) -> CheckResult:
    """Judge one metric: passed, failed, or no data (passed is None).

    `invalid`: why the provider's answer was not one finite number; a failed check.
    """
    metric, value, stable = measurement.metric, measurement.canary, measurement.stable
    if invalid is not None:
        return CheckResult(
            metric=metric.name,
            value=value,
            stable_value=stable,
            passed=False,
            message=f"invalid measurement: {invalid}"[:500],
        )
    for number in (value, stable):
        if number is not None and not math.isfinite(number):
            return CheckResult(
                metric=metric.name, passed=False, message=f"invalid measurement: {number}"
            )
    if value is None:
        return CheckResult(metric=metric.name, message="no data for the canary")
    failures: list[str] = []
    if metric.max is not None and value > metric.max:
        failures.append(f"{value:.4g} > max {metric.max:g}")
    if metric.min is not None and value < metric.min:
        failures.append(f"{value:.4g} < min {metric.min:g}")
    increase = metric.max_increase_over_stable
    if increase is not None and stable is not None and value - stable > increase:
        failures.append(f"{value:.4g} exceeds stable {stable:.4g} by more than {increase:g}")
    if not failures and metric.max_increase_over_stable is not None and stable is None:
        # An absolute breach above still fails; only the comparison lacks data.
        return CheckResult(
            metric=metric.name, value=value, message="no data for stable to compare with"
        )
    if failures:
        return CheckResult(
            metric=metric.name,
            value=value,
            stable_value=stable,
            passed=False,
            message="; ".join(failures),
        )
    return CheckResult(
        metric=metric.name,
        value=value,
        stable_value=stable,
        passed=True,
        message="within thresholds",
    )


def verdict(
    checks: Sequence[CheckResult], on_no_data: NoDataPolicy, error: str | None = None
) -> Verdict:
    """A run fails if any check fails; else it errs when the provider could not answer
    (`error`); else missing data follows `on_no_data`.

    No checks at all is never a pass: the canary would advance unjudged. An error is
    never a pass either, whatever `on_no_data` says.
    """
    if any(c.passed is False for c in checks):
        return "fail"
    if error is not None:
        return "error"
    if not checks:
        return "hold"
    if any(c.passed is None for c in checks):
        return {"hold": "hold", "fail": "fail", "pass": "pass"}[on_no_data]  # type: ignore[return-value]
    return "pass"


TTFT_INCREASE_OVER_STABLE = 0.2
"""Default relative TTFT threshold of an LLM canary, as a share of the TTFT objective: a
canary whose p95 time to first token exceeds stable's by more than this fails, even
within the objective (a regression caught before users feel it)."""
QUEUE_TIME_INCREASE_OVER_STABLE_MS = 250.0
"""Default relative queue-time threshold: vLLM queueing a canary's requests this much
longer than stable's means it has less capacity."""
KV_CACHE_MAX = 0.95
"""Default highest vLLM KV-cache usage of a canary (a full cache preempts requests)."""


def vllm_metrics(slo: EffectiveSlo) -> list[AnalysisMetric]:
    """The default checks of an LLM served by LLMInferenceServices, on vLLM's own series:
    error rate, TTFT (absolute and relative to stable), inter-token latency, end-to-end
    latency, queue time (relative) and KV-cache usage."""
    ttft = slo.time_to_first_token_p95_ms or 1000.0
    metrics = [
        AnalysisMetric(name="error-rate", query=VLLM_ERROR_RATE.query, max=slo.max_error_rate),
        AnalysisMetric(
            name="time-to-first-token-p95",
            query=VLLM_TTFT_P95.query,
            max=ttft,
            max_increase_over_stable=round(ttft * TTFT_INCREASE_OVER_STABLE, 3),
        ),
        AnalysisMetric(name="latency-p95", query=VLLM_LATENCY_P95.query, max=slo.latency_p95_ms),
        AnalysisMetric(
            name="queue-time-p95",
            query=VLLM_QUEUE_TIME_P95.query,
            max_increase_over_stable=QUEUE_TIME_INCREASE_OVER_STABLE_MS,
        ),
        AnalysisMetric(name="kv-cache-usage", query=VLLM_KV_CACHE_USAGE.query, max=KV_CACHE_MAX),
    ]
    if slo.min_tokens_per_second:
        metrics.insert(
            2,
            AnalysisMetric(
                name="inter-token-latency-p95",
                query=VLLM_ITL_P95.query,
                max=round(1000.0 / slo.min_tokens_per_second, 3),
            ),
        )
    return metrics
