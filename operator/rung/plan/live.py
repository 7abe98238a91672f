"""Reading live objects (pure, a leaf): owned objects by name, their conditions and
annotations. Everything in plan/ that looks at what is in the cluster uses these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = Mapping[str, Any]


APPLIED_HASH_ANNOTATION = "rung.dev/applied-hash"
"""A hash of the manifest Rung last applied, on every object it applies (rung.plan.diff).
KServe copies an InferenceService's annotations onto the Deployments it runs for it,
so a predictor Deployment carrying the InferenceService's hash was made from that spec."""


@dataclass(frozen=True)
class LiveObjects:
    """Owned objects as they are in the cluster, by name."""

    inference_services: Mapping[str, Obj] = field(default_factory=dict)
    http_routes: Mapping[str, Obj] = field(default_factory=dict)
    deployments: Mapping[str, Obj] = field(default_factory=dict)
    """KServe's predictor Deployments of those InferenceServices (read, never written)."""
    llm_inference_services: Mapping[str, Obj] = field(default_factory=dict)
    """LLMInferenceServices (kind llm)."""
    services: Mapping[str, Obj] = field(default_factory=dict)
    """Services Rung owns: the ExternalName backends of external LLM providers."""


def object_condition(obj: Obj | None, type_: str) -> Mapping[str, Any] | None:
    """A condition of type `type_` from a raw object's status (e.g. an InferenceService)."""
    if not obj:
        return None
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def condition_true(obj: Obj | None, type_: str) -> bool:
    """Whether `obj.status.conditions` has `type_` with status True."""
    found = object_condition(obj, type_)
    return found is not None and found.get("status") == "True"


def annotation(obj: Obj | None, key: str) -> str | None:
    """The annotation `key` of `obj`, if set."""
    value = (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(key)
    return None if value is None else str(value)


# --- readiness at the generation Rung applied -------------------------------------------


def predictor_workload(isvc: str, predictor_name: str | None) -> str:
    """The Deployment (and Service) KServe runs for a RawDeployment predictor."""
    return f"{isvc}-{predictor_name}-predictor" if predictor_name else f"{isvc}-predictor"


def rolled_out(deployment: Obj | None) -> bool:
    """`kubectl rollout status` in one function: the Deployment controller has seen the
    latest spec, every replica runs it, no old replica is left, and all are available."""
    if not deployment:
        return False
    meta, spec = deployment.get("metadata") or {}, deployment.get("spec") or {}
    status = deployment.get("status") or {}
    wanted = int(spec.get("replicas", 1) or 0)
    updated = int(status.get("updatedReplicas") or 0)
    return (
        int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
        and updated >= wanted
        and int(status.get("replicas") or 0) <= updated
        and int(status.get("availableReplicas") or 0) >= wanted
    )


def predictor_ready(live: LiveObjects, isvc: Obj | None, predictor_name: str | None) -> bool:
    """Whether KServe has acted on the InferenceService's current spec for the predictor
    `predictor_name` (RawDeployment) and that predictor is rolled out.

    KServe's own Ready condition cannot say so: it stays True from the previous spec
    while KServe has not reconciled (or is rolling out) the new one, and in
    RawDeployment mode its status.observedGeneration is the Deployment's, not the
    InferenceService's. The predictor Deployment carries the InferenceService's
    annotations as of the spec KServe last acted on, so its applied hash equal to the
    InferenceService's, and a finished rollout, mean "ready at the generation Rung
    applied".
    """
    if not isvc:
        return False
    name = (isvc.get("metadata") or {}).get("name", "")
    deployment = live.deployments.get(predictor_workload(name, predictor_name))
    return (
        deployment is not None
        and annotation(deployment, APPLIED_HASH_ANNOTATION)
        == annotation(isvc, APPLIED_HASH_ANNOTATION)
        and rolled_out(deployment)
    )


def stable_predictor_name(isvc: Obj | None) -> str | None:
    """spec.predictor.name of a live InferenceService (KServe's RawDeployment canaries)."""
    predictor = ((isvc or {}).get("spec") or {}).get("predictor") or {}
    name = predictor.get("name")
    return str(name) if name else None


def knative(isvc: Obj | None) -> bool:
    """Whether the InferenceService runs on Knative (Serverless): no Deployments of ours
    to read; Knative's latestReadyRevision says which spec is ready."""
    mode = annotation(isvc, "serving.kserve.io/deploymentMode")
    return mode in ("Serverless", "Knative")
