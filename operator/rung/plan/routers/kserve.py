"""The `kserve` router: KServe's own canary on one InferenceService.

- Serverless mode: `predictor.canaryTrafficPercent`; KServe keeps the previous
  revision as stable and routes the rest of the traffic there.
- RawDeployment mode (KServe 0.20+, "Standard"): a `spec.canary` entry with its own
  predictor name and `trafficPercent`; promotion retargets `predictor.name` to the
  canary's name and drops the entry, so no pod restarts; rollback drops the entry.
  The entry sets no replicas: KServe gives the canary ceil(stable minReplicas x
  percent / 100) pods and takes them out of stable's (at least 1 stays).
"""

from __future__ import annotations

from typing import Any

from rung.api.kinds import INFERENCE_SERVICE
from rung.api.resource import ModelDeployment
from rung.api.status import ModelRef
from rung.plan.inference_service import (
    CANARY_HASH_ANNOTATION,
    MODEL_HASH_ANNOTATION,
    CanaryVariant,
    build_inference_service,
)
from rung.plan.live import (
    LiveObjects,
    Obj,
    annotation,
    condition_true,
    predictor_ready,
    predictor_workload,
    stable_predictor_name,
)
from rung.plan.promql import Targets
from rung.plan.routers.base import Traffic, TrafficPatch


def canary_predictor_name(canary: ModelRef) -> str:
    """The canary's predictor name (DNS-safe, derived from its hash, kept in status)."""
    return canary.predictor_name or f"r-{(canary.hash or '')[:8]}"


class KServeRouter:
    """Canary traffic split done by KServe itself."""

    name = "kserve"
    mirrors = False
    """KServe has no request mirroring: admission refuses a shadow stage on this router."""

    def objects(self, md: ModelDeployment, traffic: Traffic) -> list[dict[str, Any]]:
        stable, canary = traffic.stable, traffic.canary
        assert stable.model is not None
        annotations = dict(traffic.annotations)
        if md.spec.serving.deployment_mode == "Serverless":
            if canary is None:
                return [build_inference_service(md, stable.model, extra_annotations=annotations)]
            assert canary.model is not None
            percent = None if traffic.promoting else traffic.canary_weight
            annotations[CANARY_HASH_ANNOTATION] = canary.hash or ""
            return [
                build_inference_service(
                    md,
                    canary.model,
                    extra_annotations=annotations,
                    canary_traffic_percent=percent,
                )
            ]
        if canary is None or traffic.rolling_back:
            # Rolling back drops the canary entry in one apply: KServe removes its
            # Deployment and routes everything to stable, even if the entry itself was
            # what the cluster refused.
            return [
                build_inference_service(
                    md,
                    stable.model,
                    extra_annotations=annotations,
                    predictor_name=stable.predictor_name,
                )
            ]
        assert canary.model is not None
        name = canary_predictor_name(canary)
        if traffic.promoting:
            in_place = self.promotes_in_place(md, stable, canary)
            return [
                build_inference_service(
                    md,
                    canary.model,
                    extra_annotations=annotations,
                    predictor_name=stable.predictor_name if in_place else name,
                )
            ]
        return [
            build_inference_service(
                md,
                stable.model,
                extra_annotations=annotations,
                predictor_name=stable.predictor_name,
                canary=CanaryVariant(name, canary.model, traffic.canary_weight),
            )
        ]

    def canary_weight(self, md: ModelDeployment, live: LiveObjects) -> int | None:
        isvc = live.inference_services.get(md.name)
        if isvc is None:
            return None
        spec = isvc.get("spec") or {}
        if md.spec.serving.deployment_mode == "Serverless":
            percent = (spec.get("predictor") or {}).get("canaryTrafficPercent")
            return None if percent is None else int(percent)
        entries = spec.get("canary") or []
        if not entries:
            return None
        reported = {
            s.get("name"): s.get("trafficPercent")
            for s in (isvc.get("status") or {}).get("canaryStatuses") or []
        }
        name = (entries[0].get("predictor") or {}).get("name")
        applied = reported.get(name)
        return int(applied if applied is not None else entries[0].get("trafficPercent", 0))

    def canary_mirrored(self, md: ModelDeployment, live: LiveObjects) -> bool:
        return False

    def canary_ready(self, md: ModelDeployment, canary: ModelRef, live: LiveObjects) -> bool:
        isvc = live.inference_services.get(md.name)
        if annotation(isvc, CANARY_HASH_ANNOTATION) != canary.hash:
            return False
        if md.spec.serving.deployment_mode == "Serverless":
            predictor = _predictor_status(isvc)
            latest = predictor.get("latestCreatedRevision")
            return bool(latest) and predictor.get("latestReadyRevision") == latest
        name = canary_predictor_name(canary)
        return any(
            s.get("name") == name and s.get("ready")
            for s in ((isvc or {}).get("status") or {}).get("canaryStatuses") or []
        ) and predictor_ready(live, isvc, name)

    def promoted(self, md: ModelDeployment, canary: ModelRef, live: LiveObjects) -> bool:
        isvc = live.inference_services.get(md.name)
        spec = (isvc or {}).get("spec") or {}
        still_split = bool(spec.get("canary")) or (
            (spec.get("predictor") or {}).get("canaryTrafficPercent") is not None
        )
        return (
            annotation(isvc, MODEL_HASH_ANNOTATION) == canary.hash
            and not still_split
            and condition_true(isvc, "Ready")
            and (
                md.spec.serving.deployment_mode == "Serverless"
                or predictor_ready(live, isvc, stable_predictor_name(isvc))
            )
        )

    def promotes_in_place(self, md: ModelDeployment, stable: ModelRef, canary: ModelRef) -> bool:
        """RawDeployment promotes by renaming the stable predictor to the canary's, so no
        pod restarts; KServe's webhook allows a rename only with a new storageUri, so a
        canary that changes other fields (resources, runtime) is promoted in place.
        Serverless always promotes in place (KServe keeps the revisions)."""
        if md.spec.serving.deployment_mode == "Serverless":
            return True
        return canary.storage_uri == stable.storage_uri

    def traffic_to_stable(self, md: ModelDeployment, live: LiveObjects) -> list[TrafficPatch]:
        """Drop the canary entry (RawDeployment: KServe removes its Deployment and routes
        everything to stable), or give the latest revision 0 % (Serverless)."""
        spec = (live.inference_services.get(md.name) or {}).get("spec") or {}
        if spec.get("canary"):
            return [TrafficPatch(INFERENCE_SERVICE, md.name, {"spec": {"canary": None}})]
        if (spec.get("predictor") or {}).get("canaryTrafficPercent") not in (None, 0):
            patch = {"spec": {"predictor": {"canaryTrafficPercent": 0}}}
            return [TrafficPatch(INFERENCE_SERVICE, md.name, patch)]
        return []

    def targets(
        self, md: ModelDeployment, stable: ModelRef, canary: ModelRef | None, live: LiveObjects
    ) -> Targets:
        if md.spec.serving.deployment_mode == "Serverless":
            predictor = _predictor_status(live.inference_services.get(md.name))
            return Targets(
                stable=str(predictor.get("previousRolledoutRevision") or f"{md.name}-predictor"),
                canary=(
                    str(predictor["latestCreatedRevision"])
                    if canary is not None and predictor.get("latestCreatedRevision")
                    else None
                ),
            )
        return Targets(
            stable=_workload(md.name, stable.predictor_name),
            canary=None if canary is None else _workload(md.name, canary_predictor_name(canary)),
        )


def _workload(isvc: str, predictor_name: str | None) -> str:
    """The predictor Deployment's name in RawDeployment mode."""
    return predictor_workload(isvc, predictor_name)


def _predictor_status(isvc: Obj | None) -> dict[str, Any]:
    components = ((isvc or {}).get("status") or {}).get("components") or {}
    return dict(components.get("predictor") or {})
