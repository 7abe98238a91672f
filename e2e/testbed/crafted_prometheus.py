"""A stand-in for Prometheus that answers with crafted JSON: garbage, hangs, errors.

A real Prometheus cannot be made to return a non-numeric sample or a string result
to a well-formed query, so fault tests use this tiny HTTP server on 127.0.0.1. It is
a stand-in, named as one: it serves `/api/v1/query` only, under any number of
prefixes, and each prefix answers as its `mode` says:

    prometheus = CraftedPrometheus().start()
    url = prometheus.url_for("md-1")          # http://127.0.0.1:PORT/md-1
    prometheus.set("md-1", "nan")              # every query under it now answers NaN

Modes: `value:<x>` (one series with the sample `<x>`, as a string; e.g. `value:0`),
`empty` (a well-formed empty vector), `nan`, `inf`, `-inf`, `non-numeric`,
`two-series`, `nan-and-good` (a NaN series plus a good one), `scalar-nan`, `matrix`,
`string`, `not-json`, `error-503`, `bad-data` (HTTP 400 bad_data) and `hang` (accept,
read the request, never answer: a Prometheus stuck evaluating).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _vector(*values: str) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"series": str(i)}, "value": [time.time(), v]}
                for i, v in enumerate(values)
            ],
        },
    }


def _typed(kind: str, result: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": kind, "result": result}}


ANSWERS: dict[str, tuple[int, Any]] = {
    "empty": (200, _vector()),
    "nan": (200, _vector("NaN")),
    "inf": (200, _vector("+Inf")),
    "-inf": (200, _vector("-Inf")),
    "non-numeric": (200, _vector("zero point one")),
    "two-series": (200, _vector("0.001", "0.002")),
    "nan-and-good": (200, _vector("NaN", "0.001")),
    "scalar-nan": (200, _typed("scalar", [0, "NaN"])),
    "matrix": (200, _typed("matrix", [{"metric": {}, "values": [[0, "0.001"], [1, "0.001"]]}])),
    "string": (200, _typed("string", [0, "0.001"])),
    "bad-data": (400, {"status": "error", "errorType": "bad_data", "error": "parse error"}),
}
GARBAGE = (
    "nan",
    "inf",
    "-inf",
    "non-numeric",
    "two-series",
    "nan-and-good",
    "scalar-nan",
    "matrix",
    "string",
)
"""Modes whose answer is not one finite number."""


class CraftedPrometheus:
    """The stand-in server; `set(prefix, mode)` changes what a prefix answers."""

    def __init__(self) -> None:
        self.modes: dict[str, str] = {}
        self.queries: dict[str, int] = {}
        self._release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer._answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url_for(self, prefix: str) -> str:
        return f"{self.base_url}/{prefix}"

    def set(self, prefix: str, mode: str) -> None:
        self.modes[prefix] = mode

    def start(self) -> CraftedPrometheus:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # let hanging handlers go
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> CraftedPrometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        prefix = request.path.lstrip("/").split("/", 1)[0]
        self.queries[prefix] = self.queries.get(prefix, 0) + 1
        mode = self.modes.get(prefix, "empty")
        if mode == "hang":
            self._release.wait(600)
            return
        if mode == "not-json":
            status, body = 200, b"<html>this is not Prometheus</html>"
        elif mode == "error-503":
            status, body = 503, b"Service Unavailable"
        elif mode.startswith("value:"):
            status, body = 200, json.dumps(_vector(mode.split(":", 1)[1])).encode()
        else:
            code, answer = ANSWERS[mode]
            status, body = code, json.dumps(answer).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
