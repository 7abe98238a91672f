"""A stand-in for a Gateway API implementation's control plane, limited to status.

No Gateway implementation (Envoy Gateway, Istio, ...) runs on the local control plane:
each programs a data-plane proxy (Envoy) that cannot run here. KServe's real
LLMInferenceService controller does run, and it depends on what an implementation
reports: a route-group member joins the other members' weighted HTTPRoutes only once
its own HTTPRoute is Accepted by its Gateway with its refs resolved (`RouterReady`) and
its workload has ready replicas.

This stand-in writes what such an implementation writes in status, and nothing else (it
creates no object, programs no proxy, routes nothing; the tests' load driver,
`testbed.llm_load`, plays the data plane):
- on every HTTPRoute in `namespace` whose parent Gateway has a GatewayClass of
  `CONTROLLER` (the class `envoy` the local cluster installs, as KServe's quick install
  does): per such parentRef, `Accepted` True and `ResolvedRefs` True (False,
  `BackendNotFound`, while a Service it routes to does not exist in the route's
  namespace; other namespaces' Services would need a ReferenceGrant, which it does not
  read), at the route's generation; entries of other controllers are kept;
- on those Gateways: `Accepted` and `Programmed` True.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

GROUP, VERSION = "gateway.networking.k8s.io", "v1"
CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"
CLASS = "envoy"
Obj = dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(type_: str, ok: bool, reason: str, generation: int, message: str = "") -> Obj:
    return {
        "type": type_,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message or f"stand-in for {CONTROLLER}",
        "observedGeneration": generation,
        "lastTransitionTime": _now(),
    }


def gateway(name: str, namespace: str) -> Obj:
    """A Gateway of class `envoy` that accepts routes from every namespace."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "gatewayClassName": CLASS,
            "listeners": [
                {
                    "name": "http",
                    "protocol": "HTTP",
                    "port": 80,
                    "allowedRoutes": {"namespaces": {"from": "All"}},
                }
            ],
        },
    }


def route_parents(route: Obj, ours: list[Obj], missing: list[str]) -> list[Obj]:
    """status.parents of `route`: an accepted entry per parentRef in `ours` (refs resolved
    unless Services are `missing`), and the other controllers' entries as they are."""
    generation = int(route["metadata"].get("generation") or 1)
    resolved = _condition("ResolvedRefs", True, "ResolvedRefs", generation)
    if missing:
        message = f"Service(s) not found: {', '.join(sorted(missing))}"
        resolved = _condition("ResolvedRefs", False, "BackendNotFound", generation, message)
    accepted = [
        {
            "parentRef": ref,
            "controllerName": CONTROLLER,
            "conditions": [_condition("Accepted", True, "Accepted", generation), resolved],
        }
        for ref in ours
    ]
    others = [
        p
        for p in (route.get("status") or {}).get("parents") or []
        if p.get("controllerName") != CONTROLLER
    ]
    return [*others, *accepted]


def _same(old: list[Obj], new: list[Obj]) -> bool:
    """Equal but for the conditions' transition times."""

    def strip(parents: list[Obj]) -> list[Obj]:
        return [
            {
                **p,
                "conditions": [
                    {k: v for k, v in c.items() if k != "lastTransitionTime"}
                    for c in p.get("conditions") or []
                ],
            }
            for p in parents
        ]

    return strip(old) == strip(new)


class GatewayStandIn:
    """Write Gateway API status for the HTTPRoutes in `namespace` (a thread)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-standin", daemon=True)
        self._programmed: set[tuple[str, str]] = set()
        self.writes = 0

    def __enter__(self) -> GatewayStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _ours(self, namespace: str, name: str) -> bool:
        """The Gateway exists and its class is CONTROLLER's (then: it is Programmed)."""
        try:
            gw = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "gateways", name
            )
            gw_class = self.custom.get_cluster_custom_object(
                GROUP, VERSION, "gatewayclasses", gw["spec"]["gatewayClassName"]
            )
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        if gw_class["spec"].get("controllerName") != CONTROLLER:
            return False
        if (namespace, name) not in self._programmed:
            generation = int(gw["metadata"].get("generation") or 1)
            conditions = [
                _condition("Accepted", True, "Accepted", generation),
                _condition("Programmed", True, "Programmed", generation),
            ]
            self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, "gateways", name, {"status": {"conditions": conditions}}
            )
            self._programmed.add((namespace, name))
        return True

    def _missing_services(self, route: Obj, services: set[str]) -> list[str]:
        """The Services `route` sends to that do not exist (`services`: the namespace's)."""
        missing = set()
        for rule in route["spec"].get("rules") or []:
            for ref in rule.get("backendRefs") or []:
                if ref.get("group", "") != "" or ref.get("kind", "Service") != "Service":
                    continue
                namespace = ref.get("namespace") or self.namespace
                if namespace != self.namespace or ref["name"] not in services:
                    missing.add(f"{namespace}/{ref['name']}")
        return sorted(missing)

    def sync(self) -> None:
        """Accept every HTTPRoute of the namespace that names a Gateway of ours."""
        routes = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "httproutes"
        )
        services = {
            s.metadata.name for s in self.core.list_namespaced_service(self.namespace).items
        }
        gateways: dict[tuple[str, str], bool] = {}
        for route in routes.get("items") or []:
            ours = []
            for ref in route["spec"].get("parentRefs") or []:
                key = (ref.get("namespace") or self.namespace, ref["name"])
                if key not in gateways:
                    gateways[key] = self._ours(*key)
                if ref.get("kind", "Gateway") == "Gateway" and gateways[key]:
                    ours.append(ref)
            parents = route_parents(route, ours, self._missing_services(route, services))
            if _same((route.get("status") or {}).get("parents") or [], parents):
                continue
            try:
                self.custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, self.namespace, "httproutes", route["metadata"]["name"],
                    {"status": {"parents": parents}},
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
                    "httproutes",
                    timeout_seconds=2,
                ):
                    if self._stop.is_set():
                        stream.stop()
                        break
                    self.sync()
            except Exception:  # the namespace going away at the end of a test
                if self._stop.wait(0.5):
                    return
