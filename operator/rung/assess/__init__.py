"""`rung assess`: where each ModelDeployment stands on the ladder, and what climbing costs (pure).

`assess()` takes ModelDeployment bodies as the API server returns them and a
`ClusterInventory` (which CRDs the cluster serves) and returns, per deployment: its
level and capabilities, what the current and the next level still need (spec fields,
cluster components) and what each capability on now or next costs. Everything about a
capability comes from the capability registry (`rung.plan.registry`), which `assess()`
only iterates. Reading the cluster is `rung.assess.cli`'s job, rendering
`rung.assess.render`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from rung.api.owners import RESPONSIBILITIES, Owners
from rung.api.resource import ModelDeployment
from rung.api.spec import MAX_LEVEL, ModelDeploymentSpec
from rung.api.status import ModelRef
from rung.assess.llm_costs import LlmPrices, LlmUsage, llm_cost
from rung.assess.people import PeopleCost, PeopleRates, people_cost
from rung.assess.report import (
    Assessment,
    Assignment,
    DeploymentAssessment,
    LevelTools,
    LineageEntry,
    LineageRole,
    NamespaceSummary,
    ToolStatus,
)
from rung.ladder import LEVEL_NAMES, LadderResult, capabilities
from rung.plan.capability import CapabilityEntry, Cluster, ClusterInventory, Cost, Need
from rung.plan.registry import REGISTRY, components_of

__all__ = [
    "Assessment",
    "ClusterInventory",
    "DeploymentAssessment",
    "NamespaceSummary",
    "assess",
    "assess_one",
    "describe_error",
    "estimate_costs",
    "lineage",
    "needs_at",
    "responsibilities",
    "summarize",
    "tools_per_level",
]

Registry = tuple[CapabilityEntry, ...]


def needs_at(
    spec: ModelDeploymentSpec, level: int, cluster: Cluster, registry: Registry = REGISTRY
) -> list[Need]:
    """What `spec`, with its maturity level set to `level`, lacks to work fully there."""
    ladder = capabilities(level, spec.maturity.overrides)
    out = [Need("field", "spec.maturity.overrides", text, "maturity") for text in ladder.refused]
    owners = spec.owners or Owners()
    for entry in registry:
        if entry.on(ladder, level):
            out += entry.needs(spec, cluster)
            out += [
                Need("field", r.field, f"the {r.title} {r.duty}", entry.name, r.required)
                for r in entry.responsibilities
                if owners.holder(r) is None
            ]
    return out


def responsibilities(
    md: ModelDeployment, next_level: int | None, registry: Registry = REGISTRY
) -> list[Assignment]:
    """The responsibilities of the capabilities on now or at `next_level`, with holders."""
    maturity = md.spec.maturity
    now = capabilities(maturity.level, maturity.overrides)
    then = capabilities(next_level, maturity.overrides) if next_level is not None else now
    owners = md.spec.owners or Owners()
    out = []
    for entry in registry:
        active = entry.on(now, maturity.level)
        if not (active or entry.on(then, next_level or maturity.level)):
            continue
        for r in entry.responsibilities:
            holder = owners.holder(r)
            out.append(
                Assignment(
                    responsibility=r.key,
                    title=r.title,
                    duty=r.duty,
                    capability=entry.name,
                    level=r.level,
                    field=r.field,
                    required=r.required,
                    active=active,
                    holder=holder.name if holder else None,
                    contact=holder.contact if holder else None,
                )
            )
    return out


def lineage(md: ModelDeployment) -> list[LineageEntry]:
    """Each model version in play (status stable, canary, rejected; the spec's when it is
    none of those) with the data it was trained on. spec.model.data also speaks for the
    version the spec names, so lineage added to the spec later closes the gap."""
    spec_model, status = md.spec.model, md.status
    out: list[LineageEntry] = []
    refs: tuple[tuple[LineageRole, ModelRef | None], ...] = (
        ("stable", status.stable),
        ("canary", status.canary),
        ("rejected", status.rejected),
    )
    for role, ref in refs:
        if ref is None:
            continue
        data = ref.data
        if data is None and ref.version == spec_model.version:
            data = spec_model.data
        out.append(LineageEntry(role=role, version=ref.version, data=data))
    if all(e.version != spec_model.version for e in out if e.role != "rejected"):
        out.append(LineageEntry(role="spec", version=spec_model.version, data=spec_model.data))
    return out


def people_costs(assignments: Iterable[Assignment], rates: PeopleRates) -> list[PeopleCost]:
    """The people cost of each assignment, or the inputs it lacks."""
    by_key = {r.key: r for r in RESPONSIBILITIES}
    return [
        people_cost(by_key[a.responsibility], rates, capability=a.capability, active=a.active)
        for a in assignments
    ]


def tools_per_level(inventory: ClusterInventory, registry: Registry = REGISTRY) -> list[LevelTools]:
    """Per level, the components its capabilities rely on, installed or not."""
    out = []
    for level in range(MAX_LEVEL + 1):
        components = components_of(tuple(e for e in registry if e.level == level))
        tools = tuple(
            ToolStatus(
                c.name,
                c.role,
                inventory.has(c),
                tuple(k.name for k in c.crds if not inventory.has(k)),
            )
            for c in components
        )
        out.append(LevelTools(level, LEVEL_NAMES[level], tools))
    return out


def estimate_costs(
    md: ModelDeployment, next_level: int | None, registry: Registry = REGISTRY
) -> list[Cost]:
    """The cost of each capability on now or at `next_level`, marked active when on now."""
    maturity = md.spec.maturity
    now = capabilities(maturity.level, maturity.overrides)
    then = capabilities(next_level, maturity.overrides) if next_level is not None else now
    costs = []
    for entry in registry:
        active = entry.on(now, maturity.level)
        if entry.cost and (active or entry.on(then, next_level or maturity.level)):
            cost = entry.cost(md)
            costs.append(
                dataclasses.replace(cost, capability=entry.name, level=entry.level, active=active)
            )
    return costs


def _ready_status(md: ModelDeployment) -> str | None:
    for cond in md.status.conditions:
        if cond.type == "Ready":
            return cond.status
    return None


def _notes(md: ModelDeployment, ladder: LadderResult, ready: str | None) -> list[str]:
    """Refused capabilities, stale status, and a deployment that is not Ready."""
    status, level = md.status, md.spec.maturity.level
    notes = list(ladder.refused)
    if status.level is not None and status.level != level:
        notes.append(
            f"the operator still reports level {status.level}; level {level} is not in force yet"
        )
    elif status.observed_generation is not None and status.observed_generation < md.generation:
        notes.append(
            f"status is from generation {status.observed_generation}, spec is at {md.generation}"
        )
    if ready == "False":
        notes.append(f"not Ready (phase {status.phase or 'unknown'}): let it serve before climbing")
    return notes


def describe_error(error: Exception) -> str:
    """A parse error in a line: `spec.model: Field required; ...` (first three problems)."""
    if isinstance(error, ValidationError):
        prefix = "status" if error.title == "ModelDeploymentStatus" else "spec"
        problems = [
            f"{'.'.join([prefix, *(str(p) for p in e['loc'])])}: {e['msg']}"
            for e in error.errors()[:3]
        ]
        more = error.error_count() - len(problems)
        return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")
    if isinstance(error, KeyError):
        return f"metadata.{error.args[0]} is missing"
    return str(error)


def _invalid(body: Mapping[str, Any], error: Exception) -> DeploymentAssessment:
    """The assessment of an object whose spec or status does not parse."""
    meta = body.get("metadata") or {}
    raw_level = ((body.get("spec") or {}).get("maturity") or {}).get("level", 0)
    level = raw_level if isinstance(raw_level, int) and 0 <= raw_level <= MAX_LEVEL else 0
    phase = (body.get("status") or {}).get("phase")
    return DeploymentAssessment(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        level=level,
        level_name=LEVEL_NAMES.get(level, "?"),
        capabilities=(),
        capabilities_source="spec",
        phase=phase if isinstance(phase, str) else None,
        ready=None,
        error=describe_error(error),
    )


def assess_one(
    body: Mapping[str, Any],
    inventory: ClusterInventory,
    default_prometheus_url: str | None = None,
    registry: Registry = REGISTRY,
    people_rates: PeopleRates | None = None,
    llm_prices: LlmPrices | None = None,
    llm_usage: LlmUsage | None = None,
) -> DeploymentAssessment:
    """The assessment of one ModelDeployment body (an LLM's build-vs-buy cost priced with
    `llm_prices` and the measured `llm_usage`)."""
    try:
        md = ModelDeployment.from_body(body)
    except (ValidationError, KeyError, ValueError) as error:
        return _invalid(body, error)
    spec, status = md.spec, md.status
    level = spec.maturity.level
    ladder = capabilities(level, spec.maturity.overrides)
    cluster = Cluster(inventory, default_prometheus_url)
    next_level = level + 1 if level < MAX_LEVEL else None
    ready = _ready_status(md)
    assignments = responsibilities(md, next_level, registry)
    return DeploymentAssessment(
        namespace=md.namespace,
        name=md.name,
        level=level,
        level_name=LEVEL_NAMES[level],
        capabilities=tuple(status.capabilities) or tuple(ladder.ordered()),
        capabilities_source="status" if status.capabilities else "spec",
        phase=status.phase,
        ready=ready,
        model_kind=spec.model.kind,
        version=spec.model.version,
        next_level=next_level,
        next_level_name=None if next_level is None else LEVEL_NAMES[next_level],
        gaps=tuple(needs_at(spec, level, cluster, registry)),
        next_needs=()
        if next_level is None
        else tuple(needs_at(spec, next_level, cluster, registry)),
        costs=tuple(estimate_costs(md, next_level, registry)),
        notes=tuple(_notes(md, ladder, ready)),
        responsibilities=tuple(assignments),
        lineage=tuple(lineage(md)),
        people_costs=tuple(people_costs(assignments, people_rates or PeopleRates())),
        llm_cost=llm_cost(md, llm_prices or LlmPrices(), llm_usage),
    )


def summarize(deployments: Iterable[DeploymentAssessment]) -> list[NamespaceSummary]:
    """One summary per namespace, in namespace order."""
    by_ns: dict[str, list[DeploymentAssessment]] = {}
    for d in deployments:
        by_ns.setdefault(d.namespace, []).append(d)
    out = []
    for ns in sorted(by_ns):
        items = by_ns[ns]
        per_level = [0] * (MAX_LEVEL + 1)
        for d in items:
            per_level[d.level] += 1
        out.append(
            NamespaceSummary(
                namespace=ns,
                total=len(items),
                per_level=tuple(per_level),
                ready_to_climb=sum(d.ready_to_climb for d in items),
                at_top=sum(d.error is None and d.next_level is None for d in items),
                not_ready=sum(d.ready != "True" for d in items),
                invalid=sum(d.error is not None for d in items),
            )
        )
    return out


def assess(
    bodies: Iterable[Mapping[str, Any]],
    inventory: ClusterInventory,
    *,
    default_prometheus_url: str | None = None,
    scope: str | None = None,
    registry: Registry = REGISTRY,
    people_rates: PeopleRates | None = None,
    llm_prices: LlmPrices | None = None,
    llm_usage: Mapping[tuple[str, str], LlmUsage] | None = None,
) -> Assessment:
    """The maturity report for `bodies` (ModelDeployments) in a cluster with `inventory`,
    for the capabilities in `registry`; people priced with `people_rates` when given, LLMs
    with `llm_prices` and what was measured (`llm_usage` by (namespace, name))."""
    rates = people_rates or PeopleRates()
    prices = llm_prices or LlmPrices()
    usage = llm_usage or {}

    def one(body: Mapping[str, Any]) -> DeploymentAssessment:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        return assess_one(
            body, inventory, default_prometheus_url, registry, rates, prices, usage.get(key)
        )

    deployments = sorted((one(b) for b in bodies), key=lambda d: (d.namespace, d.name))
    return Assessment(
        deployments=tuple(deployments),
        namespaces=tuple(summarize(deployments)),
        inventory=inventory,
        default_prometheus_url=default_prometheus_url,
        scope=scope,
        known_components=components_of(registry),
        tools=tuple(tools_per_level(inventory, registry)),
        people_rates=rates,
        llm_prices=prices,
    )
