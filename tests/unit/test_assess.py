"""rung.assess over the capability registry: levels, what the next level needs, and what
capabilities cost (rung.plan.registry, rung.plan.sizing)."""

# The expected summaries are what people read: the multiplication sign and en dash are meant.
# ruff: noqa: RUF001

from __future__ import annotations

import copy
from typing import Any

import pytest

from rung.api.kinds import (
    HTTP_ROUTE,
    INFERENCE_SERVICE,
    POD_MONITOR,
    PROMETHEUS_RULE,
    WORKFLOW_TEMPLATE,
)
from rung.assess import ClusterInventory, DeploymentAssessment, assess, assess_one
from rung.assess.wording import blocked_text, climb_text
from rung.plan.capability import Cost
from rung.plan.explainability import LOGGER_DEFAULT_URL
from rung.plan.registry import (
    ARGO_WORKFLOWS,
    COMPONENT_KINDS,
    EXPLAINER_CPU_MILLICORES,
    EXPLAINER_MEMORY_BYTES,
    GATEWAY_API,
    PROMETHEUS_OPERATOR,
)
from rung.plan.sizing import (
    KSERVE_DEFAULT_CPU_MILLICORES,
    KSERVE_DEFAULT_MEMORY_BYTES,
    Resources,
    format_cpu,
    format_memory,
    parse_cpu,
    parse_memory,
)

from . import factories as f

GI = 2**30
MI = 2**20
FULL = ClusterInventory.of(*COMPONENT_KINDS)
PROM = {"prometheus": {"url": "http://prometheus.monitoring:9090"}}
JOB = {
    "type": "job",
    "job": {
        "template": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "train",
                            "image": "trainer:1",
                            "resources": {"requests": {"cpu": "2", "memory": "4Gi"}},
                        },
                        {
                            "name": "sidecar",
                            "image": "s:1",
                            "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}},
                        },
                    ]
                }
            }
        }
    },
}
GOVERNANCE = {
    "owner": "team-fraud",
    "contact": "#fraud",
    "intendedUse": "scoring card payments",
    "riskClass": "high",
}
REQUESTS = {"requests": {"cpu": "500m", "memory": "1Gi"}}


def body(name: str = f.NAME, namespace: str = f.NAMESPACE, **kwargs: Any) -> dict[str, Any]:
    """factories.body with another name or namespace."""
    out = f.body(**kwargs)
    out["metadata"].update(name=name, namespace=namespace)
    return out


def one(
    inventory: ClusterInventory = FULL, prometheus: str | None = None, **kwargs: Any
) -> DeploymentAssessment:
    return assess_one(body(**kwargs), inventory, prometheus)


def whats(needs: Any, *, blocking: bool | None = None) -> set[str]:
    return {n.what for n in needs if blocking is None or n.blocking is blocking}


def cost(d: DeploymentAssessment, capability: str) -> Cost:
    found = [c for c in d.costs if c.capability == capability]
    assert found, f"no cost for {capability} in {[c.capability for c in d.costs]}"
    return found[0]


# --- levels 0-4: capabilities, next level, blockers ----------------------------------

GOV_FIELDS = {f"spec.governance.{k}" for k in ("owner", "contact", "intendedUse", "riskClass")}

LEVELS: list[tuple[str, dict[str, Any], str | None, list[str], int | None, set[str]]] = [
    # (case, body kwargs, operator default Prometheus, capabilities, next level, blockers)
    (
        "0 without Prometheus",
        {"level": 0},
        None,
        ["serving"],
        1,
        {"spec.monitoring.prometheus.url"},
    ),
    ("0 with spec Prometheus", {"level": 0, "monitoring": PROM}, None, ["serving"], 1, set()),
    ("0 with operator default", {"level": 0}, "http://prom:9090", ["serving"], 1, set()),
    (
        "1 without Prometheus",
        {"level": 1},
        None,
        ["serving", "monitoring"],
        2,
        {"spec.monitoring.prometheus.url"},
    ),
    (
        "1 with Prometheus",
        {"level": 1, "monitoring": PROM},
        None,
        ["serving", "monitoring"],
        2,
        set(),
    ),
    (
        "2 without pipeline",
        {"level": 2, "monitoring": PROM},
        None,
        ["serving", "monitoring", "canary"],
        3,
        {"spec.retraining.pipeline"},
    ),
    (
        "2 with pipeline",
        {"level": 2, "monitoring": PROM, "retraining": {"pipeline": JOB}},
        None,
        ["serving", "monitoring", "canary"],
        3,
        set(),
    ),
    (
        "3 without governance",
        {"level": 3, "monitoring": PROM, "retraining": {"pipeline": JOB}},
        None,
        ["serving", "monitoring", "canary", "retraining"],
        4,
        GOV_FIELDS,
    ),
    (
        "3 with part of governance",
        {
            "level": 3,
            "monitoring": PROM,
            "retraining": {"pipeline": JOB},
            "governance": {"owner": "x", "riskClass": "minimal"},
        },
        None,
        ["serving", "monitoring", "canary", "retraining"],
        4,
        {"spec.governance.contact", "spec.governance.intendedUse"},
    ),
    (
        "3 with governance",
        {"level": 3, "monitoring": PROM, "retraining": {"pipeline": JOB}, "governance": GOVERNANCE},
        None,
        ["serving", "monitoring", "canary", "retraining"],
        4,
        set(),
    ),
    (
        "4 at the top",
        {"level": 4, "monitoring": PROM, "retraining": {"pipeline": JOB}, "governance": GOVERNANCE},
        None,
        [
            "serving",
            "monitoring",
            "canary",
            "retraining",
            "explainability",
            "payloadLogging",
            "approvalGate",
        ],
        None,
        set(),
    ),
]


@pytest.mark.parametrize(
    ("case", "kwargs", "default", "caps", "next_level", "blockers"),
    LEVELS,
    ids=[c[0] for c in LEVELS],
)
def test_levels_next_level_and_blockers(
    case: str,
    kwargs: dict[str, Any],
    default: str | None,
    caps: list[str],
    next_level: int | None,
    blockers: set[str],
) -> None:
    d = one(prometheus=default, **kwargs)

    assert d.error is None
    assert d.capabilities == tuple(caps)
    assert d.capabilities_source == "spec"
    assert d.level_name == {0: "Manual", 1: "Monitored", 2: "Progressive"}.get(
        d.level, {3: "ContinuousTraining", 4: "Governed"}.get(d.level)
    )
    assert d.next_level == next_level
    assert whats(d.next_needs, blocking=True) == blockers
    assert d.ready_to_climb is (next_level is not None and not blockers)


def test_a_gap_of_the_current_level_is_also_a_blocker_of_the_next() -> None:
    d = one(level=1)

    assert whats(d.gaps, blocking=True) == {"spec.monitoring.prometheus.url"}
    assert "spec.monitoring.prometheus.url" in whats(d.blockers)
    assert not d.ready_to_climb


def test_top_level_has_no_next_level_name_and_no_next_costs() -> None:
    d = one(level=4, monitoring=PROM, retraining={"pipeline": JOB}, governance=GOVERNANCE)

    assert (d.next_level, d.next_level_name, d.next_needs) == (None, None, ())
    assert d.next_costs == ()
    assert all(c.active for c in d.costs)


@pytest.mark.parametrize(
    ("overrides", "level", "caps", "blockers"),
    [
        # Canary switched on early: level 1 already pays for it.
        ({"canary": True}, 1, ("serving", "monitoring", "canary"), set()),
        # Monitoring off at level 1: level 2's canary would be refused.
        ({"monitoring": False}, 1, ("serving",), {"spec.maturity.overrides"}),
        # Retraining off: level 3 needs no pipeline.
        ({"retraining": False}, 2, ("serving", "monitoring", "canary"), set()),
    ],
)
def test_overrides_shape_capabilities_and_needs(
    overrides: dict[str, bool], level: int, caps: tuple[str, ...], blockers: set[str]
) -> None:
    d = one(maturity={"level": level, "overrides": overrides}, monitoring=PROM)

    assert d.capabilities == caps
    assert whats(d.blockers) == blockers


# --- missing cluster components --------------------------------------------------------

COMPONENT_CASES: list[
    tuple[str, dict[str, Any], ClusterInventory, dict[str, tuple[bool, tuple[str, ...]]]]
] = [
    # (case, body kwargs, inventory, {component: (blocking, missing crds)} of the next level)
    (
        "no Prometheus Operator: annotations fallback",
        {"level": 0, "monitoring": PROM},
        ClusterInventory.of(INFERENCE_SERVICE),
        {
            PROMETHEUS_OPERATOR.name: (
                False,
                (POD_MONITOR.name, PROMETHEUS_RULE.name),
            )
        },
    ),
    (
        "PodMonitor without PrometheusRule",
        {"level": 0, "monitoring": PROM},
        ClusterInventory.of(INFERENCE_SERVICE, POD_MONITOR),
        {PROMETHEUS_OPERATOR.name: (False, (PROMETHEUS_RULE.name,))},
    ),
    (
        "gateway-api router without HTTPRoute",
        {"level": 1, "monitoring": PROM, "rollout": {"router": "gateway-api"}},
        ClusterInventory.of(INFERENCE_SERVICE, POD_MONITOR, PROMETHEUS_RULE),
        {GATEWAY_API.name: (True, (HTTP_ROUTE.name,))},
    ),
    (
        "kserve router needs no HTTPRoute",
        {"level": 1, "monitoring": PROM, "rollout": {"router": "kserve"}},
        ClusterInventory.of(INFERENCE_SERVICE, POD_MONITOR, PROMETHEUS_RULE),
        {},
    ),
    (
        "argo-workflow pipeline without Argo",
        {
            "level": 2,
            "monitoring": PROM,
            "retraining": {
                "pipeline": {"type": "argo-workflow", "argoWorkflow": {"workflowTemplate": "t"}}
            },
        },
        ClusterInventory.of(INFERENCE_SERVICE, POD_MONITOR, PROMETHEUS_RULE),
        {ARGO_WORKFLOWS.name: (True, (WORKFLOW_TEMPLATE.name,))},
    ),
    (
        "argo-workflow pipeline with Argo",
        {
            "level": 2,
            "monitoring": PROM,
            "retraining": {
                "pipeline": {"type": "argo-workflow", "argoWorkflow": {"workflowTemplate": "t"}}
            },
        },
        FULL,
        {},
    ),
    (
        "webhook pipeline needs no CRD",
        {
            "level": 2,
            "monitoring": PROM,
            "retraining": {"pipeline": {"type": "webhook", "webhook": {"url": "http://x"}}},
        },
        ClusterInventory.of(INFERENCE_SERVICE, POD_MONITOR, PROMETHEUS_RULE),
        {},
    ),
    (
        "no KServe",
        {"level": 0, "monitoring": PROM},
        ClusterInventory.of(POD_MONITOR, PROMETHEUS_RULE),
        {"KServe": (True, (INFERENCE_SERVICE.name,))},
    ),
]


@pytest.mark.parametrize(
    ("case", "kwargs", "inventory", "expected"),
    COMPONENT_CASES,
    ids=[c[0] for c in COMPONENT_CASES],
)
def test_missing_components(
    case: str,
    kwargs: dict[str, Any],
    inventory: ClusterInventory,
    expected: dict[str, tuple[bool, tuple[str, ...]]],
) -> None:
    d = one(inventory=inventory, **kwargs)

    found = {n.what: (n.blocking, n.crds) for n in d.next_needs if n.kind == "component"}
    assert found == expected
    assert d.ready_to_climb is not any(blocking for blocking, _ in expected.values())


def test_a_missing_component_at_the_current_level_is_a_gap() -> None:
    argo = {"type": "argo-workflow", "argoWorkflow": {"workflowTemplate": "t"}}
    d = one(
        inventory=ClusterInventory.of(INFERENCE_SERVICE, POD_MONITOR, PROMETHEUS_RULE),
        level=3,
        monitoring=PROM,
        retraining={"pipeline": argo},
    )

    assert whats(d.gaps, blocking=True) == {ARGO_WORKFLOWS.name}


@pytest.mark.parametrize(
    ("kwargs", "advice"),
    [
        (
            {"level": 2, "monitoring": PROM, "retraining": {"pipeline": JOB}},
            "spec.retraining.triggers",
        ),
        (
            {
                "level": 3,
                "monitoring": PROM,
                "retraining": {"pipeline": JOB, "triggers": [{"type": "manual"}]},
                "governance": GOVERNANCE,
            },
            "spec.explainability.payloadLogging.url",
        ),
    ],
)
def test_non_blocking_advice(kwargs: dict[str, Any], advice: str) -> None:
    d = one(**kwargs)

    assert advice in whats(d.next_needs, blocking=False)
    assert d.ready_to_climb


def test_custom_explainer_without_image_blocks_level_4() -> None:
    d = one(
        level=3,
        monitoring=PROM,
        retraining={"pipeline": JOB},
        governance=GOVERNANCE,
        explainability={"explainer": {"type": "custom"}},
    )

    assert whats(d.blockers) == {"spec.explainability.explainer.image"}


def test_inventory_has_a_component_only_with_all_its_crds() -> None:
    partial = ClusterInventory.of(POD_MONITOR)

    assert partial.has(POD_MONITOR)
    assert not partial.has(PROMETHEUS_RULE)
    assert not partial.has(PROMETHEUS_OPERATOR)
    assert FULL.has(PROMETHEUS_OPERATOR)


# --- costs --------------------------------------------------------------------------------

CANARY_CASES: list[tuple[str, dict[str, Any], dict[str, Any], Resources | None, int, str]] = [
    # (case, model fields, serving, per replica, extra replicas, summary)
    (
        "requests from the spec",
        {"resources": REQUESTS},
        {},
        Resources(500, GI),
        1,
        "+1 replica × 500m CPU / 1Gi during rollouts",
    ),
    (
        "one copy at minReplicas",
        {"resources": REQUESTS},
        {"minReplicas": 2, "maxReplicas": 5},
        Resources(500, GI),
        2,
        "+2 replicas × 500m CPU / 1Gi (= 1 CPU / 2Gi) during rollouts",
    ),
    (
        "scale to zero still needs one replica",
        {"resources": REQUESTS},
        {"minReplicas": 0, "maxReplicas": 2, "deploymentMode": "Serverless"},
        Resources(500, GI),
        1,
        "+1 replica × 500m CPU / 1Gi during rollouts",
    ),
    (
        "KServe defaults when requests are unset",
        {},
        {},
        Resources(KSERVE_DEFAULT_CPU_MILLICORES, KSERVE_DEFAULT_MEMORY_BYTES),
        1,
        "+1 replica × 1 CPU / 2Gi (KServe default requests) during rollouts",
    ),
    (
        "partly defaulted",
        {"resources": {"requests": {"cpu": "250m"}}},
        {},
        Resources(250, KSERVE_DEFAULT_MEMORY_BYTES),
        1,
        "+1 replica × 250m CPU / 2Gi (partly KServe default requests) during rollouts",
    ),
    (
        "GPUs from limits",
        {
            "kind": "llm",
            "format": "huggingface",
            "resources": {
                "requests": {"cpu": "4", "memory": "16Gi"},
                "limits": {"nvidia.com/gpu": 1},
            },
        },
        {},
        Resources(4000, 16 * GI, 1),
        1,
        "+1 replica × 4 CPU / 16Gi / 1 GPU during rollouts",
    ),
    (
        "unparseable requests",
        {"resources": {"requests": {"cpu": "lots"}}},
        {},
        None,
        1,
        "+1 replica × unparseable resource requests during rollouts",
    ),
]


@pytest.mark.parametrize(
    ("case", "model_fields", "serving", "per_replica", "replicas", "summary"),
    CANARY_CASES,
    ids=[c[0] for c in CANARY_CASES],
)
def test_canary_cost(
    case: str,
    model_fields: dict[str, Any],
    serving: dict[str, Any],
    per_replica: Resources | None,
    replicas: int,
    summary: str,
) -> None:
    d = one(level=1, monitoring=PROM, model_fields=model_fields, serving=serving)

    canary = cost(d, "canary")
    assert (canary.per_unit, canary.units_min, canary.units_max) == (
        per_replica,
        replicas,
        replicas,
    )
    assert canary.summary == summary
    assert canary.when == "during rollouts"
    assert (canary.level, canary.active) == (2, False)


@pytest.mark.parametrize(
    ("kind", "serving", "monitoring", "samples", "qpm", "summary"),
    [
        (
            "predictive",
            {},
            PROM,
            (4.0, 4.0),
            6.0,
            "~60 series × 1 replica every 15s ≈ 4.0 samples/s; 3 SLO queries every 30s",
        ),
        (
            "predictive",
            {"minReplicas": 1, "maxReplicas": 3},
            {**PROM, "interval": "1m"},
            (4.0, 12.0),
            3.0,
            "~60 series × 1–3 replicas every 15s ≈ 4.0–12 samples/s; 3 SLO queries every 1m",
        ),
        (
            "llm",
            {"minReplicas": 2, "maxReplicas": 2},
            PROM,
            (400 * 2 / 15, 400 * 2 / 15),
            10.0,
            "~400 series × 2 replicas every 15s ≈ 53 samples/s; 5 SLO queries every 30s",
        ),
    ],
)
def test_monitoring_cost(
    kind: str,
    serving: dict[str, Any],
    monitoring: dict[str, Any],
    samples: tuple[float, float],
    qpm: float,
    summary: str,
) -> None:
    d = one(level=0, model_fields={"kind": kind}, serving=serving, monitoring=monitoring)

    m = cost(d, "monitoring")
    assert (m.samples_per_second_min, m.samples_per_second_max) == pytest.approx(samples)
    assert m.queries_per_minute == pytest.approx(qpm)
    assert m.summary == summary
    assert (m.level, m.active) == (1, False)


@pytest.mark.parametrize(
    ("retraining", "runs", "per_run", "summary_part"),
    [
        ({"pipeline": JOB}, 1.0, Resources(2500, 4 * GI + 512 * MI), "each run requests 2500m CPU"),
        (
            {"pipeline": JOB, "cooldown": "1h"},
            3.0,
            Resources(2500, 4 * GI + 512 * MI),
            "3 pipeline runs",
        ),
        (
            {"pipeline": JOB, "cooldown": "12h", "maxRunsPerDay": 5},
            2.0,
            Resources(2500, 4 * GI + 512 * MI),
            "2 pipeline runs",
        ),
        (
            {"pipeline": {"type": "webhook", "webhook": {"url": "http://x"}}},
            1.0,
            None,
            "the webhook pipeline's own resources",
        ),
        (
            {"pipeline": {"type": "job", "job": {"template": {"template": {"spec": {}}}}}},
            1.0,
            None,
            "the Job's resources",
        ),
        (
            {"pipeline": {"type": "job", "job": {"template": {"template": "not a pod"}}}},
            1.0,
            None,
            "the Job's resources",
        ),
        (
            {
                "pipeline": {
                    "type": "job",
                    "job": {"template": {"template": {"spec": {"containers": ["x", None]}}}},
                }
            },
            1.0,
            None,
            "the Job's resources",
        ),
    ],
)
def test_retraining_cost(
    retraining: dict[str, Any], runs: float, per_run: Resources | None, summary_part: str
) -> None:
    d = one(level=3, monitoring=PROM, retraining=retraining)

    r = cost(d, "retraining")
    assert r.runs_per_day == runs
    assert r.per_unit == per_run
    assert summary_part in r.summary
    assert (r.when, r.active) == ("per run", True)


@pytest.mark.parametrize(
    ("explainer", "serving", "units", "summary"),
    [
        (None, {}, (1, 1), "+1 explainer replica × 100m CPU / 256Mi"),
        ({"type": "art"}, {"minReplicas": 2, "maxReplicas": 4}, (1, 1), "+1 explainer replica"),
        (
            {"type": "custom", "mode": "sidecar", "image": "e:1"},
            {"minReplicas": 2, "maxReplicas": 4},
            (2, 4),
            "+1 explainer container in each predictor replica (2–4 replicas) × 100m CPU / 256Mi",
        ),
    ],
)
def test_explainer_cost(
    explainer: dict[str, Any] | None,
    serving: dict[str, Any],
    units: tuple[int, int],
    summary: str,
) -> None:
    explainability = {"explainer": explainer} if explainer else {}
    d = one(
        level=3,
        monitoring=PROM,
        retraining={"pipeline": JOB},
        serving=serving,
        explainability=explainability,
    )

    e = cost(d, "explainability")
    assert e.per_unit == Resources(EXPLAINER_CPU_MILLICORES, EXPLAINER_MEMORY_BYTES)
    assert (e.units_min, e.units_max) == units
    assert e.summary.startswith(summary)
    assert (e.level, e.active) == (4, False)


@pytest.mark.parametrize(
    ("payload_logging", "request_rate", "events", "eps", "sink"),
    [
        (None, None, 2, None, LOGGER_DEFAULT_URL),
        ({"url": "http://audit:8080", "mode": "all"}, 12.0, 2, 24.0, "http://audit:8080"),
        ({"url": "http://audit:8080", "mode": "request"}, 12.0, 1, 12.0, "http://audit:8080"),
        ({"url": "http://audit:8080", "mode": "response"}, None, 1, None, "http://audit:8080"),
    ],
)
def test_payload_logging_cost(
    payload_logging: dict[str, Any] | None,
    request_rate: float | None,
    events: int,
    eps: float | None,
    sink: str,
) -> None:
    status = {}
    if request_rate is not None:
        status = {"slo": {"measuredAt": f.NOW_TEXT, "requestRate": request_rate}}
    explainability = {"payloadLogging": payload_logging} if payload_logging else {}
    d = one(
        level=4,
        monitoring=PROM,
        retraining={"pipeline": JOB},
        governance=GOVERNANCE,
        explainability=explainability,
        serving={"minReplicas": 1, "maxReplicas": 3},
        status=status,
    )

    p = cost(d, "payloadLogging")
    assert (p.events_per_inference, p.events_per_second) == (events, eps)
    assert (p.units_min, p.units_max) == (1, 3)
    assert p.per_unit == Resources(100, 100 * MI)
    assert sink in p.summary
    assert (p.when, p.active) == ("per inference", True)


@pytest.mark.parametrize(
    ("level", "costed", "active"),
    [
        (0, ["serving", "monitoring"], ["serving"]),
        (1, ["serving", "monitoring", "canary"], ["serving", "monitoring"]),
        (2, ["serving", "monitoring", "canary", "retraining"], ["serving", "monitoring", "canary"]),
        (
            3,
            ["serving", "monitoring", "canary", "retraining", "explainability", "payloadLogging"],
            ["serving", "monitoring", "canary", "retraining"],
        ),
    ],
)
def test_costs_cover_current_and_next_level(
    level: int, costed: list[str], active: list[str]
) -> None:
    d = one(level=level, monitoring=PROM, retraining={"pipeline": JOB}, governance=GOVERNANCE)

    assert [c.capability for c in d.costs] == costed
    assert [c.capability for c in d.costs if c.active] == active
    assert [c.capability for c in d.next_costs] == [c for c in costed if c not in active]


def test_serving_cost_spans_min_to_max_replicas() -> None:
    d = one(model_fields={"resources": REQUESTS}, serving={"minReplicas": 2, "maxReplicas": 4})

    s = cost(d, "serving")
    assert s.total_min == Resources(1000, 2 * GI)
    assert s.total_max == Resources(2000, 4 * GI)
    assert s.summary == "2–4 replicas × 500m CPU / 1Gi"


# --- quantities ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "millicores"),
    [
        ("500m", 500),
        ("1", 1000),
        (2, 2000),
        ("0.5", 500),
        ("1.5", 1500),
        (".25", 250),
        ("2k", 2_000_000),
        ("0.0001", 1),
    ],
)
def test_parse_cpu(quantity: int | str, millicores: int) -> None:
    assert parse_cpu(quantity) == millicores


@pytest.mark.parametrize(
    ("quantity", "num_bytes"),
    [
        ("1Gi", GI),
        ("512Mi", 512 * MI),
        ("1.5Gi", 3 * GI // 2),
        ("1G", 10**9),
        ("1e9", 10**9),
        ("128974848", 128974848),
        (1024, 1024),
        ("1Ki", 1024),
        ("1k", 1000),
    ],
)
def test_parse_memory(quantity: int | str, num_bytes: int) -> None:
    assert parse_memory(quantity) == num_bytes


@pytest.mark.parametrize("bad", ["", "lots", "1Gb", "-1", "1 Gi"])
def test_bad_quantities_raise(bad: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        parse_memory(bad)
    with pytest.raises(ValueError, match="quantity"):
        parse_cpu(bad)


@pytest.mark.parametrize(
    ("millicores", "text"), [(500, "500m"), (1000, "1"), (2500, "2500m"), (0, "0")]
)
def test_format_cpu(millicores: int, text: str) -> None:
    assert format_cpu(millicores) == text


@pytest.mark.parametrize(
    ("num_bytes", "text"),
    [(GI, "1Gi"), (1536 * MI, "1536Mi"), (256 * MI, "256Mi"), (10**9, "953.7Mi"), (2**40, "1Ti")],
)
def test_format_memory(num_bytes: int, text: str) -> None:
    assert format_memory(num_bytes) == text


# --- status, invalid objects, summaries -------------------------------------------------------


def test_status_supplies_capabilities_phase_and_readiness() -> None:
    status = {
        "observedGeneration": 1,
        "level": 1,
        "capabilities": ["serving", "monitoring"],
        "phase": "Ready",
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "R", "lastTransitionTime": f.NOW_TEXT}
        ],
    }
    d = one(level=1, monitoring=PROM, status=status)

    assert (d.capabilities, d.capabilities_source) == (("serving", "monitoring"), "status")
    assert (d.phase, d.ready) == ("Ready", "True")
    assert d.notes == ()


def test_stale_status_is_noted() -> None:
    status = {"observedGeneration": 1, "level": 1, "capabilities": ["serving", "monitoring"]}
    d = one(level=2, generation=2, monitoring=PROM, status=status)

    assert d.capabilities == ("serving", "monitoring")
    assert any("still reports level 1" in n for n in d.notes)


def test_without_status_phase_and_ready_are_none() -> None:
    d = one(level=0)

    assert (d.phase, d.ready, d.capabilities_source) == (None, None, "spec")


def test_an_invalid_object_is_reported_not_raised() -> None:
    bad = body(name="broken", level=2)
    del bad["spec"]["model"]

    d = assess_one(bad, FULL)

    assert d.error == "spec.model: Field required"
    assert (d.level, d.name, d.next_level) == (2, "broken", None)
    assert not d.ready_to_climb


def test_assess_sorts_and_summarizes_per_namespace() -> None:
    bodies = [
        body(
            name="z",
            namespace="b",
            level=4,
            monitoring=PROM,
            retraining={"pipeline": JOB},
            governance=GOVERNANCE,
        ),
        body(name="y", namespace="a", level=1, monitoring=PROM),
        body(name="x", namespace="a", level=1),
        body(name="w", namespace="a", level=0, monitoring=PROM),
    ]
    broken = copy.deepcopy(bodies[1])
    broken["metadata"]["name"] = "v"
    broken["spec"]["model"] = {}
    bodies.append(broken)

    report = assess(bodies, FULL, scope=None)

    assert [(d.namespace, d.name) for d in report.deployments] == [
        ("a", "v"),
        ("a", "w"),
        ("a", "x"),
        ("a", "y"),
        ("b", "z"),
    ]
    a, b = report.namespaces
    assert (a.namespace, a.total, a.per_level) == ("a", 4, (1, 3, 0, 0, 0))
    assert (a.ready_to_climb, a.at_top, a.not_ready, a.invalid) == (2, 0, 4, 1)
    assert (b.namespace, b.total, b.per_level, b.at_top, b.ready_to_climb) == (
        "b",
        1,
        (0, 0, 0, 0, 1),
        1,
        0,
    )
    assert dict(report.components) == {
        "KServe": True,
        "KServe LLMInferenceService": True,
        "Prometheus Operator": True,
        "Gateway API": True,
        "Argo Workflows": True,
        "Kubeflow Pipelines": True,
        "Knative Eventing": True,
    }


def test_operator_default_prometheus_unblocks_every_deployment() -> None:
    bodies = [body(name=f"m{i}", level=i % 2) for i in range(4)]

    without = assess(bodies, FULL)
    with_default = assess(bodies, FULL, default_prometheus_url="http://prom:9090")

    assert without.namespaces[0].ready_to_climb == 0
    assert with_default.namespaces[0].ready_to_climb == 4
    assert with_default.default_prometheus_url == "http://prom:9090"


@pytest.mark.parametrize(
    ("model_fields", "blocked"),
    [
        ({"kind": "llm", "format": "huggingface"}, True),  # ART cannot explain an LLM
        ({"format": "pytorch"}, True),  # no built-in explainer for the format
        ({"format": "xgboost"}, False),  # ART fits tabular formats
    ],
)
def test_level_4_needs_an_explainer_that_fits_the_model(
    model_fields: dict[str, Any], blocked: bool
) -> None:
    d = one(
        level=3,
        monitoring=PROM,
        retraining={"pipeline": JOB},
        governance=GOVERNANCE,
        model_fields=model_fields,
    )

    assert ("spec.explainability.explainer" in whats(d.blockers)) is blocked


def test_a_deployment_that_is_not_ready_is_not_ready_to_climb() -> None:
    status = {
        "observedGeneration": 1,
        "level": 1,
        "capabilities": ["serving", "monitoring"],
        "phase": "Progressing",
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "R", "lastTransitionTime": f.NOW_TEXT}
        ],
    }
    d = one(level=1, monitoring=PROM, status=status)
    assert d.blockers == ()
    assert d.ready_to_climb is False
    assert climb_text(d) == "no"
    assert blocked_text(d) == "not Ready (phase Progressing): let it serve first"
