"""Build vs buy for LLM deployments: self-hosting next to an external provider (pure).

Rung does not guess prices. `LlmPrices` holds what the user supplied (a ConfigMap or
`rung assess` flags): a price per GPU-hour and per CPU-hour (self-hosted), and per
1,000 prompt and generation tokens (an external provider). `LlmUsage` is what was
measured (Prometheus, vLLM's series over a window): requests, prompt and generation
tokens per second. `llm_cost()` prices both ways for one deployment when the inputs
are there, and names the inputs it lacks otherwise.

- Self-hosted: (GPUs x price per GPU-hour + CPUs x price per CPU-hour) x replicas, per
  hour of running capacity: the same whatever the traffic.
- External: prompt tokens per request x price per 1k prompt tokens / 1000 + generation
  tokens per request x price per 1k generation tokens / 1000, per request.
- Both per day (at the measured request rate) and per million requests; break-even:
  the request rate at which a day costs the same both ways (above it, self-hosting is
  cheaper).

ConfigMap keys (all optional; numbers as strings):

    currency: EUR
    gpuHourlyRate: "2.5"          # per GPU (nvidia.com/gpu, amd.com/gpu ...) and hour
    cpuHourlyRate: "0.04"         # per CPU core and hour
    promptPer1kTokens: "0.00015"  # external provider, per 1,000 prompt tokens
    generationPer1kTokens: "0.0006"
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from kubernetes.utils import parse_quantity
from pydantic.dataclasses import dataclass as report_part

from rung.api._base import CAMEL_CASE
from rung.api.resource import ModelDeployment

SECONDS_PER_DAY = 86_400
KEYS = {
    "gpuHourlyRate": "gpu_hourly_rate",
    "cpuHourlyRate": "cpu_hourly_rate",
    "promptPer1kTokens": "prompt_per_1k_tokens",
    "generationPer1kTokens": "generation_per_1k_tokens",
}


class LlmPriceError(ValueError):
    """A price that is not a finite, non-negative number, or an unknown key."""


@dataclass(frozen=True)
class LlmPrices:
    """What the user says compute and tokens cost."""

    gpu_hourly_rate: float | None = None
    cpu_hourly_rate: float | None = None
    prompt_per_1k_tokens: float | None = None
    generation_per_1k_tokens: float | None = None
    currency: str = ""
    source: str | None = None
    """Where the prices came from (`configmap team-a/llm-prices`, `flags`)."""

    @classmethod
    def parse(cls, data: Mapping[str, str], source: str | None = None) -> LlmPrices:
        """Prices from ConfigMap-style keys (see the module docstring)."""
        values: dict[str, float] = {}
        currency = ""
        for key, raw in data.items():
            if key == "currency":
                currency = raw.strip()
            elif key in KEYS:
                values[KEYS[key]] = _price(key, raw)
            else:
                known = ", ".join(["currency", *KEYS])
                raise LlmPriceError(f"unknown key {key!r} (known: {known})")
        return cls(**values, currency=currency, source=source)

    def merged(self, other: LlmPrices) -> LlmPrices:
        """These prices with `other`'s (flags) taking precedence where given."""
        pick = {
            name: getattr(other, name) if getattr(other, name) is not None else getattr(self, name)
            for name in KEYS.values()
        }
        sources = [s for s in (self.source, other.source) if s]
        return LlmPrices(
            **pick,
            currency=other.currency or self.currency,
            source=" + ".join(sources) or None,
        )


@dataclass(frozen=True)
class LlmUsage:
    """What was measured for one LLM deployment over a window (per second)."""

    requests: float | None = None
    prompt_tokens: float | None = None
    generation_tokens: float | None = None
    window: str = ""
    error: str | None = None
    """Why it could not be measured (no Prometheus, unreachable ...)."""


@report_part(frozen=True, config=CAMEL_CASE, kw_only=True)
class LlmCost:
    """Build vs buy for one LLM deployment: what the inputs give, and what is missing."""

    currency: str
    gpus: float
    """GPUs per replica (resources limits, else requests, of `*/gpu`)."""
    cpus: float
    """CPU cores per replica (requests, else limits)."""
    replicas: int
    self_hosted: bool
    """Whether the model is served in the cluster now (else by an external provider)."""
    measured_window: str = ""
    requests_per_second: float | None = None
    prompt_tokens_per_request: float | None = None
    generation_tokens_per_request: float | None = None
    self_hosted_per_hour: float | None = None
    self_hosted_per_day: float | None = None
    self_hosted_per_million_requests: float | None = None
    """At the measured request rate (capacity costs the same whatever the traffic)."""
    external_per_request: float | None = None
    external_per_day: float | None = None
    external_per_million_requests: float | None = None
    break_even_requests_per_second: float | None = None
    """Above this request rate, self-hosting costs less per day than the provider."""
    break_even_requests_per_day: float | None = None
    cheaper: str | None = None
    """`self-hosted` or `external` at the measured rate; None when either is unknown."""
    missing: tuple[str, ...] = ()
    """Inputs that would complete the comparison (prices, measurements)."""


def llm_cost(md: ModelDeployment, prices: LlmPrices, usage: LlmUsage | None) -> LlmCost | None:
    """Build vs buy for `md` (None when it is not an LLM)."""
    model = md.spec.model
    if model.kind != "llm":
        return None
    gpus, cpus = _accelerators(md)
    replicas = md.spec.serving.min_replicas
    missing: list[str] = []
    per_hour = _self_hosted_per_hour(gpus, cpus, replicas, prices, missing)
    usage = usage or LlmUsage(error="not measured")
    rate = usage.requests
    per_request_prompt, per_request_generation, external_per_request = _external_per_request(
        usage, prices, missing
    )
    per_day = None if per_hour is None else per_hour * 24
    daily_requests = rate * SECONDS_PER_DAY if rate else None
    external_per_day = (
        external_per_request * daily_requests
        if external_per_request is not None and daily_requests is not None
        else None
    )
    break_even = (
        per_hour / 3600 / external_per_request
        if per_hour is not None and external_per_request
        else None
    )
    cheaper = None
    if per_day is not None and external_per_day is not None:
        cheaper = "self-hosted" if per_day < external_per_day else "external"
    return LlmCost(
        currency=prices.currency,
        gpus=gpus,
        cpus=cpus,
        replicas=replicas,
        self_hosted=model.source == "self-hosted",
        measured_window=usage.window,
        requests_per_second=_round(rate),
        prompt_tokens_per_request=_round(per_request_prompt),
        generation_tokens_per_request=_round(per_request_generation),
        self_hosted_per_hour=_round(per_hour),
        self_hosted_per_day=_round(per_day),
        self_hosted_per_million_requests=_round(
            per_day / daily_requests * 1e6 if per_day is not None and daily_requests else None
        ),
        external_per_request=_round(external_per_request, 8),
        external_per_day=_round(external_per_day),
        external_per_million_requests=_round(
            external_per_request * 1e6 if external_per_request is not None else None
        ),
        break_even_requests_per_second=_round(break_even),
        break_even_requests_per_day=_round(
            break_even * SECONDS_PER_DAY if break_even is not None else None
        ),
        cheaper=cheaper,
        missing=tuple(missing),
    )


def _self_hosted_per_hour(
    gpus: float, cpus: float, replicas: int, prices: LlmPrices, missing: list[str]
) -> float | None:
    """What the replicas' GPUs and CPUs cost per hour; None (with what is missing
    appended to `missing`) when a price or the resources to price are not known."""
    if gpus and prices.gpu_hourly_rate is None:
        missing.append("gpuHourlyRate")
    if cpus and prices.cpu_hourly_rate is None:
        missing.append("cpuHourlyRate")
    if not gpus and not cpus:
        missing.append("spec.model.resources (GPU or CPU requests to price)")
        return None
    if (gpus and prices.gpu_hourly_rate is None) or (cpus and prices.cpu_hourly_rate is None):
        return None
    return replicas * (
        gpus * (prices.gpu_hourly_rate or 0.0) + cpus * (prices.cpu_hourly_rate or 0.0)
    )


def _external_per_request(
    usage: LlmUsage, prices: LlmPrices, missing: list[str]
) -> tuple[float | None, float | None, float | None]:
    """(prompt tokens, generation tokens, provider price) per request at the measured
    rates; None where a measurement or price is missing (appended to `missing`)."""
    if usage.error:
        missing.append(f"measured token rates ({usage.error})")
    rate, prompt, generation = usage.requests, usage.prompt_tokens, usage.generation_tokens
    per_request_prompt = prompt / rate if rate and prompt is not None else None
    per_request_generation = generation / rate if rate and generation is not None else None
    if not usage.error and not rate:
        missing.append("traffic (no requests measured in the window)")
    if prices.prompt_per_1k_tokens is None:
        missing.append("promptPer1kTokens")
    if prices.generation_per_1k_tokens is None:
        missing.append("generationPer1kTokens")
    if (
        per_request_prompt is None
        or per_request_generation is None
        or prices.prompt_per_1k_tokens is None
        or prices.generation_per_1k_tokens is None
    ):
        return per_request_prompt, per_request_generation, None
    price = (
        per_request_prompt * prices.prompt_per_1k_tokens
        + per_request_generation * prices.generation_per_1k_tokens
    ) / 1000
    return per_request_prompt, per_request_generation, price


def _accelerators(md: ModelDeployment) -> tuple[float, float]:
    """(GPUs, CPU cores) per replica from spec.model.resources."""
    resources = md.spec.model.resources
    if resources is None:
        return 0.0, 0.0
    limits, requests = resources.limits or {}, resources.requests or {}
    gpus = sum(
        _quantity(v)
        for k, v in {**requests, **limits}.items()
        if k.endswith("/gpu")  # limits win: GPUs are set as limits
    )
    cpu = requests.get("cpu", limits.get("cpu"))
    return gpus, _quantity(cpu) if cpu is not None else 0.0


def _quantity(value: int | str) -> float:
    return float(Decimal(parse_quantity(value)))  # type: ignore[no-untyped-call]


def _price(key: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise LlmPriceError(f"{key}: {raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise LlmPriceError(f"{key}: {raw!r} is not a finite, non-negative number")
    return value


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _money(value: float | None, currency: str) -> str:
    if value is None:
        return "?"
    text = f"{value:,.4f}".rstrip("0").rstrip(".") if value < 1 else f"{value:,.2f}"
    return f"{text} {currency}".strip()


def _rate(value: float | None) -> str:
    return "?" if value is None else f"{value:.3g} req/s"


def cost_rows(name: str, cost: LlmCost) -> list[list[str]]:
    """Table rows (deployment, way, per day, per million requests) for one LLM."""
    c = cost.currency
    return [
        [
            name,
            "self-hosted" + ("" if cost.self_hosted else " (if self-hosted)"),
            f"{cost.gpus:g} GPU + {cost.cpus:g} CPU x {cost.replicas}",
            _money(cost.self_hosted_per_day, c),
            _money(cost.self_hosted_per_million_requests, c),
        ],
        [
            name,
            "external" + (" (if bought)" if cost.self_hosted else ""),
            f"{_tokens(cost.prompt_tokens_per_request)} in + "
            f"{_tokens(cost.generation_tokens_per_request)} out tokens/req",
            _money(cost.external_per_day, c),
            _money(cost.external_per_million_requests, c),
        ],
    ]


def _tokens(value: float | None) -> str:
    return "?" if value is None else f"{value:.3g}"


def verdict_text(cost: LlmCost) -> str:
    """One sentence: the measured rate, the break-even, and which is cheaper."""
    parts = [f"measured {_rate(cost.requests_per_second)}"]
    if cost.measured_window:
        parts[0] += f" over {cost.measured_window}"
    if cost.break_even_requests_per_second is not None:
        parts.append(
            f"break-even {_rate(cost.break_even_requests_per_second)}"
            f" ({cost.break_even_requests_per_day:,.0f} requests/day): above it self-hosting"
            " costs less"
        )
    if cost.cheaper:
        parts.append(f"cheaper now: {cost.cheaper}")
    if cost.missing:
        parts.append("missing: " + ", ".join(cost.missing))
    return "; ".join(parts)
