"""Rendering of `rung assess` reports: table, JSON and Markdown (pure: strings in, strings out).

- `table`: kubectl-like aligned columns, then per-namespace summaries, the cost of the next
  level, notes and the cluster's components.
- `json`: every field of the assessment under stable camelCase keys; a key is always
  present (null when it does not apply), so scripts can rely on the shape.
- `markdown`: a report to paste into a document: summary and deployment tables, then a
  "Next steps" list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic_core import to_jsonable_python

from rung.assess.report import Assessment, DeploymentAssessment, NamespaceSummary
from rung.plan.capability import Need

OutputFormat = Literal["table", "json", "markdown"]
FORMATS: tuple[OutputFormat, ...] = ("table", "json", "markdown")
REPORT_KIND = "MaturityAssessment"
REPORT_VERSION = 1
"""Bumped when a JSON key changes meaning or disappears (new keys do not bump it)."""


def render(assessment: Assessment, output: OutputFormat) -> str:
    """The report in `output` format, ending with a newline."""
    if output == "json":
        return json.dumps(to_json(assessment), indent=2) + "\n"
    if output == "markdown":
        return render_markdown(assessment)
    return render_table(assessment)


# ---------------------------------------------------------------------------------------
# Shared wording
# ---------------------------------------------------------------------------------------


def level_text(level: int | None, name: str | None) -> str:
    """`2 Progressive`, or `-` when there is no level."""
    return "-" if level is None else f"{level} {name}"


def compact_fields(paths: Iterable[str]) -> list[str]:
    """Field paths with a shared parent folded: `spec.governance.{owner,contact}`."""
    groups: dict[str, list[str]] = {}
    for path in paths:
        parent, _, leaf = path.rpartition(".")
        groups.setdefault(parent, []).append(leaf)
    out = []
    for parent, leaves in groups.items():
        if len(leaves) == 1:
            out.append(f"{parent}.{leaves[0]}" if parent else leaves[0])
        else:
            out.append(f"{parent}.{{{','.join(leaves)}}}")
    return out


def needs_text(needs: Sequence[Need]) -> str:
    """Blocking needs in a few words: fields folded, components by name."""
    fields = compact_fields(n.what for n in needs if n.kind == "field")
    components = [f"{n.what} (not installed)" for n in needs if n.kind == "component"]
    return ", ".join([*fields, *components]) or "-"


def _status_cells(d: DeploymentAssessment) -> list[str]:
    """The first cells of a deployment's row: namespace, name, level, phase, readiness."""
    return [d.namespace, d.name, level_text(d.level, d.level_name), d.phase or "-", d.ready or "-"]


def climb_text(d: DeploymentAssessment) -> str:
    """`yes`, `no`, `top` (level 4) or `invalid`."""
    if d.error is not None:
        return "invalid"
    if d.next_level is None:
        return "top"
    return "yes" if d.ready_to_climb else "no"


def advisories(d: DeploymentAssessment) -> list[Need]:
    """Non-blocking spec fields worth a note, of the next level (or the current one at the
    top). Missing components that only reduce a capability are cluster notes instead."""
    source = d.next_needs if d.next_level is not None else d.gaps
    return [n for n in source if not n.blocking and n.kind == "field"]


def cluster_notes(assessment: Assessment) -> list[tuple[Need, list[str]]]:
    """Non-blocking missing components, once each, with the deployments they affect."""
    found: dict[str, tuple[Need, list[str]]] = {}
    for d in assessment.deployments:
        source = d.next_needs if d.next_level is not None else d.gaps
        for need in source:
            if need.kind == "component" and not need.blocking:
                entry = found.setdefault(need.what, (need, []))
                entry[1].append(f"{d.namespace}/{d.name}")
    return list(found.values())


def current_gaps(d: DeploymentAssessment) -> list[Need]:
    """Blocking needs of the level in force: something already does not work fully."""
    return [n for n in d.gaps if n.blocking]


def new_blockers(d: DeploymentAssessment) -> list[Need]:
    """Blocking needs the next level adds to those of the current level."""
    now = set(current_gaps(d))
    return [n for n in d.blockers if n not in now]


def need_sentences(needs: Sequence[Need], code: str = "") -> list[str]:
    """Needs as sentence fragments; fields with the same reason share one sentence.

    `code` wraps names (a backtick for Markdown).
    """
    fields_by_why: dict[str, list[str]] = {}
    order: list[tuple[str, str]] = []  # ("field", why) or ("component", sentence)
    for need in needs:
        if need.kind == "component":
            crds = ", ".join(f"{code}{c}{code}" for c in need.crds)
            order.append(("component", f"install {need.what} ({crds}): {need.why}"))
        else:
            if need.why not in fields_by_why:
                fields_by_why[need.why] = []
                order.append(("field", need.why))
            fields_by_why[need.why].append(f"{code}{need.what}{code}")
    return [
        f"set {', '.join(fields_by_why[text])}: {text}" if kind == "field" else text
        for kind, text in order
    ]


def summary_text(s: NamespaceSummary) -> str:
    """`team-a: 5 ModelDeployments (level 0: 1, ...); 2 ready to climb, 1 at the top, ...`."""
    levels = ", ".join(f"level {i}: {n}" for i, n in enumerate(s.per_level))
    plural = "" if s.total == 1 else "s"
    parts = [f"{s.ready_to_climb} ready to climb", f"{s.at_top} at the top"]
    parts.append(f"{s.not_ready} not ready")
    if s.invalid:
        parts.append(f"{s.invalid} invalid")
    return f"{s.namespace}: {s.total} ModelDeployment{plural} ({levels}); {', '.join(parts)}"


def _empty_text(assessment: Assessment) -> str:
    where = f"namespace {assessment.scope}" if assessment.scope else "any namespace"
    return f"No ModelDeployments found in {where}."


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
        return _empty_text(assessment) + "\n" + _components_line(assessment) + "\n"
    rows = [
        [
            *_status_cells(d),
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

    notes = [
        (f"{d.namespace}/{d.name}", text) for d in assessment.deployments for text in _notes(d)
    ]
    if notes:
        lines += ["", "NOTES"]
        lines += align(["DEPLOYMENT", "NOTE"], [list(n) for n in notes])
    lines += ["", _components_line(assessment)]
    for need, affected in cluster_notes(assessment):
        lines.append(f"  {need_sentences([need])[0]} (affects {', '.join(affected)})")
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
    return "ready to climb" if d.ready_to_climb else needs_text(d.blockers)


def _md_deployments(deployments: Sequence[DeploymentAssessment]) -> list[str]:
    header = ["Namespace", "Name", "Level", "Phase", "Ready", "Capabilities", "Next level"]
    rows = [
        [
            *_status_cells(d),
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
        return "\n".join([*lines, _empty_text(assessment)]) + "\n"
    lines += ["## Summary", "", *_md_summary(assessment.namespaces)]
    lines += ["", "## Deployments", "", *_md_deployments(assessment.deployments)]
    lines += ["", "## Next steps", ""]
    for d in assessment.deployments:
        lines += next_step(d)
    return "\n".join(lines) + "\n"
