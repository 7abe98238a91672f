"""Shared wording of the `rung assess` renderers: the same words in every format (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rung.assess.people import money
from rung.assess.report import Assessment, DeploymentAssessment, LevelTools, NamespaceSummary
from rung.plan.capability import Need


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


def blocked_text(d: DeploymentAssessment) -> str:
    """Why a deployment cannot climb yet: its blocking needs, else that it is not Ready."""
    if d.blockers:
        return needs_text(d.blockers)
    if d.next_level is not None and d.ready not in (None, "True"):
        return f"not Ready (phase {d.phase or 'unknown'}): let it serve first"
    return "-"


def status_cells(d: DeploymentAssessment) -> list[str]:
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


def tools_text(level: LevelTools) -> str:
    """`KServe (model serving) installed, ...`, or `none` for a level without tools."""
    return (
        ", ".join(
            f"{t.name} ({t.role}) {'installed' if t.installed else 'missing'}" for t in level.tools
        )
        or "none beyond the level below"
    )


def data_text(d: DeploymentAssessment) -> list[tuple[str, str]]:
    """(version and role, training data or `unknown`) per lineage entry."""
    return [
        (f"{e.version} ({e.role})", e.data.describe() if e.data else "unknown") for e in d.lineage
    ]


def people_cost_text(assessment: Assessment) -> list[str]:
    """The people cost lines: per level totals when priced, else the inputs missing."""
    lines = []
    totals: dict[int, float] = {}
    hours: dict[int, float] = {}
    for d in assessment.deployments:
        for c in d.people_costs:
            if c.per_week is not None:
                totals[c.level] = totals.get(c.level, 0.0) + c.per_week
            if c.hours_per_week is not None:
                hours[c.level] = hours.get(c.level, 0.0) + c.hours_per_week
    currency = assessment.people_rates.currency
    for level in sorted(set(totals) | set(hours)):
        priced = f" = {money(totals[level], currency)} a week" if level in totals else ""
        lines.append(f"level {level}: {hours.get(level, 0.0):g} h a week{priced}")
    missing = assessment.people_inputs_missing
    if missing:
        lines.append(
            "not priced without: " + ", ".join(missing) + " (a ConfigMap via --people-costs,"
            " or --hourly-rate / --effort KEY=HOURS)"
        )
    return lines


def empty_text(assessment: Assessment) -> str:
    where = f"namespace {assessment.scope}" if assessment.scope else "any namespace"
    return f"No ModelDeployments found in {where}."
