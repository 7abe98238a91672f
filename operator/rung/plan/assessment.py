"""`rung assess`: where each ModelDeployment stands on the ladder, and what climbing costs (pure).

`assess()` takes ModelDeployment bodies as the API server returns them and a
`ClusterInventory` (which third-party CRDs the cluster serves) and returns, per
deployment: its level and capabilities, what the next level still needs (spec
fields, cluster components) and an estimate of what each capability costs in extra
resources. Reading the cluster is the CLI's job; rendering is `rung.assess_render`'s.

The cost model is an estimate for planning, not a measurement: its constants are
named below, each with where its number comes from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from rung.api._base import parse_duration
from rung.api.resource import ModelDeployment
from rung.api.spec import MAX_LEVEL, Explainer, ModelDeploymentSpec
from rung.ladder import LEVEL_NAMES, Capability, LadderResult, capabilities
from rung.plan.explainability import explainer_type
from rung.plan.promql import indicators

# ---------------------------------------------------------------------------------------
# Cluster components
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CrdRef:
    """A custom resource type a capability relies on, found through API discovery."""

    group: str
    version: str
    plural: str
    kind: str

    @property
    def name(self) -> str:
        """The CRD's object name, e.g. `podmonitors.monitoring.coreos.com`."""
        return f"{self.plural}.{self.group}"


INFERENCE_SERVICES = CrdRef("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService")
POD_MONITORS = CrdRef("monitoring.coreos.com", "v1", "podmonitors", "PodMonitor")
PROMETHEUS_RULES = CrdRef("monitoring.coreos.com", "v1", "prometheusrules", "PrometheusRule")
HTTP_ROUTES = CrdRef("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute")
WORKFLOW_TEMPLATES = CrdRef("argoproj.io", "v1alpha1", "workflowtemplates", "WorkflowTemplate")

COMPONENT_CRDS: tuple[CrdRef, ...] = (
    INFERENCE_SERVICES,
    POD_MONITORS,
    PROMETHEUS_RULES,
    HTTP_ROUTES,
    WORKFLOW_TEMPLATES,
)
"""Every CRD the assessment asks about; the CLI discovers exactly these."""


@dataclass(frozen=True)
class Component:
    """A cluster add-on, present when all of its CRDs are served."""

    name: str
    crds: tuple[CrdRef, ...]


KSERVE = Component("KServe", (INFERENCE_SERVICES,))
PROMETHEUS_OPERATOR = Component("Prometheus Operator", (POD_MONITORS, PROMETHEUS_RULES))
GATEWAY_API = Component("Gateway API", (HTTP_ROUTES,))
ARGO_WORKFLOWS = Component("Argo Workflows", (WORKFLOW_TEMPLATES,))
COMPONENTS: tuple[Component, ...] = (KSERVE, PROMETHEUS_OPERATOR, GATEWAY_API, ARGO_WORKFLOWS)


@dataclass(frozen=True)
class ClusterInventory:
    """Which CRDs the cluster serves, by CRD name (`plural.group`)."""

    crds: frozenset[str] = frozenset()

    @classmethod
    def of(cls, *crds: CrdRef) -> ClusterInventory:
        """An inventory holding exactly `crds`."""
        return cls(frozenset(c.name for c in crds))

    def has(self, item: CrdRef | Component) -> bool:
        """Whether a CRD, or every CRD of a component, is served."""
        if isinstance(item, CrdRef):
            return item.name in self.crds
        return all(c.name in self.crds for c in item.crds)


# ---------------------------------------------------------------------------------------
# Cost model
# ---------------------------------------------------------------------------------------

KSERVE_DEFAULT_CPU_MILLICORES = 1000
"""CPU request KServe gives a predictor container that sets none (`inferenceService.resource`
in KServe's `inferenceservice-config` ConfigMap, v0.20: cpuRequest "1")."""
KSERVE_DEFAULT_MEMORY_BYTES = 2 * 1024**3
"""Memory request KServe gives a predictor container that sets none (memoryRequest "2Gi")."""

EXPLAINER_CPU_MILLICORES = 100
"""CPU request assumed for one explainer (ART explainer component or sidecar)."""
EXPLAINER_MEMORY_BYTES = 256 * 1024**2
"""Memory request assumed for one explainer (256Mi)."""
EXPLAINER_REPLICAS = 1
"""Replicas of an explainer component: explanations are rare next to predictions."""

LOGGER_CPU_MILLICORES = 100
"""CPU request of KServe's logger (agent) sidecar, added to every predictor pod that logs
payloads (`logger.cpuRequest` in `inferenceservice-config`, v0.20: "100m")."""
LOGGER_MEMORY_BYTES = 100 * 1024**2
"""Memory request of KServe's logger sidecar (`logger.memoryRequest`: "100Mi")."""
LOGGER_DEFAULT_URL = "http://default-broker"
"""Where KServe's logger sends events when no URL is set (`logger.defaultUrl`)."""
LOGGER_EVENTS_PER_INFERENCE = {"all": 2, "request": 1, "response": 1}
"""CloudEvents the logger sidecar POSTs to the sink per inference, by logging mode: KServe's
logger sends the request and the response as separate events."""

SERIES_PER_REPLICA = {"predictive": 60, "llm": 400}
"""Time series one model-server replica exposes on /metrics (estimate). KServe's model
server: four per-stage latency histograms (`request_predict_seconds`, ...) plus process
metrics, ~60. vLLM for `llm`: a dozen token and latency histograms, ~400."""
SCRAPE_INTERVAL_SECONDS = 15.0
"""Scrape interval of the PodMonitor Rung creates (and a common global default)."""

SECONDS_PER_DAY = 86_400.0
TIMES = "\u00d7"
"""Multiplication sign, as in `+1 replica \u00d7 500m CPU / 1Gi`."""
TO = "\u2013"
"""En dash of ranges, as in `1\u20133 replicas`."""


@dataclass(frozen=True)
class Resources:
    """Resource requests: CPU in millicores, memory in bytes, whole GPUs."""

    cpu_millicores: int = 0
    memory_bytes: int = 0
    gpus: int = 0

    def times(self, count: int) -> Resources:
        """These requests `count` times over."""
        return Resources(self.cpu_millicores * count, self.memory_bytes * count, self.gpus * count)

    def describe(self) -> str:
        """`500m CPU / 1Gi`, with `/ 1 GPU` when there are GPUs."""
        text = f"{format_cpu(self.cpu_millicores)} CPU / {format_memory(self.memory_bytes)}"
        if self.gpus:
            text += f" / {self.gpus} GPU"
        return text


CostWhen = Literal["always", "during rollouts", "per run", "per inference"]
RequestsSource = Literal[
    "spec", "spec + kserve default", "kserve default", "rung default", "job template", "unknown"
]


@dataclass(frozen=True)
class Cost:
    """What one capability adds to the cluster for one ModelDeployment."""

    capability: str
    level: int
    """The level that switches the capability on by default."""
    active: bool
    """Whether the capability is on now (else: it comes with the next level)."""
    when: CostWhen
    """When the extra resources are in use."""
    summary: str
    """One line for people, e.g. `+1 replica x 500m CPU / 1Gi during rollouts` (with a
    multiplication sign)."""
    per_unit: Resources | None = None
    """Requests of one extra replica, container or run; None when there is none or unknown."""
    units_min: int = 0
    """Fewest extra replicas or containers."""
    units_max: int = 0
    """Most extra replicas or containers."""
    requests_source: RequestsSource | None = None
    """Where `per_unit` comes from."""
    samples_per_second_min: float | None = None
    """Monitoring: samples Prometheus ingests per second at the fewest replicas."""
    samples_per_second_max: float | None = None
    """Monitoring: samples per second at the most replicas."""
    queries_per_minute: float | None = None
    """Monitoring: PromQL queries the operator runs per minute for the SLO snapshot."""
    events_per_inference: int | None = None
    """Payload logging: events sent to the audit sink per inference."""
    events_per_second: float | None = None
    """Payload logging: events per second at the last measured request rate."""
    runs_per_day: float | None = None
    """Retraining: most pipeline runs a day allowed by cooldown and maxRunsPerDay."""

    @property
    def total_min(self) -> Resources | None:
        """Extra requests at the fewest units."""
        return self.per_unit.times(self.units_min) if self.per_unit else None

    @property
    def total_max(self) -> Resources | None:
        """Extra requests at the most units."""
        return self.per_unit.times(self.units_max) if self.per_unit else None


_CPU = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(m|k|M|G|)?$")
_MEMORY = re.compile(
    r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([0-9]+))?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?$"
)
_MEMORY_FACTORS: dict[str | None, float] = {
    None: 1,
    "m": 0.001,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def parse_cpu(quantity: int | str) -> int:
    """Millicores in a CPU quantity (`500m` -> 500, `2` -> 2000, `0.5` -> 500), rounded up."""
    match = _CPU.match(str(quantity).strip())
    if match is None:
        raise ValueError(f"not a CPU quantity: {quantity!r}")
    number, suffix = float(match.group(1)), match.group(2) or ""
    factor = {"m": 1, "": 1000, "k": 10**6, "M": 10**9, "G": 10**12}[suffix]
    return math.ceil(number * factor - 1e-9)


def parse_memory(quantity: int | str) -> int:
    """Bytes in a memory quantity (`1Gi`, `512Mi`, `1G`, `1e9`, `1048576`), rounded up."""
    match = _MEMORY.match(str(quantity).strip())
    if match is None:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    number = float(f"{match.group(1)}e{match.group(2) or 0}")
    suffix: str | None = match.group(3)
    return math.ceil(number * _MEMORY_FACTORS[suffix] - 1e-9)


def format_cpu(millicores: int) -> str:
    """`500m`, or whole cores as `1`, `2`."""
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def format_memory(num_bytes: int) -> str:
    """The largest binary unit that divides `num_bytes` evenly (`1Gi`, `1536Mi`)."""
    for unit, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if num_bytes and num_bytes % factor == 0:
            return f"{num_bytes // factor}{unit}"
    if num_bytes >= 2**20:
        return f"{num_bytes / 2**20:.1f}Mi"
    return str(num_bytes)


def _is_gpu(resource: str) -> bool:
    return resource.endswith("/gpu")


def _requests_of(
    requests: Mapping[str, int | str] | None, limits: Mapping[str, int | str] | None
) -> Resources | None:
    """Requests of one container; GPUs may be given as limits only. None when unparseable."""
    requests, limits = requests or {}, limits or {}
    try:
        cpu = parse_cpu(requests["cpu"]) if "cpu" in requests else 0
        memory = parse_memory(requests["memory"]) if "memory" in requests else 0
        gpus = sum(int(v) for k, v in {**limits, **requests}.items() if _is_gpu(k))
    except ValueError:
        return None
    return Resources(cpu, memory, gpus)


def predictor_requests(spec: ModelDeploymentSpec) -> tuple[Resources | None, RequestsSource]:
    """Requests of one predictor replica: the spec's, with KServe's defaults for what is unset."""
    res = spec.model.resources
    requests = dict(res.requests or {}) if res else {}
    limits = dict(res.limits or {}) if res else {}
    parsed = _requests_of(requests, limits)
    if parsed is None:
        return None, "unknown"
    cpu = parsed.cpu_millicores if "cpu" in requests else KSERVE_DEFAULT_CPU_MILLICORES
    memory = parsed.memory_bytes if "memory" in requests else KSERVE_DEFAULT_MEMORY_BYTES
    set_here = sum(k in requests for k in ("cpu", "memory"))
    source: RequestsSource = (
        "spec" if set_here == 2 else "kserve default" if set_here == 0 else "spec + kserve default"
    )
    return Resources(cpu, memory, parsed.gpus), source


def _mapping(value: Any) -> Mapping[str, Any]:
    """`value` when it is a mapping, else empty (Job templates are free-form)."""
    return value if isinstance(value, Mapping) else {}


def _job_requests(template: Mapping[str, Any]) -> Resources | None:
    """Summed container requests of a Job spec (`template.spec.containers`), if any."""
    pod = _mapping(_mapping(template.get("template")).get("spec"))
    containers = pod.get("containers")
    total = Resources()
    found = False
    for container in containers if isinstance(containers, list) else []:
        resources = _mapping(_mapping(container).get("resources"))
        one = _requests_of(_mapping(resources.get("requests")), _mapping(resources.get("limits")))
        if one is None:
            return None
        found = found or one != Resources()
        total = Resources(
            total.cpu_millicores + one.cpu_millicores,
            total.memory_bytes + one.memory_bytes,
            total.gpus + one.gpus,
        )
    return total if found else None


def _replicas(low: int, high: int, noun: str = "replica") -> str:
    count = str(low) if low == high else f"{low}{TO}{high}"
    return f"{count} {noun}{'' if high == 1 else 's'}"


def _rate(value: float) -> str:
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def estimate_costs(
    md: ModelDeployment, capabilities_: Iterable[Capability], active: frozenset[Capability]
) -> list[Cost]:
    """The cost of each of `capabilities_` for `md`, marked active when in `active`."""
    spec = md.spec
    serving = spec.serving
    low, high = serving.min_replicas, serving.max_replicas
    per_replica, source = predictor_requests(spec)
    wanted = set(capabilities_)
    costs: list[Cost] = []

    def requests_text(resources: Resources | None, src: RequestsSource | None) -> str:
        if resources is None:
            return "unparseable resource requests"
        suffix = {
            "kserve default": " (KServe default requests)",
            "spec + kserve default": " (partly KServe default requests)",
        }.get(src or "", "")
        return resources.describe() + suffix

    if Capability.SERVING in wanted:
        costs.append(
            Cost(
                capability=Capability.SERVING.value,
                level=0,
                active=Capability.SERVING in active,
                when="always",
                summary=f"{_replicas(low, high)} {TIMES} {requests_text(per_replica, source)}",
                per_unit=per_replica,
                units_min=low,
                units_max=high,
                requests_source=source,
            )
        )
    if Capability.MONITORING in wanted:
        series = SERIES_PER_REPLICA[spec.model.kind]
        sps_low = series * low / SCRAPE_INTERVAL_SECONDS
        sps_high = series * high / SCRAPE_INTERVAL_SECONDS
        interval = spec.monitoring.interval if spec.monitoring else "30s"
        queries = len(indicators(spec.model.kind))
        qpm = queries * 60.0 / max(parse_duration(interval), 1.0)
        samples = (
            _rate(sps_high) if low == high else f"{_rate(sps_low)}{TO}{_rate(sps_high)}"
        ) + " samples/s"
        costs.append(
            Cost(
                capability=Capability.MONITORING.value,
                level=1,
                active=Capability.MONITORING in active,
                when="always",
                summary=(
                    f"~{series} series {TIMES} {_replicas(low, high)} every"
                    f" {SCRAPE_INTERVAL_SECONDS:g}s ≈ {samples};"
                    f" {queries} SLO queries every {interval}"
                ),
                samples_per_second_min=sps_low,
                samples_per_second_max=sps_high,
                queries_per_minute=qpm,
            )
        )
    if Capability.CANARY in wanted:
        extra = max(low, 1)
        total = ""
        if per_replica is not None and extra > 1:
            total = f" (= {per_replica.times(extra).describe()})"
        costs.append(
            Cost(
                capability=Capability.CANARY.value,
                level=2,
                active=Capability.CANARY in active,
                when="during rollouts",
                summary=(
                    f"+{_replicas(extra, extra)} {TIMES} {requests_text(per_replica, source)}"
                    f"{total} during rollouts"
                ),
                per_unit=per_replica,
                units_min=extra,
                units_max=extra,
                requests_source=source,
            )
        )
    if Capability.RETRAINING in wanted:
        retraining = spec.retraining
        cap = retraining.max_runs_per_day if retraining else 3
        cooldown = retraining.cooldown if retraining else "24h"
        runs = min(float(cap), SECONDS_PER_DAY / max(parse_duration(cooldown), 1.0))
        pipeline = retraining.pipeline if retraining else None
        run_resources: Resources | None = None
        if pipeline is not None and pipeline.job is not None:
            run_resources = _job_requests(pipeline.job.template)
        if run_resources is not None:
            per_run = f"each run requests {run_resources.describe()}"
        elif pipeline is None:
            per_run = "each run uses the pipeline's own resources"
        elif pipeline.type != "job":
            per_run = f"each run uses the {pipeline.type} pipeline's own resources"
        else:
            per_run = "each run uses the Job's resources (no requests set)"
        runs_text = f"{runs:g}" if runs == int(runs) else f"{runs:.1f}"
        costs.append(
            Cost(
                capability=Capability.RETRAINING.value,
                level=3,
                active=Capability.RETRAINING in active,
                when="per run",
                summary=(
                    f"at most {runs_text} pipeline run{'s' if runs != 1 else ''} a day"
                    f" (cooldown {cooldown}, maxRunsPerDay {cap}); {per_run}"
                ),
                per_unit=run_resources,
                units_min=0,
                units_max=1 if run_resources else 0,
                requests_source="job template" if run_resources else None,
                runs_per_day=runs,
            )
        )
    if Capability.EXPLAINABILITY in wanted:
        explainer = spec.explainability.explainer if spec.explainability else None
        one = Resources(EXPLAINER_CPU_MILLICORES, EXPLAINER_MEMORY_BYTES)
        if explainer is not None and explainer.mode == "sidecar":
            units_min, units_max = low, high
            summary = (
                f"+1 explainer container in each predictor replica ({_replicas(low, high)})"
                f" {TIMES} {one.describe()}"
            )
        else:
            units_min = units_max = EXPLAINER_REPLICAS
            summary = f"+{_replicas(EXPLAINER_REPLICAS, EXPLAINER_REPLICAS, 'explainer replica')}"
            summary += f" {TIMES} {one.describe()}"
        costs.append(
            Cost(
                capability=Capability.EXPLAINABILITY.value,
                level=4,
                active=Capability.EXPLAINABILITY in active,
                when="always",
                summary=summary,
                per_unit=one,
                units_min=units_min,
                units_max=units_max,
                requests_source="rung default",
            )
        )
    if Capability.PAYLOAD_LOGGING in wanted:
        logging_ = spec.explainability.payload_logging if spec.explainability else None
        mode = logging_.mode if logging_ else "all"
        sink = logging_.url if logging_ else LOGGER_DEFAULT_URL
        events = LOGGER_EVENTS_PER_INFERENCE[mode]
        one = Resources(LOGGER_CPU_MILLICORES, LOGGER_MEMORY_BYTES)
        request_rate = md.status.slo.request_rate if md.status.slo else None
        eps = request_rate * events if request_rate is not None else None
        summary = (
            f"+1 logger sidecar per predictor replica {TIMES} {one.describe()};"
            f" {events} event{'s' if events > 1 else ''} per inference to {sink} (mode {mode})"
        )
        if eps is not None and request_rate is not None:
            summary += f" ≈ {_rate(eps)} events/s at {_rate(request_rate)} req/s"
        costs.append(
            Cost(
                capability=Capability.PAYLOAD_LOGGING.value,
                level=4,
                active=Capability.PAYLOAD_LOGGING in active,
                when="per inference",
                summary=summary,
                per_unit=one,
                units_min=low,
                units_max=high,
                requests_source="kserve default",
                events_per_inference=events,
                events_per_second=eps,
            )
        )
    return costs


# ---------------------------------------------------------------------------------------
# Needs
# ---------------------------------------------------------------------------------------

NeedKind = Literal["field", "component"]


@dataclass(frozen=True)
class Need:
    """Something a level requires that the spec or the cluster lacks."""

    kind: NeedKind
    """`field` (set it in the spec) or `component` (install it in the cluster)."""
    what: str
    """The spec field path, or the component's name."""
    why: str
    """What it is for, and what happens without it."""
    capability: str
    """The capability that needs it."""
    blocking: bool = True
    """False when the capability works without it, in a reduced way (see `why`)."""
    crds: tuple[str, ...] = ()
    """For components: the CRDs that are missing."""


def _missing_component(
    component: Component, inventory: ClusterInventory, capability: Capability, why: str
) -> Need | None:
    missing = tuple(c.name for c in component.crds if not inventory.has(c))
    if not missing:
        return None
    return Need("component", component.name, why, capability.value, crds=missing)


def needs_at(
    spec: ModelDeploymentSpec,
    level: int,
    inventory: ClusterInventory,
    default_prometheus_url: str | None,
) -> list[Need]:
    """What `spec`, with its maturity level set to `level`, lacks to work fully there."""
    ladder = capabilities(level, spec.maturity.overrides)
    out: list[Need] = [
        Need("field", "spec.maturity.overrides", refusal, "maturity") for refusal in ladder.refused
    ]

    def component(c: Component, cap: Capability, why: str) -> None:
        need = _missing_component(c, inventory, cap, why)
        if need is not None:
            out.append(need)

    component(KSERVE, Capability.SERVING, "the model is served by a KServe InferenceService")
    if Capability.MONITORING in ladder:
        url = (
            spec.monitoring.prometheus.url
            if spec.monitoring and spec.monitoring.prometheus
            else None
        )
        if not url and not default_prometheus_url:
            out.append(
                Need(
                    "field",
                    "spec.monitoring.prometheus.url",
                    "the SLO snapshot and analysis read Prometheus: set it, or give the"
                    " operator a default with --prometheus-url",
                    Capability.MONITORING.value,
                )
            )
        need = _missing_component(
            PROMETHEUS_OPERATOR,
            inventory,
            Capability.MONITORING,
            "without it the model server is scraped through prometheus.io annotations"
            " and no PrometheusRule SLO alerts are created",
        )
        if need is not None:
            out.append(Need(need.kind, need.what, need.why, need.capability, False, need.crds))
    if Capability.CANARY in ladder and spec.rollout and spec.rollout.router == "gateway-api":
        component(
            GATEWAY_API,
            Capability.CANARY,
            "rollout.router gateway-api splits traffic with a weighted HTTPRoute",
        )
    if Capability.RETRAINING in ladder:
        pipeline = spec.retraining.pipeline if spec.retraining else None
        if pipeline is None:
            out.append(
                Need(
                    "field",
                    "spec.retraining.pipeline",
                    "what a retraining trigger launches (job, argo-workflow,"
                    " kubeflow-pipeline or webhook); required from level 3",
                    Capability.RETRAINING.value,
                )
            )
        elif pipeline.type == "argo-workflow":
            component(
                ARGO_WORKFLOWS,
                Capability.RETRAINING,
                "pipeline type argo-workflow submits a WorkflowTemplate",
            )
        if not (spec.retraining and spec.retraining.triggers):
            out.append(
                Need(
                    "field",
                    "spec.retraining.triggers",
                    "without triggers retraining only starts manually (`rung retrain`)",
                    Capability.RETRAINING.value,
                    blocking=False,
                )
            )
    if level >= MAX_LEVEL:
        governance = spec.governance
        for attr, wire in (
            ("owner", "owner"),
            ("contact", "contact"),
            ("intended_use", "intendedUse"),
            ("risk_class", "riskClass"),
        ):
            if governance is None or getattr(governance, attr) is None:
                out.append(
                    Need(
                        "field",
                        f"spec.governance.{wire}",
                        "ownership metadata is required at level 4",
                        "governance",
                    )
                )
    if Capability.EXPLAINABILITY in ladder:
        explainer = spec.explainability.explainer if spec.explainability else None
        # ART has a default image in both modes; a custom explainer needs one.
        needs_image = explainer is not None and explainer.type == "custom"
        if explainer is not None and needs_image and not explainer.image:
            out.append(
                Need(
                    "field",
                    "spec.explainability.explainer.image",
                    f"a {explainer.type} explainer in {explainer.mode} mode needs an image",
                    Capability.EXPLAINABILITY.value,
                )
            )
        elif (refusal := explainer_type(explainer or Explainer(), spec.model)[1]) is not None:
            # e.g. an LLM, or a format ART cannot explain, with no custom explainer
            out.append(
                Need(
                    "field",
                    "spec.explainability.explainer",
                    refusal,
                    Capability.EXPLAINABILITY.value,
                )
            )
    if Capability.PAYLOAD_LOGGING in ladder:
        logging_ = spec.explainability.payload_logging if spec.explainability else None
        if logging_ is None:
            out.append(
                Need(
                    "field",
                    "spec.explainability.payloadLogging.url",
                    f"without it KServe logs payloads to its default sink {LOGGER_DEFAULT_URL}",
                    Capability.PAYLOAD_LOGGING.value,
                    blocking=False,
                )
            )
    return out


# ---------------------------------------------------------------------------------------
# Assessment
# ---------------------------------------------------------------------------------------

CapabilitySource = Literal["status", "spec"]


@dataclass(frozen=True)
class DeploymentAssessment:
    """Where one ModelDeployment stands, and what the next level needs and costs."""

    namespace: str
    name: str
    level: int
    """spec.maturity.level."""
    level_name: str
    capabilities: tuple[str, ...]
    """Capabilities on: status.capabilities, or the ladder's answer for the spec."""
    capabilities_source: CapabilitySource
    phase: str | None
    """status.phase; None before the operator wrote status."""
    ready: str | None
    """Status of the Ready condition (True, False, Unknown); None when absent."""
    model_kind: str | None = None
    version: str | None = None
    next_level: int | None = None
    """None at the top of the ladder (or when the spec does not parse)."""
    next_level_name: str | None = None
    gaps: tuple[Need, ...] = ()
    """What the current level lacks."""
    next_needs: tuple[Need, ...] = ()
    """What the next level lacks (including gaps that carry over)."""
    costs: tuple[Cost, ...] = ()
    """Cost of each capability on now or coming with the next level."""
    notes: tuple[str, ...] = ()
    """Anything else worth knowing (stale status, refused capabilities)."""
    error: str | None = None
    """Why the spec could not be read, when it could not."""

    @property
    def ready_to_climb(self) -> bool:
        """Whether raising the level by one would leave nothing blocking."""
        return (
            self.error is None
            and self.next_level is not None
            and not any(n.blocking for n in self.next_needs)
        )

    @property
    def blockers(self) -> tuple[Need, ...]:
        """Blocking needs of the next level."""
        return tuple(n for n in self.next_needs if n.blocking)

    @property
    def next_costs(self) -> tuple[Cost, ...]:
        """Costs of the capabilities the next level switches on."""
        return tuple(c for c in self.costs if not c.active)


@dataclass(frozen=True)
class NamespaceSummary:
    """Counts for one namespace."""

    namespace: str
    total: int
    per_level: tuple[int, ...]
    """Deployments at level 0, 1, ... 4."""
    ready_to_climb: int
    at_top: int
    not_ready: int
    """Deployments whose Ready condition is not True (or has not been reported)."""
    invalid: int = 0


@dataclass(frozen=True)
class Assessment:
    """The whole report."""

    deployments: tuple[DeploymentAssessment, ...]
    namespaces: tuple[NamespaceSummary, ...]
    inventory: ClusterInventory
    default_prometheus_url: str | None = None
    scope: str | None = None
    """The namespace assessed; None for all namespaces."""
    components: tuple[tuple[str, bool], ...] = field(default=())
    """Each known component and whether it is installed."""


def _ready_status(md: ModelDeployment) -> str | None:
    for cond in md.status.conditions:
        if cond.type == "Ready":
            return cond.status
    return None


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


def assess_one(
    body: Mapping[str, Any],
    inventory: ClusterInventory,
    default_prometheus_url: str | None = None,
) -> DeploymentAssessment:
    """The assessment of one ModelDeployment body."""
    meta = body.get("metadata") or {}
    try:
        md = ModelDeployment.from_body(body)
    except (ValidationError, KeyError, ValueError) as error:
        raw_level = ((body.get("spec") or {}).get("maturity") or {}).get("level", 0)
        level = raw_level if isinstance(raw_level, int) and 0 <= raw_level <= MAX_LEVEL else 0
        return DeploymentAssessment(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            level=level,
            level_name=LEVEL_NAMES.get(level, "?"),
            capabilities=(),
            capabilities_source="spec",
            phase=(body.get("status") or {}).get("phase"),
            ready=None,
            error=describe_error(error),
        )
    spec = md.spec
    level = spec.maturity.level
    ladder: LadderResult = capabilities(level, spec.maturity.overrides)
    source: CapabilitySource = "status" if md.status.capabilities else "spec"
    caps = tuple(md.status.capabilities) if md.status.capabilities else tuple(ladder.ordered())
    notes = list(ladder.refused)
    if md.status.level is not None and md.status.level != level:
        notes.append(
            f"the operator still reports level {md.status.level}; level {level} is not in force yet"
        )
    elif (
        md.status.observed_generation is not None and md.status.observed_generation < md.generation
    ):
        notes.append(
            f"status is from generation {md.status.observed_generation}, spec is at {md.generation}"
        )
    ready = _ready_status(md)
    if ready == "False":
        notes.append(
            f"not Ready (phase {md.status.phase or 'unknown'}): let it serve before climbing"
        )
    gaps = needs_at(spec, level, inventory, default_prometheus_url)
    next_level = level + 1 if level < MAX_LEVEL else None
    next_needs = (
        needs_at(spec, next_level, inventory, default_prometheus_url)
        if next_level is not None
        else []
    )
    active = ladder.capabilities
    upcoming = (
        capabilities(next_level, spec.maturity.overrides).capabilities if next_level else active
    )
    costs = estimate_costs(md, [c for c in Capability if c in active | upcoming], active)
    return DeploymentAssessment(
        namespace=md.namespace,
        name=md.name,
        level=level,
        level_name=LEVEL_NAMES[level],
        capabilities=caps,
        capabilities_source=source,
        phase=md.status.phase,
        ready=ready,
        model_kind=spec.model.kind,
        version=spec.model.version,
        next_level=next_level,
        next_level_name=LEVEL_NAMES[next_level] if next_level is not None else None,
        gaps=tuple(gaps),
        next_needs=tuple(next_needs),
        costs=tuple(costs),
        notes=tuple(notes),
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
) -> Assessment:
    """The maturity report for `bodies` (ModelDeployments) in a cluster with `inventory`."""
    deployments = sorted(
        (assess_one(b, inventory, default_prometheus_url) for b in bodies),
        key=lambda d: (d.namespace, d.name),
    )
    return Assessment(
        deployments=tuple(deployments),
        namespaces=tuple(summarize(deployments)),
        inventory=inventory,
        default_prometheus_url=default_prometheus_url,
        scope=scope,
        components=tuple((c.name, inventory.has(c)) for c in COMPONENTS),
    )
