"""Retraining as a Kubeflow Pipelines run, through the KFP v2beta1 REST API."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import requests

from rung.api.resource import ModelDeployment
from rung.pipelines.base import PipelineError, external_id, run_parameters
from rung.plan.observation import RunOutcome
from rung.plan.retraining import LaunchRequest

RUNS_PATH = "/apis/v2beta1/runs"
RUNNING_STATES = {"RUNTIME_STATE_UNSPECIFIED", "PENDING", "RUNNING", "CANCELING", "PAUSED"}
SUCCEEDED_STATES = {"SUCCEEDED", "SKIPPED"}


def run_body(request: LaunchRequest) -> dict[str, Any]:
    """The v2beta1 Run to create: the pipeline (its default version) and the parameters."""
    kfp = request.pipeline.kubeflow_pipeline
    if kfp is None:
        raise PipelineError("spec.retraining.pipeline.kubeflowPipeline is not set")
    md = request.md
    body: dict[str, Any] = {
        "display_name": external_id(md, request.run),
        "description": f"Rung retraining of {md.namespace}/{md.name}: {request.reason}"[:1000],
        "pipeline_version_reference": {"pipeline_id": kfp.pipeline_id},
        "runtime_config": {"parameters": run_parameters(request)},
    }
    if kfp.experiment_id:
        body["experiment_id"] = kfp.experiment_id
    return body


def name_filter(display_name: str) -> str:
    """The JSON `filter` query parameter selecting runs by display name."""
    predicate = {"key": "display_name", "operation": "EQUALS", "string_value": display_name}
    return json.dumps({"predicates": [predicate]})


def run_outcome(run: Mapping[str, Any] | None) -> RunOutcome:
    """A KFP run's state: PENDING/RUNNING..., SUCCEEDED/SKIPPED, FAILED/CANCELED."""
    if run is None:
        return RunOutcome("NotFound")
    state = str(run.get("state") or "RUNTIME_STATE_UNSPECIFIED")
    error = run.get("error") or {}
    detail = str(error.get("message") or "") if isinstance(error, Mapping) else str(error)
    if state in SUCCEEDED_STATES:
        return RunOutcome("Succeeded", f"KFP run {run.get('run_id')} {state.lower()}")
    if state in RUNNING_STATES:
        return RunOutcome("Running")
    return RunOutcome("Failed", f"{state}: {detail or 'the KFP run did not succeed'}")


class KubeflowPipelineLauncher:
    """POSTs a run to `{endpoint}/apis/v2beta1/runs` and polls it by display name."""

    name = "kubeflow-pipeline"

    def __init__(self, session: requests.Session | None = None, timeout: float = 10.0) -> None:
        self.session = session or requests.Session()
        self.timeout = timeout

    def launch(self, request: LaunchRequest) -> None:
        kfp = request.pipeline.kubeflow_pipeline
        body = run_body(request)
        assert kfp is not None
        if self._find(kfp.endpoint, kfp.experiment_id, body["display_name"]) is not None:
            return  # launched before (a relaunch after a crash)
        url = kfp.endpoint.rstrip("/") + RUNS_PATH
        try:
            response = self.session.post(url, json=body, timeout=self.timeout)
        except requests.RequestException as error:
            raise PipelineError(f"POST {url}: {error}") from error
        if not response.ok:
            raise PipelineError(f"POST {url}: {response.status_code} {response.text[:300]}")

    def outcome(self, md: ModelDeployment, run: str) -> RunOutcome:
        pipeline = md.spec.retraining.pipeline if md.spec.retraining else None
        kfp = pipeline.kubeflow_pipeline if pipeline else None
        if kfp is None:
            raise PipelineError("spec.retraining.pipeline.kubeflowPipeline is not set")
        return run_outcome(self._find(kfp.endpoint, kfp.experiment_id, external_id(md, run)))

    def _find(
        self, endpoint: str, experiment_id: str | None, display_name: str
    ) -> dict[str, Any] | None:
        url = endpoint.rstrip("/") + RUNS_PATH
        params = {"filter": name_filter(display_name), "page_size": "10"}
        if experiment_id:
            params["experiment_id"] = experiment_id
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
        except requests.RequestException as error:
            raise PipelineError(f"GET {url}: {error}") from error
        if not response.ok:
            raise PipelineError(f"GET {url}: {response.status_code} {response.text[:300]}")
        try:
            runs = response.json().get("runs") or []
        except ValueError as error:
            raise PipelineError(f"GET {url}: not JSON: {error}") from error
        # The server filters; check again in case it ignored the filter.
        found = [r for r in runs if r.get("display_name") == display_name]
        return dict(found[-1]) if found else None
