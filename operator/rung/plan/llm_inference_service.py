"""Desired objects serving an LLM (pure): KServe LLMInferenceServices, and the
ExternalName Service standing for an external OpenAI-compatible provider.

An LLMInferenceService (serving.kserve.io/v1alpha2) runs vLLM as a Deployment
(`<name>-kserve`) behind the Service `<name>-kserve-workload-svc` (port 8000); its
pods carry `app.kubernetes.io/name: <name>`, which KServe's documented PodMonitor
relabels into the series label `llm_isvc_name`: the per-version label of every
vLLM metric. `router.route.group` puts several LLMInferenceServices behind one
weighted HTTPRoute (KServe's own canary API); Rung moves `router.route.weight`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from rung.api.resource import ModelDeployment
from rung.api.spec import ModelSource
from rung.plan.inference_service import (
    MODEL_HASH_ANNOTATION,
    MODEL_VERSION_LABEL,
    ROLE_LABEL,
    model_hash,
)

LLMISVC_GROUP = "serving.kserve.io"
LLMISVC_VERSION = "v1alpha2"
LLMISVC_API_VERSION = f"{LLMISVC_GROUP}/{LLMISVC_VERSION}"
VLLM_PORT = 8000
"""The port vLLM serves on (HTTP, and /metrics) in KServe's LLMInferenceService template."""
MAIN_CONTAINER = "main"
"""The container KServe's template runs vLLM in (strategic merge by name)."""
CREDENTIALS_SECRET_ANNOTATION = "rung.dev/credentials-secret"
"""On an external provider's Service: `<secret>/<key>` holding its API key, for the
Gateway's credential injection. A reference only: Rung never reads the value."""
EXTERNAL_MODEL_ANNOTATION = "rung.dev/external-model"
EXTERNAL_ENDPOINT_ANNOTATION = "rung.dev/external-endpoint"


def workload_service(name: str) -> str:
    """The Service KServe runs in front of an LLMInferenceService's vLLM pods."""
    return f"{name}-kserve-workload-svc"


def external_service(name: str) -> str:
    """The ExternalName Service standing for an external provider in slot `name`."""
    return f"{name}-external"


def build_llm_inference_service(
    md: ModelDeployment,
    model: ModelSource,
    *,
    name: str,
    role: str,
    group: str | None,
    weight: int | None,
    pod_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The LLMInferenceService serving `model` as `name`; in route group `group` with
    `weight` (proportional, as Gateway API backendRef weights), or with no route of its
    own when `group` is None (Rung's HTTPRoute routes to it)."""
    llm = model.llm
    meta = md.object_meta(name)
    meta["labels"][MODEL_VERSION_LABEL] = model.version
    meta["labels"][ROLE_LABEL] = role
    meta["annotations"] = {MODEL_HASH_ANNOTATION: model_hash(model)}
    spec_model: dict[str, Any] = {"uri": model.storage_uri, "name": model_name(md, model)}
    if llm is not None and llm.lora is not None:
        lora: dict[str, Any] = {
            "adapters": [{"name": a.name, "uri": a.uri} for a in llm.lora.adapters]
        }
        if llm.lora.max_rank is not None:
            lora["maxRank"] = llm.lora.max_rank
        spec_model["lora"] = lora
    spec: dict[str, Any] = {
        "model": spec_model,
        "replicas": md.spec.serving.min_replicas,
        "labels": pod_labels(md, role),
        "annotations": {**(pod_annotations or {}), MODEL_VERSION_LABEL: model.version},
    }
    if llm is not None and llm.parallelism is not None:
        parallelism = llm.parallelism.model_dump(by_alias=True, exclude_none=True, mode="json")
        if parallelism:
            spec["parallelism"] = parallelism
    if model.resources is not None:
        resources = model.resources.model_dump(by_alias=True, exclude_none=True, mode="json")
        quantities = {k: {q: str(v) for q, v in vs.items()} for k, vs in resources.items()}
        spec["template"] = {"containers": [{"name": MAIN_CONTAINER, "resources": quantities}]}
    router: dict[str, Any] = {}
    if group is not None:
        route: dict[str, Any] = {"group": group}
        if weight is not None:
            route["weight"] = weight
        router["route"] = route
        router["gateway"] = _gateway(md)
    if llm is not None and llm.scheduler:
        router["scheduler"] = {}
    if router:
        spec["router"] = router
    return {
        "apiVersion": LLMISVC_API_VERSION,
        "kind": "LLMInferenceService",
        "metadata": meta,
        "spec": spec,
    }


def pod_labels(md: ModelDeployment, role: str) -> dict[str, str]:
    """`spec.labels`, the same for the slot's whole life: KServe v0.20 puts them into its
    Deployment's selector too, which is immutable (a label that changed with the model,
    such as its version, would leave KServe unable to update the Deployment:
    `spec.selector: ... field is immutable`). The version goes into `spec.annotations`."""
    return {**md.labels(), ROLE_LABEL: role}


def build_external_service(
    md: ModelDeployment, model: ModelSource, *, name: str, role: str
) -> dict[str, Any]:
    """The ExternalName Service through which the Gateway reaches an external provider.

    It names the provider's host and port; its annotations say which model and which
    Secret key (by reference) the Gateway's credential injection uses. No credential is
    ever written here."""
    external = model.external
    assert external is not None
    url = urlsplit(external.endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    meta = md.object_meta(external_service(name))
    meta["labels"][MODEL_VERSION_LABEL] = model.version
    meta["labels"][ROLE_LABEL] = role
    secret = external.credentials_secret_ref
    meta["annotations"] = {
        MODEL_HASH_ANNOTATION: model_hash(model),
        EXTERNAL_ENDPOINT_ANNOTATION: external.endpoint,
        EXTERNAL_MODEL_ANNOTATION: external.model,
        CREDENTIALS_SECRET_ANNOTATION: f"{secret.name}/{secret.key}",
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ExternalName",
            "externalName": url.hostname or "",
            "ports": [{"name": url.scheme, "port": port, "protocol": "TCP"}],
        },
    }


def external_backend_port(model: ModelSource) -> int:
    """The port of an external provider's Service."""
    assert model.external is not None
    url = urlsplit(model.external.endpoint)
    return url.port or (443 if url.scheme == "https" else 80)


def model_name(md: ModelDeployment, model: ModelSource) -> str:
    """`spec.model.name`: the `model` clients ask for, `llm.modelName` or else the
    ModelDeployment's name, the same in both slots: KServe leaves a route-group member
    whose model names differ from the others' out of their routes (`GroupDegraded`,
    `MemberDivergence`), so a canary under its own name would get no traffic."""
    llm = model.llm
    return llm.model_name if llm is not None and llm.model_name else md.name


def _gateway(md: ModelDeployment) -> dict[str, Any]:
    """`router.gateway`: the rollout's Gateway, or KServe's default one (`{}`)."""
    rollout = md.spec.rollout
    if rollout is None or rollout.gateway is None:
        return {}
    ref: dict[str, Any] = {"name": rollout.gateway.name}
    ref["namespace"] = rollout.gateway.namespace or md.namespace
    return {"refs": [ref]}
