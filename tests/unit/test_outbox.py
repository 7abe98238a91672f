"""rung.plan.outbox: which announcements are still to post, and when delivered ones
left in status need a write of their own."""

from __future__ import annotations

import pytest

from rung.api.status import OutboxEntry
from rung.plan.outbox import OUTBOX_CLEAR_SECONDS, clear_in, undelivered


def entry(id_: str) -> OutboxEntry:
    return OutboxEntry(id=id_, reason="Promoted", message="m", type="Normal", time="t")


@pytest.mark.parametrize(
    ("outbox", "delivered", "left"),
    [
        ([], set(), []),
        (["a", "b"], set(), ["a", "b"]),
        (["a", "b"], {"a"}, ["b"]),
        (["a", "b"], {"a", "b", "gone"}, []),
    ],
)
def test_undelivered(outbox: list[str], delivered: set[str], left: list[str]) -> None:
    assert [e.id for e in undelivered([entry(i) for i in outbox], delivered)] == left


@pytest.mark.parametrize(
    ("ages", "due_in"),
    [
        ([], None),  # nothing delivered is waiting
        ([0.0], OUTBOX_CLEAR_SECONDS),
        ([1.0, 4.0], OUTBOX_CLEAR_SECONDS - 4.0),  # the oldest decides
        ([OUTBOX_CLEAR_SECONDS], 0.0),
        ([OUTBOX_CLEAR_SECONDS + 30.0], 0.0),  # overdue: now, never negative
    ],
)
def test_clear_in(ages: list[float], due_in: float | None) -> None:
    assert clear_in(ages) == due_in
