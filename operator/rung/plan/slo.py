"""Service-level objectives: the ones in force for a model kind, and the verdict on a
measured snapshot (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from rung.api.spec import Slo
from rung.api.status import SloSnapshot


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
