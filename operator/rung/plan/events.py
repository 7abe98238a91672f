"""Decisions to announce: Kubernetes Events (and history entries, written by the planner)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the ModelDeployment."""

    reason: str
    message: str
    type: Literal["Normal", "Warning"] = "Normal"


def timestamp(now: datetime) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes writes times."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """The inverse of `timestamp`."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
