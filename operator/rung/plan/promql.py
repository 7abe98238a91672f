"""PromQL templates: default queries per model kind, and their rendering (pure).

Templates use `{{ variable }}` placeholders. Rendering fails on an unknown variable
instead of sending a broken query to Prometheus. (A regex is enough here; a general
template engine would accept constructs PromQL authors do not need.)

Where the numbers come from in a cluster:
- latency and request rate: the KServe model server's own `request_predict_seconds`
  histogram (vLLM's histograms for `llm`), scraped from the predictor pods;
- error rate: the mesh or gateway in front of the model (`istio_requests_total`
  with `response_code`), because the model server has no per-status counter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from rung.api.resource import ModelDeployment
from rung.api.spec import TEMPLATE_VARIABLES, ModelKind

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)
_IDENTIFIER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*$")

VARIABLES = TEMPLATE_VARIABLES
"""Template variables (stated once, in the API, whose CEL rules check them). `target`,
`stable` and `canary` are predictor workload names (the Deployment, e.g.
`fraud-predictor`; a revision in Serverless mode): pods are named `<workload>-...` and a
mesh reports the workload as destination."""


@dataclass(frozen=True)
class Targets:
    """Workload names of stable and canary for query templates, as a router names them."""

    stable: str
    canary: str | None


def query_variables(
    md: ModelDeployment, targets: Targets, interval: str = "1m", target: str | None = None
) -> dict[str, str]:
    """Template variables for queries about the workload `target` (default: stable).

    Workload names come from the router (`Router.targets`); without a canary,
    `{{ canary }}` is empty.
    """
    return {
        "namespace": md.namespace,
        "name": md.name,
        "target": target or targets.stable,
        "stable": targets.stable,
        "canary": targets.canary or "",
        "interval": interval,
    }


class TemplateError(ValueError):
    """A query template names a variable that does not exist."""


def render(template: str, variables: Mapping[str, str]) -> str:
    """`template` with every `{{ variable }}` replaced; unknown names raise TemplateError."""

    def substitute(match: re.Match[str]) -> str:
        name = _IDENTIFIER.match(match.group(1))
        if name is None:
            raise TemplateError(f"malformed template placeholder {match.group(0)!r}")
        key = name.group(1)
        if key not in variables:
            known = ", ".join(sorted(variables))
            raise TemplateError(f"unknown template variable {{{{ {key} }}}} (known: {known})")
        return variables[key]

    return _PLACEHOLDER.sub(substitute, template)


def template_errors(template: str) -> list[str]:
    """Names in `template` that are not template variables."""
    errors = []
    for inner in _PLACEHOLDER.findall(template):
        name = _IDENTIFIER.match(inner)
        if name is None or name.group(1) not in VARIABLES:
            errors.append(inner.strip())
    return errors


_POD = 'namespace="{{ namespace }}", pod=~"{{ target }}-.*"'
_WORKLOAD = (
    'destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}.*"'
)


@dataclass(frozen=True)
class Indicator:
    """A service level indicator: what it is called and how to query it."""

    name: str
    query: str
    unit: str


ERROR_RATE = Indicator(
    "error-rate",
    # `or vector(0)`: with no 5xx ever served the numerator has no series at all,
    # which must read as 0 errors, not as "no data". `> 0` on the denominator: no
    # requests at all is "no data" (an empty answer), not 0/0 = NaN, which analysis
    # counts as a failed measurement.
    f'(sum(rate(istio_requests_total{{{_WORKLOAD}, response_code=~"5.."}}[{{{{ interval }}}}]))'
    " or vector(0))"
    f" / (sum(rate(istio_requests_total{{{_WORKLOAD}}}[{{{{ interval }}}}])) > 0)",
    "ratio",
)
REQUEST_RATE = Indicator(
    "request-rate",
    f"sum(rate(request_predict_seconds_count{{{_POD}}}[{{{{ interval }}}}]))",
    "1/s",
)
LATENCY_P95 = Indicator(
    "latency-p95",
    "1000 * histogram_quantile(0.95, sum by (le) "
    f"(rate(request_predict_seconds_bucket{{{_POD}}}[{{{{ interval }}}}]))) >= 0",
    "ms",
)
LLM_LATENCY_P95 = Indicator(
    "latency-p95",
    "1000 * histogram_quantile(0.95, sum by (le) "
    f"(rate(vllm:e2e_request_latency_seconds_bucket{{{_POD}}}[{{{{ interval }}}}]))) >= 0",
    "ms",
)
LLM_REQUEST_RATE = Indicator(
    "request-rate",
    f"sum(rate(vllm:e2e_request_latency_seconds_count{{{_POD}}}[{{{{ interval }}}}]))",
    "1/s",
)
TTFT_P95 = Indicator(
    "time-to-first-token-p95",
    "1000 * histogram_quantile(0.95, sum by (le) "
    f"(rate(vllm:time_to_first_token_seconds_bucket{{{_POD}}}[{{{{ interval }}}}]))) >= 0",
    "ms",
)
TOKENS_PER_SECOND = Indicator(
    "tokens-per-second",
    f"sum(rate(vllm:generation_tokens_total{{{_POD}}}[{{{{ interval }}}}]))",
    "1/s",
)
INTER_TOKEN_LATENCY_P95 = Indicator(
    "inter-token-latency-p95",
    "1000 * histogram_quantile(0.95, sum by (le) "
    f"(rate(vllm:time_per_output_token_seconds_bucket{{{_POD}}}[{{{{ interval }}}}]))) >= 0",
    "ms",
)


# LLMInferenceService (kind llm): vLLM's own series, per version by `llm_isvc_name`, the
# label KServe's documented PodMonitor relabelling takes from the pods'
# `app.kubernetes.io/name` (the LLMInferenceService's name; `{{ target }}` is that name).
# Error rate: vLLM's HTTP server counts requests by handler and status class
# (`http_requests_total{status="5xx"}`); an external provider's series carry the same
# labels when the Gateway (or egress proxy) in front of it exports them.
_LLMISVC = 'namespace="{{ namespace }}", llm_isvc_name="{{ target }}"'


def _p95_ms(metric: str) -> str:
    return (
        "1000 * histogram_quantile(0.95, sum by (le) "
        f"(rate({metric}_bucket{{{_LLMISVC}}}[{{{{ interval }}}}]))) >= 0"
    )


VLLM_ERROR_RATE = Indicator(
    "error-rate",
    f'(sum(rate(http_requests_total{{{_LLMISVC}, status="5xx"}}[{{{{ interval }}}}]))'
    " or vector(0))"
    f" / (sum(rate(http_requests_total{{{_LLMISVC}}}[{{{{ interval }}}}])) > 0)",
    "ratio",
)
VLLM_REQUEST_RATE = Indicator(
    "request-rate",
    f"sum(rate(vllm:e2e_request_latency_seconds_count{{{_LLMISVC}}}[{{{{ interval }}}}]))",
    "1/s",
)
VLLM_LATENCY_P95 = Indicator("latency-p95", _p95_ms("vllm:e2e_request_latency_seconds"), "ms")
VLLM_TTFT_P95 = Indicator(
    "time-to-first-token-p95", _p95_ms("vllm:time_to_first_token_seconds"), "ms"
)
VLLM_ITL_P95 = Indicator(
    "inter-token-latency-p95", _p95_ms("vllm:inter_token_latency_seconds"), "ms"
)
VLLM_QUEUE_TIME_P95 = Indicator("queue-time-p95", _p95_ms("vllm:request_queue_time_seconds"), "ms")
VLLM_GENERATION_TOKENS = Indicator(
    "tokens-per-second",
    f"sum(rate(vllm:generation_tokens_total{{{_LLMISVC}}}[{{{{ interval }}}}]))",
    "1/s",
)
VLLM_PROMPT_TOKENS = Indicator(
    "prompt-tokens-per-second",
    f"sum(rate(vllm:prompt_tokens_total{{{_LLMISVC}}}[{{{{ interval }}}}]))",
    "1/s",
)
VLLM_KV_CACHE_USAGE = Indicator(
    "kv-cache-usage", f"max(vllm:kv_cache_usage_perc{{{_LLMISVC}}})", "ratio"
)


# Quantile queries end in `>= 0`: with no requests in the window histogram_quantile is
# NaN, and the comparison drops it, so "no traffic" reads as "no data", not as garbage.


def indicators(kind: ModelKind, llm_api: str | None = None) -> dict[str, Indicator]:
    """The SLO indicators read into status for a model kind (and, for an LLM, the API
    serving it), by status field."""
    if kind == "llm" and llm_api == "LLMInferenceService":
        return {
            "request_rate": VLLM_REQUEST_RATE,
            "error_rate": VLLM_ERROR_RATE,
            "latency_p95_ms": VLLM_LATENCY_P95,
            "time_to_first_token_p95_ms": VLLM_TTFT_P95,
            "tokens_per_second": VLLM_GENERATION_TOKENS,
        }
    if kind == "llm":
        return {
            "request_rate": LLM_REQUEST_RATE,
            "error_rate": ERROR_RATE,
            "latency_p95_ms": LLM_LATENCY_P95,
            "time_to_first_token_p95_ms": TTFT_P95,
            "tokens_per_second": TOKENS_PER_SECOND,
        }
    return {"request_rate": REQUEST_RATE, "error_rate": ERROR_RATE, "latency_p95_ms": LATENCY_P95}
