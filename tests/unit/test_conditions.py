"""rung.plan.conditions: setting, removing and reading standard conditions."""

from __future__ import annotations

from typing import Any

import pytest

from rung.api.status import Condition
from rung.plan.conditions import (
    get_condition,
    object_condition,
    remove_condition,
    set_condition,
)

T0 = "2025-03-01T12:00:00Z"
T1 = "2025-03-01T12:05:00Z"


def condition(type_: str = "Ready", status: str = "True", **extra: Any) -> Condition:
    fields: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": "Reason",
        "message": "message",
        "last_transition_time": T0,
        "observed_generation": 1,
        **extra,
    }
    return Condition(**fields)


def test_set_appends_a_new_condition_with_now() -> None:
    out = set_condition([], "Ready", "False", "Waiting", "wait", now=T1, generation=3)
    assert out == [
        Condition(
            type="Ready",
            status="False",
            reason="Waiting",
            message="wait",
            last_transition_time=T1,
            observed_generation=3,
        )
    ]


@pytest.mark.parametrize(
    ("old_status", "new_status", "transition_time"),
    [
        ("True", "True", T0),
        ("False", "False", T0),
        ("Unknown", "Unknown", T0),
        ("True", "False", T1),
        ("False", "True", T1),
        ("Unknown", "True", T1),
        ("True", "Unknown", T1),
    ],
)
def test_transition_time_moves_only_when_status_changes(
    old_status: str, new_status: str, transition_time: str
) -> None:
    out = set_condition(
        [condition(status=old_status)],
        "Ready",
        new_status,  # type: ignore[arg-type]
        "Other",
        "other",
        now=T1,
        generation=2,
    )
    assert len(out) == 1
    assert out[0].last_transition_time == transition_time
    assert (out[0].status, out[0].reason, out[0].message) == (new_status, "Other", "other")
    assert out[0].observed_generation == 2


def test_set_keeps_other_conditions_and_order() -> None:
    old = [condition("Ready"), condition("Progressing"), condition("Degraded")]
    out = set_condition(old, "Progressing", "False", "Done", "done", now=T1, generation=1)
    assert [c.type for c in out] == ["Ready", "Progressing", "Degraded"]
    assert out[0] == old[0]
    assert out[2] == old[2]


def test_set_is_idempotent() -> None:
    once = set_condition([], "Ready", "True", "R", "m", now=T0, generation=1)
    twice = set_condition(once, "Ready", "True", "R", "m", now=T1, generation=1)
    assert twice == once


def test_set_does_not_mutate_its_input() -> None:
    old = [condition()]
    set_condition(old, "Ready", "False", "R", "m", now=T1, generation=1)
    assert old == [condition()]


def test_remove_condition() -> None:
    old = [condition("Ready"), condition("MonitoringReady")]
    assert remove_condition(old, "MonitoringReady") == [condition("Ready")]
    assert remove_condition(old, "Absent") == old


def test_get_condition() -> None:
    old = [condition("Ready"), condition("Degraded", "False")]
    assert get_condition(old, "Degraded") == condition("Degraded", "False")
    assert get_condition(old, "Absent") is None
    assert get_condition([], "Ready") is None


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (None, None),
        ({}, None),
        ({"status": None}, None),
        ({"status": {}}, None),
        ({"status": {"conditions": None}}, None),
        ({"status": {"conditions": [{"type": "Other", "status": "True"}]}}, None),
        (
            {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "X"}]}},
            {"type": "Ready", "status": "False", "reason": "X"},
        ),
        (
            {
                "status": {
                    "conditions": [
                        {"type": "PredictorReady", "status": "True"},
                        {"type": "Ready", "status": "True"},
                    ]
                }
            },
            {"type": "Ready", "status": "True"},
        ),
    ],
)
def test_object_condition(obj: Any, expected: Any) -> None:
    assert object_condition(obj, "Ready") == expected
