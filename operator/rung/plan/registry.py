"""The capability registry: one entry per capability, in ladder order (pure).

Each entry says at which level the capability comes, which cluster add-ons it works
through (the tools of its level), which responsibilities it brings (the people of its
level: who must act on what it produces, held in spec.owners), what it needs from the
spec and the cluster, and what it costs; `rung assess` reads nothing else. Adding a
capability is one entry here plus its planner.

Responsibilities per level are Rung's own mapping, stated here once:

| level | capability | responsibility | required |
|---|---|---|---|
| 1 | monitoring | on-call (`spec.owners.onCall`): answers the SLO alerts | no |
| 2 | canary | release owner (`releaseOwner`): approves, pauses or aborts canaries | yes |
| 3 | retraining | pipeline owner (`pipelineOwner`): owns the pipeline and its data | no |
| 4 | governance | risk reviewer (`riskReviewer`): reviews risk, approves promotions | yes |

(The responsibilities themselves are defined in `rung.api.owners`, because the CRD's
CEL rules that require them are generated from there.)

The cost model is an estimate for planning, not a measurement: its constants are
named below, each with where its number comes from.
"""

from __future__ import annotations

from rung.api._base import parse_duration
from rung.api.kinds import (
    BROKER,
    HTTP_ROUTE,
    INFERENCE_SERVICE,
    LLM_INFERENCE_SERVICE,
    POD_MONITOR,
    PROMETHEUS_RULE,
    SCHEDULED_WORKFLOW,
    WORKFLOW_TEMPLATE,
    Kind,
)
from rung.api.owners import ON_CALL, PIPELINE_OWNER, RELEASE_OWNER, RISK_REVIEWER
from rung.api.resource import ModelDeployment
from rung.api.spec import MAX_LEVEL, Governance, ModelDeploymentSpec
from rung.ladder import Capability
from rung.plan.capability import CapabilityEntry, Cluster, Component, Cost, Need
from rung.plan.explainability import LOGGER_DEFAULT_MODE, LOGGER_DEFAULT_URL, explainer_type
from rung.plan.monitoring import SCRAPE_INTERVAL
from rung.plan.promql import indicators
from rung.plan.sizing import (
    TIMES,
    TO,
    Resources,
    job_requests,
    predictor_requests,
    rate_text,
    replicas_text,
    requests_text,
)

KSERVE = Component("KServe", (INFERENCE_SERVICE,), "model serving")
KSERVE_LLM = Component(
    "KServe LLMInferenceService",
    (LLM_INFERENCE_SERVICE,),
    "LLM serving (kind llm): vLLM, route-group canaries",
)
PROMETHEUS_OPERATOR = Component(
    "Prometheus Operator", (POD_MONITOR, PROMETHEUS_RULE), "scraping and SLO alerts"
)
GATEWAY_API = Component(
    "Gateway API", (HTTP_ROUTE,), "traffic splitting for the gateway-api router"
)
ARGO_WORKFLOWS = Component("Argo Workflows", (WORKFLOW_TEMPLATE,), "pipeline engine")
KUBEFLOW_PIPELINES = Component("Kubeflow Pipelines", (SCHEDULED_WORKFLOW,), "pipeline engine")
KNATIVE_EVENTING = Component(
    "Knative Eventing", (BROKER,), "audit sink behind KServe's default-broker"
)

SERIES_PER_REPLICA = {"predictive": 60, "llm": 400}
"""Time series one model-server replica exposes on /metrics (estimate). KServe's model
server: four per-stage latency histograms (`request_predict_seconds`, ...) plus process
metrics, ~60. vLLM for `llm`: a dozen token and latency histograms, ~400."""
SECONDS_PER_DAY = 86_400.0

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
LOGGER_EVENTS_PER_INFERENCE = {"all": 2, "request": 1, "response": 1}
"""CloudEvents the logger sidecar POSTs to the sink per inference, by logging mode: KServe's
logger sends the request and the response as separate events."""


# --- serving (level 0) -------------------------------------------------------------------


def serving_needs(spec: ModelDeploymentSpec, cluster: Cluster) -> list[Need]:
    """KServe, which serves the model: its LLMInferenceService for an LLM (and the Gateway
    API for an external provider's route)."""
    if spec.model.source == "external":
        why = "the external provider is reached through Rung's HTTPRoute"
        return cluster.missing(GATEWAY_API, Capability.SERVING, why)
    if spec.model.llm_api() == "LLMInferenceService":
        why = "the LLM is served by a KServe LLMInferenceService"
        return cluster.missing(KSERVE_LLM, Capability.SERVING, why)
    why = "the model is served by a KServe InferenceService"
    return cluster.missing(KSERVE, Capability.SERVING, why)


def serving_cost(md: ModelDeployment) -> Cost:
    """minReplicas to maxReplicas predictor replicas."""
    low, high = md.spec.serving.min_replicas, md.spec.serving.max_replicas
    per_replica, source = predictor_requests(md.spec)
    return Cost(
        when="always",
        summary=f"{replicas_text(low, high)} {TIMES} {requests_text(per_replica, source)}",
        per_unit=per_replica,
        units_min=low,
        units_max=high,
        requests_source=source,
    )


# --- monitoring (level 1) ----------------------------------------------------------------


def monitoring_needs(spec: ModelDeploymentSpec, cluster: Cluster) -> list[Need]:
    """A Prometheus to read (the spec's or the operator's); the Prometheus Operator."""
    out: list[Need] = []
    if not spec.prometheus_url(cluster.default_prometheus_url):
        why = (
            "the SLO snapshot and analysis read Prometheus: set it, or give the"
            " operator a default with --prometheus-url"
        )
        out.append(Need("field", "spec.monitoring.prometheus.url", why, Capability.MONITORING))
    why = (
        "without it the model server is scraped through prometheus.io annotations"
        " and no PrometheusRule SLO alerts are created"
    )
    return out + cluster.missing(PROMETHEUS_OPERATOR, Capability.MONITORING, why, blocking=False)


def monitoring_cost(md: ModelDeployment) -> Cost:
    """Series scraped from every replica, and the operator's SLO queries."""
    spec = md.spec
    low, high = spec.serving.min_replicas, spec.serving.max_replicas
    series = SERIES_PER_REPLICA[spec.model.kind]
    sps_low, sps_high = (series * n / parse_duration(SCRAPE_INTERVAL) for n in (low, high))
    interval = spec.monitoring_or_default().interval
    queries = len(indicators(spec.model.kind))
    samples = rate_text(sps_high)
    if low != high:
        samples = f"{rate_text(sps_low)}{TO}{samples}"
    return Cost(
        when="always",
        summary=(
            f"~{series} series {TIMES} {replicas_text(low, high)} every {SCRAPE_INTERVAL}"
            f" ≈ {samples} samples/s; {queries} SLO queries every {interval}"
        ),
        samples_per_second_min=sps_low,
        samples_per_second_max=sps_high,
        queries_per_minute=queries * 60.0 / max(parse_duration(interval), 1.0),
    )


# --- canary (level 2) ----------------------------------------------------------------------


def canary_needs(spec: ModelDeploymentSpec, cluster: Cluster) -> list[Need]:
    """Gateway API, when the gateway-api router splits the traffic."""
    if spec.rollout_or_default().router != "gateway-api":
        return []
    why = "rollout.router gateway-api splits traffic with a weighted HTTPRoute"
    return cluster.missing(GATEWAY_API, Capability.CANARY, why)


def canary_cost(md: ModelDeployment) -> Cost:
    """One more copy of the predictor at minReplicas (at least one) during a rollout."""
    per_replica, source = predictor_requests(md.spec)
    extra = max(md.spec.serving.min_replicas, 1)
    total = ""
    if per_replica is not None and extra > 1:
        total = f" (= {per_replica.times(extra).describe()})"
    return Cost(
        when="during rollouts",
        summary=(
            f"+{replicas_text(extra, extra)} {TIMES} {requests_text(per_replica, source)}"
            f"{total} during rollouts"
        ),
        per_unit=per_replica,
        units_min=extra,
        units_max=extra,
        requests_source=source,
    )


# --- retraining (level 3) ------------------------------------------------------------------


def retraining_needs(spec: ModelDeploymentSpec, cluster: Cluster) -> list[Need]:
    """A pipeline (and Argo Workflows for an Argo one); triggers, or only manual runs."""
    retraining = spec.retraining_or_default()
    out: list[Need] = []
    if retraining.pipeline is None:
        why = (
            "what a retraining trigger launches (job, argo-workflow,"
            " kubeflow-pipeline or webhook); required from level 3"
        )
        out.append(Need("field", "spec.retraining.pipeline", why, Capability.RETRAINING))
    elif retraining.pipeline.type == "argo-workflow":
        why = "pipeline type argo-workflow submits a WorkflowTemplate"
        out += cluster.missing(ARGO_WORKFLOWS, Capability.RETRAINING, why)
    if spec.model.data is None:
        why = (
            "the dataset (uri and version or digest) the model was trained on: retraining"
            " records it with every run; required from level 3"
        )
        out.append(Need("field", "spec.model.data", why, Capability.RETRAINING))
    if not retraining.triggers:
        why = "without triggers retraining only starts manually (`rung retrain`)"
        out.append(Need("field", "spec.retraining.triggers", why, Capability.RETRAINING, False))
    return out


def retraining_cost(md: ModelDeployment) -> Cost:
    """At most min(maxRunsPerDay, a day / cooldown) runs a day, with the Job's requests."""
    retraining = md.spec.retraining_or_default()
    cap, cooldown, pipeline = retraining.max_runs_per_day, retraining.cooldown, retraining.pipeline
    runs = min(float(cap), SECONDS_PER_DAY / max(parse_duration(cooldown), 1.0))
    per_run = job_requests(pipeline.job.template) if pipeline and pipeline.job else None
    if per_run is not None:
        each = f"each run requests {per_run.describe()}"
    elif pipeline is None:
        each = "each run uses the pipeline's own resources"
    elif pipeline.type != "job":
        each = f"each run uses the {pipeline.type} pipeline's own resources"
    else:
        each = "each run uses the Job's resources (no requests set)"
    runs_text = f"{runs:g}" if runs == int(runs) else f"{runs:.1f}"
    return Cost(
        when="per run",
        summary=(
            f"at most {runs_text} pipeline run{'s' if runs != 1 else ''} a day"
            f" (cooldown {cooldown}, maxRunsPerDay {cap}); {each}"
        ),
        per_unit=per_run,
        units_max=1 if per_run else 0,
        requests_source="job template" if per_run else None,
        runs_per_day=runs,
    )


# --- governance (level 4, not a switch of its own) -----------------------------------------


def governance_needs(spec: ModelDeploymentSpec, cluster: Cluster) -> list[Need]:
    """Every ownership field (spec.governance), required at level 4."""
    governance = spec.governance or Governance()
    why = "ownership metadata is required at level 4"
    return [
        Need("field", f"spec.governance.{info.alias}", why, "governance")
        for name, info in Governance.model_fields.items()
        if getattr(governance, name) is None
    ]


# --- explainability and payload logging (level 4) ------------------------------------------


def explainability_needs(spec: ModelDeploymentSpec, cluster: Cluster) -> list[Need]:
    """An explainer that fits the model (a custom one needs an image)."""
    explainer = spec.explainer_or_default()
    if explainer.type == "custom" and not explainer.image:
        why = f"a {explainer.type} explainer in {explainer.mode} mode needs an image"
        what = "spec.explainability.explainer.image"
        return [Need("field", what, why, Capability.EXPLAINABILITY)]
    refusal = explainer_type(explainer, spec.model)[1]
    if refusal is None:
        return []
    # e.g. an LLM, or a format ART cannot explain, with no custom explainer
    return [Need("field", "spec.explainability.explainer", refusal, Capability.EXPLAINABILITY)]


def explainability_cost(md: ModelDeployment) -> Cost:
    """One explainer replica, or one sidecar in every predictor replica."""
    explainer = md.spec.explainer_or_default()
    one = Resources(EXPLAINER_CPU_MILLICORES, EXPLAINER_MEMORY_BYTES)
    low, high = md.spec.serving.min_replicas, md.spec.serving.max_replicas
    if explainer.mode == "sidecar":
        summary = f"+1 explainer container in each predictor replica ({replicas_text(low, high)})"
    else:
        low = high = EXPLAINER_REPLICAS
        summary = f"+{replicas_text(low, high, 'explainer replica')}"
    return Cost(
        when="always",
        summary=f"{summary} {TIMES} {one.describe()}",
        per_unit=one,
        units_min=low,
        units_max=high,
        requests_source="rung default",
    )


def payload_logging_needs(spec: ModelDeploymentSpec, cluster: Cluster) -> list[Need]:
    """An audit sink; without one, KServe's default sink."""
    if spec.explainability and spec.explainability.payload_logging:
        return []
    why = f"without it KServe logs payloads to its default sink {LOGGER_DEFAULT_URL}"
    what = "spec.explainability.payloadLogging.url"
    return [Need("field", what, why, Capability.PAYLOAD_LOGGING, blocking=False)]


def payload_logging_cost(md: ModelDeployment) -> Cost:
    """KServe's logger sidecar in every predictor replica, and events to the sink."""
    sink = md.spec.explainability.payload_logging if md.spec.explainability else None
    mode = sink.mode if sink else LOGGER_DEFAULT_MODE
    events = LOGGER_EVENTS_PER_INFERENCE[mode]
    one = Resources(LOGGER_CPU_MILLICORES, LOGGER_MEMORY_BYTES)
    request_rate = md.status.slo.request_rate if md.status.slo else None
    eps = request_rate * events if request_rate is not None else None
    summary = (
        f"+1 logger sidecar per predictor replica {TIMES} {one.describe()};"
        f" {events} event{'s' if events > 1 else ''} per inference"
        f" to {sink.url if sink else LOGGER_DEFAULT_URL} (mode {mode})"
    )
    if eps is not None and request_rate is not None:
        summary += f" ≈ {rate_text(eps)} events/s at {rate_text(request_rate)} req/s"
    return Cost(
        when="per inference",
        summary=summary,
        per_unit=one,
        units_min=md.spec.serving.min_replicas,
        units_max=md.spec.serving.max_replicas,
        requests_source="kserve default",
        events_per_inference=events,
        events_per_second=eps,
    )


# --- the registry ---------------------------------------------------------------------------

REGISTRY: tuple[CapabilityEntry, ...] = (
    CapabilityEntry.of(Capability.SERVING, (KSERVE, KSERVE_LLM), serving_needs, serving_cost),
    CapabilityEntry.of(
        Capability.MONITORING,
        (PROMETHEUS_OPERATOR,),
        monitoring_needs,
        monitoring_cost,
        responsibilities=(ON_CALL,),
    ),
    CapabilityEntry.of(
        Capability.CANARY,
        (GATEWAY_API,),
        canary_needs,
        canary_cost,
        responsibilities=(RELEASE_OWNER,),
    ),
    CapabilityEntry.of(
        Capability.RETRAINING,
        (ARGO_WORKFLOWS, KUBEFLOW_PIPELINES),
        retraining_needs,
        retraining_cost,
        responsibilities=(PIPELINE_OWNER,),
    ),
    CapabilityEntry(
        "governance", MAX_LEVEL, needs=governance_needs, responsibilities=(RISK_REVIEWER,)
    ),
    CapabilityEntry.of(Capability.EXPLAINABILITY, (), explainability_needs, explainability_cost),
    CapabilityEntry.of(
        Capability.PAYLOAD_LOGGING,
        (KNATIVE_EVENTING,),
        payload_logging_needs,
        payload_logging_cost,
    ),
    CapabilityEntry.of(Capability.APPROVAL_GATE),
)
"""Every capability `rung assess` knows, in the order of its needs and costs."""


def components_of(registry: tuple[CapabilityEntry, ...]) -> tuple[Component, ...]:
    """The cluster add-ons of `registry`'s capabilities, each once, in registry order."""
    return tuple(dict.fromkeys(c for entry in registry for c in entry.components))


def kinds_of(components: tuple[Component, ...]) -> tuple[Kind, ...]:
    """The CRDs of `components`, each once: what API discovery must ask about."""
    return tuple(dict.fromkeys(kind for c in components for kind in c.crds))


COMPONENTS = components_of(REGISTRY)
COMPONENT_KINDS = kinds_of(COMPONENTS)
"""Every CRD the assessment asks about; the CLI discovers exactly these."""
