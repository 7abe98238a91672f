"""The `ModelDeployment` spec: the single source of truth for the CRD schema.

Every field's docstring becomes its description in the CRD, so `kubectl explain
modeldeployment.spec...` reads from here. CEL rules that span fields live on the
model that holds them, with messages that name the field at fault.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema, model_validator

from rung.api._base import ApiModel, Duration, Quantity, cel, with_rules
from rung.api.owners import RESPONSIBILITIES, Owners, Responsibility

MAX_LEVEL = 4
LLM_ROLLOUT_INTERVAL = "5m"
"""An LLM's analysis interval when spec.rollout is unset."""
LLM_PROGRESS_DEADLINE = "30m"
"""An LLM's progress deadline when spec.rollout is unset."""

ModelKind = Literal["predictive", "llm"]
ModelOrigin = Literal["self-hosted", "external"]
LlmApi = Literal["LLMInferenceService", "InferenceService"]
RouterName = Literal["kserve", "gateway-api"]
LauncherName = Literal["job", "argo-workflow", "kubeflow-pipeline", "webhook"]
TriggerType = Literal["drift", "decay", "schedule", "manual"]
NoDataPolicy = Literal["hold", "fail", "pass"]
GateName = Literal["none", "manual"]

Name = Annotated[str, Field(min_length=1, max_length=253)]
Url = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^https?://")]

TEMPLATE_VARIABLES = ("namespace", "name", "target", "stable", "canary", "interval")
"""The variables a query template may use (`{{ canary }}` ...); rung.plan.promql renders them."""
_BRACES = r"\\{?(\\}\\{)*\\}?"
"""A run of braces that never repeats one: `{`, `}`, `{}`, `}{` ... (PromQL's own)."""
TEMPLATE_RE = (
    r"^([^{}]|"
    + _BRACES
    + r"[^{}]|"
    + _BRACES
    + r"\\{\\{\\s*("
    + "|".join(TEMPLATE_VARIABLES)
    + r")\\s*\\}\\})*"
    + _BRACES
    + "$"
)
"""A query whose every `{{` and `}}` belongs to a placeholder of a known variable (RE2, as
the API server's CEL `matches` reads it from a single-quoted string; `template_regex()`
is the same for Python)."""


def template_regex() -> str:
    """TEMPLATE_RE as a Python regular expression."""
    return TEMPLATE_RE.replace("\\\\", "\\")


PromQL = Annotated[
    str,
    Field(
        min_length=1,
        max_length=4096,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"self.matches('{TEMPLATE_RE}')",
                    "unknown template variable or unbalanced braces: placeholders are"
                    " {{ namespace }}, {{ name }}, {{ target }}, {{ stable }}, {{ canary }}"
                    " and {{ interval }}",
                ),
            ]
        },
    ),
]


class MaturityOverrides(ApiModel):
    """Switch single capabilities on above, or off below, their level."""

    monitoring: bool | None = None
    """Metrics scraping, SLO alert rules and the SLO snapshot in status (level 1)."""
    canary: bool | None = None
    """Canary rollouts gated by analysis (level 2). Needs monitoring."""
    retraining: bool | None = None
    """Retraining triggers (level 3). Needs monitoring."""
    explainability: bool | None = None
    """An explainer next to the predictor (level 4)."""
    payload_logging: bool | None = None
    """Request/response logging to the audit sink (level 4)."""
    approval_gate: bool | None = None
    """A manual approval before every promotion (level 4 default)."""


class Maturity(ApiModel):
    """Where the deployment stands on the MLOps maturity ladder."""

    model_config = with_rules(
        cel(
            "(has(self.overrides) && has(self.overrides.monitoring)"
            " ? self.overrides.monitoring : self.level >= 1)"
            " || ((has(self.overrides) && has(self.overrides.canary)"
            " ? !self.overrides.canary : self.level < 2)"
            " && (has(self.overrides) && has(self.overrides.retraining)"
            " ? !self.overrides.retraining : self.level < 3))",
            "canary and retraining need monitoring: set overrides.monitoring to true"
            " or switch them off",
            field_path=".overrides.monitoring",
        )
    )

    level: Annotated[int, Field(ge=0, le=MAX_LEVEL)] = 0
    """0 Manual, 1 Monitored, 2 Progressive, 3 Continuous training, 4 Governed."""
    overrides: MaturityOverrides | None = None
    """Capabilities switched on or off regardless of the level."""


class ResourceRequirements(ApiModel):
    """Compute resources of the model server (as in a Pod's container)."""

    requests: dict[str, Quantity] | None = None
    """Minimum resources, e.g. `{cpu: 500m, memory: 1Gi}`."""
    limits: dict[str, Quantity] | None = None
    """Maximum resources, e.g. `{memory: 2Gi, nvidia.com/gpu: 1}`."""


class TrainingData(ApiModel):
    """The data a model version was trained on: its lineage."""

    model_config = with_rules(
        cel(
            "has(self.version) || has(self.digest)",
            "spec.model.data needs version or digest: which state of the dataset trained"
            " this model",
            field_path=".version",
            reason="FieldValueRequired",
        )
    )

    uri: Annotated[str, Field(min_length=1, max_length=2048)]
    """Where the dataset lives, e.g. `s3://datasets/fraud`, a lakeFS or DVC URI, or a
    feature-store table."""
    version: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """The dataset's version: a tag, snapshot id, lakeFS commit or DVC revision."""
    digest: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    """A content digest of the dataset, e.g. `sha256:4f1c...`."""
    training_run: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """The retraining run that trained this model on this data (`<md>-retrain-<n>`,
    `$RUNG_RUN`): set by the pipeline when it hands the model back, so that
    status.retraining.runs records what the run produced."""

    def describe(self) -> str:
        """`s3://datasets/fraud@2025-03-01` (or `...@sha256:...`)."""
        return f"{self.uri}@{self.version or self.digest}"


class LoraAdapter(ApiModel):
    """One LoRA adapter attached to the base model."""

    name: Annotated[
        str,
        Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$"),
    ]
    """The adapter's model name, as requests name it (`model` field)."""
    uri: Annotated[str, Field(min_length=1, max_length=2048)]
    """Where the adapter lives (`hf://`, `s3://`, `pvc://`)."""


class Lora(ApiModel):
    """LoRA adapters (LLMInferenceService `spec.model.lora`)."""

    adapters: Annotated[list[LoraAdapter], Field(min_length=1, max_length=32)]
    """The adapters to load next to the base model."""
    max_rank: Annotated[int, Field(ge=1, le=1024)] | None = None
    """Highest adapter rank the runtime supports (vLLM `--max-lora-rank`)."""


class Parallelism(ApiModel):
    """How the model is split over accelerators (LLMInferenceService `spec.parallelism`)."""

    model_config = with_rules(
        cel(
            "!has(self.data) || has(self.dataLocal)",
            "parallelism.data needs dataLocal: how many of the data-parallel ranks run on"
            " each node (KServe refuses data without it)",
            field_path=".dataLocal",
            reason="FieldValueRequired",
        )
    )

    tensor: Annotated[int, Field(ge=1, le=1024)] | None = None
    """Tensor parallelism: GPUs one replica's layers are split over."""
    pipeline: Annotated[int, Field(ge=1, le=1024)] | None = None
    """Pipeline parallelism: stages the layers are split into."""
    data: Annotated[int, Field(ge=1, le=1024)] | None = None
    """Data parallelism: model copies per replica (needs dataLocal)."""
    data_local: Annotated[int, Field(ge=1, le=1024)] | None = None
    """Data-parallel ranks on each node (KServe's `dataLocal`; required with data)."""


class LlmServing(ApiModel):
    """How an LLM (`kind: llm`) is served."""

    api: LlmApi = "LLMInferenceService"
    """`LLMInferenceService` (KServe's LLM API, serving.kserve.io/v1alpha2: vLLM, a route
    group for canaries, the optional inference scheduler) or `InferenceService` (a plain
    InferenceService with the huggingface runtime, for clusters without it)."""
    model_name: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """The model name requests use (`model` field), the same in both slots; the
    ModelDeployment's name when unset."""
    lora: Lora | None = None
    """LoRA adapters loaded next to the base model (LLMInferenceService only)."""
    parallelism: Parallelism | None = None
    """Tensor, pipeline and data parallelism (LLMInferenceService only)."""
    scheduler: bool = False
    """Route through KServe's inference scheduler (an InferencePool and its endpoint
    picker; needs the Gateway API Inference Extension). LLMInferenceService only."""


class SecretKeyRef(ApiModel):
    """A key of a Secret in the ModelDeployment's namespace."""

    name: Name
    """Name of the Secret."""
    key: Annotated[str, Field(min_length=1, max_length=253)] = "apiKey"
    """Key holding the value."""


class ExternalProvider(ApiModel):
    """An LLM served by an external OpenAI-compatible API (`source: external`)."""

    endpoint: Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^https?://[^/:]+")]
    """Base URL of the OpenAI-compatible API, e.g. `https://api.openai.com/v1`. Requests
    reach it through the Gateway (an ExternalName Service backend of the HTTPRoute)."""
    model: Annotated[str, Field(min_length=1, max_length=253)]
    """The provider's model name, e.g. `gpt-4o-mini`."""
    credentials_secret_ref: SecretKeyRef
    """The Secret holding the provider's API key. Rung passes only the reference on (to
    the Gateway's credential injection); it never reads the value, and the value never
    appears in status, Events or logs."""

    def location(self) -> str:
        """The endpoint and model as one string, e.g. `https://api.openai.com/v1#gpt-4o`."""
        return f"{self.endpoint}#{self.model}"


class ModelSource(ApiModel):
    """The model to serve."""

    model_config = with_rules(
        cel(
            "self.source != 'external' || (self.kind == 'llm' && has(self.external))",
            "source external needs kind llm and external (endpoint, model, credentialsSecretRef)",
            field_path=".external",
            reason="FieldValueRequired",
        ),
        cel(
            "self.source == 'external' || has(self.storageUri)",
            "storageUri is required unless source is external",
            field_path=".storageUri",
            reason="FieldValueRequired",
        ),
        cel(
            "!has(self.external) || self.source == 'external'",
            "external is set but source is not external: set source: external",
            field_path=".source",
        ),
        cel(
            "!has(self.llm) || self.kind == 'llm'",
            "llm settings apply to kind llm only",
            field_path=".llm",
        ),
        cel(
            "self.source != 'external' || !has(self.llm) || self.llm.api == 'LLMInferenceService'",
            "source external is routed next to LLMInferenceServices: llm.api must be"
            " LLMInferenceService",
            field_path=".llm.api",
        ),
        cel(
            "!has(self.llm) || self.llm.api == 'LLMInferenceService'"
            " || (!has(self.llm.lora) && !has(self.llm.parallelism) && !self.llm.scheduler)",
            "lora, parallelism and scheduler need llm.api LLMInferenceService",
            field_path=".llm.api",
        ),
    )

    kind: ModelKind = "predictive"
    """`predictive` (classic ML) or `llm`: picks default SLOs, analysis metrics and costs.
    An LLM is served by a KServe LLMInferenceService unless llm.api says otherwise."""
    source: ModelOrigin = "self-hosted"
    """`self-hosted` (served in the cluster from storageUri) or `external` (an
    OpenAI-compatible provider, kind llm only: see external)."""
    format: Annotated[str, Field(min_length=1, max_length=63)]
    """KServe model format name, e.g. sklearn, xgboost, pytorch, huggingface (an LLM:
    huggingface; an external provider: anything, e.g. openai)."""
    runtime: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """KServe ServingRuntime to use; KServe picks one for the format when unset."""
    storage_uri: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    """Where the model lives, e.g. `s3://models/fraud/v7`, `pvc://models/fraud` or
    `hf://meta-llama/Llama-3.1-8B-Instruct`. Required unless source is external."""
    llm: LlmServing | None = None
    """kind llm: how it is served (LLMInferenceService or InferenceService, LoRA,
    parallelism, scheduler)."""
    external: ExternalProvider | None = None
    """source external: the provider's endpoint, model and credentials Secret."""
    version: Annotated[
        str,
        Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$"),
    ]
    """Version label of this model (a Kubernetes label value: letters, digits, `.`, `_`,
    `-`), shown in status and on the objects serving it."""
    resources: ResourceRequirements | None = None
    """Requests and limits of the model server container."""
    data: TrainingData | None = None
    """The data this model version was trained on (dataset URI and version or digest).
    It travels with the version: in status.stable, canary and rejected, in history
    entries and in the decision CloudEvents. Required from level 3."""

    @model_validator(mode="after")
    def _source_complete(self) -> ModelSource:
        """The CEL rules on storageUri and external, for models built in Python."""
        if self.source == "external" and (self.external is None or self.kind != "llm"):
            raise ValueError("source external needs kind llm and external")
        if self.source == "self-hosted" and self.storage_uri is None:
            raise ValueError("storageUri is required unless source is external")
        return self

    def location(self) -> str:
        """Where the model comes from: storageUri, or the external endpoint and model."""
        if self.source == "external" and self.external is not None:
            return self.external.location()
        return self.storage_uri or ""

    def llm_api(self) -> LlmApi | None:
        """The KServe API serving an LLM (None for a predictive model)."""
        if self.kind != "llm":
            return None
        return self.llm.api if self.llm is not None else "LLMInferenceService"


class Serving(ApiModel):
    """How KServe serves the model."""

    model_config = with_rules(
        cel(
            "self.maxReplicas >= self.minReplicas",
            "maxReplicas must be greater than or equal to minReplicas",
            field_path=".maxReplicas",
        )
    )

    deployment_mode: Literal["RawDeployment", "Serverless"] = "RawDeployment"
    """KServe deployment mode: plain Deployments, or Knative (scale to zero)."""
    min_replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    """Fewest model server replicas (0 allows scale to zero in Serverless mode)."""
    max_replicas: Annotated[int, Field(ge=1, le=1000)] = 1
    """Most model server replicas."""


class PrometheusEndpoint(ApiModel):
    """A Prometheus server the operator queries."""

    url: Url | None = None
    """Base URL; the operator's `--prometheus-url` default is used when unset."""


class Slo(ApiModel):
    """Service level objectives; unset ones take defaults that fit `model.kind`."""

    max_error_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    """Highest acceptable share of failed requests (default 0.01)."""
    latency_p95_ms: Annotated[int, Field(ge=1, le=3_600_000)] | None = None
    """Highest acceptable 95th percentile latency in ms (default 250; LLM: 10000)."""
    time_to_first_token_p95_ms: Annotated[int, Field(ge=1, le=3_600_000)] | None = None
    """LLM only: highest acceptable p95 time to first token in ms (default 1000)."""
    min_tokens_per_second: Annotated[float, Field(ge=0)] | None = None
    """LLM only: lowest acceptable generation throughput per request (default 10)."""


class Monitoring(ApiModel):
    """Level 1: how the model is observed."""

    prometheus: PrometheusEndpoint | None = None
    """The Prometheus server holding the model's metrics."""
    slo: Slo | None = None
    """Objectives turned into alert rules and reported in status."""
    interval: Duration = "30s"
    """How often the SLO snapshot in status is refreshed."""


class AnalysisMetric(ApiModel):
    """One check of the canary, a templated PromQL query and its thresholds.

    Templates: `{{ namespace }}`, `{{ name }}`, `{{ stable }}`, `{{ canary }}` (the
    InferenceService or revision names), `{{ interval }}`, and `{{ target }}`, which
    is the canary's name when the query runs for the canary and stable's name when it
    runs for stable (used by relative thresholds).
    """

    model_config = with_rules(
        cel(
            "has(self.max) || has(self.min) || has(self.maxIncreaseOverStable)",
            "set at least one of max, min or maxIncreaseOverStable",
        )
    )

    name: Annotated[str, Field(min_length=1, max_length=63)]
    """Name shown in status and Events, e.g. `error-rate`."""
    query: PromQL
    """PromQL template returning one number."""
    max: float | None = None
    """The check fails when the canary's value is above this."""
    min: float | None = None
    """The check fails when the canary's value is below this."""
    max_increase_over_stable: Annotated[float, Field(ge=0)] | None = None
    """Relative threshold: fails when canary minus stable exceeds this (same query)."""


class Analysis(ApiModel):
    """How each canary step is judged."""

    failure_limit: Annotated[int, Field(ge=1, le=100)] = 2
    """Failed checks tolerated before the canary is rolled back."""
    metrics: Annotated[list[AnalysisMetric], Field(max_length=20)] | None = None
    """Checks to run; defaults for the model kind when unset (error rate, latency)."""
    on_no_data: NoDataPolicy = "hold"
    """When a query returns a well-formed empty answer: hold the step, count a failure,
    or pass. An answer that is not one finite number (NaN, +Inf or -Inf, several series,
    a matrix or string) is never "no data": it is a failed check."""
    consecutive_error_limit: Annotated[int, Field(ge=0, le=100)] = 4
    """Analysis runs in a row that may error (Prometheus unreachable, timed out, failing)
    before the canary is rolled back: it is rolled back when the errors in a row exceed
    this (as Argo Rollouts' consecutiveErrorLimit). An errored run never advances a step."""


DEFAULT_SHADOW_RUNS = 3
"""Passed analysis runs that complete a shadow stage setting neither duration nor
analysisRuns."""


class Shadow(ApiModel):
    """A shadow stage before the canary's first step: the canary receives a mirrored copy
    of live requests (its responses are discarded) while every user request is still
    answered by stable. Judged on the canary's own signals with absolute thresholds; a
    failed shadow stage rejects the version before it has served a single user request.
    Needs `router: gateway-api` (an HTTPRoute RequestMirror filter)."""

    model_config = with_rules(
        cel(
            "!(has(self.duration) && has(self.analysisRuns))",
            "set one of spec.rollout.shadow.duration or analysisRuns, not both",
            field_path=".analysisRuns",
        ),
        cel(
            "!has(self.metrics) || self.metrics.all(m, !has(m.maxIncreaseOverStable)"
            " && (has(m.max) || has(m.min)))",
            "spec.rollout.shadow.metrics take absolute thresholds (max, min), not"
            " maxIncreaseOverStable: the shadow stage judges the canary on its own signals",
            field_path=".metrics",
        ),
    )

    duration: Duration | None = None
    """How long the canary is shadowed, from when it is ready (e.g. `5m`); it passes at
    the first passed analysis run after this. Unset: `analysisRuns` decides."""
    analysis_runs: Annotated[int, Field(ge=1, le=100)] | None = None
    """Passed analysis runs (one per spec.rollout.interval) that complete the stage;
    3 when neither this nor `duration` is set."""
    mirror_percent: Annotated[int, Field(ge=1, le=100)] = 100
    """Share of live requests mirrored to the canary, percent (the HTTPRoute
    RequestMirror filter's `percent`)."""
    metrics: Annotated[list[AnalysisMetric], Field(max_length=20)] | None = None
    """Checks of the shadow stage, absolute thresholds only; when unset, the rollout's
    analysis metrics with their absolute thresholds (a metric with only
    maxIncreaseOverStable is skipped in the shadow stage)."""


class GatewayRef(ApiModel):
    """A Gateway API parent reference."""

    name: Name
    """Name of the Gateway."""
    namespace: Name | None = None
    """Namespace of the Gateway; the ModelDeployment's when unset."""


class Rollout(ApiModel):
    """Level 2: how a model change reaches all traffic."""

    model_config = with_rules(
        cel(
            "duration(self.progressDeadline) > duration(self.interval)",
            "progressDeadline must be longer than interval",
            field_path=".progressDeadline",
        ),
        cel(
            "self.router != 'gateway-api' || has(self.gateway)",
            "router gateway-api needs gateway: the Gateway the HTTPRoute attaches to",
            field_path=".gateway",
            reason="FieldValueRequired",
        ),
        cel(
            "!has(self.shadow) || self.router == 'gateway-api'",
            "spec.rollout.shadow needs router gateway-api: the kserve router cannot mirror"
            " requests to the canary (a canary at 0% there receives no traffic to analyse)",
            field_path=".shadow",
        ),
    )

    router: RouterName = "kserve"
    """`kserve` (canaryTrafficPercent on one InferenceService) or `gateway-api`
    (stable and canary InferenceServices behind a weighted HTTPRoute)."""
    steps: Annotated[
        list[Annotated[int, Field(ge=1, le=100)]],
        Field(
            min_length=1,
            max_length=20,
            json_schema_extra={
                "x-kubernetes-validations": [
                    cel(
                        "self.all(w, self.exists_one(x, x == w)) && self.isSorted()",
                        "steps must be strictly increasing canary weights between 1 and 100",
                    )
                ]
            },
        ),
    ] = [10, 25, 50, 100]
    """Canary traffic weights in percent, strictly increasing."""
    interval: Duration = "1m"
    """Time between analysis runs; each step lasts at least one interval."""
    progress_deadline: Duration = "10m"
    """A canary that is not ready within this is rolled back."""
    analysis: Analysis | None = None
    """Checks that gate every step."""
    gate: GateName = "none"
    """`manual` waits before promotion for `rung approve` (annotation
    `rung.dev/approve: <canary version>`)."""
    gateway: GatewayRef | None = None
    """gateway-api router only: the Gateway the HTTPRoute attaches to."""
    shadow: Shadow | None = None
    """A shadow stage before the first step: the canary gets a mirrored copy of live
    requests (responses discarded) and must pass analysis before any user traffic moves
    to it. gateway-api router only."""


class RetrainingTrigger(ApiModel):
    """One reason to retrain."""

    model_config = with_rules(
        cel(
            "self.type != 'drift' || (has(self.query) && has(self.above))",
            "a drift trigger needs query and above",
        ),
        cel(
            "self.type != 'decay' || (has(self.query) && has(self.below))",
            "a decay trigger needs query and below",
        ),
        cel(
            "self.type != 'schedule' || has(self.cron)",
            "a schedule trigger needs cron",
            field_path=".cron",
        ),
    )

    type: TriggerType
    """drift (query above a threshold), decay (query below), schedule (cron), manual."""
    query: PromQL | None = None
    """drift/decay: PromQL returning one number (templates as in analysis)."""
    above: float | None = None
    """drift: fire when the query stays above this."""
    below: float | None = None
    """decay: fire when the query stays below this."""
    for_: Annotated[Duration | None, Field(alias="for")] = None
    """drift/decay: how long the threshold must be crossed before firing."""
    cron: Annotated[str, Field(min_length=9, max_length=128)] | None = None
    """schedule: a five-field cron expression, in UTC."""


def _kept(properties: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    """An object schema that keeps unknown fields but declares `properties` (for CEL)."""
    schema: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if properties:
        schema["properties"] = properties
    return {**schema, **more}


JobSpecTemplate = Annotated[
    dict[str, Any],
    WithJsonSchema(
        _kept(
            {
                "template": _kept(
                    {
                        "spec": _kept(
                            {
                                "containers": {
                                    "type": "array",
                                    "maxItems": 64,
                                    "description": "The pod's containers (at least one).",
                                    "items": _kept(
                                        {
                                            "name": {
                                                "type": "string",
                                                "maxLength": 253,
                                                "description": "Container name.",
                                            },
                                            "image": {
                                                "type": "string",
                                                "maxLength": 4096,
                                                "description": "Container image.",
                                            },
                                        }
                                    ),
                                }
                            },
                            description="The pod spec.",
                        )
                    },
                    description="The pod template of the Job.",
                )
            }
        )
    ),
]
"""A batch/v1 Job spec, kept as given; the pod template's containers are declared so
that admission can check them."""


class JobLauncher(ApiModel):
    """Run retraining as a Kubernetes Job."""

    model_config = with_rules(
        cel(
            "has(self.template.template) && has(self.template.template.spec)"
            " && has(self.template.template.spec.containers)"
            " && size(self.template.template.spec.containers) > 0"
            " && self.template.template.spec.containers.all(c, has(c.name) && has(c.image))",
            "a Job template needs template.spec.containers: at least one container, each"
            " with name and image",
            field_path=".template",
            reason="FieldValueRequired",
        )
    )

    template: JobSpecTemplate
    """A Job spec (`spec` of a batch/v1 Job); RUNG_* environment variables are added."""


class ArgoWorkflowLauncher(ApiModel):
    """Run retraining as an Argo Workflow."""

    workflow_template: Name
    """Name of the WorkflowTemplate to submit."""


class KubeflowPipelineLauncher(ApiModel):
    """Run retraining as a Kubeflow Pipelines run."""

    endpoint: Url
    """Base URL of the KFP API server."""
    pipeline_id: Name
    """The pipeline (or pipeline version) to run."""
    experiment_id: Name | None = None
    """Experiment to file the run under."""


class WebhookLauncher(ApiModel):
    """POST a CloudEvent to a URL that starts retraining."""

    url: Url
    """Where to POST the `dev.rung.retraining.requested` CloudEvent."""


class Pipeline(ApiModel):
    """What a retraining trigger launches; `type` picks the launcher."""

    model_config = with_rules(
        cel("self.type != 'job' || has(self.job)", "type job needs job", field_path=".job"),
        cel(
            "self.type != 'argo-workflow' || has(self.argoWorkflow)",
            "type argo-workflow needs argoWorkflow",
            field_path=".argoWorkflow",
        ),
        cel(
            "self.type != 'kubeflow-pipeline' || has(self.kubeflowPipeline)",
            "type kubeflow-pipeline needs kubeflowPipeline",
            field_path=".kubeflowPipeline",
        ),
        cel(
            "self.type != 'webhook' || has(self.webhook)",
            "type webhook needs webhook",
            field_path=".webhook",
        ),
    )

    type: LauncherName
    """job, argo-workflow, kubeflow-pipeline or webhook."""
    job: JobLauncher | None = None
    """Settings of the job launcher."""
    argo_workflow: ArgoWorkflowLauncher | None = None
    """Settings of the argo-workflow launcher."""
    kubeflow_pipeline: KubeflowPipelineLauncher | None = None
    """Settings of the kubeflow-pipeline launcher."""
    webhook: WebhookLauncher | None = None
    """Settings of the webhook launcher."""


class Retraining(ApiModel):
    """Level 3: when and how the model is retrained."""

    triggers: Annotated[list[RetrainingTrigger], Field(max_length=10)] = []
    """Reasons to retrain; manual (`rung retrain`) always works."""
    cooldown: Duration = "24h"
    """Least time between two runs."""
    max_runs_per_day: Annotated[int, Field(ge=1, le=100)] = 3
    """Cap on runs in any 24 hours."""
    pipeline: Pipeline | None = None
    """What a trigger launches. Required from level 3."""


class Explainer(ApiModel):
    """An explainer for the model's predictions."""

    model_config = with_rules(
        cel(
            "!has(self.type) || self.type != 'custom' || has(self.image)",
            "spec.explainability.explainer.image is required for type custom",
            field_path=".image",
            reason="FieldValueRequired",
        )
    )

    type: Literal["art", "custom"] | None = None
    """`art` (KServe's ART explainer: adversarial robustness of classifiers on numeric
    inputs) or `custom` (your container). When unset, `art` for tabular formats
    (sklearn, xgboost, lightgbm, pmml); other formats and LLMs need `custom`."""
    mode: Literal["component", "sidecar"] = "component"
    """`component`: a KServe explainer component (its own Deployment, calling the
    predictor over its Service). `sidecar`: a container next to the model in every
    predictor pod (and canary predictor), calling the model on localhost:8080; it gets
    `--model_name`, `--predictor_host localhost:8080`, `--http_port 8082` and
    `--grpc_port 8083` and serves explanations on port 8082 of the pod."""
    image: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    """Container image; required for `custom`. For `art` KServe's image is used when
    unset (component: KServe's configured one; sidecar: kserve/art-explainer:v0.20.0)."""
    config: Annotated[dict[str, str], Field(max_length=32)] | None = None
    """Explainer settings passed as `--<key> <value>` arguments, e.g. for art
    `{nb_classes: "2", max_iter: "100"}`."""
    resources: ResourceRequirements | None = None
    """Requests and limits of the explainer container."""


class PayloadLogging(ApiModel):
    """Request/response logging for audit."""

    url: Url
    """The audit sink, an HTTP endpoint accepting CloudEvents: KServe's logger posts
    the model's requests/responses there, and Rung posts each of its decisions as a
    structured `dev.rung.decision.<reason>` CloudEvent (source `rung/<namespace>/<name>`,
    subject the model version)."""
    mode: Literal["all", "request", "response"] = "all"
    """Which payloads KServe logs: `all` (requests and responses), `request` or
    `response`. Rung's decisions are always sent."""


class Explainability(ApiModel):
    """Level 4: explanations and audit."""

    explainer: Explainer | None = None
    """The explainer (switched on by the explainability capability); when unset, a
    default that fits the model format (art for tabular formats)."""
    payload_logging: PayloadLogging | None = None
    """Where requests, responses and decisions are logged (payloadLogging capability);
    when unset, KServe's logger uses its default sink and decisions go nowhere."""


class Governance(ApiModel):
    """Level 4: who answers for the model."""

    owner: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """Team or person accountable for the model."""
    contact: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """How to reach the owner (email, chat channel)."""
    intended_use: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    """What the model is for, and what it must not be used for."""
    risk_class: Literal["minimal", "limited", "high"] | None = None
    """Risk class in the sense of the EU AI Act."""


class SecretRef(ApiModel):
    """A Secret in the ModelDeployment's namespace."""

    name: Name
    """Name of the Secret."""


class GitOps(ApiModel):
    """Opt-in write-back to Git of what the operator decided, so that Git, Argo CD (or
    Flux) and the cluster agree: after a rollback the stable model is committed back into
    the manifest, and a retraining run's model is committed instead of patched into the
    spec. The operator still never writes spec: the sync applies the commit."""

    repository: Url
    """HTTP(S) URL of the Git repository holding the manifest (smart HTTP), e.g.
    `https://git.example.com/platform/models.git`."""
    branch: Annotated[str, Field(min_length=1, max_length=255)] = "main"
    """The branch the sync follows; commits are pushed to it (a conflict is retried on a
    fresh fetch)."""
    path: Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[^/].*\.ya?ml$")]
    """Path of the manifest file in the repository that holds this ModelDeployment
    (`kind: ModelDeployment` with its name; other documents in the file are kept)."""
    credentials_secret_ref: SecretRef | None = None
    """A Secret with `username` and `password` (a password or an access token) for HTTP
    basic authentication; none for a repository that accepts anonymous pushes. Read by
    the operator, never written to status, Events or logs."""
    author: Annotated[str, Field(min_length=3, max_length=256, pattern=r"^[^<>]+ <[^<>]+>$")] = (
        "Rung <rung@users.noreply.rung.dev>"
    )
    """Author and committer of the commits, `Name <email>`."""


def _capability_on(responsibility: Responsibility) -> str:
    """CEL: whether the capability bringing `responsibility` is on (level and override)."""
    capability, level = responsibility.capability, responsibility.level
    by_level = f"self.maturity.level >= {level}"
    if capability not in {info.alias for info in MaturityOverrides.model_fields.values()}:
        return by_level
    override = f"self.maturity.overrides.{capability}"
    return f"(has(self.maturity.overrides) && has({override}) ? {override} : {by_level})"


def _responsibility_rule(responsibility: Responsibility) -> dict[str, str]:
    """A CEL rule requiring spec.owners.<key> when its capability is on."""
    key = responsibility.key
    return cel(
        f"!({_capability_on(responsibility)}) || (has(self.owners) && has(self.owners.{key}))",
        f"{responsibility.field} is required at maturity level {responsibility.level}"
        f" and above: the {responsibility.title} {responsibility.duty}",
        field_path=f".owners.{key}",
        reason="FieldValueRequired",
    )


_REQUIRED_AT_LEVEL = [
    cel(
        "self.maturity.level < 3"
        " || (has(self.maturity.overrides) && has(self.maturity.overrides.retraining)"
        " && !self.maturity.overrides.retraining)"
        " || (has(self.retraining) && has(self.retraining.pipeline))",
        "spec.retraining.pipeline is required at maturity level 3 and above",
        field_path=".retraining.pipeline",
        reason="FieldValueRequired",
    ),
    *[
        cel(
            f"self.maturity.level < 4 || (has(self.governance) && has(self.governance.{f}))",
            f"spec.governance.{f} is required at maturity level 4",
            field_path=f".governance.{f}",
            reason="FieldValueRequired",
        )
        for f in ("owner", "contact", "intendedUse", "riskClass")
    ],
    cel(
        "self.maturity.level < 3 || has(self.model.data)",
        "spec.model.data is required at maturity level 3 and above: the dataset (uri and"
        " version or digest) the model was trained on",
        field_path=".model.data",
        reason="FieldValueRequired",
    ),
    *[_responsibility_rule(r) for r in RESPONSIBILITIES if r.required],
    cel(
        "!has(self.rollout) || self.rollout.router != 'gateway-api'"
        " || self.serving.deploymentMode == 'RawDeployment'",
        "spec.rollout.router gateway-api needs spec.serving.deploymentMode RawDeployment",
        field_path=".rollout.router",
    ),
    cel(
        "self.model.source != 'external' || (has(self.rollout) && has(self.rollout.gateway))",
        "spec.model.source external is reached through a Gateway: set spec.rollout.gateway"
        " (the HTTPRoute to the provider attaches to it)",
        field_path=".rollout.gateway",
        reason="FieldValueRequired",
    ),
]


class ModelDeploymentSpec(ApiModel):
    """Desired state of a ModelDeployment."""

    model_config = with_rules(*_REQUIRED_AT_LEVEL)

    maturity: Maturity = Maturity()
    """Maturity level and capability overrides."""
    model: ModelSource
    """The model to serve."""
    serving: Serving = Serving()
    """Replicas and deployment mode."""
    monitoring: Monitoring | None = None
    """Level 1: Prometheus and SLOs."""
    rollout: Rollout | None = None
    """Level 2: canary steps and analysis."""
    retraining: Retraining | None = None
    """Level 3: retraining triggers and pipeline."""
    explainability: Explainability | None = None
    """Level 4: explainer and payload logging."""
    governance: Governance | None = None
    """Level 4: ownership metadata, required at level 4."""
    owners: Owners | None = None
    """Who holds the responsibilities the capabilities bring: on-call (level 1),
    release owner (level 2, required), pipeline owner (level 3), risk reviewer
    (level 4, required)."""
    gitops: GitOps | None = None
    """Opt-in: commit the operator's decisions (the stable model after a rollback, a
    retraining run's model) to the Git repository the manifest is synced from."""

    def monitoring_or_default(self) -> Monitoring:
        """spec.monitoring, or its defaults when unset (the one place they are stated)."""
        return self.monitoring or Monitoring()

    def rollout_or_default(self) -> Rollout:
        """spec.rollout, or its defaults when unset (the one place they are stated): an
        LLM's are longer (interval 5m, progressDeadline 30m: sparse, bursty traffic and
        weights that take minutes to load). Once spec.rollout is given, the API server
        fills in the CRD's defaults (1m, 10m) for what it leaves out."""
        if self.rollout is not None:
            return self.rollout
        if self.model.kind == "llm":
            return Rollout(interval=LLM_ROLLOUT_INTERVAL, progress_deadline=LLM_PROGRESS_DEADLINE)
        return Rollout()

    def retraining_or_default(self) -> Retraining:
        """spec.retraining, or its defaults when unset (the one place they are stated)."""
        return self.retraining or Retraining()

    def explainer_or_default(self) -> Explainer:
        """spec.explainability.explainer, or its defaults when unset."""
        explainability = self.explainability or Explainability()
        return explainability.explainer or Explainer()

    def prometheus_url(self, default: str | None = None) -> str | None:
        """The Prometheus to query: spec.monitoring.prometheus.url, else `default` (the
        operator's --prometheus-url)."""
        prometheus = self.monitoring_or_default().prometheus
        return (prometheus.url if prometheus else None) or default
