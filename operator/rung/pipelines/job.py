"""Retraining as a Kubernetes Job built from spec.retraining.pipeline.job.template."""

from __future__ import annotations

import contextlib
import copy
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
    run_env,
)
from rung.plan.observation import RunOutcome
from rung.plan.retraining import LaunchRequest


def build_job(request: LaunchRequest) -> dict[str, Any]:
    """The Job: the template as its spec, RUNG_* variables in every container, owned."""
    md, job = request.md, request.pipeline.job
    if job is None:
        raise PipelineError("spec.retraining.pipeline.job is not set")
    spec = copy.deepcopy(dict(job.template))
    template = spec.setdefault("template", {})
    pod_meta = template.setdefault("metadata", {})
    pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **md.labels(), RUN_LABEL: request.run}
    pod = template.setdefault("spec", {})
    pod.setdefault("restartPolicy", "Never")
    env = run_env(request)
    for key in ("initContainers", "containers"):
        for container in pod.get(key) or []:
            kept = [e for e in container.get("env") or [] if e.get("name") not in env]
            container["env"] = kept + [{"name": k, "value": v} for k, v in env.items()]
    meta = md.object_meta(request.run, **{RUN_LABEL: request.run})
    meta["annotations"] = {REASON_ANNOTATION: request.reason[:1024]}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}


def job_outcome(job: Mapping[str, Any] | None, owner_uid: str) -> RunOutcome:
    """A Job's state: its Complete/Failed conditions, else its succeeded count."""
    if job is None:
        return RunOutcome("NotFound")
    meta = job.get("metadata") or {}
    owners = meta.get("ownerReferences") or []
    if owner_uid and not any(o.get("uid") == owner_uid for o in owners):
        return RunOutcome(
            "Failed", f"a Job named {meta.get('name')} exists but belongs to another owner"
        )
    status = job.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    failed = conditions.get("Failed")
    if failed and failed.get("status") == "True":
        reason = failed.get("reason") or "Failed"
        return RunOutcome("Failed", f"{reason}: {failed.get('message') or 'the Job failed'}")
    succeeded = int(status.get("succeeded") or 0)
    complete = conditions.get("Complete")
    completions = int((job.get("spec") or {}).get("completions") or 1)
    if (complete and complete.get("status") == "True") or (
        succeeded >= completions and not status.get("active")
    ):
        return RunOutcome("Succeeded", f"Job {meta.get('name')} completed ({succeeded} succeeded)")
    return RunOutcome("Running")


class JobLauncher:
    """Creates the Job through BatchV1Api and reads its status back."""

    name = "job"

    def __init__(self, batch: k8s.BatchV1Api) -> None:
        self.batch = batch

    def launch(self, request: LaunchRequest) -> None:
        body: Any = build_job(request)  # the client accepts plain dicts
        try:
            self.batch.create_namespaced_job(request.md.namespace, body)
        except ApiException as error:
            if error.status == 409:  # launched before (a relaunch after a crash)
                return
            raise PipelineError(f"creating Job {request.run}: {api_error(error)}") from error

    def outcome(self, md: ModelDeployment, run: str) -> RunOutcome:
        try:
            job = self.batch.read_namespaced_job(run, md.namespace)
        except ApiException as error:
            if error.status == 404:
                return RunOutcome("NotFound")
            raise PipelineError(f"reading Job {run}: {api_error(error)}") from error
        body = cast(dict[str, Any], self.batch.api_client.sanitize_for_serialization(job))
        outcome = job_outcome(body, md.uid)
        if outcome.state == "Running" and not _has_pods(body):
            refused = self._pods_refused(body)
            if refused is not None:
                self._suspend(body)
                return RunOutcome("Failed", refused)
        return outcome

    def _pods_refused(self, job: Mapping[str, Any]) -> str | None:
        """Why the Job controller cannot create the Job's pods (a `FailedCreate` Event on
        the Job: a missing ServiceAccount, a quota, a policy), if it says so."""
        meta = job.get("metadata") or {}
        selector = f"involvedObject.uid={meta.get('uid')},reason=FailedCreate"
        try:
            events = k8s.CoreV1Api(self.batch.api_client).list_namespaced_event(
                meta.get("namespace", ""), field_selector=selector, limit=5
            )
        except ApiException:
            return None  # not readable (RBAC): the run keeps its Running state
        messages = [e.message for e in events.items or [] if e.message]
        if not messages:
            return None
        return f"the Job's pods cannot be created: {messages[-1]}"[:1000]

    def _suspend(self, job: Mapping[str, Any]) -> None:
        """Stop a Job reported failed from creating pods later (best effort)."""
        meta = job.get("metadata") or {}
        with contextlib.suppress(ApiException):
            self.batch.patch_namespaced_job(
                meta.get("name", ""), meta.get("namespace", ""), {"spec": {"suspend": True}}
            )


def _has_pods(job: Mapping[str, Any]) -> bool:
    status = job.get("status") or {}
    return any(
        int(status.get(key) or 0)
        for key in ("active", "ready", "succeeded", "failed", "terminating")
    )
