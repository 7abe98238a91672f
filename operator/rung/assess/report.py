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
from rung.api.spec import TrainingData
from rung.assess.llm_costs import LlmCost, LlmPrices
from rung.assess.people import PeopleCost, PeopleRates
from rung.plan.capability import ClusterInventory, Component, Cost, Need

CapabilitySource = Literal["status", "spec"]
LineageRole = Literal["stable", "canary", "rejected", "spec"]


@report_part(frozen=True, config=CAMEL_CASE, kw_only=True)
class Assignment:
    """One responsibility a capability brings, and who holds it (spec.owners)."""

    responsibility: str
    """Its key under spec.owners (`onCall`, `releaseOwner` ...)."""
    title: str
    """`on-call`, `release owner` ..."""
    duty: str
    """What the holder does."""
    capability: str
    level: int
    """The level that brings it."""
    field: str
    """`spec.owners.<key>`."""
    required: bool
    """Whether the API server refuses its level without it."""
    active: bool
    """Whether its capability is on now."""
    holder: str | None = None
    contact: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def assigned(self) -> bool:
        """Whether somebody holds it."""
        return self.holder is not None


@report_part(frozen=True, config=CAMEL_CASE, kw_only=True)
class LineageEntry:
    """A model version the deployment serves, names or rejected, with its training data."""

    role: LineageRole
    """stable, canary or rejected (status), or spec (not applied yet, or no status)."""
    version: str
    data: TrainingData | None = None
    """The dataset it was trained on; None: unknown."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def known(self) -> bool:
        """Whether the training data of this version is known."""
        return self.data is not None


@report_part(frozen=True, config=CAMEL_CASE)
class ToolStatus:
    """One cluster component a level relies on, found (or not) by API discovery."""

    name: str
    role: str
    installed: bool
    crds: tuple[str, ...] = ()


@report_part(frozen=True, config=CAMEL_CASE)
class LevelTools:
    """The components the capabilities of one level rely on."""

    level: int
    level_name: str
    tools: tuple[ToolStatus, ...] = ()


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
    responsibilities: tuple[Assignment, ...] = ()
    """The responsibilities of the capabilities on now or coming with the next level."""
    lineage: tuple[LineageEntry, ...] = ()
    """Each model version in play and the data it was trained on."""
    people_costs: tuple[PeopleCost, ...] = ()
    """People cost of each responsibility in `responsibilities` (or the inputs missing)."""
    llm_cost: LlmCost | None = None
    """An LLM: self-hosted next to external provider cost, and the break-even rate."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def unassigned(self) -> tuple[str, ...]:
        """Keys of the responsibilities (now or at the next level) nobody holds."""
        return tuple(a.responsibility for a in self.responsibilities if not a.assigned)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def unknown_data(self) -> tuple[str, ...]:
        """Model versions whose training data is unknown (lineage gaps)."""
        return tuple(dict.fromkeys(e.version for e in self.lineage if not e.known))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ready_to_climb(self) -> bool:
        """Whether raising the level by one would leave nothing blocking: the next level
        lacks nothing and the deployment is not reported unready at the level it is on
        (no status yet says nothing either way)."""
        return (
            self.error is None
            and self.next_level is not None
            and self.ready in (None, "True")
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
    tools: tuple[LevelTools, ...] = field(default=())
    """Per level, the components its capabilities rely on, installed or missing."""
    people_rates: PeopleRates = field(default_factory=PeopleRates)
    """What the user said people cost (nothing: costs name the inputs they lack)."""
    llm_prices: LlmPrices = field(default_factory=LlmPrices)
    """What the user said GPUs, CPUs and an external provider's tokens cost."""

    @property
    def people_inputs_missing(self) -> tuple[str, ...]:
        """Every input some responsibility's people cost lacks, each once."""
        return tuple(
            dict.fromkeys(m for d in self.deployments for c in d.people_costs for m in c.missing)
        )

    @property
    def components(self) -> tuple[tuple[str, bool], ...]:
        """Each known component and whether it is installed."""
        return tuple((c.name, self.inventory.has(c)) for c in self.known_components)
