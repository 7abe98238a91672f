"""rung.metrics.prometheus: a number, no data, an error or garbage, told apart.

The HTTP cases run against a tiny HTTP server on 127.0.0.1 that returns crafted
answers (a stand-in for Prometheus, named so), or that accepts connections and never
answers, or a port nobody listens on.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rung.metrics import (
    InvalidMeasurementError,
    MetricsTimeoutError,
    MetricsUnavailableError,
)
from rung.metrics.prometheus import PrometheusProvider, parse_answer


def vector(*values: str) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {"i": str(i)}, "value": [1.0, v]} for i, v in enumerate(values)],
        },
    }


def typed(kind: str, result: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": kind, "result": result}}


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        (vector("0.25"), 0.25),
        (vector("0"), 0.0),
        (vector("-3e2"), -300.0),
        (vector(), None),
        (typed("scalar", [1.0, "7"]), 7.0),
    ],
)
def test_one_finite_number_or_a_well_formed_empty_answer(answer: Any, value: float | None) -> None:
    assert parse_answer(answer) == value


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (vector("NaN"), "NaN"),
        (vector("+Inf"), "not finite"),
        (vector("-Inf"), "not finite"),
        (vector("abc"), "is not a number"),
        (vector("0.1", "0.2"), "2 series"),
        (vector("NaN", "0.001"), "2 series"),
        (typed("scalar", [1.0, "NaN"]), "NaN"),
        (typed("matrix", [{"metric": {}, "values": [[1, "1"]]}]), "'matrix' result"),
        (typed("string", [1.0, "hello"]), "'string' result"),
        (typed("vector", {"not": "a list"}), "not a list"),
        (typed("vector", ["x"]), "not an object"),
        (typed("vector", [{"metric": {}}]), r"not a \[timestamp, value\] pair"),
        (typed("vector", [{"metric": {}, "value": [1.0, 0.5]}]), "not a string"),
        (typed("vector", [{"metric": {}, "histogram": [1.0, {}]}]), "native histogram"),
        ({"status": "success"}, "no data object"),
        ([], "no data object"),
    ],
)
def test_garbage_is_invalid_never_no_data(answer: Any, why: str) -> None:
    with pytest.raises(InvalidMeasurementError, match=why):
        parse_answer(answer)


# --- over HTTP -------------------------------------------------------------------------


class CraftedPrometheus:
    """Stand-in for Prometheus: answers every query with `status` and `body` as set."""

    def __init__(self) -> None:
        self.status = 200
        self.body: bytes = json.dumps(vector("1")).encode()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def crafted() -> Iterator[CraftedPrometheus]:
    server = CraftedPrometheus()
    yield server
    server.close()


def test_a_number_over_http(crafted: CraftedPrometheus) -> None:
    assert PrometheusProvider(crafted.url).run_query("up") == 1.0


@pytest.mark.parametrize(
    ("status", "body", "error", "why"),
    [
        (200, b"not json at all", InvalidMeasurementError, "not Prometheus API JSON"),
        (200, json.dumps(vector("x1")).encode(), InvalidMeasurementError, "not a number"),
        (
            400,
            json.dumps(
                {"status": "error", "errorType": "bad_data", "error": "parse error"}
            ).encode(),
            InvalidMeasurementError,
            "bad_data: parse error",
        ),
        (503, b"Service Unavailable", MetricsUnavailableError, "HTTP 503"),
        (404, b"404 page not found", MetricsUnavailableError, "HTTP 404"),
    ],
)
def test_http_answers_are_classified(
    crafted: CraftedPrometheus, status: int, body: bytes, error: type[Exception], why: str
) -> None:
    crafted.status, crafted.body = status, body
    with pytest.raises(error, match=why):
        PrometheusProvider(crafted.url).run_query("up")


def test_connection_refused_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(MetricsUnavailableError, match="connection refused or unreachable") as info:
        PrometheusProvider(f"http://127.0.0.1:{port}").run_query("up")
    assert not isinstance(info.value, MetricsTimeoutError)


def test_a_prometheus_that_never_answers_is_a_bounded_timeout() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections (the kernel does), never answers
    port = listener.getsockname()[1]
    try:
        provider = PrometheusProvider(f"http://127.0.0.1:{port}", timeout_seconds=0.3)
        started = time.monotonic()
        with pytest.raises(MetricsTimeoutError, match="accepted the connection but sent no answer"):
            provider.run_query("up")
        assert time.monotonic() - started < 2
    finally:
        listener.close()
