"""A keyed, de-duplicating, delayed work queue (client-go's workqueue, for asyncio).

- `add(key, after)` schedules `key` to be processed `after` seconds from now; adding a
  key that is already scheduled keeps the earlier time, so a burst of events for one
  object becomes one reconcile.
- `get()` waits for the next due key that no worker is processing; a key is never
  handed to two workers at once. A key added while it is being processed is handed
  out again after `done(key)`, so no change is lost.
- `backoff(key)` / `forget(key)`: per-key exponential delays for failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

DEFAULT_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
"""Seconds before retrying a key that failed 1, 2, 3, ... times in a row."""


class WorkQueue(Generic[K]):
    """Keys due at a time, each processed by at most one worker at once."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        backoff_delays: Sequence[float] = DEFAULT_BACKOFF,
    ) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}
        """Scheduled keys and when they are due (the earliest request wins)."""
        self._processing: set[K] = set()
        self._again: dict[K, float] = {}
        """Keys added while being processed: scheduled again by done()."""
        self._failures: dict[K, int] = {}
        self._backoff_delays = tuple(backoff_delays)
        self._seq = itertools.count()
        self._changed = asyncio.Event()
        self._shut = False

    def __len__(self) -> int:
        return len(self._due)

    def add(self, key: K, after: float = 0.0) -> None:
        """Process `key` in `after` seconds (or sooner if it is already due sooner)."""
        at = self._clock() + max(0.0, after)
        if key in self._processing:
            self._again[key] = min(at, self._again.get(key, at))
            return
        if key in self._due and self._due[key] <= at:
            return
        self._due[key] = at
        heapq.heappush(self._heap, (at, next(self._seq), key))
        self._changed.set()

    def backoff(self, key: K) -> float:
        """The delay before retrying `key` after one more failure (and count it)."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        return self._backoff_delays[min(failures, len(self._backoff_delays) - 1)]

    def forget(self, key: K) -> None:
        """`key` succeeded: its next failure starts the backoff from the beginning."""
        self._failures.pop(key, None)

    def done(self, key: K) -> None:
        """A worker finished `key`; if it was added meanwhile, schedule it again."""
        self._processing.discard(key)
        again = self._again.pop(key, None)
        if again is not None:
            self.add(key, max(0.0, again - self._clock()))

    def next_due_in(self) -> float | None:
        """Seconds until the earliest scheduled key is due (None: nothing scheduled)."""
        self._drop_stale()
        if not self._heap:
            return None
        return max(0.0, self._heap[0][0] - self._clock())

    async def get(self) -> K:
        """The next due key not being processed; waits until there is one.

        Raises asyncio.CancelledError after shutdown()."""
        while True:
            if self._shut:
                raise asyncio.CancelledError("work queue shut down")
            key = self._pop_due()
            if key is not None:
                self._processing.add(key)
                return key
            wait = self.next_due_in()
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=wait)

    def shutdown(self) -> None:
        self._shut = True
        self._changed.set()

    def _drop_stale(self) -> None:
        while self._heap:
            at, _, key = self._heap[0]
            if self._due.get(key) == at:
                return
            heapq.heappop(self._heap)

    def _pop_due(self) -> K | None:
        self._drop_stale()
        if not self._heap or self._heap[0][0] > self._clock():
            return None
        _, _, key = heapq.heappop(self._heap)
        del self._due[key]
        return key
