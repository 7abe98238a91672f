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


def test_a_request_kopf_retries_is_a_warning_one_it_gives_up_on_an_error() -> None:
    from rung.logs import RetriedIsWarning

    def record(message: str, name: str = "kopf._cogs.clients.api") -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, message, None, None)

    retried = record(
        "Request attempt #1/9 failed; will retry: GET /apis -> APITooManyRequestsError(429)"
    )
    escalated = record("Request attempt #9/9 failed; escalating: GET /apis -> ...")
    ours = record("reconcile failed; will retry", name="rung.handlers")
    for r in (retried, escalated, ours):
        assert RetriedIsWarning().filter(r)
    assert (retried.levelno, retried.levelname) == (logging.WARNING, "WARNING")
    assert escalated.levelno == logging.ERROR
    assert ours.levelno == logging.ERROR
