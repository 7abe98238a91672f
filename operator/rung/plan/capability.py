"""What a capability asks of the spec and the cluster, and what it adds to the cluster (pure).

A `CapabilityEntry` is one row of the capability registry (`rung.plan.registry`): the
level that switches the capability on, the cluster add-ons it works through, `needs()`
(what the spec or the cluster lacks for it) and `cost()` (the extra resources it
brings). `rung assess` only iterates the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import computed_field
from pydantic.dataclasses import dataclass as report_part

from rung.api._base import CAMEL_CASE
from rung.api.kinds import Kind
from rung.api.owners import Responsibility
from rung.api.resource import ModelDeployment
from rung.api.spec import ModelDeploymentSpec
from rung.ladder import INTRODUCED_AT, Capability, LadderResult
from rung.plan.sizing import RequestsSource, Resources

NeedKind = Literal["field", "component"]
CostWhen = Literal["always", "during rollouts", "per run", "per inference"]


@report_part(frozen=True, config=CAMEL_CASE)
class Need:
    """Something a level requires that the spec or the cluster lacks."""

    kind: NeedKind
    """`field` (set it in the spec) or `component` (install it in the cluster)."""
    what: str
    """The spec field path, or the component's name."""
    why: str
    """What it is for, and what happens without it."""
    capability: str
    """The capability that needs it."""
    blocking: bool = True
    """False when the capability works without it, in a reduced way (see `why`)."""
    crds: tuple[str, ...] = ()
    """For components: the CRDs that are missing."""


@report_part(frozen=True, config=CAMEL_CASE, kw_only=True)
class Cost:
    """What one capability adds to the cluster for one ModelDeployment."""

    capability: str = ""
    """Set by the assessment from the registry entry, as are `level` and `active`."""
    level: int = 0
    """The level that switches the capability on by default."""
    active: bool = False
    """Whether the capability is on now (else: it comes with the next level)."""
    when: CostWhen
    """When the extra resources are in use."""
    summary: str
    """One line for people, e.g. `+1 replica x 500m CPU / 1Gi during rollouts` (with a
    multiplication sign)."""
    per_unit: Resources | None = None
    """Requests of one extra replica, container or run; None when there is none or unknown."""
    units_min: int = 0
    """Fewest extra replicas or containers."""
    units_max: int = 0
    """Most extra replicas or containers."""
    requests_source: RequestsSource | None = None
    """Where `per_unit` comes from."""
    samples_per_second_min: float | None = None
    """Monitoring: samples Prometheus ingests per second at the fewest replicas."""
    samples_per_second_max: float | None = None
    """Monitoring: samples per second at the most replicas."""
    queries_per_minute: float | None = None
    """Monitoring: PromQL queries the operator runs per minute for the SLO snapshot."""
    events_per_inference: int | None = None
    """Payload logging: events sent to the audit sink per inference."""
    events_per_second: float | None = None
    """Payload logging: events per second at the last measured request rate."""
    runs_per_day: float | None = None
    """Retraining: most pipeline runs a day allowed by cooldown and maxRunsPerDay."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_min(self) -> Resources | None:
        """Extra requests at the fewest units."""
        return self.per_unit.times(self.units_min) if self.per_unit else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_max(self) -> Resources | None:
        """Extra requests at the most units."""
        return self.per_unit.times(self.units_max) if self.per_unit else None


@dataclass(frozen=True)
class Component:
    """A cluster add-on, present when all of its CRDs are served."""

    name: str
    crds: tuple[Kind, ...]
    role: str = ""
    """What the ladder uses it for (`serving`, `pipeline engine`, `audit sink` ...)."""


@dataclass(frozen=True)
class ClusterInventory:
    """Which CRDs the cluster serves, by CRD name (`plural.group`)."""

    crds: frozenset[str] = frozenset()

    @classmethod
    def of(cls, *crds: Kind) -> ClusterInventory:
        """An inventory holding exactly `crds`."""
        return cls(frozenset(c.name for c in crds))

    def has(self, item: Kind | Component) -> bool:
        """Whether a CRD, or every CRD of a component, is served."""
        if isinstance(item, Kind):
            return item.name in self.crds
        return all(c.name in self.crds for c in item.crds)


@dataclass(frozen=True)
class Cluster:
    """What an assessment knows of the cluster."""

    inventory: ClusterInventory
    default_prometheus_url: str | None = None
    """The operator's `--prometheus-url`, if it has one."""

    def missing(
        self, component: Component, capability: str, why: str, *, blocking: bool = True
    ) -> list[Need]:
        """A need for `component` when some of its CRDs are not served, else nothing."""
        missing = tuple(c.name for c in component.crds if not self.inventory.has(c))
        if not missing:
            return []
        return [Need("component", component.name, why, capability, blocking, missing)]


NeedsFn = Callable[[ModelDeploymentSpec, Cluster], list[Need]]
CostFn = Callable[[ModelDeployment], Cost]


def no_needs(spec: ModelDeploymentSpec, cluster: Cluster) -> list[Need]:
    """The needs of a capability that needs nothing."""
    return []


@dataclass(frozen=True)
class CapabilityEntry:
    """One capability in the registry: everything `rung assess` knows about it."""

    name: str
    """As in status.capabilities and in the report."""
    level: int
    """The level that switches it on by default."""
    components: tuple[Component, ...] = ()
    """The cluster add-ons it creates objects through (discovered by `rung assess`)."""
    needs: NeedsFn = no_needs
    """What the spec or the cluster lacks for it to work fully (when it is on)."""
    cost: CostFn | None = None
    """What it adds to the cluster; None when nothing worth counting."""
    in_ladder: bool = False
    """Whether the ladder switches it (level plus overrides); else it is on from `level`."""
    responsibilities: tuple[Responsibility, ...] = ()
    """The people it brings: who must act on what it produces (spec.owners)."""

    @classmethod
    def of(
        cls,
        capability: Capability,
        components: tuple[Component, ...] = (),
        needs: NeedsFn = no_needs,
        cost: CostFn | None = None,
        responsibilities: tuple[Responsibility, ...] = (),
    ) -> CapabilityEntry:
        """The entry of a ladder capability, at the level the ladder introduces it."""
        level = INTRODUCED_AT[capability]
        return cls(
            capability.value,
            level,
            components,
            needs,
            cost,
            in_ladder=True,
            responsibilities=responsibilities,
        )

    def on(self, ladder: LadderResult, level: int) -> bool:
        """Whether it is in force at `level`, where the ladder gives `ladder`."""
        return self.name in ladder if self.in_ladder else level >= self.level
