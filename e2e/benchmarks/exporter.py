"""A stand-in metrics exporter: fixed, healthy traffic for every workload of the canary
benchmark, as a mesh (`istio_requests_total`) and KServe's model server
(`request_predict_seconds`) would export it.

Counters grow with time at a fixed rate (so `rate()` has something to read); every
request succeeds with a latency of 20-80 ms. It stands in for the model-server
processes and the load driver of the integration tests, which would be 200 processes
for 100 canaries on a 2-core machine; the analysis still runs Rung's real PromQL on a
real Prometheus that scrapes this.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from testbed.modelserver import free_port

RATE = 20.0
"""Requests per second per workload."""
BUCKETS = ((0.005, 0.0), (0.01, 0.0), (0.025, 0.1), (0.05, 0.6), (0.1, 1.0), (0.25, 1.0))
"""(le, cumulative share of requests)."""


class Exporter:
    """Serves /metrics on 127.0.0.1 for `workloads` in `namespace` until stopped."""

    def __init__(self, namespace: str, workloads: list[str]) -> None:
        self.namespace, self.workloads = namespace, workloads
        self.started = time.monotonic() - 60  # as if traffic had been flowing for a minute
        self.port = free_port()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Exporter:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def render(self) -> str:
        count = RATE * (time.monotonic() - self.started)
        ns = self.namespace
        lines = [
            "# TYPE istio_requests_total counter",
            "# TYPE request_predict_seconds histogram",
        ]
        for workload in self.workloads:
            lines.append(
                f'istio_requests_total{{destination_workload="{workload}",'
                f'destination_workload_namespace="{ns}",response_code="200"}} {count:.1f}'
            )
            pod = f'namespace="{ns}",pod="{workload}-5f7d8-x2x9k"'
            for le, share in BUCKETS:
                lines.append(
                    f'request_predict_seconds_bucket{{{pod},le="{le}"}} {count * share:.1f}'
                )
            lines.append(f'request_predict_seconds_bucket{{{pod},le="+Inf"}} {count:.1f}')
            lines.append(f"request_predict_seconds_count{{{pod}}} {count:.1f}")
            lines.append(f"request_predict_seconds_sum{{{pod}}} {count * 0.045:.3f}")
        return "\n".join(lines) + "\n"
