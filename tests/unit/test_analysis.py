"""rung.plan.analysis: one metric's check, a run's verdict, and the metrics analysed."""

from __future__ import annotations

from typing import Any

import pytest

from rung.api.spec import AnalysisMetric, NoDataPolicy
from rung.api.status import CheckResult
from rung.plan.analysis import Measurement, analysis_metrics, check, needs_stable, verdict
from rung.plan.promql import (
    ERROR_RATE,
    INTER_TOKEN_LATENCY_P95,
    LATENCY_P95,
    LLM_LATENCY_P95,
    TTFT_P95,
)

from . import factories as f

QUERY = 'sum(rate(x{pod=~"{{ target }}-.*"}[{{ interval }}]))'


def metric(**thresholds: float) -> AnalysisMetric:
    """An analysis metric `m` with `thresholds` (camelCase names)."""
    return AnalysisMetric.model_validate({"name": "m", "query": QUERY, **thresholds})


# --- check() -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("thresholds", "canary", "stable", "passed", "message"),
    [
        ({"max": 0.01}, 0.005, None, True, "within thresholds"),
        ({"max": 0.01}, 0.01, None, True, "within thresholds"),
        ({"max": 0.01}, 0.02, None, False, "0.02 > max 0.01"),
        ({"max": 250}, 312.345678, None, False, "312.3 > max 250"),
        ({"min": 10}, 12, None, True, "within thresholds"),
        ({"min": 10}, 10, None, True, "within thresholds"),
        ({"min": 10}, 5, None, False, "5 < min 10"),
        ({"min": 1, "max": 3}, 2, None, True, "within thresholds"),
        ({"min": 1, "max": 3}, 0.5, None, False, "0.5 < min 1"),
        ({"min": 1, "max": 3}, 4, None, False, "4 > max 3"),
        ({"max": 0}, 0, None, True, "within thresholds"),
        ({"maxIncreaseOverStable": 0.25}, 0.5, 0.5, True, "within thresholds"),
        ({"maxIncreaseOverStable": 0.25}, 0.75, 0.5, True, "within thresholds"),
        (
            {"maxIncreaseOverStable": 0.25},
            1.0,
            0.5,
            False,
            "1 exceeds stable 0.5 by more than 0.25",
        ),
        ({"maxIncreaseOverStable": 0.25}, 0.25, 0.5, True, "within thresholds"),
        ({"maxIncreaseOverStable": 0}, 0.5, 0.5, True, "within thresholds"),
        ({"maxIncreaseOverStable": 0.25}, 0.5, None, None, "no data for stable to compare with"),
        (
            {"max": 2, "maxIncreaseOverStable": 0.25},
            3,
            0.5,
            False,
            "3 > max 2; 3 exceeds stable 0.5 by more than 0.25",
        ),
        ({"max": 0.01}, None, None, None, "no data for the canary"),
        ({"max": 0.01}, None, 0.5, None, "no data for the canary"),
        ({"maxIncreaseOverStable": 0.25}, None, None, None, "no data for the canary"),
    ],
    ids=[
        "max-below",
        "max-equal",
        "max-above",
        "max-above-4-digits",
        "min-above",
        "min-equal",
        "min-below",
        "window-inside",
        "window-below",
        "window-above",
        "max-zero-at-zero",
        "relative-same",
        "relative-at-limit",
        "relative-above",
        "relative-better-than-stable",
        "relative-zero-same",
        "relative-without-stable",
        "absolute-and-relative-both-fail",
        "no-canary-data",
        "no-canary-data-with-stable",
        "no-data-at-all",
    ],
)
def test_check(
    thresholds: dict[str, float],
    canary: float | None,
    stable: float | None,
    passed: bool | None,
    message: str,
) -> None:
    result = check(Measurement(metric(**thresholds), canary, stable))
    assert result.metric == "m"
    assert (result.passed, result.message) == (passed, message)
    assert result.value == canary


@pytest.mark.parametrize(
    ("thresholds", "stable", "recorded"),
    [
        ({"max": 1}, None, None),
        ({"max": 1}, 0.5, 0.5),
        ({"maxIncreaseOverStable": 1}, 0.5, 0.5),
        ({"maxIncreaseOverStable": 1}, None, None),
    ],
)
def test_check_records_stable_value(
    thresholds: dict[str, float], stable: float | None, recorded: float | None
) -> None:
    assert check(Measurement(metric(**thresholds), 0.75, stable)).stable_value == recorded


def test_absolute_failure_is_not_hidden_by_missing_stable_data() -> None:
    result = check(Measurement(metric(max=0.01, maxIncreaseOverStable=0.005), 0.5, None))
    assert (result.passed, result.message) == (False, "0.5 > max 0.01")


@pytest.mark.parametrize(
    ("thresholds", "needs"),
    [
        ({"max": 1}, False),
        ({"min": 1}, False),
        ({"maxIncreaseOverStable": 0}, True),
        ({"max": 1, "maxIncreaseOverStable": 0.5}, True),
    ],
)
def test_needs_stable(thresholds: dict[str, float], needs: bool) -> None:
    assert needs_stable(metric(**thresholds)) is needs


# --- verdict() -----------------------------------------------------------------------

OK = CheckResult(metric="a", value=0.0, passed=True, message="within thresholds")
BAD = CheckResult(metric="b", value=1.0, passed=False, message="1 > max 0.5")
NONE = CheckResult(metric="c", message="no data for the canary")


@pytest.mark.parametrize(
    ("checks", "hold", "fail", "pass_"),
    [
        ([OK], "pass", "pass", "pass"),
        ([OK, OK], "pass", "pass", "pass"),
        ([BAD], "fail", "fail", "fail"),
        ([OK, BAD], "fail", "fail", "fail"),
        ([NONE], "hold", "fail", "pass"),
        ([OK, NONE], "hold", "fail", "pass"),
        ([NONE, BAD], "fail", "fail", "fail"),
        ([OK, NONE, BAD], "fail", "fail", "fail"),
    ],
    ids=[
        "one-passed",
        "all-passed",
        "one-failed",
        "one-of-two-failed",
        "no-data",
        "passed-and-no-data",
        "no-data-and-failed",
        "mixed",
    ],
)
@pytest.mark.parametrize("policy", ["hold", "fail", "pass"])
def test_verdict(
    checks: list[CheckResult], hold: str, fail: str, pass_: str, policy: NoDataPolicy
) -> None:
    """A failed check always fails; missing data follows onNoData."""
    assert verdict(checks, policy) == {"hold": hold, "fail": fail, "pass": pass_}[policy]


# --- analysis_metrics() --------------------------------------------------------------


def metrics_of(**md_kwargs: Any) -> list[tuple[str, str, float | None]]:
    return [(m.name, m.query, m.max) for m in analysis_metrics(f.md(level=2, **md_kwargs).spec)]


PREDICTIVE_DEFAULTS = [
    ("error-rate", ERROR_RATE.query, 0.01),
    ("latency-p95", LATENCY_P95.query, 250),
]
PLAIN_LLM = {"kind": "llm", "llm": {"api": "InferenceService"}}
"""An LLM on a plain InferenceService; LLMInferenceServices: tests/unit/test_llm_router.py."""
LLM_DEFAULTS = [
    ("error-rate", ERROR_RATE.query, 0.01),
    ("time-to-first-token-p95", TTFT_P95.query, 1000),
    ("latency-p95", LLM_LATENCY_P95.query, 10_000),
    ("inter-token-latency-p95", INTER_TOKEN_LATENCY_P95.query, 100),
]
EXPLICIT = [{"name": "accuracy", "query": "avg(acc)", "min": 0.9}]


@pytest.mark.parametrize(
    ("md_kwargs", "expected"),
    [
        ({}, PREDICTIVE_DEFAULTS),
        ({"rollout": {}}, PREDICTIVE_DEFAULTS),
        ({"rollout": {"analysis": {"failureLimit": 3}}}, PREDICTIVE_DEFAULTS),
        ({"rollout": {"analysis": {"metrics": []}}}, PREDICTIVE_DEFAULTS),
        (
            {"monitoring": {"slo": {"maxErrorRate": 0.05, "latencyP95Ms": 100}}},
            [("error-rate", ERROR_RATE.query, 0.05), ("latency-p95", LATENCY_P95.query, 100)],
        ),
        (
            {"monitoring": {"slo": {"maxErrorRate": 0}}},
            [("error-rate", ERROR_RATE.query, 0), ("latency-p95", LATENCY_P95.query, 250)],
        ),
        ({"model_fields": PLAIN_LLM}, LLM_DEFAULTS),
        (
            {
                "model_fields": PLAIN_LLM,
                "monitoring": {
                    "slo": {
                        "maxErrorRate": 0.02,
                        "latencyP95Ms": 5000,
                        "timeToFirstTokenP95Ms": 300,
                        "minTokensPerSecond": 20,
                    }
                },
            },
            [
                ("error-rate", ERROR_RATE.query, 0.02),
                ("time-to-first-token-p95", TTFT_P95.query, 300),
                ("latency-p95", LLM_LATENCY_P95.query, 5000),
                ("inter-token-latency-p95", INTER_TOKEN_LATENCY_P95.query, 50),
            ],
        ),
        (
            {"model_fields": PLAIN_LLM, "monitoring": {"slo": {"minTokensPerSecond": 0}}},
            LLM_DEFAULTS[:3],
        ),
        (
            {"rollout": {"analysis": {"metrics": EXPLICIT}}},
            [("accuracy", "avg(acc)", None)],
        ),
        (
            {"model_fields": {"kind": "llm"}, "rollout": {"analysis": {"metrics": EXPLICIT}}},
            [("accuracy", "avg(acc)", None)],
        ),
    ],
    ids=[
        "predictive-no-rollout",
        "predictive-empty-rollout",
        "predictive-analysis-without-metrics",
        "predictive-empty-metrics",
        "predictive-slo",
        "predictive-zero-error-budget",
        "llm",
        "llm-slo",
        "llm-no-throughput-objective",
        "explicit",
        "explicit-llm",
    ],
)
def test_analysis_metrics(
    md_kwargs: dict[str, Any], expected: list[tuple[str, str, float | None]]
) -> None:
    assert metrics_of(**md_kwargs) == expected


def test_explicit_metrics_are_kept_whole() -> None:
    spec = f.md(level=2, rollout={"analysis": {"metrics": EXPLICIT}}).spec
    assert spec.rollout is not None
    assert spec.rollout.analysis is not None
    assert analysis_metrics(spec) == spec.rollout.analysis.metrics


@pytest.mark.parametrize("kind", ["predictive", "llm"])
def test_default_metrics_are_absolute_thresholds(kind: str) -> None:
    # an LLM on a plain InferenceService (LLMInferenceServices: tests/unit/test_llm_router.py)
    fields: dict[str, Any] = {"kind": kind}
    if kind == "llm":
        fields["llm"] = {"api": "InferenceService"}
    for m in analysis_metrics(f.md(level=2, model_fields=fields).spec):
        assert (m.min, m.max_increase_over_stable) == (None, None)
        assert not needs_stable(m)


# --- garbage and errors ------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["hold", "fail", "pass"])
def test_an_invalid_measurement_fails_the_check_whatever_the_policy(policy: NoDataPolicy) -> None:
    failed = check(Measurement(metric(max=0.01), None), invalid="canary: sample value is NaN")
    assert (failed.passed, failed.message) == (
        False,
        "invalid measurement: canary: sample value is NaN",
    )
    assert verdict([failed], policy) == "fail"


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_value_fails_the_check(number: float) -> None:
    assert check(Measurement(metric(max=0.01), number)).passed is False
    assert check(Measurement(metric(maxIncreaseOverStable=0.1), 0.0, number)).passed is False


@pytest.mark.parametrize("policy", ["hold", "fail", "pass"])
def test_a_provider_error_is_an_error_never_a_pass(policy: NoDataPolicy) -> None:
    unmeasured = [CheckResult(metric="m", message="timed out")]
    assert verdict(unmeasured, policy, "timed out") == "error"
    assert verdict([], policy, "timed out") == "error"


def test_a_failed_check_outweighs_an_error() -> None:
    checks = [CheckResult(metric="a", passed=False), CheckResult(metric="b")]
    assert verdict(checks, "pass", "timed out") == "fail"
