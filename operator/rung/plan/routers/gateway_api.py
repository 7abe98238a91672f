"""The `gateway-api` router: stable and canary InferenceServices behind one HTTPRoute.

Both InferenceServices run in RawDeployment mode; KServe gives each a predictor
Service (`<isvc>-predictor`, port 80). The HTTPRoute splits requests between the
two Services with weighted backendRefs. Promotion first sends all traffic to the
canary, then moves the canary's model into the stable InferenceService, and only
when that is ready routes back to stable and removes the canary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rung.api.resource import ModelDeployment
from rung.api.status import ModelRef
from rung.plan.inference_service import MODEL_HASH_ANNOTATION, build_inference_service
from rung.plan.live import LiveObjects, annotation, condition_true, predictor_ready
from rung.plan.promql import Targets
from rung.plan.routers.base import Traffic, TrafficPatch, route_to_stable

GATEWAY_GROUP = "gateway.networking.k8s.io"
PREDICTOR_PORT = 80


def canary_name(md: ModelDeployment) -> str:
    """Name of the canary InferenceService."""
    return f"{md.name}-canary"


class GatewayApiRouter:
    """Canary traffic split by a Gateway API HTTPRoute."""

    name = "gateway-api"
    mirrors = True
    """A RequestMirror filter (percent: standard channel since Gateway API v1.3)."""

    def objects(self, md: ModelDeployment, traffic: Traffic) -> list[dict[str, Any]]:
        stable, canary = traffic.stable, traffic.canary
        assert stable.model is not None
        annotations = dict(traffic.annotations)
        if canary is None:
            return [
                build_inference_service(md, stable.model, extra_annotations=annotations),
                self.route(md, None),
            ]
        assert canary.model is not None
        stable_model = canary.model if traffic.promoting else stable.model
        weight = 100 if traffic.promoting else traffic.canary_weight
        return [
            build_inference_service(md, stable_model, extra_annotations=annotations),
            build_inference_service(
                md,
                canary.model,
                name=canary_name(md),
                role="canary",
                extra_annotations=annotations,
            ),
            self.route(md, weight, None if traffic.promoting else traffic.mirror_percent),
        ]

    def route(
        self, md: ModelDeployment, canary_weight: int | None, mirror_percent: int | None = None
    ) -> dict[str, Any]:
        """The HTTPRoute splitting traffic; without a canary (None) only stable is listed.

        During a canary its backend stays listed even at weight 0, so a rollback can
        see that traffic is back on stable before the canary is removed. In a shadow
        stage (`mirror_percent`) a RequestMirror filter copies that share of requests to
        the canary's Service; the gateway discards its responses.
        """
        backends = [_backend(f"{md.name}-predictor", 100 - (canary_weight or 0))]
        if canary_weight is not None:
            backends.append(_backend(f"{canary_name(md)}-predictor", canary_weight))
        rollout = md.spec.rollout
        parents = []
        if rollout is not None and rollout.gateway is not None:
            parent: dict[str, Any] = {
                "group": GATEWAY_GROUP,
                "kind": "Gateway",
                "name": rollout.gateway.name,
            }
            if rollout.gateway.namespace:
                parent["namespace"] = rollout.gateway.namespace
            parents.append(parent)
        rule: dict[str, Any] = {
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": backends,
        }
        if mirror_percent is not None and canary_weight is not None:
            mirror = _backend(f"{canary_name(md)}-predictor", 0)
            del mirror["weight"]
            rule["filters"] = [
                {
                    "type": "RequestMirror",
                    "requestMirror": {"backendRef": mirror, "percent": mirror_percent},
                }
            ]
        return {
            "apiVersion": f"{GATEWAY_GROUP}/v1",
            "kind": "HTTPRoute",
            "metadata": md.object_meta(md.name),
            "spec": {"parentRefs": parents, "rules": [rule]},
        }

    def canary_weight(self, md: ModelDeployment, live: LiveObjects) -> int | None:
        route = live.http_routes.get(md.name)
        if route is None:
            return None
        for rule in (route.get("spec") or {}).get("rules") or []:
            for ref in rule.get("backendRefs") or []:
                if ref.get("name") == f"{canary_name(md)}-predictor":
                    return int(ref.get("weight", 1))
        return None

    def canary_mirrored(self, md: ModelDeployment, live: LiveObjects) -> bool:
        return mirror_percent(live.http_routes.get(md.name), f"{canary_name(md)}-predictor") > 0

    def canary_ready(self, md: ModelDeployment, canary: ModelRef, live: LiveObjects) -> bool:
        isvc = live.inference_services.get(canary_name(md))
        return (
            annotation(isvc, MODEL_HASH_ANNOTATION) == canary.hash
            and condition_true(isvc, "Ready")
            and predictor_ready(live, isvc, None)
        )

    def promoted(self, md: ModelDeployment, canary: ModelRef, live: LiveObjects) -> bool:
        isvc = live.inference_services.get(md.name)
        return (
            annotation(isvc, MODEL_HASH_ANNOTATION) == canary.hash
            and condition_true(isvc, "Ready")
            and predictor_ready(live, isvc, None)
        )

    def promotes_in_place(self, md: ModelDeployment, stable: ModelRef, canary: ModelRef) -> bool:
        return True  # the stable InferenceService takes the canary's model

    def traffic_to_stable(self, md: ModelDeployment, live: LiveObjects) -> list[TrafficPatch]:
        patch = route_to_stable(live.http_routes.get(md.name), {f"{canary_name(md)}-predictor"})
        return [] if patch is None else [patch]

    def targets(
        self, md: ModelDeployment, stable: ModelRef, canary: ModelRef | None, live: LiveObjects
    ) -> Targets:
        return Targets(
            stable=f"{md.name}-predictor",
            canary=None if canary is None else f"{canary_name(md)}-predictor",
        )


def _backend(service: str, weight: int) -> dict[str, Any]:
    return {
        "group": "",
        "kind": "Service",
        "name": service,
        "port": PREDICTOR_PORT,
        "weight": weight,
    }


def mirror_percent(route: Mapping[str, Any] | None, service: str) -> int:
    """The percent of requests `route` mirrors to `service` (0: none). A RequestMirror
    filter without percent or fraction mirrors every request."""
    total = 0
    for rule in ((route or {}).get("spec") or {}).get("rules") or []:
        for f in rule.get("filters") or []:
            mirror = f.get("requestMirror") or {}
            if (
                f.get("type") != "RequestMirror"
                or (mirror.get("backendRef") or {}).get("name") != service
            ):
                continue
            fraction = mirror.get("fraction")
            if "percent" in mirror:
                total = max(total, int(mirror["percent"]))
            elif fraction:
                share = int(fraction.get("numerator", 0)) / int(fraction.get("denominator", 100))
                total = max(total, max(1, round(100 * share)) if share > 0 else 0)
            else:
                total = 100
    return total
