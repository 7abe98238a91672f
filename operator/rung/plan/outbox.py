"""When delivered announcements leave `status.outbox`.

Every decision is written to status with its announcements (the outbox) before the
world is changed; once the Events and audit records are posted, the entries can go. They
go with the next status write the object makes anyway (a canary's next analysis, a
rollout finishing), not with one of their own: one status write fewer per decision.
Entries delivered but still in status are posted again only by an operator that did
not deliver them (a restart, a new leader), which is harmless: each is named by its id.
If no other write comes, a write of their own clears them `OUTBOX_CLEAR_SECONDS` after
delivery, so status settles.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from rung.api.status import OutboxEntry

OUTBOX_CLEAR_SECONDS = 10.0
"""How long delivered entries may wait in status for a write that drops them."""


def undelivered(outbox: Sequence[OutboxEntry], delivered: Collection[str]) -> list[OutboxEntry]:
    """The entries of `outbox` still to be posted (`delivered`: ids posted already)."""
    return [entry for entry in outbox if entry.id not in delivered]


def clear_in(delivered_ages: Iterable[float]) -> float | None:
    """Seconds until delivered entries left in status need a write of their own (0: now),
    from how long ago each was delivered; None when there are none."""
    ages = list(delivered_ages)
    return max(0.0, OUTBOX_CLEAR_SECONDS - max(ages)) if ages else None
