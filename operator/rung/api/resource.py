"""A ModelDeployment as read from the API server: metadata we need, parsed spec and status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rung.api.crd import API_VERSION, KIND
from rung.api.spec import ModelDeploymentSpec
from rung.api.status import ModelDeploymentStatus

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "rung"
OWNER_LABEL = "rung.dev/model-deployment"
APPROVE_ANNOTATION = "rung.dev/approve"
RETRAIN_ANNOTATION = "rung.dev/retrain"
RETRAINED_MODEL_ANNOTATION = "rung.dev/retrained-model"
"""Set by a retraining pipeline under spec.gitops: the model it hands back, as JSON
(`{"run", "storageUri", "version", "data"}`); the operator commits it to Git."""
APPROVED_BY_ANNOTATION = "rung.dev/approved-by"
# Day-2 commands (`rung promote | abort | retry | undo | pause`), see rung.plan.commands.
PROMOTE_ANNOTATION = "rung.dev/promote"
ABORT_ANNOTATION = "rung.dev/abort"
RETRY_ANNOTATION = "rung.dev/retry"
UNDO_ANNOTATION = "rung.dev/undo"
PAUSE_ANNOTATION = "rung.dev/pause"


@dataclass(frozen=True)
class ModelDeployment:
    """The parts of a ModelDeployment object that planning reads."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus
    annotations: Mapping[str, str] = field(default_factory=dict)
    resource_version: str | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ModelDeployment:
        """Parse an object as returned by the API server (or handed over by kopf)."""
        meta = body.get("metadata") or {}
        return cls(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 0),
            spec=ModelDeploymentSpec.model_validate(dict(body.get("spec") or {})),
            status=ModelDeploymentStatus.model_validate(dict(body.get("status") or {})),
            annotations=dict(meta.get("annotations") or {}),
            resource_version=meta.get("resourceVersion"),
        )

    def owner_reference(self) -> dict[str, Any]:
        """An ownerReference that makes garbage collection remove what we create."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def labels(self) -> dict[str, str]:
        """Labels carried by every object the operator creates for this deployment."""
        return {MANAGED_BY_LABEL: MANAGED_BY, OWNER_LABEL: self.name}

    def object_meta(self, name: str, **extra_labels: str) -> dict[str, Any]:
        """metadata for an owned object named `name`."""
        return {
            "name": name,
            "namespace": self.namespace,
            "labels": {**self.labels(), **extra_labels},
            "ownerReferences": [self.owner_reference()],
        }
