"""The maturity ladder: which capabilities a level plus overrides switches on (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rung.api.spec import MaturityOverrides


class Capability(StrEnum):
    """One operational capability the operator can switch on."""

    SERVING = "serving"
    MONITORING = "monitoring"
    CANARY = "canary"
    RETRAINING = "retraining"
    EXPLAINABILITY = "explainability"
    PAYLOAD_LOGGING = "payloadLogging"
    APPROVAL_GATE = "approvalGate"


LEVEL_NAMES = {
    0: "Manual",
    1: "Monitored",
    2: "Progressive",
    3: "ContinuousTraining",
    4: "Governed",
}

INTRODUCED_AT: dict[Capability, int] = {
    Capability.SERVING: 0,
    Capability.MONITORING: 1,
    Capability.CANARY: 2,
    Capability.RETRAINING: 3,
    Capability.EXPLAINABILITY: 4,
    Capability.PAYLOAD_LOGGING: 4,
    Capability.APPROVAL_GATE: 4,
}
"""The level at which each capability switches on by default."""

PREREQUISITES: dict[Capability, tuple[Capability, ...]] = {
    Capability.CANARY: (Capability.MONITORING,),
    Capability.RETRAINING: (Capability.MONITORING,),
}
"""Capabilities that only work when others are on."""

_OVERRIDE_FIELD: dict[Capability, str] = {
    Capability.MONITORING: "monitoring",
    Capability.CANARY: "canary",
    Capability.RETRAINING: "retraining",
    Capability.EXPLAINABILITY: "explainability",
    Capability.PAYLOAD_LOGGING: "payload_logging",
    Capability.APPROVAL_GATE: "approval_gate",
}


@dataclass(frozen=True)
class LadderResult:
    """Capabilities in force, and those refused because a prerequisite is off."""

    capabilities: frozenset[Capability]
    refused: tuple[str, ...] = ()

    def __contains__(self, capability: object) -> bool:
        return capability in self.capabilities

    def ordered(self) -> list[str]:
        """Capability names in ladder order, for status."""
        return [c.value for c in Capability if c in self.capabilities]


def capabilities(level: int, overrides: MaturityOverrides | None = None) -> LadderResult:
    """Capabilities switched on by `level`, adjusted by `overrides`.

    A capability whose prerequisite ends up off is refused (not switched on) and the
    refusal is explained; the CRD's CEL rules reject such a spec at admission, so this
    only matters for objects stored before a rule existed.
    """
    if not 0 <= level <= 4:
        raise ValueError(f"maturity level must be between 0 and 4, not {level}")
    wanted: set[Capability] = {c for c, at in INTRODUCED_AT.items() if at <= level}
    for capability, field in _OVERRIDE_FIELD.items():
        value = getattr(overrides, field) if overrides is not None else None
        if value is True:
            wanted.add(capability)
        elif value is False:
            wanted.discard(capability)
    refused: list[str] = []
    for capability, needs in PREREQUISITES.items():
        missing = [n for n in needs if n not in wanted]
        if capability in wanted and missing:
            wanted.discard(capability)
            refused.append(
                f"{capability.value} is off: it needs {', '.join(m.value for m in missing)}"
            )
    return LadderResult(frozenset(wanted), tuple(refused))
