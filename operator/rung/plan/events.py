"""Decisions to announce: Kubernetes Events (and history entries, written by the planner)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from rung.api.spec import TrainingData
from rung.api.status import HistoryEntry


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the ModelDeployment."""

    reason: str
    message: str
    type: Literal["Normal", "Warning"] = "Normal"
    id: str | None = None
    """Set once the decision is in status.outbox: delivery is idempotent by this id (the
    Kubernetes Event's name, the CloudEvent's id)."""
    time: str | None = None
    """When it was decided (RFC 3339), for a delivery after a restart."""


@dataclass(frozen=True)
class Decided:
    """What a planning step decided to announce: Events, and the history entries that
    record them in status. Steps return one; the planner adds them up in order."""

    events: tuple[Event, ...] = ()
    history: tuple[HistoryEntry, ...] = field(default_factory=tuple)

    def __add__(self, other: Decided) -> Decided:
        return Decided(self.events + other.events, self.history + other.history)

    @classmethod
    def one(
        cls,
        event: Event,
        at: str | None = None,
        history_event: str | None = None,
        message: str | None = None,
        version: str | None = None,
    ) -> Decided:
        """`event`, and (when `at` is given) a history entry named `history_event`."""
        if at is None:
            return cls((event,))
        entry = HistoryEntry(
            time=at,
            event=history_event or event.reason,
            message=message if message is not None else event.message,
            version=version,
        )
        return cls((event,), (entry,))


def timestamp(now: datetime) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes writes times."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """The inverse of `timestamp`."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def with_lineage(
    entries: tuple[HistoryEntry, ...], known: dict[str, TrainingData]
) -> list[HistoryEntry]:
    """History entries with the training data of the version they concern, where known
    (`known`: model version -> its data) and not already set."""
    return [
        e.model_copy(update={"data": known[e.version]})
        if e.data is None and e.version is not None and e.version in known
        else e
        for e in entries
    ]
