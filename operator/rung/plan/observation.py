"""What one reconcile observed, as the planner receives it (pure data, a leaf).

The reconciler reads what `plan.reads.reads()` asks for, turns the answers into the
types below and hands them to `plan.reconcile.plan()` in one `Observation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from rung.api.resource import ModelDeployment
from rung.api.status import SloSnapshot
from rung.plan.live import LiveObjects

RunState = Literal["Running", "Succeeded", "Failed", "NotFound"]


@dataclass(frozen=True)
class Reading:
    """One measurement from a metric provider: a number, no data, or why not.

    Four outcomes: a finite `value`; no data (value and error both None: a well-formed
    empty answer); an `error` with `invalid` False (the backend could not answer:
    refused, timed out, failed); an `error` with `invalid` True (it answered with
    garbage: NaN, ±Inf, several series, a non-numeric value; a failed measurement).
    """

    value: float | None = None
    """None: the query returned no data (or failed, see `error`)."""
    error: str | None = None
    """Why there is no value, when the query failed."""
    invalid: bool = False
    """The backend answered, but not with one finite number."""


TriggerReading = Reading
"""The reading of one drift/decay trigger's query."""


@dataclass(frozen=True)
class RunOutcome:
    """What a launcher reports about one run."""

    state: RunState
    message: str = ""


@dataclass(frozen=True)
class ClusterFeatures:
    """What the cluster offers, discovered once at start-up."""

    prometheus_operator: bool = False
    """PodMonitor/ServiceMonitor/PrometheusRule CRDs are installed."""
    gateway_api: bool = False
    """HTTPRoute CRD is installed."""


@dataclass(frozen=True)
class SloReading:
    """The outcome of reading the SLO indicators from Prometheus."""

    snapshot: SloSnapshot | None = None
    """What was measured, when Prometheus answered."""
    error: str | None = None
    """Why Prometheus could not be read, when it could not."""
    invalid: str | None = None
    """Indicators whose answer was not one finite number (left out of the snapshot)."""


@dataclass(frozen=True)
class AnalysisQuery:
    """Queries to run for one analysis metric (stable only for relative thresholds)."""

    metric_name: str
    canary: str
    stable: str | None
    error: str | None = None
    """Why the query could not be built (a template error): not run, a failed check."""


@dataclass(frozen=True)
class Observation:
    """Everything the planner needs, read by the handler."""

    md: ModelDeployment
    now: datetime
    inference_services: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Live InferenceServices owned by the ModelDeployment, by name."""
    http_routes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Live HTTPRoutes owned by the ModelDeployment, by name."""
    features: ClusterFeatures = ClusterFeatures()
    slo: SloReading | None = None
    """None when no reading was due (or monitoring is off)."""
    measurements: Mapping[str, tuple[float | None, float | None]] | None = None
    """Analysis results by metric name (canary, stable), when analysis ran this pass."""
    analysis_error: str | None = None
    """Why analysis could not run, when it was due but the provider failed."""
    invalid_measurements: Mapping[str, str] = field(default_factory=dict)
    """Analysis metrics whose answer was not one finite number, with why: failed checks."""
    retraining_readings: Mapping[int, TriggerReading] | None = None
    """Drift/decay readings by index in spec.retraining.triggers, when they were read."""
    run_outcomes: Mapping[str, RunOutcome] = field(default_factory=dict)
    """Outcomes of the active retraining runs, by run name, as their launcher reports."""
    owned: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    """Every live owned object, by kind and name (to tell whether a failed apply is over)."""

    deployments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """KServe's predictor Deployments of the owned InferenceServices, by name."""

    @property
    def live(self) -> LiveObjects:
        return LiveObjects(
            self.inference_services,
            self.http_routes,
            self.deployments,
            llm_inference_services=self.owned.get("LLMInferenceService", {}),
            services=self.owned.get("Service", {}),
        )
