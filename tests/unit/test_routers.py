"""rung.plan.routers: the kserve and gateway-api traffic routers, both deployment modes."""

from __future__ import annotations

import copy
from typing import Any, get_args

import pytest

from rung.api.resource import MANAGED_BY_LABEL, OWNER_LABEL, ModelDeployment
from rung.api.spec import ModelSource, RouterName
from rung.api.status import ModelRef
from rung.plan.inference_service import (
    CANARY_HASH_ANNOTATION,
    MODEL_HASH_ANNOTATION,
    ROLE_LABEL,
    model_hash,
)
from rung.plan.routers import ROUTERS, LiveObjects, Router, Targets, Traffic, router_for
from rung.plan.routers.gateway_api import GatewayApiRouter
from rung.plan.routers.kserve import KServeRouter

from . import factories as f


def ref(version: str, predictor_name: str | None = None) -> ModelRef:
    source = ModelSource.model_validate(
        f.model(storageUri=f"s3://models/fraud/{version}", version=version)
    )
    return ModelRef(
        version=version,
        storage_uri=source.storage_uri,
        hash=model_hash(source),
        model=source,
        predictor_name=predictor_name,
    )


V1, V2 = ref("v1"), ref("v2")
V1_NAMED = ref("v1", predictor_name="r-0ld0ld00")
V2_NAMED = ref("v2", predictor_name="r-c0ffee00")
V2_DERIVED = f"r-{(V2.hash or '')[:8]}"
VERSION_OF_HASH = {V1.hash: "v1", V2.hash: "v2"}

RAW = f.md(level=2, rollout={"router": "kserve"})
SERVERLESS = f.md(level=2, rollout={"router": "kserve"}, serving={"deploymentMode": "Serverless"})
GATEWAY = f.md(level=2, rollout={"router": "gateway-api"})
KSERVE, GATEWAY_API = KServeRouter(), GatewayApiRouter()
CASES: dict[str, tuple[Router, ModelDeployment]] = {
    "kserve-raw": (KSERVE, RAW),
    "kserve-serverless": (KSERVE, SERVERLESS),
    "gateway-api": (GATEWAY_API, GATEWAY),
}
"""Every router in every deployment mode it supports."""


# --- router_for ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"), [("kserve", KServeRouter), ("gateway-api", GatewayApiRouter)]
)
def test_router_for(name: str, cls: type) -> None:
    router = router_for(name)
    assert type(router) is cls
    assert router.name == name


@pytest.mark.parametrize("name", ["istio", "", "KServe", "gateway_api"])
def test_router_for_unknown_name_names_the_known_routers(name: str) -> None:
    with pytest.raises(ValueError, match="known: gateway-api, kserve") as raised:
        router_for(name)
    assert repr(name) in str(raised.value)


def test_every_spec_router_name_has_a_router() -> None:
    # `llm` is implied by model.kind llm, never named in spec.rollout.router
    assert set(get_args(RouterName)) | {"llm"} == set(ROUTERS)


# --- objects() -----------------------------------------------------------------------


def summarize(obj: dict[str, Any]) -> tuple[Any, ...]:
    """The routing-relevant parts of a desired object, compactly."""
    meta = obj["metadata"]
    if obj["kind"] == "HTTPRoute":
        (rule,) = obj["spec"]["rules"]
        return (
            "HTTPRoute",
            meta["name"],
            [(b["name"], b["port"], b["weight"]) for b in rule["backendRefs"]],
        )
    predictor = obj["spec"]["predictor"]
    annotations = meta["annotations"]
    return (
        "InferenceService",
        meta["name"],
        meta["labels"][ROLE_LABEL],
        VERSION_OF_HASH[annotations[MODEL_HASH_ANNOTATION]],
        VERSION_OF_HASH.get(annotations.get(CANARY_HASH_ANNOTATION)),
        _version(predictor),
        predictor.get("name"),
        predictor.get("canaryTrafficPercent"),
        [
            (c["predictor"]["name"], _version(c["predictor"]), c["trafficPercent"])
            for c in obj["spec"].get("canary") or []
        ],
    )


def _version(predictor: dict[str, Any]) -> str:
    """The version a predictor serves, from its storageUri (s3://models/fraud/<version>)."""
    return str(predictor["model"]["storageUri"].rsplit("/", 1)[1])


def isvc(
    name: str = "fraud",
    role: str = "stable",
    model_hash: str = "v1",
    canary_hash: str | None = None,
    serves: str = "v1",
    predictor_name: str | None = None,
    canary_traffic_percent: int | None = None,
    canaries: list[tuple[str, str, int]] | None = None,
) -> tuple[Any, ...]:
    """The summary of an InferenceService (versions stand for their hashes and URIs)."""
    return (
        "InferenceService",
        name,
        role,
        model_hash,
        canary_hash,
        serves,
        predictor_name,
        canary_traffic_percent,
        canaries or [],
    )


def route(*backends: tuple[str, int]) -> tuple[Any, ...]:
    return ("HTTPRoute", "fraud", [(name, 80, weight) for name, weight in backends])


OBJECT_CASES: dict[str, tuple[str, Traffic, list[tuple[Any, ...]]]] = {
    # kserve, RawDeployment: spec.canary with its own predictor name
    "raw-stable-only": ("kserve-raw", Traffic(stable=V1), [isvc()]),
    "raw-stable-only-named": (
        "kserve-raw",
        Traffic(stable=V1_NAMED),
        [isvc(predictor_name="r-0ld0ld00")],
    ),
    "raw-canary": (
        "kserve-raw",
        Traffic(stable=V1, canary=V2_NAMED, canary_weight=25),
        [isvc(canary_hash="v2", canaries=[("r-c0ffee00", "v2", 25)])],
    ),
    "raw-canary-derived-name": (
        "kserve-raw",
        Traffic(stable=V1_NAMED, canary=V2, canary_weight=10),
        [
            isvc(
                canary_hash="v2",
                predictor_name="r-0ld0ld00",
                canaries=[(V2_DERIVED, "v2", 10)],
            )
        ],
    ),
    "raw-canary-at-0": (
        "kserve-raw",
        Traffic(stable=V1, canary=V2_NAMED, canary_weight=0),
        [isvc(canary_hash="v2", canaries=[("r-c0ffee00", "v2", 0)])],
    ),
    "raw-promoting": (
        "kserve-raw",
        Traffic(stable=V1, canary=V2_NAMED, canary_weight=100, promoting=True),
        [isvc(model_hash="v2", serves="v2", predictor_name="r-c0ffee00")],
    ),
    # kserve, Serverless: canaryTrafficPercent on the one predictor
    "serverless-stable-only": ("kserve-serverless", Traffic(stable=V1), [isvc()]),
    "serverless-canary": (
        "kserve-serverless",
        Traffic(stable=V1, canary=V2, canary_weight=25),
        [isvc(model_hash="v2", canary_hash="v2", serves="v2", canary_traffic_percent=25)],
    ),
    "serverless-canary-at-0": (
        "kserve-serverless",
        Traffic(stable=V1, canary=V2, canary_weight=0),
        [isvc(model_hash="v2", canary_hash="v2", serves="v2", canary_traffic_percent=0)],
    ),
    "serverless-promoting": (
        "kserve-serverless",
        Traffic(stable=V1, canary=V2, canary_weight=100, promoting=True),
        [isvc(model_hash="v2", canary_hash="v2", serves="v2")],
    ),
    # gateway-api: two InferenceServices behind a weighted HTTPRoute
    "gateway-stable-only": (
        "gateway-api",
        Traffic(stable=V1),
        [isvc(), route(("fraud-predictor", 100))],
    ),
    "gateway-canary": (
        "gateway-api",
        Traffic(stable=V1, canary=V2, canary_weight=25),
        [
            isvc(),
            isvc("fraud-canary", "canary", model_hash="v2", serves="v2"),
            route(("fraud-predictor", 75), ("fraud-canary-predictor", 25)),
        ],
    ),
    "gateway-canary-at-0": (
        "gateway-api",
        Traffic(stable=V1, canary=V2, canary_weight=0),
        [
            isvc(),
            isvc("fraud-canary", "canary", model_hash="v2", serves="v2"),
            route(("fraud-predictor", 100), ("fraud-canary-predictor", 0)),
        ],
    ),
    "gateway-promoting": (
        "gateway-api",
        Traffic(stable=V1, canary=V2, canary_weight=50, promoting=True),
        [
            isvc(model_hash="v2", serves="v2"),
            isvc("fraud-canary", "canary", model_hash="v2", serves="v2"),
            route(("fraud-predictor", 0), ("fraud-canary-predictor", 100)),
        ],
    ),
}


@pytest.mark.parametrize("name", list(OBJECT_CASES))
def test_objects(name: str) -> None:
    case, traffic, expected = OBJECT_CASES[name]
    router, md = CASES[case]
    assert [summarize(o) for o in router.objects(md, traffic)] == expected


@pytest.mark.parametrize("name", list(OBJECT_CASES))
def test_objects_are_owned_and_labelled(name: str) -> None:
    case, traffic, _ = OBJECT_CASES[name]
    router, md = CASES[case]
    for obj in router.objects(md, traffic):
        meta = obj["metadata"]
        assert meta["namespace"] == f.NAMESPACE
        assert meta["ownerReferences"] == [md.owner_reference()]
        assert meta["labels"][MANAGED_BY_LABEL] == "rung"
        assert meta["labels"][OWNER_LABEL] == f.NAME


@pytest.mark.parametrize("name", list(OBJECT_CASES))
def test_extra_annotations_reach_every_inference_service(name: str) -> None:
    case, traffic, _ = OBJECT_CASES[name]
    router, md = CASES[case]
    extra = Traffic(
        stable=traffic.stable,
        canary=traffic.canary,
        canary_weight=traffic.canary_weight,
        promoting=traffic.promoting,
        annotations={"prometheus.io/scrape": "true"},
    )
    services = [o for o in router.objects(md, extra) if o["kind"] == "InferenceService"]
    assert services
    for service in services:
        assert service["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


@pytest.mark.parametrize("name", list(OBJECT_CASES))
def test_deployment_mode_annotation(name: str) -> None:
    case, traffic, _ = OBJECT_CASES[name]
    router, md = CASES[case]
    for obj in router.objects(md, traffic):
        if obj["kind"] == "InferenceService":
            assert obj["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == (
                md.spec.serving.deployment_mode
            )


@pytest.mark.parametrize(
    ("gateway", "parents"),
    [
        (None, []),
        (
            {"name": "public"},
            [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public"}],
        ),
        (
            {"name": "public", "namespace": "infra"},
            [
                {
                    "group": "gateway.networking.k8s.io",
                    "kind": "Gateway",
                    "name": "public",
                    "namespace": "infra",
                }
            ],
        ),
    ],
)
def test_http_route_parent(gateway: dict[str, str] | None, parents: list[dict[str, str]]) -> None:
    rollout: dict[str, Any] = {"router": "gateway-api"}
    if gateway is not None:
        rollout["gateway"] = gateway
    md = f.md(level=2, rollout=rollout)
    objects = GATEWAY_API.objects(md, Traffic(stable=V1, canary=V2, canary_weight=10))
    (http_route,) = [o for o in objects if o["kind"] == "HTTPRoute"]
    assert http_route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert http_route["spec"]["parentRefs"] == parents
    (rule,) = http_route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    for backend in rule["backendRefs"]:
        assert (backend["group"], backend["kind"]) == ("", "Service")


# --- live objects --------------------------------------------------------------------


def live_objects(
    case: str, traffic: Traffic, *, isvc_status: dict[str, dict[str, Any]] | None = None
) -> LiveObjects:
    """What the cluster holds once `traffic`'s objects were applied, with the given status."""
    router, md = CASES[case]
    services: dict[str, dict[str, Any]] = {}
    routes: dict[str, dict[str, Any]] = {}
    for obj in router.objects(md, traffic):
        obj = copy.deepcopy(obj)
        name = obj["metadata"]["name"]
        if obj["kind"] == "HTTPRoute":
            routes[name] = obj
        else:
            obj["status"] = (isvc_status or {}).get(name, {})
            services[name] = obj
    return LiveObjects(services, routes, f.predictor_deployments(services))


def ready_status(**more: Any) -> dict[str, Any]:
    return {"conditions": [{"type": "Ready", "status": "True"}], **more}


NOT_READY = {"conditions": [{"type": "Ready", "status": "False"}]}
CANARY_25 = Traffic(stable=V1, canary=V2_NAMED, canary_weight=25)
PROMOTING = Traffic(stable=V1, canary=V2_NAMED, canary_weight=100, promoting=True)
EMPTY = LiveObjects()


def edited(
    live: LiveObjects, path: tuple[str, ...], value: Any, *, isvc: str = "fraud"
) -> LiveObjects:
    """`live` with the field at `path` of one InferenceService set (None: removed)."""
    services: dict[str, dict[str, Any]] = copy.deepcopy(
        {name: dict(obj) for name, obj in live.inference_services.items()}
    )
    target = services[isvc]
    for key in path[:-1]:
        target = target.setdefault(key, {})
    if value is None:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return LiveObjects(services, live.http_routes, live.deployments)


# --- canary_weight() -----------------------------------------------------------------


def raw_live(weight: int, reported: list[dict[str, Any]] | None = None) -> LiveObjects:
    traffic = Traffic(stable=V1, canary=V2_NAMED, canary_weight=weight)
    status = {"fraud": {"canaryStatuses": reported}} if reported is not None else None
    return live_objects("kserve-raw", traffic, isvc_status=status)


def gateway_route(*backends: dict[str, Any]) -> LiveObjects:
    spec = {"rules": [{"backendRefs": list(backends)}]}
    return LiveObjects(http_routes={"fraud": {"kind": "HTTPRoute", "spec": spec}})


WEIGHT_CASES: dict[str, tuple[str, LiveObjects, int | None]] = {
    "raw-nothing-live": ("kserve-raw", EMPTY, None),
    "raw-no-canary": ("kserve-raw", live_objects("kserve-raw", Traffic(stable=V1)), None),
    "raw-spec": ("kserve-raw", raw_live(25), 25),
    "raw-spec-0": ("kserve-raw", raw_live(0), 0),
    "raw-status-preferred": (
        "kserve-raw",
        raw_live(0, [{"name": "r-c0ffee00", "trafficPercent": 10}]),
        10,
    ),
    "raw-status-0-preferred": (
        "kserve-raw",
        raw_live(25, [{"name": "r-c0ffee00", "trafficPercent": 0}]),
        0,
    ),
    "raw-status-of-another-predictor": (
        "kserve-raw",
        raw_live(25, [{"name": "r-other000", "trafficPercent": 10}]),
        25,
    ),
    "raw-status-without-percent": (
        "kserve-raw",
        raw_live(25, [{"name": "r-c0ffee00", "ready": True}]),
        25,
    ),
    "raw-spec-without-percent": (
        "kserve-raw",
        edited(raw_live(25), ("spec", "canary"), [{"predictor": {"name": "r-c0ffee00"}}]),
        0,
    ),
    "serverless-nothing-live": ("kserve-serverless", EMPTY, None),
    "serverless-no-canary": (
        "kserve-serverless",
        live_objects("kserve-serverless", Traffic(stable=V1)),
        None,
    ),
    "serverless-canary": ("kserve-serverless", live_objects("kserve-serverless", CANARY_25), 25),
    "serverless-canary-0": (
        "kserve-serverless",
        live_objects("kserve-serverless", Traffic(stable=V1, canary=V2, canary_weight=0)),
        0,
    ),
    "serverless-promoting": (
        "kserve-serverless",
        live_objects("kserve-serverless", PROMOTING),
        None,
    ),
    "gateway-nothing-live": ("gateway-api", EMPTY, None),
    "gateway-stable-only": ("gateway-api", live_objects("gateway-api", Traffic(stable=V1)), None),
    "gateway-canary": ("gateway-api", live_objects("gateway-api", CANARY_25), 25),
    "gateway-canary-0": (
        "gateway-api",
        live_objects("gateway-api", Traffic(stable=V1, canary=V2, canary_weight=0)),
        0,
    ),
    "gateway-promoting": ("gateway-api", live_objects("gateway-api", PROMOTING), 100),
    "gateway-default-weight": (
        "gateway-api",
        gateway_route({"name": "fraud-predictor"}, {"name": "fraud-canary-predictor"}),
        1,
    ),
    "gateway-route-without-rules": ("gateway-api", gateway_route(), None),
}


@pytest.mark.parametrize("name", list(WEIGHT_CASES))
def test_canary_weight(name: str) -> None:
    case, live, weight = WEIGHT_CASES[name]
    router, md = CASES[case]
    assert router.canary_weight(md, live) == weight


# --- canary_ready() ------------------------------------------------------------------

SERVERLESS_ROLLED = {"latestCreatedRevision": "fraud-predictor-00002"}
READY_CASES: dict[str, tuple[str, LiveObjects, bool]] = {
    "raw-nothing-live": ("kserve-raw", EMPTY, False),
    "raw-ready": (
        "kserve-raw",
        live_objects(
            "kserve-raw",
            CANARY_25,
            isvc_status={"fraud": {"canaryStatuses": [{"name": "r-c0ffee00", "ready": True}]}},
        ),
        True,
    ),
    "raw-not-ready": (
        "kserve-raw",
        live_objects(
            "kserve-raw",
            CANARY_25,
            isvc_status={"fraud": {"canaryStatuses": [{"name": "r-c0ffee00", "ready": False}]}},
        ),
        False,
    ),
    "raw-no-canary-status": ("kserve-raw", live_objects("kserve-raw", CANARY_25), False),
    "raw-another-predictor-ready": (
        "kserve-raw",
        live_objects(
            "kserve-raw",
            CANARY_25,
            isvc_status={"fraud": {"canaryStatuses": [{"name": "r-other000", "ready": True}]}},
        ),
        False,
    ),
    "raw-stale-canary-hash": (
        "kserve-raw",
        edited(
            live_objects(
                "kserve-raw",
                CANARY_25,
                isvc_status={"fraud": {"canaryStatuses": [{"name": "r-c0ffee00", "ready": True}]}},
            ),
            ("metadata", "annotations", CANARY_HASH_ANNOTATION),
            V1.hash,
        ),
        False,
    ),
    "raw-stable-ready-only": (
        "kserve-raw",
        live_objects("kserve-raw", Traffic(stable=V1), isvc_status={"fraud": ready_status()}),
        False,
    ),
    "serverless-nothing-live": ("kserve-serverless", EMPTY, False),
    "serverless-ready": (
        "kserve-serverless",
        live_objects(
            "kserve-serverless",
            CANARY_25,
            isvc_status={
                "fraud": {
                    "components": {
                        "predictor": {
                            "latestCreatedRevision": "fraud-predictor-00002",
                            "latestReadyRevision": "fraud-predictor-00002",
                        }
                    }
                }
            },
        ),
        True,
    ),
    "serverless-latest-not-ready": (
        "kserve-serverless",
        live_objects(
            "kserve-serverless",
            CANARY_25,
            isvc_status={
                "fraud": {
                    "components": {
                        "predictor": {
                            "latestCreatedRevision": "fraud-predictor-00002",
                            "latestReadyRevision": "fraud-predictor-00001",
                        }
                    }
                }
            },
        ),
        False,
    ),
    "serverless-no-revision-yet": (
        "kserve-serverless",
        live_objects("kserve-serverless", CANARY_25, isvc_status={"fraud": ready_status()}),
        False,
    ),
    "serverless-stale-canary-hash": (
        "kserve-serverless",
        edited(
            live_objects(
                "kserve-serverless",
                CANARY_25,
                isvc_status={
                    "fraud": {
                        "components": {
                            "predictor": {
                                "latestCreatedRevision": "fraud-predictor-00002",
                                "latestReadyRevision": "fraud-predictor-00002",
                            }
                        }
                    }
                },
            ),
            ("metadata", "annotations", CANARY_HASH_ANNOTATION),
            None,
        ),
        False,
    ),
    "gateway-nothing-live": ("gateway-api", EMPTY, False),
    "gateway-ready": (
        "gateway-api",
        live_objects("gateway-api", CANARY_25, isvc_status={"fraud-canary": ready_status()}),
        True,
    ),
    "gateway-not-ready": (
        "gateway-api",
        live_objects("gateway-api", CANARY_25, isvc_status={"fraud-canary": NOT_READY}),
        False,
    ),
    "gateway-no-conditions": ("gateway-api", live_objects("gateway-api", CANARY_25), False),
    "gateway-only-stable-ready": (
        "gateway-api",
        live_objects("gateway-api", CANARY_25, isvc_status={"fraud": ready_status()}),
        False,
    ),
    "gateway-canary-on-another-model": (
        "gateway-api",
        edited(
            live_objects("gateway-api", CANARY_25, isvc_status={"fraud-canary": ready_status()}),
            ("metadata", "annotations", MODEL_HASH_ANNOTATION),
            V1.hash,
            isvc="fraud-canary",
        ),
        False,
    ),
}


@pytest.mark.parametrize("name", list(READY_CASES))
def test_canary_ready(name: str) -> None:
    case, live, ready = READY_CASES[name]
    router, md = CASES[case]
    assert router.canary_ready(md, V2_NAMED, live) is ready


# --- promoted() ----------------------------------------------------------------------

PROMOTED_CASES: dict[str, tuple[str, LiveObjects, bool]] = {
    "raw-nothing-live": ("kserve-raw", EMPTY, False),
    "raw-promoted": (
        "kserve-raw",
        live_objects("kserve-raw", PROMOTING, isvc_status={"fraud": ready_status()}),
        True,
    ),
    "raw-not-ready": (
        "kserve-raw",
        live_objects("kserve-raw", PROMOTING, isvc_status={"fraud": NOT_READY}),
        False,
    ),
    "raw-canary-still-listed": (
        "kserve-raw",
        live_objects("kserve-raw", CANARY_25, isvc_status={"fraud": ready_status()}),
        False,
    ),
    "raw-stable-still-on-old-model": (
        "kserve-raw",
        live_objects("kserve-raw", Traffic(stable=V1), isvc_status={"fraud": ready_status()}),
        False,
    ),
    "serverless-nothing-live": ("kserve-serverless", EMPTY, False),
    "serverless-promoted": (
        "kserve-serverless",
        live_objects("kserve-serverless", PROMOTING, isvc_status={"fraud": ready_status()}),
        True,
    ),
    "serverless-not-ready": (
        "kserve-serverless",
        live_objects("kserve-serverless", PROMOTING, isvc_status={"fraud": NOT_READY}),
        False,
    ),
    "serverless-stable-on-old-model": (
        "kserve-serverless",
        live_objects(
            "kserve-serverless", Traffic(stable=V1), isvc_status={"fraud": ready_status()}
        ),
        False,
    ),
    "gateway-nothing-live": ("gateway-api", EMPTY, False),
    "gateway-promoted": (
        "gateway-api",
        live_objects("gateway-api", PROMOTING, isvc_status={"fraud": ready_status()}),
        True,
    ),
    "gateway-stable-not-ready-yet": (
        "gateway-api",
        live_objects(
            "gateway-api",
            PROMOTING,
            isvc_status={"fraud": NOT_READY, "fraud-canary": ready_status()},
        ),
        False,
    ),
    "gateway-only-canary-on-new-model": (
        "gateway-api",
        live_objects(
            "gateway-api",
            CANARY_25,
            isvc_status={"fraud": ready_status(), "fraud-canary": ready_status()},
        ),
        False,
    ),
}


@pytest.mark.parametrize("name", list(PROMOTED_CASES))
def test_promoted(name: str) -> None:
    case, live, promoted = PROMOTED_CASES[name]
    router, md = CASES[case]
    assert router.promoted(md, V2_NAMED, live) is promoted


def test_serverless_is_not_promoted_while_traffic_is_still_split() -> None:
    live = live_objects("kserve-serverless", CANARY_25, isvc_status={"fraud": ready_status()})
    assert KSERVE.promoted(SERVERLESS, V2, live) is False


# --- targets() -----------------------------------------------------------------------

REVISIONS = {
    "fraud": {
        "components": {
            "predictor": {
                "previousRolledoutRevision": "fraud-predictor-00001",
                "latestCreatedRevision": "fraud-predictor-00002",
                "latestReadyRevision": "fraud-predictor-00002",
            }
        }
    }
}
TARGET_CASES: dict[str, tuple[str, ModelRef, ModelRef | None, LiveObjects, Targets]] = {
    "raw-stable-only": ("kserve-raw", V1, None, EMPTY, Targets("fraud-predictor", None)),
    "raw-canary": (
        "kserve-raw",
        V1,
        V2_NAMED,
        EMPTY,
        Targets("fraud-predictor", "fraud-r-c0ffee00-predictor"),
    ),
    "raw-canary-derived-name": (
        "kserve-raw",
        V1,
        V2,
        EMPTY,
        Targets("fraud-predictor", f"fraud-{V2_DERIVED}-predictor"),
    ),
    "raw-named-stable": (
        "kserve-raw",
        V1_NAMED,
        V2_NAMED,
        EMPTY,
        Targets("fraud-r-0ld0ld00-predictor", "fraud-r-c0ffee00-predictor"),
    ),
    "serverless-revisions": (
        "kserve-serverless",
        V1,
        V2,
        live_objects("kserve-serverless", CANARY_25, isvc_status=REVISIONS),
        Targets("fraud-predictor-00001", "fraud-predictor-00002"),
    ),
    "serverless-no-status": (
        "kserve-serverless",
        V1,
        V2,
        live_objects("kserve-serverless", CANARY_25),
        Targets("fraud-predictor", None),
    ),
    "serverless-nothing-live": (
        "kserve-serverless",
        V1,
        V2,
        EMPTY,
        Targets("fraud-predictor", None),
    ),
    "serverless-no-canary": (
        "kserve-serverless",
        V1,
        None,
        live_objects("kserve-serverless", Traffic(stable=V1), isvc_status=REVISIONS),
        Targets("fraud-predictor-00001", None),
    ),
    "gateway-canary": (
        "gateway-api",
        V1,
        V2,
        EMPTY,
        Targets("fraud-predictor", "fraud-canary-predictor"),
    ),
    "gateway-stable-only": ("gateway-api", V1, None, EMPTY, Targets("fraud-predictor", None)),
}


@pytest.mark.parametrize("name", list(TARGET_CASES))
def test_targets(name: str) -> None:
    case, stable, canary, live, targets = TARGET_CASES[name]
    router, md = CASES[case]
    assert router.targets(md, stable, canary, live) == targets
