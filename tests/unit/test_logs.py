"""rung.logs.RepeatFilter: a repeated warning once, then with backoff and a count."""

from __future__ import annotations

import logging

from rung.logs import RepeatFilter


def record(
    message: str, level: int = logging.ERROR, name: str = "kopf.watching"
) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, (), None)


def test_an_outage_of_fifty_seconds_is_a_handful_of_lines() -> None:
    now = [0.0]
    keep = RepeatFilter(clock=lambda: now[0])
    passed = []
    for tick in range(500):  # 10 failures a second, 9 watch streams, for 50 s
        now[0] = tick / 10
        for kind in range(9):
            url = f"https://127.0.0.1:42443/apis/g{kind}/v1/namespaces/t-{kind}/x?rv={tick}"
            r = record(f"Request attempt #{tick % 9 + 1}/9 failed; will retry: GET {url}")
            if keep.filter(r):
                passed.append(r.getMessage())
    assert len(passed) <= 8
    assert "similar messages held back" in passed[-1]


def test_different_kinds_and_info_lines_pass() -> None:
    keep = RepeatFilter(clock=lambda: 0.0)
    assert keep.filter(record("Event Deploying for a/b not posted: 403 Forbidden"))
    assert keep.filter(record("applying for a/b failed: denied", name="rung.reconciler"))
    assert not keep.filter(record("Event Deploying for a/b not posted: 403 Forbidden"))
    assert keep.filter(record("Event Deploying for a/b not posted: 503 Unavailable"))  # changed
    assert keep.filter(record("reconciled a/b", level=logging.INFO))
    assert keep.filter(record("reconciled a/b", level=logging.INFO))


def test_a_kind_quiet_for_five_minutes_starts_over() -> None:
    now = [0.0]
    keep = RepeatFilter(clock=lambda: now[0])
    assert keep.filter(record("boom 1"))
    now[0] = 0.5
    assert not keep.filter(record("boom 2"))
    now[0] = 400.0
    assert keep.filter(record("boom 3"))
