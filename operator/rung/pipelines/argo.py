"""Retraining as an Argo Workflow that runs a WorkflowTemplate with the run's parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from rung.api.resource import ModelDeployment
from rung.pipelines.base import (
    REASON_ANNOTATION,
    RUN_LABEL,
    PipelineError,
    api_error,
    run_parameters,
)
from rung.plan.observation import RunOutcome
from rung.plan.retraining import LaunchRequest

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "workflows"


def build_workflow(request: LaunchRequest) -> dict[str, Any]:
    """A Workflow referencing the WorkflowTemplate, the run's parameters as arguments.

    The template should declare the parameters it uses: model, namespace, version,
    storageUri, reason, trigger and run.
    """
    md, argo = request.md, request.pipeline.argo_workflow
    if argo is None:
        raise PipelineError("spec.retraining.pipeline.argoWorkflow is not set")
    meta = md.object_meta(request.run, **{RUN_LABEL: request.run})
    meta["annotations"] = {REASON_ANNOTATION: request.reason[:1024]}
    parameters = [{"name": k, "value": v} for k, v in run_parameters(request).items()]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": meta,
        "spec": {
            "workflowTemplateRef": {"name": argo.workflow_template},
            "arguments": {"parameters": parameters},
        },
    }


def workflow_outcome(workflow: Mapping[str, Any] | None, owner_uid: str) -> RunOutcome:
    """A Workflow's state from status.phase (Pending/Running, Succeeded, Failed/Error)."""
    if workflow is None:
        return RunOutcome("NotFound")
    meta = workflow.get("metadata") or {}
    owners = meta.get("ownerReferences") or []
    if owner_uid and not any(o.get("uid") == owner_uid for o in owners):
        return RunOutcome(
            "Failed", f"a Workflow named {meta.get('name')} exists but belongs to another owner"
        )
    status = workflow.get("status") or {}
    phase = status.get("phase") or "Pending"
    message = str(status.get("message") or "")
    if phase == "Succeeded":
        return RunOutcome("Succeeded", message or f"Workflow {meta.get('name')} succeeded")
    if phase in ("Failed", "Error"):
        return RunOutcome("Failed", f"{phase}: {message or 'the Workflow did not succeed'}")
    return RunOutcome("Running", message)


class ArgoWorkflowLauncher:
    """Creates the Workflow through CustomObjectsApi and reads its phase back."""

    name = "argo-workflow"

    def __init__(self, custom: k8s.CustomObjectsApi) -> None:
        self.custom = custom

    def launch(self, request: LaunchRequest) -> None:
        try:
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, request.md.namespace, PLURAL, build_workflow(request)
            )
        except ApiException as error:
            if error.status == 409:
                return
            raise PipelineError(f"creating Workflow {request.run}: {api_error(error)}") from error

    def outcome(self, md: ModelDeployment, run: str) -> RunOutcome:
        try:
            workflow = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, md.namespace, PLURAL, run
            )
        except ApiException as error:
            if error.status == 404:
                return RunOutcome("NotFound")
            raise PipelineError(f"reading Workflow {run}: {api_error(error)}") from error
        return workflow_outcome(cast(dict[str, Any], workflow), md.uid)
