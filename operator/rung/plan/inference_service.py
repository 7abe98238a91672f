"""Desired KServe InferenceServices, built with the `kserve` package's models."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kserve.api_client import ApiClient
from kserve.models import (
    V1beta1CanarySpec,
    V1beta1InferenceService,
    V1beta1InferenceServiceSpec,
    V1beta1ModelFormat,
    V1beta1ModelSpec,
    V1beta1PredictorSpec,
)
from kubernetes.client import V1ObjectMeta

from rung.api.resource import ModelDeployment
from rung.api.spec import ModelSource
from rung.plan.explainability import (
    EXPLAINABILITY_ANNOTATION,
    explainer_component,
    explainer_sidecars,
    fingerprint,
    payload_logger,
)
from rung.plan.resources import resource_requirements

ISVC_GROUP = "serving.kserve.io"
ISVC_VERSION = "v1beta1"
ISVC_API_VERSION = f"{ISVC_GROUP}/{ISVC_VERSION}"
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
MODEL_VERSION_LABEL = "rung.dev/model-version"
ROLE_LABEL = "rung.dev/role"

_serializer = ApiClient()


MODEL_FIELDS = {
    "format",
    "runtime",
    "storage_uri",
    "version",
    "resources",
    "source",
    "llm",
    "external",
}
"""The fields whose change means a new model. Unset and default values are left out, so
models from before `source`, `llm` and `external` existed keep their hash."""
MODEL_HASH_ANNOTATION = "rung.dev/model-hash"
CANARY_HASH_ANNOTATION = "rung.dev/canary-model-hash"
KSERVE_CONTAINER = "kserve-container"


def model_hash(model: ModelSource) -> str:
    """A short, stable hash of the model fields whose change means a new model.

    Named fields only, so that a new optional field in a later API version does not
    turn every running model into a "new" one.
    """
    fields = model.model_dump(
        by_alias=True, exclude_none=True, exclude_defaults=True, mode="json", include=MODEL_FIELDS
    )
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    return digest[:16]


@dataclass(frozen=True)
class CanaryVariant:
    """A canary predictor inside the same InferenceService (KServe RawDeployment canary)."""

    name: str
    model: ModelSource
    traffic_percent: int


def build_predictor(
    md: ModelDeployment,
    model: ModelSource,
    *,
    role: str,
    name: str | None = None,
    canary_traffic_percent: int | None = None,
    isvc_name: str | None = None,
    fixed_replicas: bool = False,
) -> V1beta1PredictorSpec:
    """The predictor serving `model`, with the deployment's replicas and pod labels.

    At level 4 it also carries KServe's payload logger and, in sidecar mode, the
    explainer container (`isvc_name` is the model name the sidecar asks the model for).

    `fixed_replicas` is for a RawDeployment canary entry: KServe's webhook refuses
    autoscaling fields there and derives its replicas from the stable predictor's
    `minReplicas` and the traffic percent (ceil(min * percent / 100)), taking them
    out of stable's, so none are set.
    """
    serving = md.spec.serving
    resources = resource_requirements(model.resources)
    return V1beta1PredictorSpec(
        name=name,
        labels={**md.labels(), ROLE_LABEL: role, MODEL_VERSION_LABEL: model.version},
        min_replicas=None if fixed_replicas else serving.min_replicas,
        max_replicas=None if fixed_replicas else serving.max_replicas,
        canary_traffic_percent=canary_traffic_percent,
        logger=payload_logger(md),
        containers=explainer_sidecars(md, model, isvc_name or md.name),
        model=V1beta1ModelSpec(
            model_format=V1beta1ModelFormat(name=model.format),
            runtime=model.runtime,
            storage_uri=model.storage_uri,
            resources=resources,
        ),
    )


def build_inference_service(
    md: ModelDeployment,
    model: ModelSource,
    *,
    name: str | None = None,
    role: str = "stable",
    extra_annotations: dict[str, str] | None = None,
    canary_traffic_percent: int | None = None,
    predictor_name: str | None = None,
    canary: CanaryVariant | None = None,
) -> dict[str, Any]:
    """The InferenceService serving `model` for `md`, as a plain manifest."""
    predictor = build_predictor(
        md,
        model,
        role=role,
        name=predictor_name,
        canary_traffic_percent=canary_traffic_percent,
        isvc_name=name or md.name,
    )
    canaries = None
    if canary is not None:
        canaries = [
            V1beta1CanarySpec(
                traffic_percent=canary.traffic_percent,
                predictor=build_predictor(
                    md,
                    canary.model,
                    role="canary",
                    name=canary.name,
                    isvc_name=name or md.name,
                    fixed_replicas=True,
                ),
            )
        ]
    meta = md.object_meta(name or md.name)
    meta["labels"][MODEL_VERSION_LABEL] = model.version
    meta["labels"][ROLE_LABEL] = role
    meta["annotations"] = {
        DEPLOYMENT_MODE_ANNOTATION: md.spec.serving.deployment_mode,
        MODEL_HASH_ANNOTATION: model_hash(model),
        **({CANARY_HASH_ANNOTATION: model_hash(canary.model)} if canary else {}),
        EXPLAINABILITY_ANNOTATION: fingerprint(md, model),
        **(extra_annotations or {}),
    }
    isvc = V1beta1InferenceService(
        api_version=ISVC_API_VERSION,
        kind="InferenceService",
        metadata=V1ObjectMeta(**_snake(meta)),
        spec=V1beta1InferenceServiceSpec(
            predictor=predictor, canary=canaries, explainer=explainer_component(md, model)
        ),
    )
    manifest: dict[str, Any] = _serializer.sanitize_for_serialization(isvc)
    if not manifest["spec"]["predictor"]["model"].get("name"):
        # kserve's model class defaults the container name to ""; leave it unset.
        manifest["spec"]["predictor"]["model"].pop("name", None)
    art = (manifest["spec"].get("explainer") or {}).get("art")
    if art is not None and not art.get("name"):
        art.pop("name", None)  # defaulted to "" like the model's; KServe names it
    for entry in manifest["spec"].get("canary") or []:
        # A canary predictor's container needs a name (the CRD requires it).
        entry["predictor"]["model"]["name"] = KSERVE_CONTAINER
    return manifest


def _snake(meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": meta["name"],
        "namespace": meta["namespace"],
        "labels": meta["labels"],
        "annotations": meta.get("annotations"),
        "owner_references": meta["ownerReferences"],
    }
