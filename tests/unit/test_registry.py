"""rung.plan.registry: one entry per capability, and `rung assess` knows nothing else.

A capability added to (a copy of) the registry is assessed, costed and rendered with no
change anywhere else.
"""

# The expected summaries are what people read: the multiplication sign is meant.
# ruff: noqa: RUF001

from __future__ import annotations

import json

from rung.api.kinds import Kind
from rung.api.resource import ModelDeployment
from rung.api.spec import ModelDeploymentSpec
from rung.assess import ClusterInventory, assess
from rung.assess.render import render
from rung.ladder import INTRODUCED_AT, Capability
from rung.plan.capability import CapabilityEntry, Cluster, Component, Cost, Need
from rung.plan.registry import COMPONENT_KINDS, COMPONENTS, REGISTRY
from rung.plan.sizing import Resources

from . import factories as f

PROM = {"prometheus": {"url": "http://prometheus:9090"}}
FULL = ClusterInventory.of(*COMPONENT_KINDS)

FEATURE_STORES = Kind("feast.dev", "v1alpha1", "featurestores", "FeatureStore")
FEAST = Component("Feast", (FEATURE_STORES,))


def feature_store_needs(spec: ModelDeploymentSpec, cluster: Cluster) -> list[Need]:
    why = "features are served from a Feast FeatureStore"
    return cluster.missing(FEAST, "featureStore", why)


def feature_store_cost(md: ModelDeployment) -> Cost:
    one = Resources(250, 512 * 2**20)
    return Cost(
        when="always",
        summary=f"+1 feature server × {one.describe()}",
        per_unit=one,
        units_min=1,
        units_max=1,
        requests_source="rung default",
    )


FEATURE_STORE = CapabilityEntry(
    "featureStore", 2, (FEAST,), needs=feature_store_needs, cost=feature_store_cost
)
"""A capability the ladder does not know: on from level 2, with its own component."""


def test_every_ladder_capability_has_one_entry_at_its_level() -> None:
    ladder_entries = [e for e in REGISTRY if e.in_ladder]

    assert [e.name for e in ladder_entries] == [c.value for c in Capability]
    assert {e.name: e.level for e in ladder_entries} == {
        c.value: level for c, level in INTRODUCED_AT.items()
    }
    assert len({e.name for e in REGISTRY}) == len(REGISTRY)


def test_components_and_discovery_come_from_the_registry() -> None:
    assert [c.name for c in COMPONENTS] == [
        "KServe",
        "KServe LLMInferenceService",
        "Prometheus Operator",
        "Gateway API",
        "Argo Workflows",
        "Kubeflow Pipelines",
        "Knative Eventing",
    ]
    assert tuple(k for c in COMPONENTS for k in c.crds) == COMPONENT_KINDS


def test_a_capability_added_to_the_registry_is_assessed_with_no_other_change() -> None:
    registry = (*REGISTRY, FEATURE_STORE)
    bodies = [
        f.body(level=1, monitoring=PROM),
        {**f.body(level=2, monitoring=PROM), "metadata": {"name": "b", "namespace": "team-a"}},
    ]

    report = assess(bodies, FULL, scope="team-a", registry=registry)
    at_1, at_2 = sorted(report.deployments, key=lambda d: d.level)

    # Level 1: the next level needs Feast and brings the feature server's cost.
    (need,) = [n for n in at_1.next_needs if n.capability == "featureStore"]
    assert (need.kind, need.what, need.blocking, need.crds) == (
        "component",
        "Feast",
        True,
        ("featurestores.feast.dev",),
    )
    assert not at_1.ready_to_climb
    (cost,) = [c for c in at_1.next_costs if c.capability == "featureStore"]
    assert (cost.level, cost.active, cost.summary) == (
        2,
        False,
        "+1 feature server × 250m CPU / 512Mi",
    )
    # Level 2: the same need is a gap now, and the cost is active.
    assert "Feast" in {n.what for n in at_2.gaps}
    assert [c.capability for c in at_2.costs if c.active][-1] == "featureStore"
    assert dict(report.components)["Feast"] is False

    table = render(report, "table")
    assert "featureStore (level 2)   +1 feature server × 250m CPU / 512Mi" in table
    assert "Feast missing" in table
    markdown = render(report, "markdown")
    assert "  - Cost of featureStore: +1 feature server × 250m CPU / 512Mi" in markdown
    assert "install Feast (`featurestores.feast.dev`)" in markdown
    doc = json.loads(render(report, "json"))
    assert doc["components"][-1] == {
        "name": "Feast",
        "installed": False,
        "crds": [{"name": "featurestores.feast.dev", "installed": False}],
    }
    (json_cost,) = [c for c in doc["deployments"][0]["costs"] if c["capability"] == "featureStore"]
    assert json_cost["perUnit"]["cpuMillicores"] == 250
    assert json_cost["totalMax"]["memory"] == "512Mi"


def test_the_default_registry_is_untouched() -> None:
    report = assess([f.body(level=1, monitoring=PROM)], FULL)

    assert "featureStore" not in {c.capability for d in report.deployments for c in d.costs}
    assert "Feast" not in dict(report.components)
