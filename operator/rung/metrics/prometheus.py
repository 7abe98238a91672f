"""Prometheus, through prometheus-api-client."""

from __future__ import annotations

import math

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from rung.metrics.provider import MetricsUnavailableError


class PrometheusProvider:
    """Instant queries against one Prometheus server."""

    def __init__(self, url: str, timeout_seconds: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self._client = PrometheusConnect(
            url=self.url, disable_ssl=True, retry=Retry(total=0), timeout=timeout_seconds
        )

    def run_query(self, query: str) -> float | None:
        try:
            result = self._client.custom_query(query=query)
        except (requests.RequestException, PrometheusApiClientException) as error:
            raise MetricsUnavailableError(f"Prometheus at {self.url}: {_short(error)}") from error
        values = [_value(sample) for sample in result or []]
        values = [v for v in values if v is not None]
        if not values:
            return None
        if len(values) > 1:
            raise MetricsUnavailableError(
                f"query returned {len(values)} series, expected one (aggregate it with sum)"
            )
        return values[0]


def _value(sample: object) -> float | None:
    if not isinstance(sample, dict) or "value" not in sample:
        return None
    number = float(sample["value"][1])
    return None if math.isnan(number) or math.isinf(number) else number


def _short(error: BaseException) -> str:
    text = str(error)
    if isinstance(error, requests.ConnectionError):
        return "connection refused or unreachable"
    if isinstance(error, requests.Timeout):
        return "timed out"
    return text[:300]
