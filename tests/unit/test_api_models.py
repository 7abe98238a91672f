"""rung.api models: durations, spec validation and defaults, wire form, resource parsing."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from rung.api._base import parse_duration
from rung.api.resource import ModelDeployment
from rung.api.spec import (
    Maturity,
    ModelDeploymentSpec,
    Monitoring,
    Retraining,
    RetrainingTrigger,
    Rollout,
)
from rung.api.status import HISTORY_LIMIT, ModelDeploymentStatus

from . import factories as f

# --- parse_duration ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0s", 0.0),
        ("1ms", 0.001),
        ("250ms", 0.25),
        ("30s", 30.0),
        ("1m", 60.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("24h", 86400.0),
        ("2h3m4s5ms", 7384.005),
        ("90m", 5400.0),
    ],
)
def test_parse_duration_valid(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", "1", "s", "ms", "1d", "1.5h", "-1s", "1 s", " 1s", "1s ", "1S", "1H", "h1", "1m-", "1us"],
)
def test_parse_duration_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["10s", "1m30s", "2h"])
def test_duration_field_keeps_the_text(text: str) -> None:
    assert Monitoring(interval=text).interval == text
    assert Monitoring(interval=text).wire()["interval"] == text


@pytest.mark.parametrize("text", ["0s", "0m", "0h0m"])
def test_zero_duration_field_keeps_the_text(text: str) -> None:
    assert Retraining(cooldown=text).cooldown == text


@pytest.mark.parametrize("text", ["1d", "soon", "1.5h", ""])
def test_duration_field_rejects_invalid(text: str) -> None:
    with pytest.raises(ValidationError):
        Monitoring(interval=text)


# --- ModelDeploymentSpec -------------------------------------------------------------

MINIMAL: dict[str, Any] = {"model": f.model()}


def test_minimal_spec_fills_defaults() -> None:
    spec = ModelDeploymentSpec.model_validate(MINIMAL)
    assert spec.maturity.level == 0
    assert spec.maturity.overrides is None
    assert spec.model.kind == "predictive"
    assert spec.model.runtime is None
    assert spec.serving.deployment_mode == "RawDeployment"
    assert (spec.serving.min_replicas, spec.serving.max_replicas) == (1, 1)
    assert spec.monitoring is None
    assert spec.rollout is None
    assert spec.retraining is None
    assert spec.explainability is None
    assert spec.governance is None


@pytest.mark.parametrize(
    ("model", "attr", "default"),
    [
        (Rollout, "steps", [10, 25, 50, 100]),
        (Rollout, "interval", "1m"),
        (Rollout, "progress_deadline", "10m"),
        (Rollout, "router", "kserve"),
        (Rollout, "gate", "none"),
        (Monitoring, "interval", "30s"),
        (Retraining, "cooldown", "24h"),
        (Retraining, "max_runs_per_day", 3),
        (Retraining, "triggers", []),
    ],
)
def test_section_defaults(model: type[Any], attr: str, default: Any) -> None:
    assert getattr(model(), attr) == default


@pytest.mark.parametrize("missing", ["storageUri", "format", "version"])
def test_model_field_missing_is_rejected(missing: str) -> None:
    model = {k: v for k, v in f.model().items() if k != missing}
    with pytest.raises(ValidationError, match=missing):
        ModelDeploymentSpec.model_validate({"model": model})


def test_model_missing_is_rejected() -> None:
    with pytest.raises(ValidationError, match="model"):
        ModelDeploymentSpec.model_validate({"maturity": {"level": 1}})


@pytest.mark.parametrize("level", [-1, 5, 10])
def test_level_out_of_range_is_rejected(level: int) -> None:
    with pytest.raises(ValidationError, match="level"):
        ModelDeploymentSpec.model_validate({**MINIMAL, "maturity": {"level": level}})


@pytest.mark.parametrize("level", [0, 1, 2, 3, 4])
def test_levels_zero_to_four_are_accepted(level: int) -> None:
    assert Maturity(level=level).level == level


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"model": f.model(storageUri="")}, "storageUri"),
        ({"model": f.model(version="")}, "version"),
        ({"model": f.model(kind="generative")}, "kind"),
        ({"model": f.model(), "serving": {"deploymentMode": "Knative"}}, "deploymentMode"),
        ({"model": f.model(), "serving": {"maxReplicas": 0}}, "maxReplicas"),
        ({"model": f.model(), "monitoring": {"slo": {"maxErrorRate": 1.5}}}, "maxErrorRate"),
        ({"model": f.model(), "monitoring": {"prometheus": {"url": "prom:9090"}}}, "url"),
        ({"model": f.model(), "rollout": {"steps": [0, 50]}}, "steps"),
        ({"model": f.model(), "rollout": {"steps": []}}, "steps"),
        ({"model": f.model(), "rollout": {"interval": "1 minute"}}, "interval"),
        ({"model": f.model(), "retraining": {"triggers": [{"type": "cron"}]}}, "type"),
    ],
)
def test_invalid_field_is_rejected_naming_it(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        ModelDeploymentSpec.model_validate(spec)


def test_unknown_fields_are_ignored() -> None:
    spec = ModelDeploymentSpec.model_validate({**MINIMAL, "surprise": 1})
    assert "surprise" not in spec.wire()


def test_snake_case_names_are_accepted_too() -> None:
    spec = ModelDeploymentSpec.model_validate(
        {"model": {"format": "sklearn", "storage_uri": "s3://m", "version": "v1"}}
    )
    assert spec.model.storage_uri == "s3://m"


def test_models_are_frozen() -> None:
    spec = ModelDeploymentSpec.model_validate(MINIMAL)
    with pytest.raises(ValidationError):
        spec.maturity = Maturity(level=2)  # type: ignore[misc]


def test_trigger_for_is_aliased() -> None:
    trigger = RetrainingTrigger.model_validate(
        {"type": "drift", "query": "x", "above": 0.2, "for": "10m"}
    )
    assert trigger.for_ == "10m"
    assert trigger.wire()["for"] == "10m"


# --- wire() --------------------------------------------------------------------------


def test_wire_is_camel_case_without_unset_optionals() -> None:
    spec = ModelDeploymentSpec.model_validate(
        {
            "maturity": {"level": 1, "overrides": {"payloadLogging": True}},
            "model": f.model(resources={"requests": {"cpu": "500m"}}),
            "monitoring": {"slo": {"latencyP95Ms": 100}},
        }
    )
    assert spec.wire() == {
        "maturity": {"level": 1, "overrides": {"payloadLogging": True}},
        "model": {
            "kind": "predictive",
            "source": "self-hosted",
            "format": "sklearn",
            "storageUri": "s3://models/fraud/v1",
            "version": "v1",
            "resources": {"requests": {"cpu": "500m"}},
            "data": f.DATA,
        },
        "serving": {"deploymentMode": "RawDeployment", "minReplicas": 1, "maxReplicas": 1},
        "monitoring": {"slo": {"latencyP95Ms": 100}, "interval": "30s"},
    }


def test_wire_round_trips() -> None:
    spec = ModelDeploymentSpec.model_validate(
        {
            **MINIMAL,
            "maturity": {"level": 3},
            "rollout": {"steps": [5, 50, 100], "analysis": {"onNoData": "fail"}},
            "retraining": {
                "triggers": [{"type": "schedule", "cron": "0 3 * * 0"}],
                "pipeline": {"type": "webhook", "webhook": {"url": "http://hook"}},
            },
        }
    )
    assert ModelDeploymentSpec.model_validate(spec.wire()) == spec


def test_status_wire_is_camel_case() -> None:
    status = ModelDeploymentStatus.model_validate(
        {
            "observedGeneration": 2,
            "inferenceService": "fraud",
            "stable": {"version": "v1", "storageUri": "s3://m"},
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "R", "lastTransitionTime": "t"}
            ],
        }
    )
    wire = status.wire()
    assert wire["observedGeneration"] == 2
    assert wire["inferenceService"] == "fraud"
    assert wire["stable"] == {"version": "v1", "storageUri": "s3://m"}
    assert wire["conditions"][0]["lastTransitionTime"] == "t"
    assert "observed_generation" not in wire


def test_status_history_is_bounded() -> None:
    entry = {"time": "t", "event": "Deployed", "message": "m"}
    ModelDeploymentStatus.model_validate({"history": [entry] * HISTORY_LIMIT})
    with pytest.raises(ValidationError, match="history"):
        ModelDeploymentStatus.model_validate({"history": [entry] * (HISTORY_LIMIT + 1)})


# --- ModelDeployment resource --------------------------------------------------------


def test_from_body_reads_metadata_spec_and_status() -> None:
    body = f.body(
        level=1,
        generation=7,
        status={"observedGeneration": 6, "phase": "Ready"},
        annotations={"rung.dev/approve": "v2"},
    )
    body["metadata"]["resourceVersion"] = "42"
    md = ModelDeployment.from_body(body)
    assert (md.name, md.namespace, md.uid, md.generation) == (f.NAME, f.NAMESPACE, f.UID, 7)
    assert md.spec.maturity.level == 1
    assert md.status.observed_generation == 6
    assert md.status.phase == "Ready"
    assert md.annotations == {"rung.dev/approve": "v2"}
    assert md.resource_version == "42"


def test_from_body_tolerates_missing_status_and_generation() -> None:
    body = f.body()
    del body["status"]
    del body["metadata"]["generation"]
    del body["metadata"]["uid"]
    md = ModelDeployment.from_body(body)
    assert md.generation == 0
    assert md.uid == ""
    assert md.status == ModelDeploymentStatus()


def test_owner_reference_points_at_the_model_deployment() -> None:
    assert f.md().owner_reference() == {
        "apiVersion": "rung.dev/v1alpha1",
        "kind": "ModelDeployment",
        "name": f.NAME,
        "uid": f.UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_object_meta_carries_labels_and_owner() -> None:
    meta = f.md().object_meta("fraud-slo", extra="x")
    assert meta["name"] == "fraud-slo"
    assert meta["namespace"] == f.NAMESPACE
    assert meta["labels"] == {
        "app.kubernetes.io/managed-by": "rung",
        "rung.dev/model-deployment": f.NAME,
        "extra": "x",
    }
    assert meta["ownerReferences"] == [f.md().owner_reference()]
