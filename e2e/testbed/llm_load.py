"""A bounded load driver that streams completions from OpenAI-compatible servers.

It plays the Gateway in front of an LLM's stable and canary: each request goes to one
backend, picked by the weights a callable reports (for rollouts: the weights set in the
cluster), with the headers that backend's route adds (an external provider's API key,
injected as a Gateway's credential injection would). Each completion is streamed
(server-sent events) to its end. Requests are bounded in rate, count and time.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


@dataclass
class LlmBackend:
    """One OpenAI-compatible server, and the headers the route adds to its requests."""

    url: str
    model: str
    headers: Callable[[], dict[str, str]] = dict


@dataclass
class StreamingLoadDriver:
    """Stream `rate` completions per second (over `workers` threads), split by `weights()`."""

    backends: dict[str, LlmBackend]
    weights: Callable[[], dict[str, int]]
    rate: float = 10.0
    workers: int = 4
    max_tokens: int = 8
    max_requests: int = 20_000
    max_seconds: float = 600.0
    seed: int = 1
    sent: Counter[tuple[str, int]] = field(default_factory=Counter)
    tokens: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._count = 0

    def start(self) -> StreamingLoadDriver:
        for i in range(self.workers):
            thread = threading.Thread(target=self._run, name=f"llm-load-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _pick(self) -> str | None:
        """A backend by weight; None while no route exists (nothing to send to)."""
        weights = {k: v for k, v in self.weights().items() if v > 0 and k in self.backends}
        with self._lock:
            if not weights:
                return None
            return self._random.choices(list(weights), weights=list(weights.values()))[0]

    def _run(self) -> None:
        started = time.monotonic()
        interval = self.workers / self.rate
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                if (
                    self._count >= self.max_requests
                    or time.monotonic() - started > self.max_seconds
                ):
                    return
                name = self._pick()
                if name is None:
                    self._stop.wait(interval)
                    continue
                code, tokens = self._stream(client, self.backends[name])
                with self._lock:
                    self._count += 1
                    self.sent[(name, code)] += 1
                    self.tokens[name] += tokens
                self._stop.wait(interval)

    def _stream(self, client: httpx.Client, backend: LlmBackend) -> tuple[int, int]:
        body = {
            "model": backend.model,
            "prompt": "The quick brown fox",
            "max_tokens": self.max_tokens,
            "stream": True,
        }
        tokens = 0
        try:
            with client.stream(
                "POST", f"{backend.url}/v1/completions", json=body, headers=backend.headers()
            ) as response:
                for line in response.iter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        tokens += 1
                return response.status_code, tokens
        except httpx.HTTPError:
            return 503, tokens
