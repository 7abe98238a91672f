"""The traffic router interface: how stable and canary models share traffic.

A router is pure: it turns the rollout's intent into the objects that realise it,
and reads the live objects back (weights, readiness). The reconciler applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from rung.api.kinds import HTTP_ROUTE, Kind
from rung.api.resource import ModelDeployment
from rung.api.status import ModelRef
from rung.plan.live import LiveObjects
from rung.plan.promql import Targets

__all__ = ["LiveObjects", "Router", "Targets", "Traffic", "TrafficPatch"]


@dataclass(frozen=True)
class Traffic:
    """What the rollout wants the routing to be."""

    stable: ModelRef
    """The model serving the rest of the traffic (its `model` is set)."""
    canary: ModelRef | None = None
    """The model being rolled out, if any."""
    canary_weight: int = 0
    """Percent of requests for the canary."""
    promoting: bool = False
    """The canary passed: move it into the stable slot."""
    rolling_back: bool = False
    """The canary failed or was refused: take it out of the traffic path."""
    mirror_percent: int | None = None
    """Shadow stage: mirror this percent of requests to the canary, responses discarded
    (None: mirror nothing). Only routers that `mirrors` are given one."""
    annotations: Mapping[str, str] = field(default_factory=dict)
    """Extra annotations for every InferenceService (e.g. scrape annotations)."""


@dataclass(frozen=True)
class TrafficPatch:
    """A JSON merge patch on one live object that takes traffic off the canary."""

    kind: Kind
    name: str
    patch: dict[str, Any]


def route_to_stable(
    route: Mapping[str, Any] | None, canary_backends: set[str]
) -> TrafficPatch | None:
    """The patch giving every rule of a live HTTPRoute to its other backends (the
    canary's weight 0, the rest sharing 100) and dropping its request mirrors; None
    when it already routes nothing to the canary."""
    if route is None:
        return None
    rules = [dict(rule) for rule in (route.get("spec") or {}).get("rules") or []]
    changed = False
    for rule in rules:
        refs = [dict(ref) for ref in rule.get("backendRefs") or []]
        stable = next((ref for ref in refs if ref.get("name") not in canary_backends), None)
        for ref in refs:
            weight = 100 if ref is stable else 0
            changed |= ref.get("weight", 1) != weight
            ref["weight"] = weight
        filters = [f for f in rule.get("filters") or [] if f.get("type") != "RequestMirror"]
        changed |= len(filters) != len(rule.get("filters") or [])
        rule["backendRefs"] = refs
        if "filters" in rule:
            rule["filters"] = filters
    if not changed:
        return None
    return TrafficPatch(HTTP_ROUTE, route["metadata"]["name"], {"spec": {"rules": rules}})


class Router(Protocol):
    """One way of splitting traffic between a stable and a canary model."""

    name: str
    mirrors: bool
    """Whether the router can mirror requests to the canary (a shadow stage)."""

    def objects(self, md: ModelDeployment, traffic: Traffic) -> list[dict[str, Any]]:
        """Every object this router needs for `traffic`."""
        ...

    def canary_weight(self, md: ModelDeployment, live: LiveObjects) -> int | None:
        """The canary weight the cluster routes right now (None: no canary route)."""
        ...

    def canary_mirrored(self, md: ModelDeployment, live: LiveObjects) -> bool:
        """Whether the cluster mirrors requests to the canary right now."""
        ...

    def canary_ready(self, md: ModelDeployment, canary: ModelRef, live: LiveObjects) -> bool:
        """Whether `canary` is deployed and ready to take traffic."""
        ...

    def promoted(self, md: ModelDeployment, canary: ModelRef, live: LiveObjects) -> bool:
        """Whether `canary` now serves from the stable slot, so the canary can go."""
        ...

    def targets(
        self, md: ModelDeployment, stable: ModelRef, canary: ModelRef | None, live: LiveObjects
    ) -> Targets:
        """Workload names whose metrics belong to stable and canary."""
        ...

    def promotes_in_place(self, md: ModelDeployment, stable: ModelRef, canary: ModelRef) -> bool:
        """Whether promotion puts the canary's model into the stable predictor, which keeps
        its name (True), or makes the canary's predictor the stable one (False)."""
        ...

    def traffic_to_stable(self, md: ModelDeployment, live: LiveObjects) -> list[TrafficPatch]:
        """Merge patches on the live objects that send every request to stable and none
        to the canary (nor mirror any), built from the live objects and `md`'s name only:
        the fail-safe when planning itself fails. Empty: nothing routes to a canary."""
        ...
