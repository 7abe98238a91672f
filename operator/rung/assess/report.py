"""The `rung assess` report: one assessment per ModelDeployment, summaries per namespace.

Report parts are pydantic dataclasses whose JSON keys are their attributes in camelCase
(`rung.api._base.CAMEL_CASE`), so the JSON form states no key twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import computed_field
from pydantic.dataclasses import dataclass as report_part

from rung.api._base import CAMEL_CASE
from rung.plan.capability import ClusterInventory, Component, Cost, Need

CapabilitySource = Literal["status", "spec"]


@report_part(frozen=True, config=CAMEL_CASE)
class DeploymentAssessment:
    """Where one ModelDeployment stands, and what the next level needs and costs."""

    namespace: str
    name: str
    level: int
    """spec.maturity.level."""
    level_name: str
    capabilities: tuple[str, ...]
    """Capabilities on: status.capabilities, or the ladder's answer for the spec."""
    capabilities_source: CapabilitySource
    phase: str | None
    """status.phase; None before the operator wrote status."""
    ready: str | None
    """Status of the Ready condition (True, False, Unknown); None when absent."""
    model_kind: str | None = None
    version: str | None = None
    next_level: int | None = None
    """None at the top of the ladder (or when the spec does not parse)."""
    next_level_name: str | None = None
    gaps: tuple[Need, ...] = ()
    """What the current level lacks."""
    next_needs: tuple[Need, ...] = ()
    """What the next level lacks (including gaps that carry over)."""
    costs: tuple[Cost, ...] = ()
    """Cost of each capability on now or coming with the next level."""
    notes: tuple[str, ...] = ()
    """Anything else worth knowing (stale status, refused capabilities)."""
    error: str | None = None
    """Why the spec could not be read, when it could not."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ready_to_climb(self) -> bool:
        """Whether raising the level by one would leave nothing blocking."""
        return (
            self.error is None
            and self.next_level is not None
            and not any(n.blocking for n in self.next_needs)
        )

    @property
    def blockers(self) -> tuple[Need, ...]:
        """Blocking needs of the next level."""
        return tuple(n for n in self.next_needs if n.blocking)

    @property
    def next_costs(self) -> tuple[Cost, ...]:
        """Costs of the capabilities the next level switches on."""
        return tuple(c for c in self.costs if not c.active)


@report_part(frozen=True, config=CAMEL_CASE)
class NamespaceSummary:
    """Counts for one namespace."""

    namespace: str
    total: int
    per_level: tuple[int, ...]
    """Deployments at level 0, 1, ... 4."""
    ready_to_climb: int
    at_top: int
    not_ready: int
    """Deployments whose Ready condition is not True (or has not been reported)."""
    invalid: int = 0


@dataclass(frozen=True)
class Assessment:
    """The whole report."""

    deployments: tuple[DeploymentAssessment, ...]
    namespaces: tuple[NamespaceSummary, ...]
    inventory: ClusterInventory
    default_prometheus_url: str | None = None
    scope: str | None = None
    """The namespace assessed; None for all namespaces."""
    known_components: tuple[Component, ...] = field(default=())
    """The cluster add-ons of the assessed capabilities."""

    @property
    def components(self) -> tuple[tuple[str, bool], ...]:
        """Each known component and whether it is installed."""
        return tuple((c.name, self.inventory.has(c)) for c in self.known_components)
