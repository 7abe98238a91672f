"""The `ModelDeployment` status: everything the operator knows lives here, nowhere else."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from rung.api._base import ApiModel
from rung.api.spec import ModelSource, TrainingData

Phase = Literal[
    "Pending",
    "Ready",
    "Progressing",
    "Shadowing",
    "Promoting",
    "RollingBack",
    "RolledBack",
    "Paused",
    "Failed",
]
ConditionStatus = Literal["True", "False", "Unknown"]
HISTORY_LIMIT = 20


class Condition(ApiModel):
    """A standard Kubernetes condition (metav1.Condition)."""

    type: str
    """Ready, Progressing, Degraded, MonitoringReady, ..."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str
    """One CamelCase word saying why."""
    message: str = ""
    """What a human should know."""
    last_transition_time: str
    """When status last changed (RFC 3339)."""
    observed_generation: int | None = None
    """The spec generation this condition was computed from."""


class ModelRef(ApiModel):
    """A model version the operator serves."""

    version: str
    """The model's version label."""
    storage_uri: str
    """Where it is stored."""
    hash: str | None = None
    """Hash of the model fields (format, runtime, uri, version, resources) applied."""
    model: ModelSource | None = None
    """The full model fields, so this version keeps serving while the spec names another."""
    predictor_name: str | None = None
    """kserve router, RawDeployment: the predictor name serving this version."""
    data: TrainingData | None = None
    """The data this version was trained on (spec.model.data when it was applied);
    absent when the spec did not say: lineage unknown."""

    @model_validator(mode="before")
    @classmethod
    def _lineage_from_model(cls, values: Any) -> Any:
        """`data` travels with `model`: taken from model.data when not given."""
        if not isinstance(values, dict) or values.get("data") is not None:
            return values
        model = values.get("model")
        data = model.data if isinstance(model, ModelSource) else None
        if isinstance(model, dict):
            data = model.get("data")
        return {**values, "data": data} if data is not None else values


class ShadowStatus(ApiModel):
    """The canary's shadow stage: mirrored requests, no user traffic."""

    mirror_percent: int = 100
    """Share of live requests mirrored to the canary, percent."""
    started_at: str | None = None
    """When mirroring began (the canary was ready); absent while it is not yet ready."""
    runs_passed: int = 0
    """Analysis runs on mirrored requests passed so far."""
    passed_at: str | None = None
    """When the stage passed and user traffic began to move; absent while shadowing, or
    when the version was rejected in the shadow stage."""


class CanaryStatus(ModelRef):
    """The model being rolled out."""

    weight: int = 0
    """Share of traffic on the canary, percent."""
    step: int = 0
    """Index into spec.rollout.steps of the current step."""
    started_at: str | None = None
    """When the canary started."""
    step_started_at: str | None = None
    """When the current step started."""
    paused_at: str | None = None
    """When `rung pause` stopped this canary where it is (absent: not paused by a user)."""
    paused_by: str | None = None
    """Who asked for the pause."""
    shadow: ShadowStatus | None = None
    """The shadow stage before the first step (spec.rollout.shadow), if there is one."""


class RejectedModel(ModelRef):
    """A model version rolled back (by analysis, a deadline or `rung abort`)."""

    rejected_at: str | None = None
    """When it was rolled back; `rung retry` names this rejection."""


class CheckResult(ApiModel):
    """One analysis metric as last measured."""

    metric: str
    """The analysis metric's name."""
    value: float | None = None
    """The canary's value; absent when the query returned no data."""
    stable_value: float | None = None
    """Stable's value, for relative thresholds."""
    passed: bool | None = None
    """True passed, False failed, absent: no data (held)."""
    message: str = ""
    """What was compared."""


class AnalysisStatus(ApiModel):
    """Progress of the canary analysis."""

    last_run: str | None = None
    """When the checks last ran."""
    failures: int = 0
    """Failed analysis runs so far in this canary."""
    consecutive_errors: int = 0
    """Analysis runs in a row that could not measure (reset by a run that measured)."""
    last_error: str | None = None
    """Why the last errored run could not measure."""
    checks: list[CheckResult] = []
    """The last run's checks."""


class SloSnapshot(ApiModel):
    """Live service level indicators read from Prometheus."""

    measured_at: str
    """When these were read."""
    request_rate: float | None = None
    """Requests per second."""
    error_rate: float | None = None
    """Share of requests that failed, 0..1."""
    latency_p95_ms: float | None = None
    """95th percentile latency in ms."""
    time_to_first_token_p95_ms: float | None = None
    """LLM: p95 time to first token in ms."""
    tokens_per_second: float | None = None
    """LLM: generation throughput."""
    within_slo: bool | None = None
    """Whether every measured indicator is within spec.monitoring.slo."""


class RetrainingRun(ApiModel):
    """One retraining run."""

    name: str
    """The run's name (`<md>-retrain-<n>`: the Job, Workflow, KFP run display name or
    CloudEvent id)."""
    reason: str
    """What triggered it."""
    trigger: str = ""
    """The trigger types that launched it (drift, decay, schedule, manual), comma separated."""
    started_at: str
    """When it was launched."""
    finished_at: str | None = None
    """When it was seen to finish."""
    outcome: Literal["Running", "Succeeded", "Failed"] = "Running"
    """Running, Succeeded or Failed."""
    message: str = ""
    """What the pipeline reported; why it failed, when it did."""
    version: str | None = None
    """The model version serving when it was launched (handed to the pipeline)."""
    storage_uri: str | None = None
    """Where that model is stored (handed to the pipeline)."""
    launcher: str | None = None
    """job, argo-workflow, kubeflow-pipeline or webhook."""
    attempts: int = 1
    """Launches so far; a run not found after launching is launched again, up to 3 times."""
    observed: bool = False
    """Whether the launcher has reported the run since it was launched."""
    data: TrainingData | None = None
    """The data of the model it was launched for (handed to the pipeline as
    RUNG_DATA_URI, RUNG_DATA_VERSION, RUNG_DATA_DIGEST)."""
    result_version: str | None = None
    """The model version the run handed back (spec.model whose data.trainingRun names
    this run)."""
    trained_on: TrainingData | None = None
    """The data the run trained that model on, as it handed it back in spec.model.data."""


class TriggerStatus(ApiModel):
    """Where one entry of spec.retraining.triggers stands."""

    index: int
    """Its position in spec.retraining.triggers."""
    type: str
    """drift, decay or schedule."""
    value: float | None = None
    """drift/decay: the query's last value."""
    since: str | None = None
    """drift/decay: when the threshold was first crossed (for `for`); schedule: the due slot."""
    firing: bool = False
    """Whether it asks for a run now."""
    blocked_by: str | None = None
    """Why it cannot launch now (active run, cooldown, daily cap)."""
    run: str | None = None
    """The run this firing episode launched."""
    error: str | None = None
    """drift/decay: why the last evaluation failed, if it did."""
    last_fired_at: str | None = None
    """When it last launched a run (schedule: the last slot that fired or was skipped)."""
    armed_at: str | None = None
    """When the operator first saw it (a schedule counts its first slot from here)."""
    next_at: str | None = None
    """schedule: the next slot."""
    message: str = ""
    """The last evaluation, for humans."""


class RetrainingStatus(ApiModel):
    """Retraining runs and when the next may start."""

    last_triggered_at: str | None = None
    """When a run was last launched."""
    next_allowed_at: str | None = None
    """Earliest time cooldown and maxRunsPerDay allow another run."""
    reason: str | None = None
    """Why the last run was launched."""
    run: str | None = None
    """The last run's name."""
    runs_started: int = 0
    """Runs launched so far; the next run is `<md>-retrain-<runsStarted + 1>`."""
    last_manual_token: str | None = None
    """The last `rung.dev/retrain` annotation value handled (a new value is a new request)."""
    evaluated_at: str | None = None
    """When the drift/decay queries last ran."""
    triggers: list[TriggerStatus] = []
    """Each automatic trigger's state."""
    runs: list[RetrainingRun] = []
    """Recent runs, newest last: those of the last 24 hours and at least the last 10."""


class HistoryEntry(ApiModel):
    """One decision the operator took."""

    time: str
    """When."""
    event: str
    """Deployed, Updated, Promoted, RolledBack, Retrained, LevelChanged, Refused, ..."""
    message: str
    """Details."""
    version: str | None = None
    """Model version it concerned."""
    data: TrainingData | None = None
    """The data that model version was trained on, when known (its lineage)."""


GIT_COMMIT_LIMIT = 10


class GitCommit(ApiModel):
    """A decision written back to Git (spec.gitops)."""

    decision: str
    """Which decision: `rollback:<model hash>@<rejected at>` or
    `retrained:<run>:<version>`; the same decision is never committed twice."""
    commit: str | None = None
    """The commit's SHA-1; absent when the manifest already named the model (nothing to
    commit)."""
    time: str
    """When it was written."""
    version: str
    """The model version the manifest names now."""
    message: str = ""
    """The commit message's subject."""


class GitOpsStatus(ApiModel):
    """What was written back to Git."""

    commits: Annotated[list[GitCommit], Field(max_length=GIT_COMMIT_LIMIT)] = []
    """The decisions written back, newest last."""


OUTBOX_LIMIT = 100
REVISION_LIMIT = 10


class OutboxEntry(ApiModel):
    """A decision announced but not yet delivered (its Event, its audit CloudEvent)."""

    id: str
    """Delivery id: the Event is named `<name>.<id>`, the CloudEvent's id is this."""
    reason: str
    """The Event's reason."""
    message: str
    """The Event's message."""
    type: Literal["Normal", "Warning"] = "Normal"
    """Normal or Warning."""
    time: str
    """When it was decided."""


class ModelDeploymentStatus(ApiModel):
    """Observed state of a ModelDeployment, written only by the operator."""

    observed_generation: int | None = None
    """The spec generation last acted upon."""
    level: int | None = None
    """The maturity level in force."""
    capabilities: list[str] = []
    """Capabilities switched on (serving, monitoring, canary, retraining, ...)."""
    capability_summary: str | None = None
    """The capabilities as one comma-separated line (`kubectl get md -o wide`)."""
    phase: Phase | None = None
    """Pending, Ready, Shadowing, Progressing, Promoting, RollingBack, RolledBack, Paused or
    Failed."""
    inference_service: str | None = None
    """Name of the stable InferenceService."""
    url: str | None = None
    """URL KServe reports for the model."""
    stable: ModelRef | None = None
    """The model version serving all (or the remaining) traffic."""
    canary: CanaryStatus | None = None
    """The model version being rolled out, if any."""
    rejected: RejectedModel | None = None
    """The last model rolled back; it is not tried again until spec.model changes or
    `rung retry` asks for it."""
    revisions: Annotated[list[ModelRef], Field(max_length=REVISION_LIMIT)] = []
    """Models that served as stable before the current one, newest last: what `rung
    undo` can go back to."""
    analysis: AnalysisStatus | None = None
    """Canary analysis progress."""
    slo: SloSnapshot | None = None
    """Live SLO indicators (level 1+)."""
    retraining: RetrainingStatus | None = None
    """Retraining runs (level 3+)."""
    history: Annotated[list[HistoryEntry], Field(max_length=HISTORY_LIMIT)] = []
    """The last decisions, newest last."""
    conditions: list[Condition] = []
    """Ready, Progressing, Degraded, MonitoringReady, ..."""
    gitops: GitOpsStatus | None = None
    """Decisions written back to Git (spec.gitops)."""
    outbox: Annotated[list[OutboxEntry], Field(max_length=OUTBOX_LIMIT)] = []
    """Decisions written here with the state they belong to and removed once their Event
    (and audit CloudEvent) is delivered: an operator that stops in between delivers them
    when it starts again (at least once, de-duplicated by id)."""
