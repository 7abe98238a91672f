"""A stand-in for KServe's LLMInferenceService controller, limited to status.

KServe's LLMInferenceService controller is a separate binary (`cmd/llmisvc` of the
pinned module), with its own webhooks, LLMInferenceServiceConfig presets and the
Gateway API Inference Extension; it does not run on the local control plane (the
manager that does run, `cmd/manager`, does not reconcile LLMInferenceServices). The
LLMInferenceService CRD is the pinned module's own, so the API server validates every
object Rung applies against KServe's schema.

This stand-in writes only what the controller would report in status, and creates
nothing else (no Deployment, no pods, no HTTPRoute):
- `observedGeneration`, and `MainWorkloadReady`/`WorkloadsReady` True (the vLLM
  workloads "available"; False while `blocked(name)` says so);
- `RouterReady` and `Ready` Unknown: no Gateway implementation routes here;
- `router.group`: the members of the object's `spec.router.route.group` in its
  namespace with their weights, on every member, as KServe reports them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1alpha2", "llminferenceservices"
Obj = dict[str, Any]


def _group(obj: Obj) -> str | None:
    route = ((obj.get("spec") or {}).get("router") or {}).get("route") or {}
    group = route.get("group")
    return str(group) if group else None


def _condition(type_: str, status: str, reason: str, message: str, now: str) -> Obj:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now,
    }


def desired_status(obj: Obj, members: list[Obj], ready: bool) -> Obj:
    """The status KServe's controller would report for `obj` (members: its group's)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = obj["metadata"]
    replicas = int((obj.get("spec") or {}).get("replicas") or 1)
    workload = ("True", "MinimumReplicasAvailable", f"{replicas}/{replicas} replicas available")
    if not ready:
        workload = ("False", "MinimumReplicasUnavailable", f"0/{replicas} replicas available")
    no_gateway = "stand-in: no Gateway implementation routes traffic on this cluster"
    status: Obj = {
        "observedGeneration": meta.get("generation"),
        "conditions": [
            _condition("MainWorkloadReady", *workload, now),
            _condition("WorkloadsReady", *workload, now),
            _condition("RouterReady", "Unknown", "NoGatewayImplementation", no_gateway, now),
            _condition("Ready", "Unknown", "NoGatewayImplementation", no_gateway, now),
        ],
        "workloads": {
            "primary": {
                "apiGroup": "apps",
                "kind": "Deployment",
                "name": f"{meta['name']}-kserve",
                "readyReplicas": replicas if ready else 0,
            }
        },
    }
    group = _group(obj)
    if group is not None:
        status["router"] = {
            "group": {
                "name": group,
                "members": [
                    {
                        "name": m["metadata"]["name"],
                        "weight": int(
                            ((m.get("spec") or {}).get("router") or {})
                            .get("route", {})
                            .get("weight", 1)
                        ),
                    }
                    for m in sorted(members, key=lambda m: m["metadata"]["name"])
                ],
            }
        }
    return status


def _same(old: Obj, new: Obj) -> bool:
    """Equal but for the conditions' transition times."""

    def strip(status: Obj) -> Obj:
        conditions = [
            {k: v for k, v in c.items() if k != "lastTransitionTime"}
            for c in status.get("conditions") or []
        ]
        return {**status, "conditions": conditions}

    return strip(old) == strip(new)


class LLMInferenceServiceStandIn:
    """Watch LLMInferenceServices in `namespace` and write their status (a thread)."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        blocked: Callable[[str], bool] = lambda name: False,
    ) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.blocked = blocked
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llmisvc-standin", daemon=True)
        self.writes = 0

    def __enter__(self) -> LLMInferenceServiceStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _list(self) -> list[Obj]:
        listed = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
        return list(listed.get("items") or [])

    def sync(self) -> None:
        """Write every object's status that differs from what KServe would report."""
        objects = self._list()
        for obj in objects:
            if obj["metadata"].get("deletionTimestamp"):
                continue
            group = _group(obj)
            members = [o for o in objects if group is not None and _group(o) == group]
            status = desired_status(obj, members, not self.blocked(obj["metadata"]["name"]))
            if _same(obj.get("status") or {}, status):
                continue
            try:
                self.custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, self.namespace, PLURAL, obj["metadata"]["name"],
                    {"status": status},
                )  # fmt: skip
                self.writes += 1
            except ApiException as error:
                if error.status not in (404, 409):
                    raise

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
                stream = watch.Watch()
                for _event in stream.stream(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    timeout_seconds=2,
                ):
                    if self._stop.is_set():
                        stream.stop()
                        break
                    self.sync()
            except Exception:  # the namespace going away at the end of a test
                if self._stop.wait(0.5):
                    return
                time.sleep(0)
