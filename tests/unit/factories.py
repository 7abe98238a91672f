"""Builders of ModelDeployments and live objects shared by the unit tests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from rung.api.resource import ModelDeployment
from rung.api.spec import ModelSource
from rung.plan.inference_service import MODEL_HASH_ANNOTATION, model_hash

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
NOW_TEXT = "2025-03-01T12:00:00Z"
LATER = NOW + timedelta(minutes=5)
LATER_TEXT = "2025-03-01T12:05:00Z"

NAME = "fraud"
NAMESPACE = "team-a"
UID = "0b6f6a8e-1111-2222-3333-444455556666"


DATA = {"uri": "s3://datasets/fraud", "version": "2025-02-01"}
"""spec.model.data of the factories' model: the dataset it was trained on."""
OWNERS = {
    "onCall": {"name": "team-fraud", "contact": "#fraud-oncall"},
    "releaseOwner": {"name": "ada", "contact": "ada@example.com"},
    "pipelineOwner": {"name": "team-ml-platform", "contact": "ml-platform@example.com"},
    "riskReviewer": {"name": "risk-office", "contact": "risk@example.com"},
}
"""spec.owners holding every responsibility."""


def model(**fields: Any) -> dict[str, Any]:
    """A spec.model in wire form; `fields` (camelCase) replace or add keys (a None value
    removes one, e.g. `data=None`)."""
    out = {
        "format": "sklearn",
        "storageUri": "s3://models/fraud/v1",
        "version": "v1",
        "data": DATA,
        **fields,
    }
    return {k: v for k, v in out.items() if v is not None}


def body(
    *,
    level: int = 0,
    generation: int = 1,
    model_fields: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A ModelDeployment as the API server returns it; spec.owners holds every
    responsibility unless `owners` says otherwise (None: no owners)."""
    maturity = spec.pop("maturity", {"level": level})
    spec.setdefault("owners", OWNERS)
    spec = {k: v for k, v in spec.items() if v is not None}
    return {
        "apiVersion": "rung.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "uid": UID,
            "generation": generation,
            "annotations": annotations or {},
        },
        "spec": {"maturity": maturity, "model": model(**(model_fields or {})), **spec},
        "status": status or {},
    }


def md(**kwargs: Any) -> ModelDeployment:
    """A parsed ModelDeployment; keyword arguments as for `body`."""
    return ModelDeployment.from_body(body(**kwargs))


def live_isvc(
    *,
    storage_uri: str = "s3://models/fraud/v1",
    ready: str | None = "True",
    reason: str | None = None,
    message: str | None = None,
    url: str | None = "http://fraud.team-a.example.com",
    model_status: dict[str, Any] | None = None,
    model_fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An InferenceService as KServe leaves it, with a Ready condition when `ready` is set.

    It carries the model-hash annotation of `model(**model_fields)` (with `storage_uri`),
    the way the operator wrote it.
    """
    served = ModelSource.model_validate(
        model(**{"storageUri": storage_uri, **(model_fields or {})})
    )
    status: dict[str, Any] = {}
    if ready is not None:
        condition: dict[str, Any] = {"type": "Ready", "status": ready}
        if reason:
            condition["reason"] = reason
        if message:
            condition["message"] = message
        status["conditions"] = [condition]
    if url:
        status["url"] = url
    if model_status is not None:
        status["modelStatus"] = model_status
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "annotations": {MODEL_HASH_ANNOTATION: model_hash(served)},
        },
        "spec": {
            "predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": storage_uri}}
        },
        "status": status,
    }


def predictor_deployments(
    inference_services: Mapping[str, Mapping[str, Any]], *, rolled_out: bool = True
) -> dict[str, dict[str, Any]]:
    """The Deployments KServe runs for RawDeployment InferenceServices, by name, as it
    leaves them once it has acted on their current spec: the InferenceService's
    annotations copied (its applied hash among them) and, when `rolled_out`, every
    replica updated and available. (Plays KServe's part in unit tests.)"""
    from rung.plan.live import knative, predictor_workload

    deployments: dict[str, dict[str, Any]] = {}
    for name, isvc in inference_services.items():
        if knative(isvc):
            continue
        spec = isvc.get("spec") or {}
        predictors = [(spec.get("predictor") or {}).get("name")]
        predictors += [(c.get("predictor") or {}).get("name") for c in spec.get("canary") or []]
        for predictor in predictors:
            workload = predictor_workload(name, predictor)
            deployments[workload] = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": workload,
                    "namespace": NAMESPACE,
                    "generation": 2,
                    "annotations": dict((isvc.get("metadata") or {}).get("annotations") or {}),
                },
                "spec": {"replicas": 1},
                "status": {
                    "observedGeneration": 2 if rolled_out else 1,
                    "replicas": 1,
                    "updatedReplicas": 1,
                    "availableReplicas": 1,
                },
            }
    return deployments
