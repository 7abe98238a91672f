"""Level 4 on the InferenceService: explainer (component or sidecar), payload logger,
the Explainable/AuditLogging conditions, and the approval gate (all pure)."""

from __future__ import annotations

from typing import Any

import pytest

from rung.api.resource import ModelDeployment
from rung.api.spec import ModelSource
from rung.api.status import ModelRef
from rung.ladder import capabilities
from rung.plan.conditions import get_condition
from rung.plan.diff import covers
from rung.plan.explainability import (
    ART_IMAGE,
    AUDIT_LOGGING,
    EXPLAINABILITY_ANNOTATION,
    EXPLAINABLE,
    SIDECAR_CONTAINER,
    audit_sink,
    choose_explainer,
    governance_conditions,
)
from rung.plan.inference_service import build_inference_service, model_hash
from rung.plan.reconcile import Observation, plan, rollout_settings
from rung.plan.routers import Traffic
from rung.plan.routers.gateway_api import GatewayApiRouter
from rung.plan.routers.kserve import KServeRouter

from . import factories as f

SINK = "http://audit-sink.audit:8080/events"
GOVERNANCE = {
    "owner": "team-fraud",
    "contact": "#fraud-oncall",
    "intendedUse": "scoring card payments for fraud; not for credit decisions",
    "riskClass": "high",
}
PIPELINE = {"pipeline": {"type": "webhook", "webhook": {"url": "http://retrain"}}}


def level4(
    *, explainer: dict[str, Any] | None = None, sink: str | None = SINK, **kwargs: Any
) -> ModelDeployment:
    explainability: dict[str, Any] = {}
    if explainer is not None:
        explainability["explainer"] = explainer
    if sink is not None:
        explainability["payloadLogging"] = {"url": sink, "mode": "all"}
    kwargs.setdefault("level", 4)
    return f.md(governance=GOVERNANCE, retraining=PIPELINE, explainability=explainability, **kwargs)


def isvc_of(md: ModelDeployment) -> dict[str, Any]:
    return build_inference_service(md, md.spec.model)


def predictor(md: ModelDeployment) -> dict[str, Any]:
    spec: dict[str, Any] = isvc_of(md)["spec"]["predictor"]
    return spec


def source(version: str, **fields: Any) -> ModelSource:
    return ModelSource.model_validate(
        f.model(storageUri=f"s3://models/fraud/{version}", version=version, **fields)
    )


def ref(version: str, **fields: Any) -> ModelRef:
    model = source(version, **fields)
    return ModelRef(
        version=version, storage_uri=model.storage_uri, hash=model_hash(model), model=model
    )


# --- below level 4 nothing changes ---------------------------------------------------


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_below_level_4_no_explainer_no_logger(level: int) -> None:
    md = f.md(level=level, retraining=PIPELINE) if level == 3 else f.md(level=level)
    isvc = isvc_of(md)
    assert "explainer" not in isvc["spec"]
    assert "logger" not in isvc["spec"]["predictor"]
    assert "containers" not in isvc["spec"]["predictor"]
    assert isvc["metadata"]["annotations"][EXPLAINABILITY_ANNOTATION] == "none"


def test_explainability_settings_below_level_4_are_ignored() -> None:
    md = f.md(
        level=2,
        explainability={"explainer": {"mode": "sidecar"}, "payloadLogging": {"url": SINK}},
    )
    assert "explainer" not in isvc_of(md)["spec"]
    assert "logger" not in predictor(md)
    assert "containers" not in predictor(md)
    assert audit_sink(md) is None


# --- explainer component -------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["sklearn", "xgboost", "lightgbm", "pmml", "SKLearn"])
def test_art_component_is_the_default_for_tabular_formats(fmt: str) -> None:
    md = level4(model_fields={"format": fmt})
    assert isvc_of(md)["spec"]["explainer"] == {"art": {"type": "SquareAttack"}}


def test_art_component_settings() -> None:
    md = level4(
        explainer={
            "type": "art",
            "image": "registry.example/art:1",
            "config": {"nb_classes": "2", "max_iter": "50"},
            "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
        }
    )
    assert isvc_of(md)["spec"]["explainer"] == {
        "art": {
            "type": "SquareAttack",
            "image": "registry.example/art:1",
            "config": {"nb_classes": "2", "max_iter": "50"},
            "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
        }
    }


def test_custom_component_is_a_kserve_container() -> None:
    md = level4(
        explainer={"type": "custom", "image": "me/explainer:2", "config": {"b": "2", "a": "1"}},
        model_fields={"format": "huggingface"},
    )
    assert isvc_of(md)["spec"]["explainer"] == {
        "containers": [
            {
                "name": "kserve-container",
                "image": "me/explainer:2",
                "args": ["--a", "1", "--b", "2"],
            }
        ]
    }


def test_component_mode_adds_no_sidecar() -> None:
    md = level4()
    assert "containers" not in predictor(md)


# --- formats and kinds with no fitting explainer --------------------------------------


@pytest.mark.parametrize(
    ("model_fields", "explainer", "words"),
    [
        ({"format": "huggingface", "kind": "llm"}, None, ["LLMs", "custom"]),
        ({"format": "pytorch"}, None, ["model format pytorch", "custom", "type art"]),
        ({"format": "huggingface", "kind": "llm"}, {"type": "art"}, ["not LLMs", "custom"]),
        ({"format": "vllm", "kind": "llm"}, {"mode": "sidecar"}, ["LLMs"]),
    ],
    ids=["llm-default", "pytorch-default", "llm-art", "llm-sidecar"],
)
def test_no_explainer_where_nothing_fits(
    model_fields: dict[str, Any], explainer: dict[str, Any] | None, words: list[str]
) -> None:
    md = level4(model_fields=model_fields, explainer=explainer)
    isvc = isvc_of(md)
    assert "explainer" not in isvc["spec"]
    assert "containers" not in isvc["spec"]["predictor"]
    assert isvc["metadata"]["annotations"][EXPLAINABILITY_ANNOTATION] == "logger=all"
    choice = choose_explainer(md, md.spec.model)
    assert choice is not None
    assert choice.type is None
    assert choice.refusal is not None
    for word in words:
        assert word in choice.refusal
    # the logger does not depend on the explainer
    assert isvc["spec"]["predictor"]["logger"] == {"url": SINK, "mode": "all"}


def test_explicit_art_is_allowed_for_other_predictive_formats() -> None:
    md = level4(model_fields={"format": "pytorch"}, explainer={"type": "art"})
    assert isvc_of(md)["spec"]["explainer"] == {"art": {"type": "SquareAttack"}}


def test_custom_explainer_serves_llms() -> None:
    md = level4(
        model_fields={"format": "huggingface", "kind": "llm"},
        explainer={"type": "custom", "image": "me/llm-explainer:1"},
    )
    assert isvc_of(md)["spec"]["explainer"]["containers"][0]["image"] == "me/llm-explainer:1"


# --- sidecar -------------------------------------------------------------------------


def test_art_sidecar_runs_next_to_the_model() -> None:
    md = level4(explainer={"mode": "sidecar", "config": {"nb_classes": "2"}})
    isvc = isvc_of(md)
    assert "explainer" not in isvc["spec"]
    spec = isvc["spec"]["predictor"]
    assert spec["model"]["modelFormat"] == {"name": "sklearn"}  # the model stays the predictor
    assert spec["containers"] == [
        {
            "name": SIDECAR_CONTAINER,
            "image": ART_IMAGE,
            "args": [
                "--model_name",
                f.NAME,
                "--predictor_host",
                "localhost:8080",
                "--http_port",
                "8082",
                "--grpc_port",
                "8083",
                "--adversary_type",
                "SquareAttack",
                "--nb_classes",
                "2",
            ],
            "ports": [{"name": "explainer", "containerPort": 8082, "protocol": "TCP"}],
        }
    ]
    assert isvc["metadata"]["annotations"][EXPLAINABILITY_ANNOTATION] == (
        "explainer=art/sidecar,logger=all"
    )


def test_serverless_sidecar_declares_no_port() -> None:
    md = level4(explainer={"mode": "sidecar"}, serving={"deploymentMode": "Serverless"})
    (container,) = predictor(md)["containers"]
    assert "ports" not in container  # Knative: only the serving container has a port
    assert "--http_port" in container["args"]


def test_custom_sidecar_uses_its_image_without_art_arguments() -> None:
    md = level4(
        explainer={
            "type": "custom",
            "mode": "sidecar",
            "image": "me/shap:3",
            "resources": {"limits": {"cpu": 1}},
        }
    )
    (container,) = predictor(md)["containers"]
    assert container["image"] == "me/shap:3"
    assert "--adversary_type" not in container["args"]
    assert container["resources"] == {"limits": {"cpu": "1"}}


def test_sidecar_asks_for_the_model_of_its_own_inference_service() -> None:
    md = level4(explainer={"mode": "sidecar"})
    isvc = build_inference_service(md, md.spec.model, name="fraud-canary", role="canary")
    args = isvc["spec"]["predictor"]["containers"][0]["args"]
    assert args[args.index("--model_name") + 1] == "fraud-canary"


# --- payload logger ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["all", "request", "response"])
def test_logger_on_the_predictor(mode: str) -> None:
    md = f.md(
        level=4,
        governance=GOVERNANCE,
        retraining=PIPELINE,
        explainability={"payloadLogging": {"url": SINK, "mode": mode}},
    )
    assert predictor(md)["logger"] == {"url": SINK, "mode": mode}
    assert audit_sink(md) == SINK


def test_logger_without_a_sink_uses_kserves_default() -> None:
    md = level4(sink=None)
    assert predictor(md)["logger"] == {"mode": "all"}
    assert audit_sink(md) is None


def test_overrides_switch_level_4_parts_on_and_off_separately() -> None:
    md = f.md(
        maturity={"level": 4, "overrides": {"payloadLogging": False}},
        governance=GOVERNANCE,
        retraining=PIPELINE,
        explainability={"payloadLogging": {"url": SINK}},
    )
    assert "logger" not in predictor(md)
    assert "explainer" in isvc_of(md)["spec"]
    assert audit_sink(md) is None

    md = f.md(
        maturity={"level": 1, "overrides": {"explainability": True}},
        explainability={"payloadLogging": {"url": SINK}},
    )
    assert isvc_of(md)["spec"]["explainer"] == {"art": {"type": "SquareAttack"}}
    assert "logger" not in predictor(md)


def test_switching_level_4_off_changes_the_object_so_it_is_reapplied() -> None:
    """Server-side apply removes fields we stop sending, but only if we apply: the
    annotation makes the level-3 manifest differ from the live level-4 object."""
    on = isvc_of(level4())
    off = isvc_of(level4(level=3))
    assert "explainer" not in off["spec"]
    assert not covers(on, off)
    assert covers(on, on)


# --- canaries ------------------------------------------------------------------------


def test_gateway_api_canary_has_explainer_and_logger_in_both_inference_services() -> None:
    md = level4(level=4, rollout={"router": "gateway-api"})
    objects = GatewayApiRouter().objects(
        md, Traffic(stable=ref("v1"), canary=ref("v2"), canary_weight=20)
    )
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "InferenceService"}
    assert set(services) == {"fraud", "fraud-canary"}
    for isvc in services.values():
        assert isvc["spec"]["explainer"] == {"art": {"type": "SquareAttack"}}
        assert isvc["spec"]["predictor"]["logger"] == {"url": SINK, "mode": "all"}


def test_gateway_api_canary_explainer_follows_each_model() -> None:
    md = level4(rollout={"router": "gateway-api"})
    objects = GatewayApiRouter().objects(
        md,
        Traffic(stable=ref("v1"), canary=ref("v2", format="onnx"), canary_weight=20),
    )
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "InferenceService"}
    assert "explainer" in services["fraud"]["spec"]
    assert "explainer" not in services["fraud-canary"]["spec"]  # ART does not default to onnx


def test_kserve_raw_canary_predictor_has_logger_and_sidecar() -> None:
    md = level4(rollout={"router": "kserve"}, explainer={"mode": "sidecar"})
    (isvc,) = KServeRouter().objects(
        md, Traffic(stable=ref("v1"), canary=ref("v2"), canary_weight=20)
    )
    canary = isvc["spec"]["canary"][0]["predictor"]
    assert canary["logger"] == {"url": SINK, "mode": "all"}
    assert [c["name"] for c in canary["containers"]] == [SIDECAR_CONTAINER]
    assert isvc["spec"]["predictor"]["containers"][0]["name"] == SIDECAR_CONTAINER


def test_kserve_raw_canary_keeps_the_explainer_component_on_the_inference_service() -> None:
    md = level4(rollout={"router": "kserve"})
    (isvc,) = KServeRouter().objects(
        md, Traffic(stable=ref("v1"), canary=ref("v2"), canary_weight=20)
    )
    assert isvc["spec"]["explainer"] == {"art": {"type": "SquareAttack"}}
    assert "containers" not in isvc["spec"]["canary"][0]["predictor"]
    assert isvc["spec"]["canary"][0]["predictor"]["logger"] == {"url": SINK, "mode": "all"}


# --- conditions and events -----------------------------------------------------------


def test_conditions_when_everything_fits() -> None:
    conditions, events = governance_conditions(level4(), [], f.NOW_TEXT)
    explainable = get_condition(conditions, EXPLAINABLE)
    audit = get_condition(conditions, AUDIT_LOGGING)
    assert explainable is not None
    assert (explainable.status, explainable.reason) == ("True", "ExplainerConfigured")
    assert "ART (SquareAttack) explainer as a KServe explainer component" in explainable.message
    assert audit is not None
    assert (audit.status, audit.reason) == ("True", "AuditSinkConfigured")
    assert SINK in audit.message
    assert events == []


def test_llm_without_explainer_is_a_false_condition_and_one_warning() -> None:
    # on a plain InferenceService, where KServe's logger applies (LLMInferenceService:
    # tests/unit/test_llm_router.py)
    llm = {"format": "huggingface", "kind": "llm", "llm": {"api": "InferenceService"}}
    md = level4(model_fields=llm)
    conditions, events = governance_conditions(md, [], f.NOW_TEXT)
    explainable = get_condition(conditions, EXPLAINABLE)
    assert explainable is not None
    assert (explainable.status, explainable.reason) == ("False", "NoExplainerForModel")
    assert [(e.reason, e.type) for e in events] == [("ExplainerUnavailable", "Warning")]
    assert events[0].message == explainable.message
    again, events = governance_conditions(md, conditions, f.LATER_TEXT)
    assert again == conditions
    assert events == []


def test_missing_sink_is_a_false_condition_and_one_warning() -> None:
    md = level4(sink=None)
    conditions, events = governance_conditions(md, [], f.NOW_TEXT)
    audit = get_condition(conditions, AUDIT_LOGGING)
    assert audit is not None
    assert (audit.status, audit.reason) == ("False", "NoAuditSink")
    assert "spec.explainability.payloadLogging.url" in audit.message
    assert [e.reason for e in events] == ["AuditSinkMissing"]
    assert governance_conditions(md, conditions, f.LATER_TEXT)[1] == []


def test_conditions_go_away_with_the_capabilities() -> None:
    conditions, _ = governance_conditions(level4(), [], f.NOW_TEXT)
    conditions, events = governance_conditions(level4(level=3), conditions, f.LATER_TEXT)
    assert get_condition(conditions, EXPLAINABLE) is None
    assert get_condition(conditions, AUDIT_LOGGING) is None
    assert events == []


def test_plan_carries_the_conditions_and_desires_the_explainer() -> None:
    md = level4()
    result = plan(Observation(md=md, now=f.NOW, inference_services={f.NAME: f.live_isvc()}))
    types = {c.type for c in result.status.conditions}
    assert {EXPLAINABLE, AUDIT_LOGGING} <= types
    (isvc,) = [o for o in result.desired if o["kind"] == "InferenceService"]
    assert isvc["spec"]["explainer"] == {"art": {"type": "SquareAttack"}}
    assert isvc["spec"]["predictor"]["logger"] == {"url": SINK, "mode": "all"}


def test_plan_announces_a_missing_explainer_once() -> None:
    md = level4(model_fields={"format": "huggingface", "kind": "llm"})
    first = plan(Observation(md=md, now=f.NOW, inference_services={f.NAME: f.live_isvc()}))
    assert "ExplainerUnavailable" in [e.reason for e in first.events]
    settled = level4(
        model_fields={"format": "huggingface", "kind": "llm"}, status=first.status.wire()
    )
    live = f.live_isvc(model_fields={"format": "huggingface", "kind": "llm"})
    second = plan(Observation(md=settled, now=f.LATER, inference_services={f.NAME: live}))
    assert "ExplainerUnavailable" not in [e.reason for e in second.events]


# --- approval gate -------------------------------------------------------------------


def test_level_4_waits_for_approval_by_default() -> None:
    md = level4(rollout={"router": "gateway-api", "gate": "none"})
    ladder = capabilities(4)
    assert rollout_settings(md, ladder).manual_gate


def test_approval_gate_can_be_switched_off_at_level_4() -> None:
    md = f.md(
        maturity={"level": 4, "overrides": {"approvalGate": False}},
        governance=GOVERNANCE,
        retraining=PIPELINE,
    )
    ladder = capabilities(4, md.spec.maturity.overrides)
    assert not rollout_settings(md, ladder).manual_gate
