"""The operator's few Kubernetes calls, on the official client (sync; kopf runs sync
handlers in worker threads)."""

from __future__ import annotations

import json
import logging
from typing import Any, cast

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from rung.api.crd import GROUP, PLURAL, VERSION
from rung.api.kinds import DEPLOYMENT as DEPLOYMENT
from rung.api.kinds import HTTP_ROUTE as HTTP_ROUTE
from rung.api.kinds import INFERENCE_SERVICE as INFERENCE_SERVICE
from rung.api.kinds import LLM_INFERENCE_SERVICE as LLM_INFERENCE_SERVICE
from rung.api.kinds import MODEL_DEPLOYMENT as MODEL_DEPLOYMENT
from rung.api.kinds import POD_MONITOR as POD_MONITOR
from rung.api.kinds import PROMETHEUS_RULE as PROMETHEUS_RULE
from rung.api.kinds import SERVICE as SERVICE
from rung.api.kinds import Kind as Kind
from rung.api.resource import MANAGED_BY, MANAGED_BY_LABEL, OWNER_LABEL
from rung.observability import API_REQUESTS
from rung.plan.events import Event

log = logging.getLogger(__name__)
FIELD_MANAGER = "rung"

OWNED_KINDS = (
    INFERENCE_SERVICE,
    POD_MONITOR,
    PROMETHEUS_RULE,
    HTTP_ROUTE,
    LLM_INFERENCE_SERVICE,
    SERVICE,
)
"""Kinds the operator creates; owned objects of these kinds that the plan no
longer wants are deleted."""
READ_KINDS = (DEPLOYMENT,)
"""Kinds the operator only reads: KServe's predictor Deployments, which carry the
labels of their InferenceService (Rung's among them) and are owned by it, not by the
ModelDeployment. Never applied, never deleted."""


def kind_of(manifest: dict[str, Any]) -> Kind:
    """The Kind of a manifest among those the operator manages."""
    for kind in (*OWNED_KINDS, MODEL_DEPLOYMENT):
        if manifest["apiVersion"] == kind.api_version and manifest["kind"] == kind.kind:
            return kind
    raise ValueError(f"rung does not manage {manifest['apiVersion']} {manifest['kind']}")


def load_config(kubeconfig: str | None = None, context: str | None = None) -> str:
    """Configure the Kubernetes client and return the namespace to work in by default.

    The configuration is found as controllers find it: the kubeconfig named by
    $KUBECONFIG; else the pod's service account (in a cluster); else ~/.kube/config.
    The namespace is the kubeconfig context's, or the service account's, else `default`.
    `kubeconfig` and `context` (the CLI's --kubeconfig, --context) name a kubeconfig file
    and a context in it explicitly.
    Raises `kubernetes.config.ConfigException` when there is no configuration.
    """
    import os
    from pathlib import Path

    from kubernetes import config as k8s_config

    if not os.environ.get("KUBECONFIG") and kubeconfig is None and context is None:
        try:
            k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
        except k8s_config.ConfigException:
            pass
        else:
            account = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
            return (account.read_text().strip() if account.exists() else "") or "default"
    k8s_config.load_kube_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
    contexts, current = k8s_config.list_kube_config_contexts(kubeconfig)  # type: ignore[no-untyped-call]
    if context is not None:
        current = next((c for c in contexts or [] if c.get("name") == context), current)
    return ((current or {}).get("context") or {}).get("namespace") or "default"


class CountingApiClient(k8s.ApiClient):
    """The client, counting each request in rung_api_requests_total (method, resource)."""

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        API_REQUESTS.labels(method, _resource(url)).inc()
        return super().call_api(method, url, *args, **kwargs)


def _resource(url: str) -> str:
    """The resource a request URL is about: `/apis/g/v/namespaces/ns/plural/name` -> plural."""
    from urllib.parse import urlparse

    parts = [p for p in urlparse(url).path.split("/") if p]
    if parts and parts[0] == "api":
        parts = parts[2:]
    elif parts and parts[0] == "apis":
        parts = parts[3:]
    if len(parts) >= 2 and parts[0] == "namespaces":
        parts = parts[2:] if len(parts) > 2 else ["namespaces"]
    return parts[0] if parts else "discovery"


class ObjectGoneError(Exception):
    """The ModelDeployment no longer exists (its DELETED event may never have come: kopf
    stops watching a namespace as soon as it is terminating)."""

    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(f"ModelDeployment {namespace}/{name} no longer exists")
        self.namespace, self.name = namespace, name


class KubeEvents:
    """Posts decisions as core/v1 Events on the ModelDeployment, from component `rung`.

    A failure is logged (once per distinct error and object, then at debug level), never
    raised; `post` returns False so that the decision stays in status.outbox and is
    posted again. An event with an id is named `<name>.<id>`: posting it again finds it
    there (409), which counts as delivered.
    """

    def __init__(self, api_client: k8s.ApiClient, instance: str | None = None) -> None:
        import socket
        import threading

        self.core = k8s.CoreV1Api(api_client)
        self.instance = instance or socket.gethostname()
        self._failing: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def post(self, body: dict[str, Any], event: Event) -> bool:
        from datetime import UTC, datetime

        meta = body["metadata"]
        now = datetime.now(UTC)
        name = (
            {"name": f"{meta['name']}.{event.id}"}
            if event.id
            else {"generateName": f"{meta['name']}."}
        )
        manifest = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {**name, "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": MODEL_DEPLOYMENT.api_version,
                "kind": MODEL_DEPLOYMENT.kind,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "type": event.type,
            "reason": event.reason,
            "message": event.message[:1024],
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": self.instance,
            "firstTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lastTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "count": 1,
        }
        key = (meta["namespace"], meta["name"])
        try:
            self.core.create_namespaced_event(meta["namespace"], cast(Any, manifest))
        except ApiException as error:
            if error.status == 409 and event.id:
                return True  # posted before (by this operator or the one before it)
            if error.status == 403 and "being terminated" in str(error.body or ""):
                # The namespace is going away with its ModelDeployment: nothing to tell.
                log.debug("Event %s for %s/%s: namespace terminating", event.reason, *key)
                return True
            self._failed(key, event, f"{error.status} {error.reason}")
            return False
        except Exception as error:  # unreachable API server: urllib3 errors
            self._failed(key, event, f"{type(error).__name__}: {str(error)[:200]}")
            return False
        with self._lock:
            if self._failing.pop(key, None) is not None:
                log.info("Events for %s/%s are posted again", *key)
        return True

    def _failed(self, key: tuple[str, str], event: Event, why: str) -> None:
        with self._lock:
            repeated = self._failing.get(key) == why
            self._failing[key] = why
        level = logging.DEBUG if repeated else logging.WARNING
        log.log(level, "Event %s for %s/%s not posted: %s", event.reason, *key, why)


class _CoreGroupClient:
    """The operator's ApiClient, but a request for the core group ("", which the generic
    custom-objects calls spell `/apis//v1/...`) goes to `/api/v1/...`: those calls then
    serve core kinds (Services) as they serve custom resources."""

    def __init__(self, client: k8s.ApiClient) -> None:
        self._client = client

    def param_serialize(self, *args: Any, **kwargs: Any) -> Any:
        method, url, *rest = self._client.param_serialize(*args, **kwargs)
        return (method, url.replace("/apis//", "/api/", 1), *rest)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class Kube:
    """Typed access to the handful of API calls the operator makes."""

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self.api_client = api_client
        self.custom = k8s.CustomObjectsApi(_CoreGroupClient(api_client))

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            obj = self.custom.get_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, name
            )
            return cast(dict[str, Any], obj)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def list_owned(self, kind: Kind, namespace: str, owner: str, uid: str) -> list[dict[str, Any]]:
        """Objects of `kind` created by rung for the ModelDeployment `owner` (uid `uid`)."""
        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY},{OWNER_LABEL}={owner}"
        result = cast(
            dict[str, Any],
            self.custom.list_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, label_selector=selector
            ),
        )
        return [
            item
            for item in result.get("items", [])
            if any(ref.get("uid") == uid for ref in item["metadata"].get("ownerReferences", []))
        ]

    def list_labelled(self, kind: Kind, namespace: str, owner: str) -> list[dict[str, Any]]:
        """Objects of a READ_KINDS kind labelled as the ModelDeployment `owner`'s (KServe
        copies an InferenceService's labels onto its Deployments)."""
        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY},{OWNER_LABEL}={owner}"
        result = cast(
            dict[str, Any],
            self.custom.list_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, label_selector=selector
            ),
        )
        return list(result.get("items", []))

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply `manifest` as field manager `rung`."""
        kind = kind_of(manifest)
        meta = manifest["metadata"]
        response: Any = self.custom.patch_namespaced_custom_object(
            kind.group,
            kind.version,
            meta["namespace"],
            kind.plural,
            meta["name"],
            manifest,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
            _preload_content=False,  # the client drops the body of a 201 (created)
        )
        return cast(dict[str, Any], json.loads(response.data))

    def patch(self, kind: Kind, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """JSON merge patch one object as field manager `rung` (the fail-safe's small
        edits of live objects; everything else is server-side applied)."""
        response: Any = self.custom.patch_namespaced_custom_object(
            kind.group,
            kind.version,
            namespace,
            kind.plural,
            name,
            patch,
            field_manager=FIELD_MANAGER,
            _content_type="application/merge-patch+json",
        )
        return cast(dict[str, Any], response)

    def list_all(self, kind: Kind, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every object of `kind` rung manages (a ModelDeployment: every one), in
        `namespace` or cluster-wide; for priming the watch caches."""
        selector = "" if kind == MODEL_DEPLOYMENT else f"{MANAGED_BY_LABEL}={MANAGED_BY}"
        if namespace is None:
            result = self.custom.list_cluster_custom_object(
                kind.group, kind.version, kind.plural, label_selector=selector
            )
        else:
            result = self.custom.list_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, label_selector=selector
            )
        items = cast(dict[str, Any], result).get("items", [])
        for item in items:
            item.setdefault("apiVersion", kind.api_version)
            item.setdefault("kind", kind.kind)
        return cast(list[dict[str, Any]], items)

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        """Delete an object; already gone is fine."""
        try:
            self.custom.delete_namespaced_custom_object(
                kind.group,
                kind.version,
                namespace,
                kind.plural,
                name,
                propagation_policy="Background",
            )
        except ApiException as error:
            if error.status != 404:
                raise

    def replace_status(self, body: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """Write the whole status of a ModelDeployment, conditional on its resourceVersion;
        ObjectGoneError when it no longer exists."""
        meta = body["metadata"]
        new_body = {
            "apiVersion": MODEL_DEPLOYMENT.api_version,
            "kind": MODEL_DEPLOYMENT.kind,
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "resourceVersion": meta["resourceVersion"],
            },
            "spec": body.get("spec", {}),
            "status": status,
        }
        try:
            obj = self.custom.replace_namespaced_custom_object_status(
                GROUP,
                VERSION,
                meta["namespace"],
                PLURAL,
                meta["name"],
                new_body,
                field_manager=FIELD_MANAGER,
            )
        except ApiException as error:
            if error.status == 404:
                raise ObjectGoneError(meta["namespace"], meta["name"]) from error
            raise
        return cast(dict[str, Any], obj)

    def has_crd(self, kind: Kind) -> bool:
        """Whether the cluster serves `kind` (its CRD is installed)."""
        try:
            resources = self.custom.get_api_resources(kind.group, kind.version)
        except ApiException as error:
            if error.status in (404, 403):
                return False
            raise
        return any(r.name == kind.plural for r in resources.resources or [])
