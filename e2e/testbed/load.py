"""A bounded load driver that plays the mesh's part in front of the model servers.

It sends prediction requests to the stable and canary model servers, split by the
weights a callable reports (for rollouts: the weight currently set in the cluster),
and exports what a service mesh would: `istio_requests_total` with the destination
workload and the response code. Requests are bounded in rate, count and time.

Like a gateway honouring an HTTPRoute RequestMirror filter, it also sends a copy of a
share of the requests (`mirrors()`: percent by backend) to the mirror backend and
discards its responses: they count in `mirrored`, never in `sent` (what users were
answered with), and appear in `istio_requests_total` under the mirror's workload, as
a mesh reports the requests a workload receives.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client import Counter as PromCounter

from testbed.modelserver import ModelServerProcess, free_port


@dataclass
class Backend:
    """A model server as the mesh sees it: a workload in a namespace."""

    workload: str
    namespace: str
    server: ModelServerProcess


@dataclass
class LoadDriver:
    """Send `rate` requests per second, split by `weights()`, until stopped or bounded."""

    backends: dict[str, Backend]
    weights: Callable[[], dict[str, int]]
    rate: float = 20.0
    max_requests: int = 20_000
    max_seconds: float = 600.0
    seed: int = 1
    sent: Counter[tuple[str, int]] = field(default_factory=Counter)
    """User-facing requests by the backend that answered them and its status code."""
    mirrors: Callable[[], dict[str, int]] | None = None
    """Percent of requests mirrored to each backend (the HTTPRoute's RequestMirror)."""
    mirrored: Counter[tuple[str, int]] = field(default_factory=Counter)
    """Mirrored copies by the backend they reached and its (discarded) status code."""

    def __post_init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = PromCounter(
            "istio_requests",
            "Requests seen by the mesh stand-in, by destination and response code",
            ["destination_workload", "destination_workload_namespace", "response_code"],
            registry=self.registry,
        )
        self.port = free_port()
        self._server, self._thread_http = start_http_server(
            self.port, addr="127.0.0.1", registry=self.registry
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._random = random.Random(self.seed)

    @property
    def metrics_address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LoadDriver:
        self._thread = threading.Thread(target=self._run, name="load-driver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server.shutdown()

    def _pick(self) -> str:
        weights = {k: v for k, v in self.weights().items() if v > 0 and k in self.backends}
        if not weights:
            return next(iter(self.backends))
        return self._random.choices(list(weights), weights=list(weights.values()))[0]

    def _run(self) -> None:
        started = time.monotonic()
        interval = 1.0 / self.rate
        with httpx.Client(timeout=10) as client:
            count = 0
            while not self._stop.is_set():
                if count >= self.max_requests or time.monotonic() - started > self.max_seconds:
                    return
                name = self._pick()
                backend = self.backends[name]
                url = f"{backend.server.url}/v1/models/{backend.server.name}:predict"
                try:
                    code = client.post(url, json={"instances": [[1, 2, 3, 4]]}).status_code
                except httpx.HTTPError:
                    code = 503
                self.requests.labels(backend.workload, backend.namespace, str(code)).inc()
                self.sent[(name, code)] += 1
                self._mirror(client, name)
                count += 1
                self._stop.wait(interval)

    def _mirror(self, client: httpx.Client, answered_by: str) -> None:
        """Send the mirror filter's copy of the request just answered; discard the answer."""
        for name, percent in (self.mirrors() if self.mirrors else {}).items():
            if name == answered_by or name not in self.backends or percent <= 0:
                continue
            if self._random.random() * 100 >= percent:
                continue
            backend = self.backends[name]
            url = f"{backend.server.url}/v1/models/{backend.server.name}:predict"
            try:
                code = client.post(url, json={"instances": [[1, 2, 3, 4]]}).status_code
            except httpx.HTTPError:
                code = 503
            self.requests.labels(backend.workload, backend.namespace, str(code)).inc()
            self.mirrored[(name, code)] += 1
