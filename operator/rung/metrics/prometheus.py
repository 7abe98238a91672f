"""Prometheus instant queries over its HTTP API, answers checked strictly.

Only a well-formed answer counts: `status: success`, an instant vector with at most one
sample whose value parses as a finite number, or a finite scalar. An empty vector is
"no data"; everything else (NaN, ±Inf, several series, a matrix or string result, a
non-numeric value, a body that is not the API's JSON, a query Prometheus rejected) is an
`InvalidMeasurementError`. Transport failures are `MetricsUnavailableError`, and a
Prometheus that accepts the connection but never answers is told apart from one that
refuses it (`MetricsTimeoutError`). Every request is bounded: a connect timeout, a read
timeout, and Prometheus's own `timeout` parameter for the query's evaluation.
"""

from __future__ import annotations

import math
from typing import Any

import requests

from rung.metrics.provider import (
    InvalidMeasurementError,
    MetricsTimeoutError,
    MetricsUnavailableError,
)

CONNECT_TIMEOUT = 2.0
"""Seconds to establish the TCP (and TLS) connection."""
READ_TIMEOUT = 5.0
"""Seconds to wait for the answer once connected."""
MAX_ANSWER_BYTES = 1_000_000
"""An answer larger than this is not one number: refused without parsing it."""


class PrometheusProvider:
    """Instant queries against one Prometheus server."""

    def __init__(
        self,
        url: str,
        timeout_seconds: float = READ_TIMEOUT,
        connect_timeout_seconds: float = CONNECT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.connect_timeout_seconds = connect_timeout_seconds
        self._session = session or requests.Session()
        self._session.trust_env = False  # no proxy from the environment for cluster URLs

    def run_query(self, query: str) -> float | None:
        answer = self._get(query)
        return parse_answer(answer)

    def _get(self, query: str) -> Any:
        where = f"Prometheus at {self.url}"
        try:
            response = self._session.get(
                f"{self.url}/api/v1/query",
                params={"query": query, "timeout": f"{self.timeout_seconds:g}s"},
                timeout=(self.connect_timeout_seconds, self.timeout_seconds),
                allow_redirects=False,
                stream=True,
            )
        except requests.ConnectTimeout as error:
            raise MetricsTimeoutError(
                f"{where}: no connection within {self.connect_timeout_seconds:g}s (timed out)"
            ) from error
        except requests.ReadTimeout as error:
            raise MetricsTimeoutError(
                f"{where}: accepted the connection but sent no answer within"
                f" {self.timeout_seconds:g}s (timed out)"
            ) from error
        except requests.ConnectionError as error:
            raise MetricsUnavailableError(
                f"{where}: connection refused or unreachable ({_short(error)})"
            ) from error
        except requests.RequestException as error:
            raise MetricsUnavailableError(f"{where}: {_short(error)}") from error
        try:
            body = _read(response, self.timeout_seconds)
        except requests.RequestException as error:
            raise MetricsTimeoutError(
                f"{where}: the answer did not arrive within {self.timeout_seconds:g}s"
                f" ({_short(error)})"
            ) from error
        finally:
            response.close()
        return _decode(where, response.status_code, body)


def _read(response: requests.Response, timeout: float) -> bytes:
    """The body, at most MAX_ANSWER_BYTES + 1 bytes of it, within `timeout` seconds in all
    (a server trickling bytes cannot hold a reconcile longer than that)."""
    import time

    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            break
        if time.monotonic() > deadline:
            raise requests.ReadTimeout("answer still arriving")
    return b"".join(chunks)


def _decode(where: str, code: int, body: bytes) -> Any:
    """The JSON answer of a 200, or the error it stands for."""
    import json

    if len(body) > MAX_ANSWER_BYTES:
        raise InvalidMeasurementError(f"{where}: answer larger than {MAX_ANSWER_BYTES} bytes")
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if code >= 500 or code in (401, 403, 404, 407, 408, 429):
        detail = _api_error(answer) or body[:200].decode(errors="replace").strip()
        raise MetricsUnavailableError(f"{where}: HTTP {code}" + (f": {detail}" if detail else ""))
    if code >= 300 and code < 400:
        raise MetricsUnavailableError(f"{where}: HTTP {code} redirect (not followed)")
    if not isinstance(answer, dict):
        raise InvalidMeasurementError(f"{where}: HTTP {code} answer is not Prometheus API JSON")
    if code != 200 or answer.get("status") != "success":
        detail = _api_error(answer) or f"status {answer.get('status')!r}"
        raise InvalidMeasurementError(f"{where}: query refused (HTTP {code}): {detail}")
    return answer


def _api_error(answer: Any) -> str:
    if not isinstance(answer, dict) or "error" not in answer:
        return ""
    kind = answer.get("errorType")
    return (f"{kind}: " if kind else "") + str(answer.get("error"))[:300]


def parse_answer(answer: Any) -> float | None:
    """One finite number, None for an empty vector; InvalidMeasurementError otherwise."""
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict):
        raise InvalidMeasurementError("answer has no data object")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _number(result, "scalar")
    if kind != "vector":
        raise InvalidMeasurementError(
            f"query returned a {kind!r} result, expected an instant vector with one series"
        )
    if not isinstance(result, list):
        raise InvalidMeasurementError("vector result is not a list")
    if not result:
        return None
    if len(result) > 1:
        raise InvalidMeasurementError(
            f"query returned {len(result)} series, expected one (aggregate it, e.g. with sum)"
        )
    sample = result[0]
    if not isinstance(sample, dict):
        raise InvalidMeasurementError("vector sample is not an object")
    if "value" not in sample and "histogram" in sample:
        raise InvalidMeasurementError("query returned a native histogram, expected a number")
    return _number(sample.get("value"), "sample")


def _number(pair: Any, what: str) -> float:
    if not isinstance(pair, list) or len(pair) != 2:
        raise InvalidMeasurementError(f"{what} is not a [timestamp, value] pair: {pair!r:.80}")
    raw = pair[1]
    if not isinstance(raw, str):
        raise InvalidMeasurementError(f"{what} value is not a string: {raw!r:.80}")
    try:
        number = float(raw)
    except ValueError:
        raise InvalidMeasurementError(f"{what} value {raw!r:.80} is not a number") from None
    if math.isnan(number):
        raise InvalidMeasurementError(f"{what} value is NaN (e.g. a division by zero)")
    if math.isinf(number):
        raise InvalidMeasurementError(f"{what} value is {raw} (not finite)")
    return number


def _short(error: BaseException) -> str:
    return str(error)[:200]
