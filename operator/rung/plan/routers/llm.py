"""The `llm` router: an LLM's stable and canary in one weighted route.

Two slots, `<name>` (stable) and `<name>-canary`, each served by a KServe
LLMInferenceService or, for `source: external`, by an ExternalName Service standing
for the provider.

- Both self-hosted: both LLMInferenceServices join the route group `<name>`
  (`spec.router.route.group`) and Rung sets each one's `route.weight` (stable
  100 - w, canary w): KServe puts both behind one weighted HTTPRoute and reports the
  weights it routes in `status.router.group`. This is KServe's own LLM canary API,
  with the steps, analysis and rollback automated.
- An external provider in either slot: KServe's group cannot route to it, so Rung
  writes the HTTPRoute `<name>` itself, with weighted backendRefs to the
  LLMInferenceService's workload Service and to the provider's ExternalName Service
  (its Host rewritten to the provider's).

Promotion first sends all traffic to the canary, then moves the canary's model into
the stable slot, and only when that is ready routes back to stable and removes the
canary (as the gateway-api router). Metrics: `{{ target }}` is the slot's name, the
`llm_isvc_name` label KServe's PodMonitor relabelling gives every vLLM series.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rung.api.kinds import LLM_INFERENCE_SERVICE
from rung.api.resource import ModelDeployment
from rung.api.spec import ModelSource
from rung.api.status import ModelRef
from rung.plan.inference_service import MODEL_HASH_ANNOTATION
from rung.plan.live import LiveObjects, Obj, annotation, object_condition, rolled_out
from rung.plan.llm_inference_service import (
    VLLM_PORT,
    build_external_service,
    build_llm_inference_service,
    external_backend_port,
    external_service,
    workload_service,
)
from rung.plan.promql import Targets
from rung.plan.routers.base import Traffic, TrafficPatch, route_to_stable

LLM_ROUTER = "llm"
GATEWAY_GROUP = "gateway.networking.k8s.io"
WORKLOADS_READY = "WorkloadsReady"
"""The LLMInferenceService condition that its vLLM workloads are available."""


def canary_name(md: ModelDeployment) -> str:
    """Name of the canary slot (LLMInferenceService or `<slot>-external` Service)."""
    return f"{md.name}-canary"


@dataclass(frozen=True)
class _Slot:
    name: str
    model: ModelSource
    role: str
    weight: int


class LlmRouter:
    """Canary traffic between LLMs: KServe's route group, or Rung's HTTPRoute when an
    external provider takes part."""

    name = LLM_ROUTER
    mirrors = False

    def objects(self, md: ModelDeployment, traffic: Traffic) -> list[dict[str, Any]]:
        stable, canary = traffic.stable, traffic.canary
        assert stable.model is not None
        if canary is None:
            slots = [_Slot(md.name, stable.model, "stable", 100)]
        else:
            assert canary.model is not None
            stable_model = canary.model if traffic.promoting else stable.model
            weight = 100 if traffic.promoting else traffic.canary_weight
            slots = [
                _Slot(md.name, stable_model, "stable", 100 - weight),
                _Slot(canary_name(md), canary.model, "canary", weight),
            ]
        routed_by_rung = any(s.model.source == "external" for s in slots)
        pod_annotations = _pod_annotations(traffic.annotations)
        objects: list[dict[str, Any]] = []
        for slot in slots:
            if slot.model.source == "external":
                objects.append(
                    build_external_service(md, slot.model, name=slot.name, role=slot.role)
                )
            else:
                objects.append(
                    build_llm_inference_service(
                        md,
                        slot.model,
                        name=slot.name,
                        role=slot.role,
                        group=None if routed_by_rung else md.name,
                        weight=None if routed_by_rung else slot.weight,
                        pod_annotations=pod_annotations,
                    )
                )
        if routed_by_rung:
            objects.append(self.route(md, slots))
        return objects

    def route(self, md: ModelDeployment, slots: list[_Slot]) -> dict[str, Any]:
        """Rung's HTTPRoute when an external provider takes part: one weighted backendRef
        per slot (during a canary the canary's stays listed even at weight 0)."""
        backends = [_backend(slot) for slot in slots]
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
        return {
            "apiVersion": f"{GATEWAY_GROUP}/v1",
            "kind": "HTTPRoute",
            "metadata": md.object_meta(md.name),
            "spec": {
                "parentRefs": parents,
                "rules": [
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                        "backendRefs": backends,
                    }
                ],
            },
        }

    def canary_weight(self, md: ModelDeployment, live: LiveObjects) -> int | None:
        canary = canary_name(md)
        route = live.http_routes.get(md.name)
        if route is not None:
            names = {external_service(canary), workload_service(canary)}
            for rule in (route.get("spec") or {}).get("rules") or []:
                for ref in rule.get("backendRefs") or []:
                    if ref.get("name") in names:
                        return int(ref.get("weight", 1))
            return None
        isvc = live.llm_inference_services.get(canary)
        if isvc is None:
            return None
        route_spec = (((isvc.get("spec") or {}).get("router") or {}).get("route")) or {}
        weight = route_spec.get("weight")
        return None if weight is None else int(weight)

    def canary_mirrored(self, md: ModelDeployment, live: LiveObjects) -> bool:
        return False

    def traffic_to_stable(self, md: ModelDeployment, live: LiveObjects) -> list[TrafficPatch]:
        """Rung's HTTPRoute (an external provider takes part) or the route group's
        weights: the canary's 0, stable's 100."""
        canary = canary_name(md)
        route = live.http_routes.get(md.name)
        if route is not None:
            names = {external_service(canary), workload_service(canary)}
            to_stable = route_to_stable(route, names)
            return [] if to_stable is None else [to_stable]
        patches = []
        for name, weight in ((canary, 0), (md.name, 100)):
            isvc = live.llm_inference_services.get(name) or {}
            route_spec = (((isvc.get("spec") or {}).get("router") or {}).get("route")) or {}
            if route_spec.get("weight") not in (None, weight):
                patch = {"spec": {"router": {"route": {"weight": weight}}}}
                patches.append(TrafficPatch(LLM_INFERENCE_SERVICE, name, patch))
        return patches

    def canary_ready(self, md: ModelDeployment, canary: ModelRef, live: LiveObjects) -> bool:
        return slot_ready(live, canary_name(md), canary)

    def promoted(self, md: ModelDeployment, canary: ModelRef, live: LiveObjects) -> bool:
        return slot_ready(live, md.name, canary)

    def promotes_in_place(self, md: ModelDeployment, stable: ModelRef, canary: ModelRef) -> bool:
        return True  # the stable slot takes the canary's model

    def targets(
        self, md: ModelDeployment, stable: ModelRef, canary: ModelRef | None, live: LiveObjects
    ) -> Targets:
        return Targets(stable=md.name, canary=None if canary is None else canary_name(md))


def llm_isvc_ready(isvc: Obj | None, live: LiveObjects) -> bool:
    """Whether KServe has reconciled the LLMInferenceService's current generation, its
    vLLM workloads are available (`WorkloadsReady`) and its Deployment has rolled out.
    Routing readiness is the Gateway's: a cluster without a Gateway implementation never
    reports the route ready.

    KServe's `WorkloadsReady` is its Deployment's `Available` condition, True all through a
    rolling update while old pods still serve the previous model; so the Deployment
    (`status.workloads.primary`, which carries Rung's pod labels: KServe v0.20 uses
    `spec.labels` for its labels too, so Rung's cache has it) must be rolled out as well,
    when Rung can see it."""
    if not isvc:
        return False
    status = isvc.get("status") or {}
    generation = int((isvc.get("metadata") or {}).get("generation") or 0)
    found = object_condition(isvc, WORKLOADS_READY)
    deployment = live.deployments.get(_primary_deployment(isvc))
    return (
        int(status.get("observedGeneration") or 0) >= generation
        and found is not None
        and found.get("status") == "True"
        and (deployment is None or rolled_out(deployment))
    )


def _primary_deployment(isvc: Obj) -> str:
    """The Deployment KServe runs vLLM in: `status.workloads.primary`, else `<name>-kserve`."""
    primary = ((isvc.get("status") or {}).get("workloads") or {}).get("primary") or {}
    if primary.get("kind") == "Deployment" and primary.get("name"):
        return str(primary["name"])
    return f"{(isvc.get('metadata') or {}).get('name', '')}-kserve"


def slot_ready(live: LiveObjects, name: str, ref: ModelRef) -> bool:
    """Whether slot `name` serves `ref`'s model and is ready to take traffic."""
    if ref.model is not None and ref.model.source == "external":
        return annotation(live.services.get(external_service(name)), MODEL_HASH_ANNOTATION) == (
            ref.hash
        )
    isvc = live.llm_inference_services.get(name)
    return annotation(isvc, MODEL_HASH_ANNOTATION) == ref.hash and llm_isvc_ready(isvc, live)


def stable_serving(
    md: ModelDeployment, hashes: set[str | None], live: LiveObjects
) -> tuple[Obj | None, dict[str, Any] | None]:
    """The object serving the stable slot (LLMInferenceService or external Service) whose
    model hash is among `hashes`, and a Ready condition for it: an LLMInferenceService's
    workloads at its generation, an external provider's Service as applied."""
    isvc = live.llm_inference_services.get(md.name)
    if isvc is not None and annotation(isvc, MODEL_HASH_ANNOTATION) in hashes:
        if llm_isvc_ready(isvc, live):
            return isvc, {"status": "True"}
        found = object_condition(isvc, WORKLOADS_READY) or object_condition(isvc, "Ready")
        return isvc, {
            "status": "False",
            "reason": (found or {}).get("reason") or "LLMInferenceServiceNotReady",
            "message": (found or {}).get("message")
            or "waiting for the LLMInferenceService's workloads to become ready",
        }
    service = live.services.get(external_service(md.name))
    if service is not None:
        return service, {"status": "True"}
    return isvc, None


def _backend(slot: _Slot) -> dict[str, Any]:
    if slot.model.source == "external":
        assert slot.model.external is not None
        host = urlsplit(slot.model.external.endpoint).hostname or ""
        return {
            "group": "",
            "kind": "Service",
            "name": external_service(slot.name),
            "port": external_backend_port(slot.model),
            "weight": slot.weight,
            "filters": [{"type": "URLRewrite", "urlRewrite": {"hostname": host}}],
        }
    return {
        "group": "",
        "kind": "Service",
        "name": workload_service(slot.name),
        "port": VLLM_PORT,
        "weight": slot.weight,
    }


def _pod_annotations(annotations: dict[str, str] | Any) -> dict[str, str]:
    """Scrape annotations (no Prometheus Operator) point at vLLM's port; KServe's own
    InferenceService annotations do not apply to LLMInferenceService pods."""
    out = {k: v for k, v in dict(annotations).items() if k.startswith("prometheus.io/")}
    if "prometheus.io/port" in out:
        out["prometheus.io/port"] = str(VLLM_PORT)
    return out
