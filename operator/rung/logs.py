"""Log warnings and errors once per state change, with backoff (no flood in an outage).

During an API server outage every watch stream, every retried request and every
reconcile fails, each time: a single ModelDeployment once produced 5,393 lines in 50 s.
`RepeatFilter` lets the first warning or error of a kind through and then the same kind
only after a growing quiet interval (1 s, 2 s, 4 s, ... 60 s), with the count of the ones
held back; a kind not seen for five minutes starts over. "The same kind" ignores what
varies between attempts: numbers, URLs, object names in quotes. Debug and info lines are
never held back (they are not repeated errors).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

FIRST_INTERVAL = 1.0
MAX_INTERVAL = 60.0
FORGET_AFTER = 300.0
_VARYING = [
    (re.compile(r"https?://\S+"), "<url>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<quoted>"),
    (re.compile(r"\d+"), "#"),
]


def fingerprint(record: logging.LogRecord) -> tuple[str, int, str]:
    """What makes two log records the same kind of message."""
    text = record.getMessage()
    for pattern, replacement in _VARYING:
        text = pattern.sub(replacement, text)
    return record.name, record.levelno, text[:300]


@dataclass
class _Seen:
    last_emitted: float
    interval: float
    last_seen: float
    held: int = 0


class RepeatFilter(logging.Filter):
    """Holds back repeated warnings and errors (see the module's docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._seen: dict[tuple[str, int, str], _Seen] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = fingerprint(record)
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is None or now - seen.last_seen > FORGET_AFTER:
                self._seen[key] = _Seen(now, FIRST_INTERVAL, now)
                if len(self._seen) > 10_000:  # bounded: forget the quiet ones
                    for old in [k for k, v in self._seen.items() if now - v.last_seen > 60]:
                        del self._seen[old]
                return True
            seen.last_seen = now
            if now - seen.last_emitted < seen.interval:
                seen.held += 1
                return False
            held, seen.held = seen.held, 0
            seen.last_emitted = now
            seen.interval = min(seen.interval * 2, MAX_INTERVAL)
        if held:
            record.msg = f"{record.getMessage()} ({held} similar messages held back)"
            record.args = ()
        return True


class RetriedIsWarning(logging.Filter):
    """kopf logs each failed request it is about to retry ("Request attempt 1 failed; will
    retry: ... 429") as an ERROR, so a fresh cluster's transient 429 or a short API
    outage opened the log with errors. A request kopf retries is a warning; one it gives
    up on ("escalating") stays an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno == logging.ERROR
            and record.name.startswith("kopf")
            and "will retry" in record.getMessage()
        ):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
