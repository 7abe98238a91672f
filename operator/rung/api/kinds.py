"""The custom resource types Rung reads, writes or looks for (pure data, no client)."""

from __future__ import annotations

from dataclasses import dataclass

from rung.api.crd import GROUP, PLURAL, VERSION


@dataclass(frozen=True)
class Kind:
    """A namespaced custom resource type, as API discovery and the custom objects API name it."""

    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        """`group/version`, as in a manifest's apiVersion (`v1` for the core group)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def name(self) -> str:
        """The CRD's object name, e.g. `podmonitors.monitoring.coreos.com`."""
        return f"{self.plural}.{self.group}"


MODEL_DEPLOYMENT = Kind(GROUP, VERSION, PLURAL, "ModelDeployment")
INFERENCE_SERVICE = Kind("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService")
LLM_INFERENCE_SERVICE = Kind(
    "serving.kserve.io", "v1alpha2", "llminferenceservices", "LLMInferenceService"
)
"""KServe's LLM serving API (vLLM workloads, a route group for canaries)."""
SERVICE = Kind("", "v1", "services", "Service")
"""Core Services: the ExternalName backend of an external LLM provider."""
POD_MONITOR = Kind("monitoring.coreos.com", "v1", "podmonitors", "PodMonitor")
PROMETHEUS_RULE = Kind("monitoring.coreos.com", "v1", "prometheusrules", "PrometheusRule")
HTTP_ROUTE = Kind("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute")
DEPLOYMENT = Kind("apps", "v1", "deployments", "Deployment")
WORKFLOW_TEMPLATE = Kind("argoproj.io", "v1alpha1", "workflowtemplates", "WorkflowTemplate")
SCHEDULED_WORKFLOW = Kind("kubeflow.org", "v1beta1", "scheduledworkflows", "ScheduledWorkflow")
"""Installed with Kubeflow Pipelines (its recurring-run controller): how discovery sees KFP."""
BROKER = Kind("eventing.knative.dev", "v1", "brokers", "Broker")
"""Knative Eventing's Broker: KServe's default payload-logging sink (`default-broker`)."""
