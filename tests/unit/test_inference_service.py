"""rung.plan.inference_service: the desired KServe InferenceService and the model hash."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from rung.api.spec import ModelSource
from rung.plan.explainability import EXPLAINABILITY_ANNOTATION
from rung.plan.inference_service import (
    DEPLOYMENT_MODE_ANNOTATION,
    MODEL_HASH_ANNOTATION,
    build_inference_service,
    model_hash,
)

from . import factories as f

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def build(**md_kwargs: Any) -> dict[str, Any]:
    md = f.md(**md_kwargs)
    return build_inference_service(md, md.spec.model)


def source(**fields: Any) -> ModelSource:
    return ModelSource.model_validate(f.model(**fields))


# --- shape ---------------------------------------------------------------------------


def test_identity() -> None:
    isvc = build()
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["kind"] == "InferenceService"
    assert isvc["metadata"]["name"] == f.NAME
    assert isvc["metadata"]["namespace"] == f.NAMESPACE


def test_name_can_be_overridden() -> None:
    md = f.md()
    assert build_inference_service(md, md.spec.model, name="fraud-canary")["metadata"]["name"] == (
        "fraud-canary"
    )


def test_owner_reference() -> None:
    assert build()["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "rung.dev/v1alpha1",
            "kind": "ModelDeployment",
            "name": f.NAME,
            "uid": f.UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


EXPECTED_LABELS = {
    "app.kubernetes.io/managed-by": "rung",
    "rung.dev/model-deployment": f.NAME,
    "rung.dev/model-version": "v1",
    "rung.dev/role": "stable",
}


def test_object_labels() -> None:
    assert build()["metadata"]["labels"] == EXPECTED_LABELS


def test_predictor_pods_carry_the_same_labels() -> None:
    assert build()["spec"]["predictor"]["labels"] == EXPECTED_LABELS


def test_role_label_follows_the_role() -> None:
    md = f.md()
    isvc = build_inference_service(md, md.spec.model, role="canary")
    assert isvc["metadata"]["labels"]["rung.dev/role"] == "canary"
    assert isvc["spec"]["predictor"]["labels"]["rung.dev/role"] == "canary"


def test_labels_are_not_shared_between_calls() -> None:
    md = f.md()
    build_inference_service(md, md.spec.model, role="canary")
    assert md.labels() == {
        "app.kubernetes.io/managed-by": "rung",
        "rung.dev/model-deployment": "fraud",
    }


@pytest.mark.parametrize("mode", ["RawDeployment", "Serverless"])
def test_deployment_mode_annotation(mode: str) -> None:
    isvc = build(serving={"deploymentMode": mode})
    assert isvc["metadata"]["annotations"][DEPLOYMENT_MODE_ANNOTATION] == mode


def test_extra_annotations_are_added() -> None:
    md = f.md()
    isvc = build_inference_service(md, md.spec.model, extra_annotations={"a": "b"})
    assert isvc["metadata"]["annotations"] == {
        DEPLOYMENT_MODE_ANNOTATION: "RawDeployment",
        MODEL_HASH_ANNOTATION: model_hash(md.spec.model),
        EXPLAINABILITY_ANNOTATION: "none",
        "a": "b",
    }


def test_model_spec() -> None:
    model = build(model_fields={"runtime": "kserve-sklearnserver"})["spec"]["predictor"]["model"]
    assert model == {
        "modelFormat": {"name": "sklearn"},
        "runtime": "kserve-sklearnserver",
        "storageUri": "s3://models/fraud/v1",
    }


def test_no_empty_model_name() -> None:
    assert "name" not in build()["spec"]["predictor"]["model"]


def test_unset_optionals_are_absent() -> None:
    predictor = build()["spec"]["predictor"]
    assert "runtime" not in predictor["model"]
    assert "resources" not in predictor["model"]
    assert "canaryTrafficPercent" not in predictor


@pytest.mark.parametrize(("low", "high"), [(1, 1), (0, 5), (2, 10)])
def test_replicas(low: int, high: int) -> None:
    predictor = build(serving={"minReplicas": low, "maxReplicas": high})["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (low, high)


def test_canary_traffic_percent() -> None:
    md = f.md()
    isvc = build_inference_service(md, md.spec.model, canary_traffic_percent=25)
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 25


@pytest.mark.parametrize(
    "resources",
    [
        {"requests": {"cpu": "500m", "memory": "1Gi"}},
        {"limits": {"memory": "2Gi", "nvidia.com/gpu": "1"}},
        {"requests": {"cpu": "100m"}, "limits": {"cpu": "2", "memory": "512Mi"}},
    ],
)
def test_resources(resources: dict[str, Any]) -> None:
    isvc = build(model_fields={"resources": resources})
    assert isvc["spec"]["predictor"]["model"]["resources"] == resources


@pytest.mark.parametrize(
    "resources",
    [{"limits": {"nvidia.com/gpu": 1}}, {"requests": {"cpu": 2, "memory": "1Gi"}}],
)
def test_integer_quantities_are_accepted(resources: dict[str, Any]) -> None:
    isvc = build(model_fields={"resources": resources})
    rendered = isvc["spec"]["predictor"]["model"]["resources"]
    for section, values in resources.items():
        assert {k: str(v) for k, v in rendered[section].items()} == {
            k: str(v) for k, v in values.items()
        }


@pytest.mark.parametrize("version", ["v1", "2024-06-01", "1.0.0", "release_7"])
def test_label_safe_versions_become_labels(version: str) -> None:
    isvc = build(model_fields={"version": version})
    assert isvc["metadata"]["labels"]["rung.dev/model-version"] == version


@pytest.mark.parametrize("version", ["1.0.0+build.5", "v7 final", "models/v7", "-v7"])
def test_versions_that_are_not_label_values_never_reach_a_label(version: str) -> None:
    try:
        isvc = build(model_fields={"version": version})
    except ValidationError:
        return  # rejected by the spec: fine
    labels = {**isvc["metadata"]["labels"], **isvc["spec"]["predictor"]["labels"]}
    assert all(LABEL_VALUE.match(value) for value in labels.values()), labels


# --- model_hash ----------------------------------------------------------------------


def test_model_hash_is_stable() -> None:
    assert model_hash(source()) == model_hash(source())
    assert re.fullmatch(r"[0-9a-f]{16}", model_hash(source()))


def test_model_hash_is_pinned() -> None:
    # Changing how the hash is computed makes every running deployment look like a
    # model change after an operator upgrade (a ModelReplaced, later a canary).
    # A new ModelSource field with a default changes it too: update the pin on purpose.
    model = ModelSource(format="sklearn", storage_uri="s3://models/fraud/v1", version="v1")
    assert model_hash(model) == "722edd0f61525a5a"


def test_model_hash_ignores_key_order_and_explicit_defaults() -> None:
    a = source(resources={"requests": {"cpu": "1", "memory": "1Gi"}})
    b = source(kind="predictive", resources={"requests": {"memory": "1Gi", "cpu": "1"}})
    assert model_hash(a) == model_hash(b)


@pytest.mark.parametrize(
    "change",
    [
        {"storageUri": "s3://models/fraud/v2"},
        {"version": "v2"},
        {"runtime": "kserve-mlserver"},
        {"resources": {"requests": {"cpu": "1"}}},
        {"resources": {"limits": {"memory": "2Gi"}}},
        {"format": "xgboost"},
    ],
    ids=["storageUri", "version", "runtime", "requests", "limits", "format"],
)
def test_model_hash_changes_with_the_model(change: dict[str, Any]) -> None:
    assert model_hash(source(**change)) != model_hash(source())


def test_model_hash_changes_when_resources_change() -> None:
    small = source(resources={"requests": {"cpu": "1"}})
    big = source(resources={"requests": {"cpu": "2"}})
    assert model_hash(small) != model_hash(big)
