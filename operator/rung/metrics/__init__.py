"""Metric providers behind one interface; `provider_for` rejects unknown names."""

from __future__ import annotations

from rung.metrics.prometheus import PrometheusProvider
from rung.metrics.provider import (
    InvalidMeasurementError,
    MeasurementError,
    MetricProvider,
    MetricsTimeoutError,
    MetricsUnavailableError,
)

PROVIDERS = ("prometheus",)


def provider_for(name: str, url: str) -> MetricProvider:
    """The provider called `name`, pointed at `url`."""
    if name == "prometheus":
        return PrometheusProvider(url)
    raise ValueError(f"unknown metric provider {name!r}; known: {', '.join(PROVIDERS)}")


__all__ = [
    "PROVIDERS",
    "InvalidMeasurementError",
    "MeasurementError",
    "MetricProvider",
    "MetricsTimeoutError",
    "MetricsUnavailableError",
    "provider_for",
]
