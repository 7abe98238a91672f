"""rung.ladder: level + overrides -> capabilities, with prerequisite refusals."""

from __future__ import annotations

import pytest

from rung.api.spec import MaturityOverrides
from rung.ladder import LEVEL_NAMES, Capability, LadderResult, capabilities

TRISTATE = (None, True, False)

# Written independently of rung.ladder: the ladder table of DESIGN.md section 1.
LEVEL_DEFAULTS: dict[int, set[str]] = {
    0: {"serving"},
    1: {"serving", "monitoring"},
    2: {"serving", "monitoring", "canary"},
    3: {"serving", "monitoring", "canary", "retraining"},
    4: {
        "serving",
        "monitoring",
        "canary",
        "retraining",
        "explainability",
        "payloadLogging",
        "approvalGate",
    },
}
OVERRIDE_TO_CAPABILITY = {
    "monitoring": "monitoring",
    "canary": "canary",
    "retraining": "retraining",
    "explainability": "explainability",
    "payload_logging": "payloadLogging",
    "approval_gate": "approvalGate",
}
LADDER_ORDER = [
    "serving",
    "monitoring",
    "canary",
    "retraining",
    "explainability",
    "payloadLogging",
    "approvalGate",
]


def expected(level: int, overrides: dict[str, bool | None]) -> tuple[set[str], list[str]]:
    """Level default, then overrides, then canary/retraining refused without monitoring."""
    on = set(LEVEL_DEFAULTS[level])
    for field, value in overrides.items():
        if value is True:
            on.add(OVERRIDE_TO_CAPABILITY[field])
        elif value is False:
            on.discard(OVERRIDE_TO_CAPABILITY[field])
    refused: list[str] = []
    if "monitoring" not in on:
        for dependent in ("canary", "retraining"):
            if dependent in on:
                on.discard(dependent)
                refused.append(dependent)
    return on, refused


@pytest.mark.parametrize("approval_gate", TRISTATE)
@pytest.mark.parametrize("payload_logging", TRISTATE)
@pytest.mark.parametrize("explainability", TRISTATE)
@pytest.mark.parametrize("retraining", TRISTATE)
@pytest.mark.parametrize("canary", TRISTATE)
@pytest.mark.parametrize("monitoring", TRISTATE)
@pytest.mark.parametrize("level", [0, 1, 2, 3, 4])
def test_capabilities_match_level_default_plus_overrides(
    level: int,
    monitoring: bool | None,
    canary: bool | None,
    retraining: bool | None,
    explainability: bool | None,
    payload_logging: bool | None,
    approval_gate: bool | None,
) -> None:
    fields = {
        "monitoring": monitoring,
        "canary": canary,
        "retraining": retraining,
        "explainability": explainability,
        "payload_logging": payload_logging,
        "approval_gate": approval_gate,
    }
    want_on, want_refused = expected(level, fields)

    result = capabilities(level, MaturityOverrides(**fields))

    assert {c.value for c in result.capabilities} == want_on
    assert result.ordered() == [c for c in LADDER_ORDER if c in want_on]
    assert len(result.refused) == len(want_refused)
    for message, capability in zip(result.refused, want_refused, strict=True):
        assert message.startswith(f"{capability} is off")
        assert "monitoring" in message


@pytest.mark.parametrize("level", [0, 1, 2, 3, 4])
def test_no_overrides_equals_empty_overrides(level: int) -> None:
    assert capabilities(level, None) == capabilities(level, MaturityOverrides())


@pytest.mark.parametrize("level", [0, 1, 2, 3, 4])
def test_serving_is_always_on(level: int) -> None:
    result = capabilities(level, MaturityOverrides(monitoring=False, canary=False))
    assert Capability.SERVING in result
    assert result.ordered()[0] == "serving"


@pytest.mark.parametrize(
    ("level", "overrides", "refused"),
    [
        (2, MaturityOverrides(monitoring=False), ("canary is off: it needs monitoring",)),
        (
            3,
            MaturityOverrides(monitoring=False),
            (
                "canary is off: it needs monitoring",
                "retraining is off: it needs monitoring",
            ),
        ),
        (0, MaturityOverrides(retraining=True), ("retraining is off: it needs monitoring",)),
        (0, MaturityOverrides(canary=True, monitoring=True), ()),
        (3, MaturityOverrides(monitoring=False, canary=False, retraining=False), ()),
    ],
)
def test_refusal_messages_name_the_missing_prerequisite(
    level: int, overrides: MaturityOverrides, refused: tuple[str, ...]
) -> None:
    assert capabilities(level, overrides).refused == refused


@pytest.mark.parametrize("level", [-1, 5, 100])
def test_invalid_level_raises_value_error(level: int) -> None:
    with pytest.raises(ValueError, match=str(level)):
        capabilities(level)


def test_contains_accepts_capabilities_and_their_values() -> None:
    result = LadderResult(frozenset({Capability.SERVING}))
    assert Capability.SERVING in result
    assert "serving" in result  # StrEnum compares equal to its value
    assert Capability.MONITORING not in result


def test_every_level_has_a_name() -> None:
    assert sorted(LEVEL_NAMES) == [0, 1, 2, 3, 4]
