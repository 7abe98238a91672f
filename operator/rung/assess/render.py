"""Rendering of `rung assess` reports: table, JSON and Markdown (pure: strings in, strings out).

- `table`: kubectl-like aligned columns, then per-namespace summaries, the cost of the next
  level, notes and the cluster's components.
- `json`: every field of the assessment under stable camelCase keys; a key is always
  present (null when it does not apply), so scripts can rely on the shape.
- `markdown`: a report to paste into a document: summary and deployment tables, then a
  "Next steps" list.
- `html`: one self-contained page with charts (`rung.assess.html`).

Every format carries the same people, tools and data: responsibilities and who holds
them, the tools of each level, people cost (or the inputs it lacks) and data lineage.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic_core import to_jsonable_python

from rung.assess.llm_costs import LlmCost, verdict_text
from rung.assess.llm_costs import cost_rows as llm_cost_rows
from rung.assess.report import Assessment, DeploymentAssessment, NamespaceSummary
from rung.assess.wording import (
    advisories,
    blocked_text,
    climb_text,
    cluster_notes,
    current_gaps,
    data_text,
    empty_text,
    level_text,
    need_sentences,
    needs_text,
    new_blockers,
    people_cost_text,
    status_cells,
    summary_text,
    tools_text,
)

OutputFormat = Literal["table", "json", "markdown", "html"]
FORMATS: tuple[OutputFormat, ...] = ("table", "json", "markdown", "html")
REPORT_KIND = "MaturityAssessment"
REPORT_VERSION = 1
"""Bumped when a JSON key changes meaning or disappears (new keys do not bump it)."""


def render(assessment: Assessment, output: OutputFormat) -> str:
    """The report in `output` format, ending with a newline."""
    if output == "json":
        return json.dumps(to_json(assessment), indent=2) + "\n"
    if output == "markdown":
        return render_markdown(assessment)
    if output == "html":
        from rung.assess.html import render_html

        return render_html(assessment)
    return render_table(assessment)


# ---------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------


def to_json(assessment: Assessment) -> dict[str, Any]:
    """The whole report as a JSON-ready dict; its parts under their camelCase attributes."""
    inventory = assessment.inventory
    return {
        "kind": REPORT_KIND,
        "version": REPORT_VERSION,
        "scope": {
            "namespace": assessment.scope,
            "allNamespaces": assessment.scope is None,
        },
        "defaultPrometheusUrl": assessment.default_prometheus_url,
        "components": [
            {
                "name": c.name,
                "installed": inventory.has(c),
                "crds": [{"name": crd.name, "installed": inventory.has(crd)} for crd in c.crds],
            }
            for c in assessment.known_components
        ],
        "tools": to_jsonable_python(assessment.tools, by_alias=True),
        "people": {
            "source": assessment.people_rates.source,
            "currency": assessment.people_rates.currency or None,
            "hourlyRate": assessment.people_rates.hourly_rate,
            "rates": dict(assessment.people_rates.rates),
            "hoursPerWeek": dict(assessment.people_rates.hours_per_week),
            "missingInputs": list(assessment.people_inputs_missing),
        },
        "llmPrices": {
            "source": assessment.llm_prices.source,
            "currency": assessment.llm_prices.currency or None,
            "gpuHourlyRate": assessment.llm_prices.gpu_hourly_rate,
            "cpuHourlyRate": assessment.llm_prices.cpu_hourly_rate,
            "promptPer1kTokens": assessment.llm_prices.prompt_per_1k_tokens,
            "generationPer1kTokens": assessment.llm_prices.generation_per_1k_tokens,
        },
        "namespaces": to_jsonable_python(assessment.namespaces, by_alias=True),
        "deployments": to_jsonable_python(assessment.deployments, by_alias=True),
    }


# ---------------------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------------------


def align(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """kubectl-style columns: left aligned, three spaces apart, no trailing blanks."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for row in (header, *rows):
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=True)]
        lines.append("   ".join(cells).rstrip())
    return lines


def render_table(assessment: Assessment) -> str:
    """The report as aligned columns and short sections."""
    if not assessment.deployments:
        return empty_text(assessment) + "\n" + _components_line(assessment) + "\n"
    rows = [
        [
            *status_cells(d),
            ",".join(d.capabilities) or "-",
            level_text(d.next_level, d.next_level_name),
            climb_text(d),
            d.error or needs_text(d.blockers),
        ]
        for d in assessment.deployments
    ]
    header = ["NAMESPACE", "NAME", "LEVEL", "PHASE", "READY", "CAPABILITIES", "NEXT", "CLIMB"]
    lines = align([*header, "NEEDS FOR NEXT LEVEL"], rows)
    lines.append("")
    lines.extend(summary_text(s) for s in assessment.namespaces)

    cost_rows = [
        [f"{d.namespace}/{d.name}", f"{c.capability} (level {c.level})", c.summary]
        for d in assessment.deployments
        for c in d.next_costs
    ]
    if cost_rows:
        lines += ["", "COST OF THE NEXT LEVEL"]
        lines += align(["DEPLOYMENT", "CAPABILITY", "EXTRA"], cost_rows)

    owner_rows = [
        [
            f"{d.namespace}/{d.name}",
            f"{a.title} (level {a.level})",
            a.field,
            "required" if a.required else "recommended",
        ]
        for d in assessment.deployments
        for a in d.responsibilities
        if not a.assigned
    ]
    if owner_rows:
        lines += ["", "UNASSIGNED RESPONSIBILITIES"]
        lines += align(["DEPLOYMENT", "RESPONSIBILITY", "FIELD", "AT ITS LEVEL"], owner_rows)
    lineage_rows = [
        [f"{d.namespace}/{d.name}", version, data]
        for d in assessment.deployments
        for version, data in data_text(d)
    ]
    if lineage_rows:
        lines += ["", "DATA LINEAGE"]
        lines += align(["DEPLOYMENT", "MODEL VERSION", "TRAINED ON"], lineage_rows)
    people = people_cost_text(assessment)
    if people:
        lines += ["", "PEOPLE COST"] + [f"  {line}" for line in people]
    llms = [d for d in assessment.deployments if d.llm_cost is not None]
    if llms:
        lines += ["", "LLM: BUILD VS BUY"]
        rows = [r for d in llms for r in llm_cost_rows(f"{d.namespace}/{d.name}", _llm(d))]
        lines += align(["DEPLOYMENT", "WAY", "FOR", "PER DAY", "PER 1M REQUESTS"], rows)
        lines += [f"  {d.namespace}/{d.name}: {verdict_text(_llm(d))}" for d in llms]

    notes = [
        (f"{d.namespace}/{d.name}", text) for d in assessment.deployments for text in _notes(d)
    ]
    if notes:
        lines += ["", "NOTES"]
        lines += align(["DEPLOYMENT", "NOTE"], [list(n) for n in notes])
    lines += ["", _components_line(assessment)]
    for need, affected in cluster_notes(assessment):
        lines.append(f"  {need_sentences([need])[0]} (affects {', '.join(affected)})")
    lines += ["", "TOOLS PER LEVEL"]
    lines += [f"  level {t.level} {t.level_name}: {tools_text(t)}" for t in assessment.tools]
    return "\n".join(lines) + "\n"


def _notes(d: DeploymentAssessment) -> list[str]:
    out = [f"level {d.level} already lacks: {t}" for t in need_sentences(current_gaps(d))]
    out += [f"level {d.next_level} also needs: {t}" for t in need_sentences(new_blockers(d))]
    out += need_sentences(advisories(d))
    out += list(d.notes)
    return out


def _components_line(assessment: Assessment) -> str:
    parts = [
        f"{name} {'installed' if installed else 'missing'}"
        for name, installed in assessment.components
    ]
    prometheus = assessment.default_prometheus_url
    parts.append(f"operator default Prometheus {prometheus or 'not given'}")
    return "Cluster: " + ", ".join(parts)


# ---------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------


def md_cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ") or "-"


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return lines


def next_step(d: DeploymentAssessment) -> list[str]:
    """The "Next steps" entry of one deployment: a bullet and indented details."""
    head = f"- **{d.namespace}/{d.name}** ({level_text(d.level, d.level_name)}"
    if d.error is not None:
        return [f"{head}): fix the spec, the API server holds an invalid object: {d.error}"]
    if d.next_level is None:
        line = f"{head}): at the top of the ladder."
    elif d.ready_to_climb:
        line = (
            f"{head} → {level_text(d.next_level, d.next_level_name)}): ready to climb;"
            f" set `spec.maturity.level: {d.next_level}`."
        )
    else:
        line = (
            f"{head} → {level_text(d.next_level, d.next_level_name)}): before setting"
            f" `spec.maturity.level: {d.next_level}`:"
        )
    out = [line]
    out += [
        f"  - Already missing at level {d.level}: {t}" for t in need_sentences(current_gaps(d), "`")
    ]
    out += [f"  - {t[0].upper()}{t[1:]}" for t in need_sentences(new_blockers(d), "`")]
    out += [f"  - Cost of {c.capability}: {c.summary}" for c in d.next_costs]
    out += [f"  - Note: {t}" for t in need_sentences(advisories(d), "`")]
    out += [f"  - Note: {text}" for text in d.notes]
    return out


def _md_cluster(assessment: Assessment) -> list[str]:
    """The components line, and the non-blocking ones missing with whom they affect."""
    components = ", ".join(
        f"{name} {'installed' if installed else '**missing**'}"
        for name, installed in assessment.components
    )
    lines = [f"Cluster components: {components}.", ""]
    notes = cluster_notes(assessment)
    for need, affected in notes:
        lines += [f"- {need_sentences([need], '`')[0]} (affects {', '.join(affected)})."]
    return [*lines, ""] if notes else lines


def _md_summary(namespaces: Sequence[NamespaceSummary]) -> list[str]:
    levels = [f"Level {i}" for i in range(len(namespaces[0].per_level))]
    header = ["Namespace", "ModelDeployments", *levels, "Ready to climb", "At the top", "Not ready"]
    rows = [
        [
            s.namespace,
            str(s.total),
            *[str(n) for n in s.per_level],
            str(s.ready_to_climb),
            str(s.at_top),
            str(s.not_ready),
        ]
        for s in namespaces
    ]
    return md_table(header, rows)


def _md_needs_cell(d: DeploymentAssessment) -> str:
    if d.error:
        return "invalid spec"
    if d.next_level is None:
        return "-"
    return "ready to climb" if d.ready_to_climb else blocked_text(d)


def _md_deployments(deployments: Sequence[DeploymentAssessment]) -> list[str]:
    header = ["Namespace", "Name", "Level", "Phase", "Ready", "Capabilities", "Next level"]
    rows = [
        [
            *status_cells(d),
            ", ".join(d.capabilities),
            level_text(d.next_level, d.next_level_name),
            _md_needs_cell(d),
        ]
        for d in deployments
    ]
    return md_table([*header, "Needs for next level"], rows)


def render_markdown(assessment: Assessment) -> str:
    """The report as Markdown: summary, deployments, next steps."""
    scope = f"namespace `{assessment.scope}`" if assessment.scope else "all namespaces"
    lines = ["# Rung maturity assessment", "", f"Scope: {scope}.", ""]
    lines += _md_cluster(assessment)
    if not assessment.deployments:
        return "\n".join([*lines, empty_text(assessment)]) + "\n"
    lines += ["## Summary", "", *_md_summary(assessment.namespaces)]
    lines += ["", "## Deployments", "", *_md_deployments(assessment.deployments)]
    lines += ["", "## Responsibilities", ""]
    lines += md_table(
        ["Deployment", "Responsibility", "Level", "Field", "Held by", "Now or next"],
        [
            [
                f"{d.namespace}/{d.name}",
                a.title + (" (required)" if a.required else ""),
                str(a.level),
                f"`{a.field}`",
                f"{a.holder} ({a.contact})" if a.holder else "**unassigned**",
                "now" if a.active else "next level",
            ]
            for d in assessment.deployments
            for a in d.responsibilities
        ],
    )
    lines += ["", "## Tools per level", ""]
    lines += md_table(
        ["Level", "Tools"],
        [[level_text(t.level, t.level_name), tools_text(t)] for t in assessment.tools],
    )
    lines += ["", "## Data lineage", ""]
    lines += md_table(
        ["Deployment", "Model version", "Trained on"],
        [
            [f"{d.namespace}/{d.name}", version, data if data != "unknown" else "**unknown**"]
            for d in assessment.deployments
            for version, data in data_text(d)
        ],
    )
    lines += ["", "## People cost", ""]
    lines += [f"- {line}" for line in people_cost_text(assessment)] or ["- none"]
    llms = [d for d in assessment.deployments if d.llm_cost is not None]
    if llms:
        lines += ["", "## LLM: build vs buy", ""]
        lines += md_table(
            ["Deployment", "Way", "For", "Per day", "Per 1M requests"],
            [r for d in llms for r in llm_cost_rows(f"{d.namespace}/{d.name}", _llm(d))],
        )
        lines += [""] + [f"- {d.namespace}/{d.name}: {verdict_text(_llm(d))}" for d in llms]
    lines += ["", "## Next steps", ""]
    for d in assessment.deployments:
        lines += next_step(d)
    return "\n".join(lines) + "\n"


def _llm(d: DeploymentAssessment) -> LlmCost:
    assert d.llm_cost is not None
    return d.llm_cost
