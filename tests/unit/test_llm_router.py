"""rung.plan.routers.llm and rung.plan.llm_inference_service: LLMs on KServe's
LLMInferenceService, canaried in a route group or, with an external provider, through
Rung's HTTPRoute and an ExternalName Service (pure, table-tested)."""

from __future__ import annotations

from typing import Any

import pytest

from rung.api.resource import ModelDeployment
from rung.api.spec import ModelSource
from rung.api.status import ModelRef
from rung.plan.analysis import analysis_metrics
from rung.plan.inference_service import MODEL_HASH_ANNOTATION, ROLE_LABEL, model_hash
from rung.plan.llm_inference_service import (
    CREDENTIALS_SECRET_ANNOTATION,
    build_llm_inference_service,
)
from rung.plan.monitoring import build_pod_monitor, build_prometheus_rule
from rung.plan.promql import Targets, query_variables, render
from rung.plan.reads import router_of
from rung.plan.routers import LiveObjects, Traffic
from rung.plan.routers.llm import LlmRouter, canary_name, slot_ready, stable_serving

from . import factories as f

LLM = {"kind": "llm", "format": "huggingface", "data": None}
EXTERNAL = {
    "kind": "llm",
    "format": "openai",
    "source": "external",
    "storageUri": None,
    "data": None,
    "external": {
        "endpoint": "https://api.example.com/v1",
        "model": "gpt-x",
        "credentialsSecretRef": {"name": "provider-key"},
    },
}
SECRET_VALUE = "sk-test-never-anywhere"


def model(version: str, **fields: Any) -> ModelSource:
    base = {**LLM, "storageUri": f"hf://org/llm-{version}", "version": version}
    return ModelSource.model_validate(f.model(**{**base, **fields}))


def external(version: str = "ext") -> ModelSource:
    return ModelSource.model_validate(f.model(**{**EXTERNAL, "version": version}))


def ref(source: ModelSource) -> ModelRef:
    return ModelRef(
        version=source.version,
        storage_uri=source.location(),
        hash=model_hash(source),
        model=source,
    )


V1, V2, EXT = ref(model("v1")), ref(model("v2")), ref(external())
MD = f.md(level=2, model_fields={**LLM, "storageUri": "hf://org/llm-v1"})
ROUTER = LlmRouter()


def by_kind(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def group_weights(objects: list[dict[str, Any]]) -> dict[str, tuple[str, int | None]]:
    out = {}
    for o in objects:
        if o["kind"] == "LLMInferenceService":
            route = o["spec"].get("router", {}).get("route", {})
            out[o["metadata"]["name"]] = (route.get("group"), route.get("weight"))
    return out


def route_weights(objects: list[dict[str, Any]]) -> dict[str, int]:
    route = by_kind(objects).get(("HTTPRoute", "fraud"))
    assert route is not None
    refs = route["spec"]["rules"][0]["backendRefs"]
    return {r["name"]: r["weight"] for r in refs}


def test_kind_llm_has_the_llm_router_and_the_plain_option_does_not() -> None:
    assert router_of(MD).name == "llm"
    plain = f.md(
        level=2,
        model_fields={**LLM, "storageUri": "hf://org/llm-v1", "llm": {"api": "InferenceService"}},
    )
    assert router_of(plain).name == "kserve"
    assert router_of(f.md(level=2)).name == "kserve"


# --- objects: the route group --------------------------------------------------------


@pytest.mark.parametrize(
    ("traffic", "expected"),
    [
        (Traffic(stable=V1), {"fraud": ("fraud", 100)}),
        (
            Traffic(stable=V1, canary=V2, canary_weight=0),
            {"fraud": ("fraud", 100), "fraud-canary": ("fraud", 0)},
        ),
        (
            Traffic(stable=V1, canary=V2, canary_weight=25),
            {"fraud": ("fraud", 75), "fraud-canary": ("fraud", 25)},
        ),
        (
            Traffic(stable=V1, canary=V2, canary_weight=50, promoting=True),
            {"fraud": ("fraud", 0), "fraud-canary": ("fraud", 100)},
        ),
        (
            Traffic(stable=V1, canary=V2, canary_weight=0, rolling_back=True),
            {"fraud": ("fraud", 100), "fraud-canary": ("fraud", 0)},
        ),
    ],
    ids=["stable-only", "canary-not-ready", "step", "promoting", "rolling-back"],
)
def test_self_hosted_members_share_one_route_group(
    traffic: Traffic, expected: dict[str, tuple[str, int]]
) -> None:
    objects = ROUTER.objects(MD, traffic)
    assert group_weights(objects) == expected
    assert not [o for o in objects if o["kind"] in ("HTTPRoute", "Service")]


def test_promoting_moves_the_canary_model_into_the_stable_slot() -> None:
    objects = by_kind(ROUTER.objects(MD, Traffic(stable=V1, canary=V2, promoting=True)))
    stable = objects[("LLMInferenceService", "fraud")]
    assert stable["spec"]["model"]["uri"] == "hf://org/llm-v2"
    assert stable["metadata"]["annotations"][MODEL_HASH_ANNOTATION] == V2.hash
    assert stable["metadata"]["labels"][ROLE_LABEL] == "stable"


def test_llm_inference_service_manifest() -> None:
    md = f.md(
        level=2,
        serving={"minReplicas": 2, "maxReplicas": 2},
        rollout={"gateway": {"name": "inference-gateway", "namespace": "gw"}},
        model_fields={
            **LLM,
            "storageUri": "hf://org/llm-v1",
            "resources": {"limits": {"nvidia.com/gpu": 1}, "requests": {"cpu": "4"}},
            "llm": {
                "modelName": "assistant",
                "lora": {"adapters": [{"name": "sql", "uri": "hf://org/sql-lora"}], "maxRank": 8},
                "parallelism": {"tensor": 2, "data": 2, "dataLocal": 1},
                "scheduler": True,
            },
        },
    )
    isvc = build_llm_inference_service(
        md, md.spec.model, name="fraud", role="stable", group="fraud", weight=90
    )
    assert isvc["apiVersion"] == "serving.kserve.io/v1alpha2"
    assert isvc["kind"] == "LLMInferenceService"
    spec = isvc["spec"]
    assert spec["model"] == {
        "uri": "hf://org/llm-v1",
        "name": "assistant",
        "lora": {"adapters": [{"name": "sql", "uri": "hf://org/sql-lora"}], "maxRank": 8},
    }
    assert spec["replicas"] == 2
    assert spec["parallelism"] == {"tensor": 2, "data": 2, "dataLocal": 1}
    assert spec["template"] == {
        "containers": [
            {
                "name": "main",
                "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"cpu": "4"}},
            }
        ]
    }
    assert spec["router"] == {
        "route": {"group": "fraud", "weight": 90},
        "gateway": {"refs": [{"name": "inference-gateway", "namespace": "gw"}]},
        "scheduler": {},
    }
    assert spec["labels"]["rung.dev/model-deployment"] == "fraud"
    assert spec["annotations"]["rung.dev/model-version"] == md.spec.model.version
    assert isvc["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"


def test_pod_labels_stay_the_same_when_the_model_changes() -> None:
    """KServe puts `spec.labels` into its Deployment's (immutable) selector: a label that
    changed with the model would leave the stable slot's Deployment stuck on the old one."""
    before = ROUTER.objects(MD, Traffic(stable=V1))[0]
    after = ROUTER.objects(MD, Traffic(stable=V2))[0]
    assert before["spec"]["model"]["uri"] != after["spec"]["model"]["uri"]
    assert before["spec"]["labels"] == after["spec"]["labels"]
    assert after["spec"]["annotations"]["rung.dev/model-version"] == "v2"


def test_without_a_gateway_the_group_uses_kserves_default_gateway() -> None:
    isvc = ROUTER.objects(MD, Traffic(stable=V1))[0]
    assert isvc["spec"]["router"] == {"route": {"group": "fraud", "weight": 100}, "gateway": {}}
    assert isvc["spec"]["model"]["name"] == "fraud"


@pytest.mark.parametrize(
    ("llm", "expected"),
    [({}, "fraud"), ({"modelName": "assistant"}, "assistant")],
    ids=["the-deployments-name", "modelName"],
)
def test_both_slots_serve_one_model_name_or_kserve_leaves_the_canary_out(
    llm: dict[str, Any], expected: str
) -> None:
    """KServe routes a group only over members with the same model names (a member that
    differs is `MemberDivergence`, out of the others' routes): the canary serves the
    stable's `model`, not one named after its slot."""
    stable, canary = ref(model("v1", llm=llm)), ref(model("v2", llm=llm))
    objects = ROUTER.objects(MD, Traffic(stable=stable, canary=canary, canary_weight=20))
    names = {o["metadata"]["name"]: o["spec"]["model"]["name"] for o in objects
             if o["kind"] == "LLMInferenceService"}  # fmt: skip
    assert names == {"fraud": expected, "fraud-canary": expected}


# --- objects: an external provider ---------------------------------------------------


@pytest.mark.parametrize(
    ("stable", "canary", "weight", "promoting", "expected"),
    [
        (EXT, None, 0, False, {"fraud-external": 100}),
        (
            EXT,
            V2,
            20,
            False,
            {"fraud-external": 80, "fraud-canary-kserve-workload-svc": 20},
        ),
        (
            V1,
            EXT,
            50,
            False,
            {"fraud-kserve-workload-svc": 50, "fraud-canary-external": 50},
        ),
        (
            EXT,
            V2,
            50,
            True,
            {"fraud-kserve-workload-svc": 0, "fraud-canary-kserve-workload-svc": 100},
        ),
    ],
    ids=["external-only", "external-to-self-hosted", "self-hosted-to-external", "promoting"],
)
def test_an_external_provider_is_routed_by_rungs_httproute(
    stable: ModelRef, canary: ModelRef | None, weight: int, promoting: bool, expected: Any
) -> None:
    traffic = Traffic(stable=stable, canary=canary, canary_weight=weight, promoting=promoting)
    objects = ROUTER.objects(MD, traffic)
    if promoting:
        # both slots self-hosted now: KServe's route group takes over, Rung's route goes
        assert group_weights(objects) == {"fraud": ("fraud", 0), "fraud-canary": ("fraud", 100)}
        return
    assert route_weights(objects) == expected
    for isvc in (o for o in objects if o["kind"] == "LLMInferenceService"):
        assert "router" not in isvc["spec"]  # Rung's route, not a group's


def test_external_service_names_the_host_and_the_secret_by_reference_only() -> None:
    objects = by_kind(ROUTER.objects(MD, Traffic(stable=EXT)))
    service = objects[("Service", "fraud-external")]
    assert service["spec"] == {
        "type": "ExternalName",
        "externalName": "api.example.com",
        "ports": [{"name": "https", "port": 443, "protocol": "TCP"}],
    }
    annotations = service["metadata"]["annotations"]
    assert annotations[CREDENTIALS_SECRET_ANNOTATION] == "provider-key/apiKey"
    backend = objects[("HTTPRoute", "fraud")]["spec"]["rules"][0]["backendRefs"][0]
    assert backend["filters"] == [
        {"type": "URLRewrite", "urlRewrite": {"hostname": "api.example.com"}}
    ]
    assert SECRET_VALUE not in repr(objects)


# --- reading the cluster -------------------------------------------------------------


def live_isvc(
    name: str,
    source: ModelRef,
    *,
    weight: int | None = None,
    ready: str = "True",
    generation: int = 1,
    observed: int = 1,
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if weight is not None:
        spec["router"] = {"route": {"group": "fraud", "weight": weight}}
    return {
        "metadata": {
            "name": name,
            "generation": generation,
            "annotations": {MODEL_HASH_ANNOTATION: source.hash},
        },
        "spec": spec,
        "status": {
            "observedGeneration": observed,
            "conditions": [{"type": "WorkloadsReady", "status": ready}],
        },
    }


@pytest.mark.parametrize(
    ("live", "weight"),
    [
        (LiveObjects(), None),
        (LiveObjects(llm_inference_services={"fraud-canary": live_isvc("x", V2, weight=25)}), 25),
        (
            LiveObjects(
                http_routes={
                    "fraud": {
                        "spec": {
                            "rules": [
                                {
                                    "backendRefs": [
                                        {"name": "fraud-external", "weight": 60},
                                        {"name": "fraud-canary-kserve-workload-svc", "weight": 40},
                                    ]
                                }
                            ]
                        }
                    }
                }
            ),
            40,
        ),
    ],
    ids=["nothing", "route-group", "rungs-route"],
)
def test_canary_weight(live: LiveObjects, weight: int | None) -> None:
    assert ROUTER.canary_weight(MD, live) == weight


@pytest.mark.parametrize(
    ("isvc", "ready"),
    [
        (live_isvc("fraud-canary", V2), True),
        (live_isvc("fraud-canary", V1), False),  # another model
        (live_isvc("fraud-canary", V2, ready="False"), False),
        (live_isvc("fraud-canary", V2, generation=2, observed=1), False),  # not reconciled
    ],
    ids=["ready", "other-model", "workloads-not-ready", "old-generation"],
)
def test_canary_ready_needs_its_model_and_workloads_at_the_generation(
    isvc: dict[str, Any], ready: bool
) -> None:
    live = LiveObjects(llm_inference_services={"fraud-canary": isvc})
    assert ROUTER.canary_ready(MD, V2, live) is ready


def deployment(
    generation: int = 2, observed: int = 2, replicas: int = 1, updated: int = 1, available: int = 1
) -> dict[str, Any]:
    return {
        "metadata": {"name": "fraud-canary-kserve", "generation": generation},
        "spec": {"replicas": 1},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": updated,
            "availableReplicas": available,
        },
    }


@pytest.mark.parametrize(
    ("workload", "ready"),
    [
        (None, True),  # not visible to Rung: KServe's WorkloadsReady alone
        (deployment(), True),
        (deployment(replicas=2, updated=1, available=2), False),  # an old pod still serves
        (deployment(observed=1), False),  # the Deployment controller has not seen it yet
        (deployment(updated=1, available=0), False),
    ],
    ids=["not-visible", "rolled-out", "rolling", "not-observed", "not-available"],
)
def test_a_slot_is_ready_once_kserves_deployment_has_rolled_out(
    workload: dict[str, Any] | None, ready: bool
) -> None:
    """KServe's WorkloadsReady is the Deployment's Available condition, True while a rolling
    update still runs the previous model's pods."""
    isvc = live_isvc("fraud-canary", V2)
    isvc["status"]["workloads"] = {"primary": {"kind": "Deployment", "name": "fraud-canary-kserve"}}
    deployments = {} if workload is None else {"fraud-canary-kserve": workload}
    live = LiveObjects(llm_inference_services={"fraud-canary": isvc}, deployments=deployments)
    assert ROUTER.canary_ready(MD, V2, live) is ready


def test_an_external_slot_is_ready_once_its_service_is_applied() -> None:
    service = {"metadata": {"annotations": {MODEL_HASH_ANNOTATION: EXT.hash}}}
    assert slot_ready(LiveObjects(services={"fraud-canary-external": service}), "fraud-canary", EXT)
    assert not slot_ready(LiveObjects(), "fraud-canary", EXT)


def test_promoted_when_the_stable_slot_serves_the_canary_model() -> None:
    live = LiveObjects(llm_inference_services={"fraud": live_isvc("fraud", V2)})
    assert ROUTER.promoted(MD, V2, live)
    assert not ROUTER.promoted(MD, V1, LiveObjects())


def test_stable_serving_reports_why_it_is_not_ready() -> None:
    isvc = live_isvc("fraud", V1, ready="False")
    isvc["status"]["conditions"][0].update(reason="MinimumReplicasUnavailable", message="0/1")
    obj, ready = stable_serving(MD, {V1.hash}, LiveObjects(llm_inference_services={"fraud": isvc}))
    assert obj is isvc
    assert ready == {"status": "False", "reason": "MinimumReplicasUnavailable", "message": "0/1"}


def test_targets_are_the_llm_isvc_names() -> None:
    assert ROUTER.targets(MD, V1, V2, LiveObjects()) == Targets("fraud", canary_name(MD))
    assert ROUTER.targets(MD, V1, None, LiveObjects()) == Targets("fraud", None)


# --- metrics -------------------------------------------------------------------------


def test_default_analysis_reads_vllm_series_by_llm_isvc_name() -> None:
    metrics = {m.name: m for m in analysis_metrics(MD.spec)}
    assert list(metrics) == [
        "error-rate",
        "time-to-first-token-p95",
        "inter-token-latency-p95",
        "latency-p95",
        "queue-time-p95",
        "kv-cache-usage",
    ]
    ttft = metrics["time-to-first-token-p95"]
    assert (ttft.max, ttft.max_increase_over_stable) == (1000, 200)
    assert metrics["inter-token-latency-p95"].max == 100
    variables = query_variables(MD, Targets("fraud", "fraud-canary"), "1m", "fraud-canary")
    rendered = render(ttft.query, variables)
    assert 'llm_isvc_name="fraud-canary"' in rendered
    assert "vllm:time_to_first_token_seconds_bucket" in rendered
    assert "vllm:inter_token_latency_seconds_bucket" in metrics["inter-token-latency-p95"].query
    assert 'status="5xx"' in metrics["error-rate"].query


def test_pod_monitor_adds_the_llm_isvc_name_label_kserve_documents() -> None:
    endpoint = build_pod_monitor(MD)["spec"]["podMetricsEndpoints"][0]
    assert endpoint["portNumber"] == 8000
    assert endpoint["relabelings"] == [
        {
            "action": "replace",
            "sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
            "targetLabel": "llm_isvc_name",
        }
    ]


def test_slo_alerts_use_vllm_metrics() -> None:
    rule = build_prometheus_rule(MD, Targets("fraud", None))
    rules = {r["alert"]: r["expr"] for r in rule["spec"]["groups"][0]["rules"]}
    assert set(rules) >= {
        "RungModelErrorRateHigh",
        "RungModelTimeToFirstTokenHigh",
        "RungModelInterTokenLatencyHigh",
        "RungModelKvCacheNearlyFull",
    }
    assert all('llm_isvc_name="fraud"' in expr for expr in rules.values())
    assert "vllm:inter_token_latency_seconds_bucket" in rules["RungModelInterTokenLatencyHigh"]


def _md(model_fields: dict[str, Any]) -> ModelDeployment:
    return f.md(level=2, model_fields=model_fields)


def test_model_hash_of_a_predictive_model_is_unchanged_by_the_new_fields() -> None:
    # source/llm/external unset or default: the hash of a model from before them
    predictive = ModelSource.model_validate(f.model())
    assert model_hash(predictive) == model_hash(
        ModelSource.model_validate({**f.model(), "source": "self-hosted"})
    )
    assert model_hash(model("v1")) != model_hash(model("v1", llm={"modelName": "other"}))


def test_an_external_providers_service_is_a_kind_rung_manages() -> None:
    from rung.api.kinds import SERVICE
    from rung.kube import OWNED_KINDS, kind_of

    service = ROUTER.objects(MD, Traffic(stable=EXT))[0]
    assert SERVICE.api_version == "v1"
    assert kind_of(service) is SERVICE
    assert SERVICE in OWNED_KINDS


def test_an_llm_without_spec_rollout_gets_longer_intervals() -> None:
    from rung.ladder import capabilities
    from rung.plan.reads import rollout_settings

    ladder = capabilities(2, None)
    settings = rollout_settings(MD, ladder)
    assert (settings.interval_seconds, settings.deadline_seconds) == (300, 1800)
    assert settings.steps == (10, 25, 50, 100)
    predictive = rollout_settings(f.md(level=2), ladder)
    assert (predictive.interval_seconds, predictive.deadline_seconds) == (60, 600)
    given = f.md(level=2, model_fields=MD.spec.model.wire(), rollout={"interval": "30s"})
    assert rollout_settings(given, ladder).interval_seconds == 30


def test_payload_logging_on_an_llm_inference_service_says_it_cannot_log() -> None:
    from rung.plan.explainability import governance_conditions

    md = f.md(
        level=4,
        model_fields={**LLM, "storageUri": "hf://org/llm-v1"},
        explainability={"payloadLogging": {"url": "http://audit-sink"}},
        governance={
            "owner": "a", "contact": "b", "intendedUse": "c", "riskClass": "limited"
        },
    )  # fmt: skip
    conditions, events = governance_conditions(md, [], "2026-12-01T00:00:00Z")
    audit = next(c for c in conditions if c.type == "AuditLogging")
    assert (audit.status, audit.reason) == ("False", "NoPayloadLoggerForLLM")
    assert "http://audit-sink" in audit.message
    assert [e.reason for e in events if e.type == "Warning"][-1] == "PayloadLoggingUnavailable"
