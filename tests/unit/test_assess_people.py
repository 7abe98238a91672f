"""People, tools and data in `rung assess`: responsibilities and who holds them, the tools
of each level, people cost (or the inputs it lacks) and data lineage, in every format."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from rung.api.owners import RESPONSIBILITIES
from rung.api.spec import ModelDeploymentSpec
from rung.assess import ClusterInventory, assess, lineage, needs_at, tools_per_level
from rung.assess.people import PeopleInputError, PeopleRates, people_cost
from rung.assess.render import render
from rung.plan.capability import Cluster
from rung.plan.registry import COMPONENT_KINDS, KSERVE, REGISTRY

from . import factories as f

PROM = {"prometheus": {"url": "http://prometheus:9090"}}
FULL = ClusterInventory.of(*COMPONENT_KINDS)
WEBHOOK = {"pipeline": {"type": "webhook", "webhook": {"url": "http://hook"}}}


def named(name: str, **kwargs: Any) -> dict[str, Any]:
    out = f.body(**kwargs)
    out["metadata"]["name"] = name
    return out


# --- the mapping ---------------------------------------------------------------------------


def test_each_responsibility_belongs_to_one_registry_entry_at_its_level() -> None:
    owners = {r.key: e for e in REGISTRY for r in e.responsibilities}

    assert list(owners) == [r.key for r in RESPONSIBILITIES]
    for r in RESPONSIBILITIES:
        entry = owners[r.key]
        assert (entry.name, entry.level) == (r.capability, r.level)
    assert {r.key for r in RESPONSIBILITIES if r.required} == {"releaseOwner", "riskReviewer"}


@pytest.mark.parametrize(
    ("level", "blocking", "advisory"),
    [
        (1, [], ["spec.owners.onCall"]),
        (2, ["spec.owners.releaseOwner"], ["spec.owners.onCall"]),
        (3, ["spec.owners.releaseOwner"], ["spec.owners.onCall", "spec.owners.pipelineOwner"]),
        (
            4,
            ["spec.owners.releaseOwner", "spec.owners.riskReviewer"],
            ["spec.owners.onCall", "spec.owners.pipelineOwner"],
        ),
    ],
)
def test_missing_owners_are_needs_blocking_when_required(
    level: int, blocking: list[str], advisory: list[str]
) -> None:
    spec = ModelDeploymentSpec.model_validate({"model": f.model(), "monitoring": PROM})
    needs = [n for n in needs_at(spec, level, Cluster(FULL)) if n.what.startswith("spec.owners")]

    assert [n.what for n in needs if n.blocking] == blocking
    assert [n.what for n in needs if not n.blocking] == advisory


def test_a_level_1_deployment_without_a_release_owner_is_not_ready_to_climb() -> None:
    report = assess([f.body(level=1, monitoring=PROM, owners={})], FULL)
    (d,) = report.deployments

    assert not d.ready_to_climb
    assert [n.what for n in d.blockers] == ["spec.owners.releaseOwner"]
    assert d.unassigned == ("onCall", "releaseOwner")
    assert [(a.responsibility, a.active, a.required) for a in d.responsibilities] == [
        ("onCall", True, False),
        ("releaseOwner", False, True),
    ]


def test_holders_are_reported() -> None:
    (d,) = assess([f.body(level=4, monitoring=PROM)], FULL).deployments

    assert d.unassigned == ()
    by_key = {a.responsibility: a for a in d.responsibilities}
    assert (by_key["riskReviewer"].holder, by_key["riskReviewer"].contact) == (
        "risk-office",
        "risk@example.com",
    )


def test_an_override_that_switches_canary_off_takes_the_release_owner_with_it() -> None:
    body = f.body(maturity={"level": 2, "overrides": {"canary": False}}, monitoring=PROM, owners={})
    (d,) = assess([body], FULL).deployments

    assert "releaseOwner" not in {a.responsibility for a in d.responsibilities if a.active}


# --- tools per level -----------------------------------------------------------------------


def test_tools_per_level_come_from_the_registry_and_discovery() -> None:
    tools = tools_per_level(ClusterInventory.of(*KSERVE.crds))

    assert [[t.name for t in level.tools] for level in tools] == [
        ["KServe", "KServe LLMInferenceService"],
        ["Prometheus Operator"],
        ["Gateway API"],
        ["Argo Workflows", "Kubeflow Pipelines"],
        ["Knative Eventing"],
    ]
    assert tools[0].tools[0].installed
    assert not tools[1].tools[0].installed
    assert tools[1].tools[0].crds == (
        "podmonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    )
    assert tools[3].tools[0].role == "pipeline engine"


# --- people cost ---------------------------------------------------------------------------


def test_rates_parse_from_configmap_keys() -> None:
    rates = PeopleRates.parse(
        {
            "currency": "EUR",
            "hourlyRate": "90",
            "onCall.hourlyRate": "120",
            "onCall.hoursPerWeek": "2",
            "riskReviewer.hoursPerWeek": "0.5",
        }
    )

    assert (rates.currency, rates.rate("onCall"), rates.rate("riskReviewer")) == ("EUR", 120, 90)
    assert rates.hours_per_week == {"onCall": 2.0, "riskReviewer": 0.5}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"hourlyRate": "lots"}, "not a number"),
        ({"onCall.hoursPerWeek": "-1"}, "0 or more"),
        ({"onCall.hoursPerWeek": "nan"}, "finite"),
        ({"janitor.hoursPerWeek": "1"}, "unknown key 'janitor.hoursPerWeek'"),
        ({"onCall.salary": "1"}, "unknown key"),
    ],
)
def test_bad_rates_are_refused_with_the_key(data: dict[str, str], message: str) -> None:
    with pytest.raises(PeopleInputError, match=message):
        PeopleRates.parse(data)


def test_flags_override_a_configmap() -> None:
    base = PeopleRates.parse({"hourlyRate": "80", "onCall.hoursPerWeek": "2"}, "configmap a/b")
    merged = base.merged(PeopleRates.parse({"onCall.hoursPerWeek": "3"}, "flags"))

    assert (merged.hourly_rate, merged.hours_per_week["onCall"]) == (80, 3)
    assert merged.source == "configmap a/b + flags"


def test_without_inputs_people_cost_names_what_is_missing() -> None:
    cost = people_cost(RESPONSIBILITIES[0], PeopleRates(), capability="monitoring", active=True)

    assert cost.per_week is None
    assert cost.missing == ("onCall.hoursPerWeek", "onCall.hourlyRate (or hourlyRate)")


def test_with_inputs_people_cost_is_effort_times_rate() -> None:
    rates = PeopleRates.parse({"hourlyRate": "100", "onCall.hoursPerWeek": "3"})
    cost = people_cost(RESPONSIBILITIES[0], rates, capability="monitoring", active=True)

    assert (cost.per_week, cost.missing) == (300.0, ())
    assert cost.per_month == pytest.approx(300 * 52 / 12)


# --- data lineage --------------------------------------------------------------------------


def test_lineage_follows_status_and_flags_unknown_data() -> None:
    data = {"uri": "s3://datasets/fraud", "version": "2025-03-01"}
    status = {
        "stable": {"version": "v1", "storageUri": "s3://models/fraud/v1"},
        "canary": {
            "version": "v2",
            "storageUri": "s3://models/fraud/v2",
            "model": f.model(version="v2", storageUri="s3://models/fraud/v2", data=data),
        },
    }
    md = f.md(level=2, status=status, model_fields={"version": "v2", "data": data})

    entries = lineage(md)
    assert [(e.role, e.version, e.known) for e in entries] == [
        ("stable", "v1", False),
        ("canary", "v2", True),
    ]
    assert entries[1].data is not None
    assert entries[1].data.version == "2025-03-01"


def test_spec_data_speaks_for_the_version_it_names() -> None:
    status = {"stable": {"version": "v1", "storageUri": "s3://models/fraud/v1"}}
    (entry,) = lineage(f.md(level=1, status=status))

    assert (entry.role, entry.known) == ("stable", True)


def test_a_deployment_without_data_has_a_lineage_gap_and_level_3_needs_it() -> None:
    body = f.body(level=2, monitoring=PROM, model_fields={"data": None}, retraining=WEBHOOK)
    (d,) = assess([body], FULL).deployments

    assert d.unknown_data == ("v1",)
    assert [n.what for n in d.blockers] == ["spec.model.data"]


# --- every format carries the same --------------------------------------------------------


@pytest.fixture
def report() -> Any:
    bodies = [
        named("iris", level=0),
        named("fraud", level=1, monitoring=PROM, owners={}),
        named("churn", level=2, monitoring=PROM, model_fields={"data": None}),
        named("ranker", level=3, monitoring=PROM, retraining=WEBHOOK),
        named("gov", level=4, monitoring=PROM, retraining=WEBHOOK),
    ]
    rates = PeopleRates.parse({"currency": "EUR", "hourlyRate": "90", "onCall.hoursPerWeek": "2"})
    return assess(bodies, ClusterInventory.of(*KSERVE.crds), people_rates=rates, scope="team-a")


def test_json_carries_people_tools_and_data(report: Any) -> None:
    doc = json.loads(render(report, "json"))

    assert [t["level"] for t in doc["tools"]] == [0, 1, 2, 3, 4]
    assert doc["tools"][0]["tools"] == [
        {"name": "KServe", "role": "model serving", "installed": True, "crds": []},
        {
            "name": "KServe LLMInferenceService",
            "role": "LLM serving (kind llm): vLLM, route-group canaries",
            "installed": False,
            "crds": ["llminferenceservices.serving.kserve.io"],
        },
    ]
    assert doc["people"]["currency"] == "EUR"
    assert doc["people"]["missingInputs"] == [
        "releaseOwner.hoursPerWeek",
        "pipelineOwner.hoursPerWeek",
        "riskReviewer.hoursPerWeek",
    ]
    by_name = {d["name"]: d for d in doc["deployments"]}
    assert by_name["fraud"]["unassigned"] == ["onCall", "releaseOwner"]
    assert by_name["churn"]["unknownData"] == ["v1"]
    assert by_name["iris"]["lineage"] == [
        {
            "role": "spec",
            "version": "v1",
            "data": {
                "uri": "s3://datasets/fraud",
                "version": "2025-02-01",
                "digest": None,
                "trainingRun": None,
            },
            "known": True,
        }
    ]
    (on_call,) = [c for c in by_name["iris"]["peopleCosts"] if c["responsibility"] == "onCall"]
    assert (on_call["perWeek"], on_call["active"], on_call["missing"]) == (180.0, False, [])


def test_markdown_carries_the_same(report: Any) -> None:
    text = render(report, "markdown")

    assert "## Responsibilities" in text
    assert "| team-a/fraud | release owner (required) | 2 | `spec.owners.releaseOwner` |" in text
    assert "**unassigned**" in text
    assert "## Tools per level" in text
    assert "| 3 ContinuousTraining | Argo Workflows (pipeline engine) missing," in text
    assert "| team-a/churn | v1 (spec) | **unknown** |" in text
    assert "- level 1: 10 h a week = 900.00 EUR a week" in text
    assert "not priced without: releaseOwner.hoursPerWeek" in text


def test_table_carries_the_same(report: Any) -> None:
    text = render(report, "table")

    assert "UNASSIGNED RESPONSIBILITIES" in text
    assert re.search(r"team-a/fraud\s+release owner \(level 2\)\s+spec.owners.releaseOwner", text)
    assert re.search(r"team-a/churn\s+v1 \(spec\)\s+unknown", text)
    assert "  level 4 Governed: Knative Eventing (audit sink" in text


def test_html_is_one_self_contained_page_with_charts(report: Any) -> None:
    page = render(report, "html")

    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 5
    assert re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page) == []
    assert "@import" not in page
    assert re.findall(r"<script[^>]*\ssrc=", page) == []
    assert "@media print" in page
    for heading in (
        "Tools per level",
        "Unassigned responsibilities",
        "Cost per capability and level",
        "Data lineage",
    ):
        assert f"<h2>{heading}</h2>" in page
    assert "spec.owners.releaseOwner" in page
    assert "1</b> model version with unknown training data" in page


def test_html_escapes_what_comes_from_objects() -> None:
    body = named("fraud", level=0, model_fields={"version": "v1", "data": None})
    body["metadata"]["namespace"] = "<b>ns</b>"
    page = render(assess([body], FULL), "html")

    assert "<b>ns</b>" not in page
    assert "&lt;b&gt;ns&lt;/b&gt;" in page


def test_html_without_deployments_still_shows_the_tools() -> None:
    page = render(assess([], FULL, scope="empty"), "html")

    assert "No ModelDeployments found in namespace empty." in page
    assert "<h2>Tools per level</h2>" in page
