"""`rung assess -o html`: the maturity report as one self-contained page (pure).

One HTML document with everything inline: the charts are SVG drawn by pygal (no
JavaScript library, no tooltips script, nothing fetched), the styles are one `<style>`
element, and `@media print` keeps it readable on paper (no backgrounds, charts kept
whole on a page). Sections: summary and deployments per level, readiness to climb,
tools per level, unassigned responsibilities, cost per capability and level (compute
and people), data lineage gaps, and the deployments table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

import pygal
from pygal.style import Style

from rung.api.spec import MAX_LEVEL
from rung.assess.llm_costs import cost_rows as llm_cost_rows
from rung.assess.llm_costs import verdict_text
from rung.assess.people import money
from rung.assess.report import Assessment, DeploymentAssessment
from rung.assess.wording import (
    blocked_text,
    climb_text,
    data_text,
    level_text,
    need_sentences,
    people_cost_text,
    summary_text,
)
from rung.ladder import LEVEL_NAMES

PALETTE = ("#2f6fb0", "#e08a1e", "#3a9a5b", "#c0392b", "#7d5ba6", "#8c6d46", "#5f7a8a")
"""Series colours: distinguishable on screen and in greyscale print."""
CHART_STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#222",
    foreground_strong="#111",
    foreground_subtle="#888",
    colors=PALETTE,
    font_family="DejaVu Sans, Liberation Sans, Arial, sans-serif",
    title_font_size=18,
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=14,
    value_font_size=13,
)
CHART_WIDTH = 560
CHART_HEIGHT = 340

CSS = """
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #222;
       margin: 2rem auto; max-width: 1100px; padding: 0 1rem; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; border-bottom: 2px solid #2f6fb0; padding-bottom: .2rem;
     margin-top: 2rem; }
.meta { color: #555; margin-top: 0; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; flex: 1 1 480px; max-width: 560px; border: 1px solid #ddd; border-radius: 4px;
         padding: .5rem; background: #fff; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: .9rem; color: #444; margin-top: .3rem; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; margin: .5rem 0; }
th, td { border: 1px solid #ccc; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #eef3f9; }
.missing, .unknown, .no { color: #b03a2e; font-weight: bold; }
.installed, .yes { color: #2e7d32; font-weight: bold; }
.note { color: #555; font-size: .9rem; }
ul.compact { margin: .3rem 0; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  figure, table, tr { break-inside: avoid; page-break-inside: avoid; }
  figure { border: none; }
  th { background: none; }
  .charts { display: block; }
  a { color: inherit; text-decoration: none; }
}
"""


def _chart(chart_type: Any, title: str, **config: Any) -> Any:
    """A pygal chart that renders to inline SVG: no script tags pointing anywhere."""
    return chart_type(
        title=title,
        style=CHART_STYLE,
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        js=(),
        disable_xml_declaration=True,
        print_values=True,
        print_zeroes=False,
        x_label_rotation=20,
        legend_at_bottom=True,
        truncate_legend=-1,
        truncate_label=-1,
        **config,
    )


def _svg(chart: Any) -> str:
    return str(chart.render(is_unicode=True))


def _figure(chart: Any, caption: str, name: str) -> str:
    return (
        f'<figure class="chart" data-chart="{escape(name)}">{_svg(chart)}'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def _counts(chart: Any, values: Iterable[int]) -> None:
    """Whole-number y labels for a chart of counts."""
    chart.y_labels = list(range(max([1, *values]) + 1))


def _levels() -> list[str]:
    return [f"{level} {LEVEL_NAMES[level]}" for level in range(MAX_LEVEL + 1)]


def deployments_chart(assessment: Assessment) -> str:
    """Deployments per level, one stacked series per namespace."""
    chart = _chart(pygal.StackedBar, "ModelDeployments per maturity level")
    chart.x_labels = _levels()
    for summary in assessment.namespaces:
        chart.add(summary.namespace, list(summary.per_level))
    _counts(chart, [sum(s.per_level[i] for s in assessment.namespaces) for i in range(5)])
    return _figure(chart, "How many deployments stand at each level, per namespace.", "levels")


def readiness_chart(assessment: Assessment) -> str:
    """Per level: ready to climb, blocked, at the top, invalid."""
    chart = _chart(pygal.StackedBar, "Readiness to climb, by current level")
    chart.x_labels = _levels()
    states = ("yes", "no", "top", "invalid")
    labels = {"yes": "ready to climb", "no": "blocked", "top": "at the top", "invalid": "invalid"}
    counts = {s: [0] * (MAX_LEVEL + 1) for s in states}
    for d in assessment.deployments:
        counts[climb_text(d)][d.level] += 1
    for state in states:
        if any(counts[state]):
            chart.add(labels[state], counts[state])
    _counts(chart, [sum(counts[s][i] for s in states) for i in range(MAX_LEVEL + 1)])
    return _figure(
        chart,
        "Ready to climb: nothing blocks the next level. Blocked: a spec field, an owner"
        " or a cluster component is missing (see below).",
        "readiness",
    )


def responsibilities_chart(assessment: Assessment) -> str:
    """Assigned and unassigned responsibilities (now and at the next level)."""
    chart = _chart(pygal.StackedBar, "Responsibilities: assigned and unassigned")
    titles: dict[str, tuple[int, str]] = {}
    assigned: dict[str, int] = {}
    unassigned: dict[str, int] = {}
    for d in assessment.deployments:
        for a in d.responsibilities:
            titles[a.responsibility] = (a.level, f"{a.title} (level {a.level})")
            target = assigned if a.assigned else unassigned
            target[a.responsibility] = target.get(a.responsibility, 0) + 1
    keys = sorted(titles, key=lambda k: titles[k])
    chart.x_labels = [titles[k][1] for k in keys]
    chart.add("assigned", [assigned.get(k, 0) for k in keys])
    chart.add("unassigned", [unassigned.get(k, 0) for k in keys])
    _counts(chart, [assigned.get(k, 0) + unassigned.get(k, 0) for k in keys])
    return _figure(
        chart,
        "Responsibilities the capabilities on now or at the next level bring (spec.owners).",
        "responsibilities",
    )


def compute_cost_chart(assessment: Assessment) -> str:
    """Extra CPU (cores, at the most replicas) per capability: on now and next level."""
    chart = _chart(pygal.HorizontalStackedBar, "Compute requests per capability (CPU cores)")
    names: dict[str, int] = {}
    now: dict[str, float] = {}
    then: dict[str, float] = {}
    for d in assessment.deployments:
        for c in d.costs:
            if c.total_max is None:
                continue
            names[c.capability] = c.level
            target = now if c.active else then
            target[c.capability] = target.get(c.capability, 0.0) + c.total_max.cpu_millicores
    keys = sorted(names, key=lambda k: (names[k], k))
    chart.x_labels = [f"{k} (level {names[k]})" for k in keys]
    chart.add("on now", [round(now.get(k, 0.0) / 1000, 2) for k in keys])
    chart.add("next level", [round(then.get(k, 0.0) / 1000, 2) for k in keys])
    return _figure(
        chart,
        "CPU requests each capability adds at the most replicas (canary: during rollouts;"
        " retraining: per run), summed over the deployments.",
        "compute-cost",
    )


def people_cost_chart(assessment: Assessment) -> str:
    """People per level: money a week when priced, else hours a week when given."""
    per_level = [0.0] * (MAX_LEVEL + 1)
    hours = [0.0] * (MAX_LEVEL + 1)
    priced = False
    for d in assessment.deployments:
        for c in d.people_costs:
            if c.per_week is not None:
                per_level[c.level] += c.per_week
                priced = True
            if c.hours_per_week is not None:
                hours[c.level] += c.hours_per_week
    currency = assessment.people_rates.currency
    if priced:
        title = f"People cost per level ({currency or 'money'} a week)"
        values = [round(v, 2) for v in per_level]
    else:
        title = "People effort per level (hours a week)"
        values = hours
    chart = _chart(pygal.Bar, title)
    chart.x_labels = _levels()
    chart.add("now and next level", values)
    caption = "Effort x rate of every responsibility, summed by the level that brings it."
    if assessment.people_inputs_missing:
        caption += " Some inputs are missing (see the table): those are counted as zero."
    return _figure(chart, caption, "people-cost")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], raw: bool = False) -> str:
    """An HTML table; cells are escaped unless `raw` (cells built here, already escaped)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if raw else escape(c)}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _mark(ok: bool, yes: str, no: str) -> str:
    return f'<span class="{"installed" if ok else "missing"}">{escape(yes if ok else no)}</span>'


def _name(d: DeploymentAssessment) -> str:
    return escape(f"{d.namespace}/{d.name}")


def _tools_section(assessment: Assessment) -> str:
    rows = []
    for level in assessment.tools:
        cells = (
            "<br>".join(
                f"{escape(t.name)} <span class='note'>({escape(t.role)})</span>: "
                + _mark(t.installed, "installed", "missing")
                for t in level.tools
            )
            or "<span class='note'>none beyond the level below</span>"
        )
        rows.append([escape(level_text(level.level, level.level_name)), cells])
    return "<h2>Tools per level</h2>" + _table(["Level", "Cluster components"], rows, raw=True)


def _responsibilities_section(assessment: Assessment) -> str:
    rows = [
        [
            _name(d),
            escape(a.title) + (" <b>(required)</b>" if a.required else ""),
            str(a.level),
            f"<code>{escape(a.field)}</code>",
            escape(a.duty),
            "now" if a.active else "next level",
        ]
        for d in assessment.deployments
        for a in d.responsibilities
        if not a.assigned
    ]
    text = (
        _table(["Deployment", "Responsibility", "Level", "Field", "Duty", "When"], rows, raw=True)
        if rows
        else "<p>Every responsibility is assigned.</p>"
    )
    return (
        '<h2>Unassigned responsibilities</h2><div class="charts">'
        + responsibilities_chart(assessment)
        + "</div>"
        + text
    )


def _cost_section(assessment: Assessment) -> str:
    compute_rows = [
        [
            _name(d),
            escape(f"{c.capability} (level {c.level})"),
            "on now" if c.active else "next level",
            escape(c.summary),
        ]
        for d in assessment.deployments
        for c in d.costs
    ]
    people_rows = [
        [
            _name(d),
            escape(f"{c.title} (level {c.level})"),
            "-" if c.hours_per_week is None else f"{c.hours_per_week:g}",
            "-" if c.hourly_rate is None else escape(money(c.hourly_rate, c.currency)),
            "-" if c.per_week is None else escape(money(c.per_week, c.currency)),
            escape(", ".join(c.missing)) or "-",
        ]
        for d in assessment.deployments
        for c in d.people_costs
    ]
    lines = "".join(f"<li>{escape(line)}</li>" for line in people_cost_text(assessment))
    return (
        "<h2>Cost per capability and level</h2>"
        '<div class="charts">'
        + compute_cost_chart(assessment)
        + people_cost_chart(assessment)
        + "</div><h3>Compute</h3>"
        + _table(["Deployment", "Capability", "When", "Estimate"], compute_rows, raw=True)
        + "<h3>People</h3>"
        + (f'<ul class="compact">{lines}</ul>' if lines else "")
        + _table(
            ["Deployment", "Responsibility", "Hours a week", "Rate", "A week", "Missing inputs"],
            people_rows,
            raw=True,
        )
    )


def _llm_section(assessment: Assessment) -> str:
    """Build vs buy of every LLM deployment (nothing when there is none)."""
    llms = [(d, d.llm_cost) for d in assessment.deployments if d.llm_cost is not None]
    if not llms:
        return ""
    rows = [row for d, cost in llms for row in llm_cost_rows(f"{d.namespace}/{d.name}", cost)]
    verdicts = "".join(f"<li>{_name(d)}: {escape(verdict_text(cost))}</li>" for d, cost in llms)
    return (
        "<h2>LLM: build vs buy</h2>"
        + _table(["Deployment", "Way", "For", "Per day", "Per 1M requests"], rows)
        + f'<ul class="compact">{verdicts}</ul>'
    )


def _lineage_section(assessment: Assessment) -> str:
    rows = [
        [
            _name(d),
            escape(version),
            '<span class="unknown">unknown</span>' if data == "unknown" else escape(data),
        ]
        for d in assessment.deployments
        for version, data in data_text(d)
    ]
    gaps = sum(len(d.unknown_data) for d in assessment.deployments)
    summary = (
        f"<p><b>{gaps}</b> model version{'s' if gaps != 1 else ''} with unknown training data;"
        " set <code>spec.model.data</code> (required from level 3).</p>"
        if gaps
        else "<p>Every model version names the data it was trained on.</p>"
    )
    return (
        "<h2>Data lineage</h2>"
        + summary
        + _table(["Deployment", "Model version", "Trained on"], rows, raw=True)
    )


def _deployments_section(assessment: Assessment) -> str:
    rows = []
    for d in assessment.deployments:
        climb = climb_text(d)
        needs = d.error or blocked_text(d)
        rows.append(
            [
                _name(d),
                escape(level_text(d.level, d.level_name)),
                escape(d.phase or "-"),
                escape(", ".join(d.capabilities) or "-"),
                escape(level_text(d.next_level, d.next_level_name)),
                f'<span class="{climb}">{escape(climb)}</span>',
                escape(needs),
            ]
        )
    steps = "".join(
        f"<li><b>{_name(d)}</b>: "
        + escape("; ".join(need_sentences(d.blockers)) or "ready to climb")
        + "</li>"
        for d in assessment.deployments
        if d.error is None and d.next_level is not None
    )
    return (
        "<h2>Deployments</h2>"
        + _table(
            ["Deployment", "Level", "Phase", "Capabilities", "Next", "Climb", "Needs"],
            rows,
            raw=True,
        )
        + (f"<h3>Before the next level</h3><ul>{steps}</ul>" if steps else "")
    )


def render_html(assessment: Assessment) -> str:
    """The report as one self-contained HTML page."""
    scope = f"namespace {assessment.scope}" if assessment.scope else "all namespaces"
    components = ", ".join(
        f"{name} {'installed' if installed else 'missing'}"
        for name, installed in assessment.components
    )
    summaries = "".join(f"<li>{escape(summary_text(s))}</li>" for s in assessment.namespaces)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Rung maturity assessment</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Rung maturity assessment</h1>",
        f'<p class="meta">Scope: {escape(scope)}. Cluster: {escape(components)}.</p>',
    ]
    if not assessment.deployments:
        where = f"namespace {assessment.scope}" if assessment.scope else "any namespace"
        parts.append(f"<p>No ModelDeployments found in {escape(where)}.</p>")
        parts.append(_tools_section(assessment))
        return "".join([*parts, "</body></html>"]) + "\n"
    parts += [
        "<h2>Summary</h2>",
        f'<ul class="compact">{summaries}</ul>',
        '<div class="charts">',
        deployments_chart(assessment),
        readiness_chart(assessment),
        "</div>",
        _tools_section(assessment),
        _responsibilities_section(assessment),
        _cost_section(assessment),
        _llm_section(assessment),
        _lineage_section(assessment),
        _deployments_section(assessment),
        "</body></html>",
    ]
    return "".join(parts) + "\n"
