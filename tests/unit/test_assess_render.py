"""rung.assess.render: the table, JSON and Markdown forms of a maturity assessment."""

# Expected output holds the multiplication sign and en dash people read.
# ruff: noqa: RUF001

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from rung.api.kinds import INFERENCE_SERVICE
from rung.assess import Assessment, ClusterInventory, assess
from rung.assess.render import (
    FORMATS,
    align,
    climb_text,
    md_cell,
    need_sentences,
    render,
    to_json,
)
from rung.assess.wording import compact_fields
from rung.plan.capability import Need
from rung.plan.registry import COMPONENT_KINDS

from . import factories as f

PROM = {"prometheus": {"url": "http://prometheus:9090"}}
JOB = {"type": "job", "job": {"template": {"template": {"spec": {}}}}}
GOVERNANCE = {"owner": "o", "contact": "c", "intendedUse": "u", "riskClass": "limited"}
REQUESTS = {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}


def body(name: str, namespace: str = "team-a", **kwargs: Any) -> dict[str, Any]:
    out = f.body(**kwargs)
    out["metadata"].update(name=name, namespace=namespace)
    return out


def ladder_bodies() -> list[dict[str, Any]]:
    """One deployment per level in team-a, and a broken one in team-b."""
    broken = body("broken", "team-b", level=1)
    broken["spec"]["model"] = {"format": "sklearn"}
    return [
        body("l0", level=0),
        body("l1", level=1, monitoring=PROM, model_fields=REQUESTS),
        body("l2", level=2, monitoring=PROM),
        body("l3", level=3, monitoring=PROM, retraining={"pipeline": JOB}),
        body(
            "l4",
            level=4,
            monitoring=PROM,
            retraining={"pipeline": JOB},
            governance=GOVERNANCE,
            status={
                "phase": "Ready",
                "capabilities": ["serving", "monitoring"],
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "InferenceServiceReady",
                        "lastTransitionTime": f.NOW_TEXT,
                    }
                ],
            },
        ),
        broken,
    ]


@pytest.fixture
def report() -> Assessment:
    return assess(ladder_bodies(), ClusterInventory.of(INFERENCE_SERVICE), scope=None)


# --- JSON -------------------------------------------------------------------------------

TOP_KEYS = {
    "kind",
    "version",
    "scope",
    "defaultPrometheusUrl",
    "components",
    "tools",
    "people",
    "llmPrices",
    "namespaces",
    "deployments",
}
DEPLOYMENT_KEYS = {
    "namespace",
    "name",
    "level",
    "levelName",
    "capabilities",
    "capabilitiesSource",
    "phase",
    "ready",
    "modelKind",
    "version",
    "nextLevel",
    "nextLevelName",
    "readyToClimb",
    "gaps",
    "nextNeeds",
    "costs",
    "notes",
    "error",
    "responsibilities",
    "unassigned",
    "lineage",
    "unknownData",
    "peopleCosts",
    "llmCost",
}
COST_KEYS = {
    "capability",
    "level",
    "active",
    "when",
    "summary",
    "perUnit",
    "unitsMin",
    "unitsMax",
    "totalMin",
    "totalMax",
    "requestsSource",
    "samplesPerSecondMin",
    "samplesPerSecondMax",
    "queriesPerMinute",
    "eventsPerInference",
    "eventsPerSecond",
    "runsPerDay",
}
NEED_KEYS = {"kind", "what", "why", "capability", "blocking", "crds"}
SUMMARY_KEYS = {"namespace", "total", "perLevel", "readyToClimb", "atTop", "notReady", "invalid"}


def test_json_has_stable_keys_everywhere(report: Assessment) -> None:
    doc = json.loads(render(report, "json"))

    assert set(doc) == TOP_KEYS
    assert (doc["kind"], doc["version"]) == ("MaturityAssessment", 1)
    assert doc["scope"] == {"namespace": None, "allNamespaces": True}
    for summary in doc["namespaces"]:
        assert set(summary) == SUMMARY_KEYS
    for d in doc["deployments"]:
        assert set(d) == DEPLOYMENT_KEYS
        for c in d["costs"]:
            assert set(c) == COST_KEYS
        for n in [*d["gaps"], *d["nextNeeds"]]:
            assert set(n) == NEED_KEYS


def test_json_content(report: Assessment) -> None:
    doc = to_json(report)
    by_name = {d["name"]: d for d in doc["deployments"]}

    assert [d["name"] for d in doc["deployments"]] == ["l0", "l1", "l2", "l3", "l4", "broken"]
    l1 = by_name["l1"]
    assert (l1["level"], l1["levelName"], l1["nextLevel"], l1["nextLevelName"]) == (
        1,
        "Monitored",
        2,
        "Progressive",
    )
    assert l1["readyToClimb"] is True
    canary = next(c for c in l1["costs"] if c["capability"] == "canary")
    assert canary["perUnit"] == {
        "cpu": "500m",
        "memory": "1Gi",
        "gpus": 0,
        "cpuMillicores": 500,
        "memoryBytes": 2**30,
    }
    assert (canary["active"], canary["when"], canary["unitsMin"]) == (False, "during rollouts", 1)
    l3 = by_name["l3"]
    assert {n["what"] for n in l3["nextNeeds"] if n["blocking"]} == {
        "spec.governance.owner",
        "spec.governance.contact",
        "spec.governance.intendedUse",
        "spec.governance.riskClass",
    }
    l4 = by_name["l4"]
    assert (l4["phase"], l4["ready"], l4["capabilitiesSource"]) == ("Ready", "True", "status")
    assert (l4["nextLevel"], l4["readyToClimb"]) == (None, False)
    assert by_name["broken"]["error"] == "spec.model.version: Field required"
    prometheus = next(c for c in doc["components"] if c["name"] == "Prometheus Operator")
    assert prometheus["installed"] is False
    assert [c["installed"] for c in prometheus["crds"]] == [False, False]
    team_a = doc["namespaces"][0]
    assert (team_a["namespace"], team_a["perLevel"], team_a["readyToClimb"]) == (
        "team-a",
        [1, 1, 1, 1, 1],
        1,
    )


# --- table ------------------------------------------------------------------------------


def test_table_rows_are_aligned_under_their_headers(report: Assessment) -> None:
    text = render(report, "table")
    lines = text.splitlines()
    header = lines[0]

    columns = [m.start() for m in re.finditer(r"\S+(?: \S+)*", header)]
    assert header.split()[:4] == ["NAMESPACE", "NAME", "LEVEL", "PHASE"]
    rows = lines[1 : 1 + len(report.deployments)]
    for row in rows:
        for start in columns[1:]:
            assert row[start - 1] == " ", f"column at {start} not aligned in {row!r}"
            assert row[start] != " " or row[start:].strip() == ""
    assert all(line == line.rstrip() for line in lines)


def test_table_content(report: Assessment) -> None:
    text = render(report, "table")

    row = next(line for line in text.splitlines() if line.startswith("team-a      l1 "))
    assert "1 Monitored" in row
    assert "2 Progressive" in row
    assert re.search(r"\byes\b", row)
    l3 = next(line for line in text.splitlines() if re.match(r"team-a\s+l3\s", line))
    assert "spec.governance.{owner,contact,intendedUse,riskClass}" in l3
    assert re.search(r"\bno\b", l3)
    l4 = next(line for line in text.splitlines() if re.match(r"team-a\s+l4\s", line))
    assert re.search(r"\btop\b", l4)
    assert "Ready" in l4
    broken = next(line for line in text.splitlines() if re.match(r"team-b\s+broken\s", line))
    assert "invalid" in broken
    assert (
        "team-a: 5 ModelDeployments (level 0: 1, level 1: 1, level 2: 1, level 3: 1, level 4: 1);"
        " 1 ready to climb, 1 at the top, 4 not ready"
    ) in text
    assert "team-b: 1 ModelDeployment (" in text
    assert "COST OF THE NEXT LEVEL" in text
    assert re.search(
        r"team-a/l1\s+canary \(level 2\)\s+\+1 replica × 500m CPU / 1Gi during rollouts", text
    )
    assert "NOTES" in text
    assert "Cluster: KServe installed, KServe LLMInferenceService missing," in text
    assert "Prometheus Operator missing" in text
    assert "scraped through prometheus.io annotations" in text


def test_table_of_nothing(report: Assessment) -> None:
    empty = assess([], ClusterInventory.of(*COMPONENT_KINDS), scope="team-z")

    text = render(empty, "table")

    assert text.startswith("No ModelDeployments found in namespace team-z.\n")
    assert "Prometheus Operator installed" in text


def test_align_pads_columns() -> None:
    assert align(["A", "BB"], [["xxx", "y"], ["z", ""]]) == ["A     BB", "xxx   y", "z"]


# --- markdown ---------------------------------------------------------------------------


def test_markdown_is_a_report_with_tables_and_next_steps(report: Assessment) -> None:
    text = render(report, "markdown")

    assert text.startswith("# Rung maturity assessment\n")
    assert "Scope: all namespaces." in text
    assert "Prometheus Operator **missing**" in text
    assert "## Summary" in text
    assert "| team-a | 5 | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 4 |" in text
    assert "## Deployments" in text
    assert (
        "| team-a | l1 | 1 Monitored | - | - | serving, monitoring | 2 Progressive"
        " | ready to climb |"
    ) in text
    assert "## Next steps" in text
    assert (
        "- **team-a/l1** (1 Monitored → 2 Progressive): ready to climb;"
        " set `spec.maturity.level: 2`."
    ) in text
    assert "  - Cost of canary: +1 replica × 500m CPU / 1Gi during rollouts" in text
    assert (
        "- **team-a/l0** (0 Manual → 1 Monitored): before setting `spec.maturity.level: 1`:" in text
    )
    assert "  - Set `spec.monitoring.prometheus.url`:" in text
    assert (
        "  - Set `spec.governance.owner`, `spec.governance.contact`, `spec.governance.intendedUse`,"
        " `spec.governance.riskClass`: ownership metadata is required at level 4"
    ) in text
    assert "- **team-a/l4** (4 Governed): at the top of the ladder." in text
    assert "- **team-b/broken** (1 Monitored): fix the spec" in text
    assert "(affects team-a/l0, team-a/l1, team-a/l2, team-a/l3, team-a/l4)" in text


def test_markdown_tables_have_one_cell_per_column(report: Assessment) -> None:
    text = render(report, "markdown")
    table: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            widths = {len(re.split(r"(?<!\\)\|", row)) for row in table}
            assert len(widths) == 1, table
            table = []


def test_markdown_already_missing_and_stale_notes() -> None:
    stale = body(
        "s",
        level=2,
        generation=2,
        status={"level": 1, "observedGeneration": 1, "capabilities": ["serving", "monitoring"]},
    )
    report = assess([stale], ClusterInventory.of(*COMPONENT_KINDS), scope="team-a")

    text = render(report, "markdown")

    assert "Scope: namespace `team-a`." in text
    assert "  - Already missing at level 2: set `spec.monitoring.prometheus.url`:" in text
    assert "  - Note: the operator still reports level 1" in text


def test_markdown_of_nothing() -> None:
    empty = assess([], ClusterInventory(), scope="team-z")

    text = render(empty, "markdown")

    assert text.endswith("No ModelDeployments found in namespace team-z.\n")
    assert "KServe **missing**" in text


@pytest.mark.parametrize(
    ("raw", "cell"),
    [("a|b", "a\\|b"), ("one\ntwo", "one two"), ("", "-"), ("back\\slash", "back\\\\slash")],
)
def test_md_cell_escapes(raw: str, cell: str) -> None:
    assert md_cell(raw) == cell


# --- shared wording -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paths", "compact"),
    [
        (["spec.a.x"], ["spec.a.x"]),
        (["spec.a.x", "spec.a.y", "spec.b"], ["spec.a.{x,y}", "spec.b"]),
        (["top"], ["top"]),
    ],
)
def test_compact_fields(paths: list[str], compact: list[str]) -> None:
    assert compact_fields(paths) == compact


def test_need_sentences_share_a_reason() -> None:
    needs = [
        Need("field", "spec.a", "same reason", "x"),
        Need("component", "Thing", "it does things", "x", crds=("things.example.com",)),
        Need("field", "spec.b", "same reason", "x"),
    ]

    assert need_sentences(needs, "`") == [
        "set `spec.a`, `spec.b`: same reason",
        "install Thing (`things.example.com`): it does things",
    ]


def test_climb_text(report: Assessment) -> None:
    assert [climb_text(d) for d in report.deployments] == [
        "no",
        "yes",
        "no",
        "no",
        "top",
        "invalid",
    ]


@pytest.mark.parametrize("output", FORMATS)
def test_every_format_ends_with_a_newline(report: Assessment, output: Any) -> None:
    assert render(report, output).endswith("\n")
