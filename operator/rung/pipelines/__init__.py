"""Retraining launchers behind one interface; `launcher_for` rejects unknown names."""

from __future__ import annotations

from typing import Any

from rung.pipelines.base import Launcher, PipelineError

LAUNCHERS = ("job", "argo-workflow", "kubeflow-pipeline", "webhook")


def launcher_for(name: str, api_client: Any = None, *, timeout: float = 10.0) -> Launcher:
    """The launcher called `name` (spec.retraining.pipeline.type).

    Job and Workflow launchers talk to the Kubernetes API through `api_client` (a
    kubernetes.client.ApiClient; the default configuration when None).
    """
    if name == "job":
        from kubernetes import client as k8s

        from rung.pipelines.job import JobLauncher

        return JobLauncher(k8s.BatchV1Api(api_client))
    if name == "argo-workflow":
        from kubernetes import client as k8s

        from rung.pipelines.argo import ArgoWorkflowLauncher

        return ArgoWorkflowLauncher(k8s.CustomObjectsApi(api_client))
    if name == "kubeflow-pipeline":
        from rung.pipelines.kfp import KubeflowPipelineLauncher

        return KubeflowPipelineLauncher(timeout=timeout)
    if name == "webhook":
        from rung.pipelines.webhook import WebhookLauncher

        return WebhookLauncher(timeout=timeout)
    raise ValueError(f"unknown retraining launcher {name!r}; known: {', '.join(LAUNCHERS)}")


__all__ = ["LAUNCHERS", "Launcher", "PipelineError", "launcher_for"]
