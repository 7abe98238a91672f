"""Standard conditions: set one, keep lastTransitionTime when nothing changed."""

from __future__ import annotations

from collections.abc import Iterable

from rung.api.status import Condition, ConditionStatus
from rung.plan.live import object_condition

__all__ = [
    "DEGRADED",
    "MONITORING_READY",
    "PROGRESSING",
    "READY",
    "get_condition",
    "object_condition",
    "remove_condition",
    "set_condition",
]

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
MONITORING_READY = "MonitoringReady"
UNDONE = "Undone"
"""True while `rung undo` serves an earlier model in place of spec.model."""
COMMANDS_ACCEPTED = "CommandsAccepted"
"""False while a day-2 command annotation cannot be read (absent otherwise)."""


def set_condition(
    conditions: Iterable[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    now: str,
    generation: int | None,
) -> list[Condition]:
    """`conditions` with `type_` set; its transition time moves only when status changes."""
    out: list[Condition] = []
    found = False
    for cond in conditions:
        if cond.type != type_:
            out.append(cond)
            continue
        found = True
        changed = cond.status != status
        out.append(
            Condition(
                type=type_,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=now if changed else cond.last_transition_time,
                observed_generation=generation,
            )
        )
    if not found:
        out.append(
            Condition(
                type=type_,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=now,
                observed_generation=generation,
            )
        )
    return out


def remove_condition(conditions: Iterable[Condition], type_: str) -> list[Condition]:
    """`conditions` without `type_`."""
    return [c for c in conditions if c.type != type_]


def get_condition(conditions: Iterable[Condition], type_: str) -> Condition | None:
    """The condition of type `type_`, if present."""
    return next((c for c in conditions if c.type == type_), None)
