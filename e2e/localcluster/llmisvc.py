"""KServe's LLMInferenceService controller on the local control plane, installed as the
release installs it.

The controller is the pinned module's `cmd/llmisvc` binary (built by
e2e/cluster/build.sh next to the manager). It reconciles LLMInferenceServices and
LLMInferenceServiceConfigs and serves their admission webhooks. Everything it is
installed with comes from the KServe Go module at the pinned version:

- its ServiceAccount, Roles, ClusterRole, bindings and the admission webhook
  configurations from `charts/kserve-llmisvc-resources/files/llmisvc/resources.yaml`
  (the kustomize rendering of `config/llmisvc` that the Helm chart installs);
- the well-known LLMInferenceServiceConfig presets (vLLM's pod template, the router's
  HTTPRoute, the scheduler, ...) from
  `charts/kserve-runtime-configs/files/llmisvcconfigs/resources.yaml`;
- its CRDs (LLMInferenceService, LLMInferenceServiceConfig, the Gateway API Inference
  Extension's) come with the other CRDs (manifests.CRD_SOURCES).

Local differences, all in `webhook_configurations()` (shared with kserve.py) and
`with_conversion()`: each webhook's `service` becomes `url: https://127.0.0.1:<port>/<path>`
with the cluster CA as `caBundle`. The default Gateway that KServe's presets name
(`kserve/kserve-ingress-gateway`, class `envoy`) is created as KServe's quick install
creates it; no Gateway implementation runs, so nothing programs it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from .api import APIClient
from .kserve import _load_yaml, cached_bundle, delete_and_wait, release_objects

JSON = dict[str, Any]

NAMESPACE = "kserve"
SERVICE_ACCOUNT = "llmisvc-controller-manager"
RELEASE = "charts/kserve-llmisvc-resources/files/llmisvc/resources.yaml"
PRESETS = "charts/kserve-runtime-configs/files/llmisvcconfigs/resources.yaml"
API = "/apis/serving.kserve.io/v1alpha2"
#: The CRDs whose v1alpha1 <-> v1alpha2 conversion the controller serves (/convert).
CONVERTED_CRDS = (
    "llminferenceservices.serving.kserve.io",
    "llminferenceserviceconfigs.serving.kserve.io",
)
#: The Gateway that KServe's router preset names by default (`ingress.kserveIngressGateway`
#: of the inferenceservice-config ConfigMap), as hack/setup/infra/gateway-api creates it.
DEFAULT_GATEWAY = "kserve-ingress-gateway"
GATEWAY_CLASS = "envoy"

_BUNDLE_FORMAT = 1  # bump when install_bundle() changes what it caches


def install_bundle() -> JSON:
    """The documents to install, read from the module (cached as JSON by version)."""
    return cached_bundle(
        "llmisvc",
        _BUNDLE_FORMAT,
        lambda root, version: {
            **release_objects(root / RELEASE),
            "presets": _load_yaml(root / PRESETS),
        },
    )


def with_conversion(crds: list[JSON], port: int, ca_bundle: bytes) -> list[JSON]:
    """`crds` with the LLM CRDs' `spec.conversion` as the release patches it in
    (config/crd/*/llmisvc/*_conversion_webhook_patch.yaml), calling 127.0.0.1:`port`
    (set before they are applied: changing it later makes the apiserver rebuild them)."""
    conversion = {
        "strategy": "Webhook",
        "webhook": {
            "clientConfig": {
                "url": f"https://127.0.0.1:{port}/convert",
                "caBundle": base64.b64encode(ca_bundle).decode(),
            },
            "conversionReviewVersions": ["v1", "v1beta1"],
        },
    }
    return [
        {**d, "spec": {**d["spec"], "conversion": conversion}}
        if d["kind"] == "CustomResourceDefinition" and d["metadata"]["name"] in CONVERTED_CRDS
        else d
        for d in crds
    ]


def default_gateway() -> list[JSON]:
    """The GatewayClass and the Gateway KServe's router preset attaches routes to."""
    return [
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": GATEWAY_CLASS},
            "spec": {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": DEFAULT_GATEWAY, "namespace": NAMESPACE},
            "spec": {
                "gatewayClassName": GATEWAY_CLASS,
                "listeners": [
                    {
                        "name": "http",
                        "protocol": "HTTP",
                        "port": 80,
                        "allowedRoutes": {"namespaces": {"from": "All"}},
                    }
                ],
                "infrastructure": {"labels": {"serving.kserve.io/gateway": DEFAULT_GATEWAY}},
            },
        },
    ]


#: A dry-run LLMInferenceService without `spec.model.name`: KServe's defaulter fills it
#: in with the object's name, its validator lets it through.
_PROBE: JSON = {
    "apiVersion": "serving.kserve.io/v1alpha2",
    "kind": "LLMInferenceService",
    "metadata": {"name": "webhook-probe", "namespace": NAMESPACE},
    "spec": {"model": {"uri": "hf://probe/model"}},
}


def webhooks_wired(client: APIClient) -> bool:
    """The apiserver calls KServe's LLMInferenceService webhooks (dry run, nothing stored)."""
    got = client.create(f"{API}/namespaces/{NAMESPACE}/llminferenceservices", _PROBE, dry_run=True)
    return bool(got["spec"]["model"].get("name") == _PROBE["metadata"]["name"])


def delete_all(client: APIClient, timeout: float = 60.0, log: Callable[[str], None] = print) -> int:
    """Delete every LLMInferenceService while the controller runs, so that it removes its
    finalizer (`serving.kserve.io/llmisvc-finalizer`); wait until they are gone. Whatever
    is left after `timeout` has its finalizers stripped. Returns how many there were."""
    paths = [
        f"{API}/namespaces/{o['metadata']['namespace']}/llminferenceservices/{o['metadata']['name']}"
        for o in client.list_items(f"{API}/llminferenceservices")
    ]
    return delete_and_wait(client, paths, "LLMInferenceService(s)", timeout, log)
