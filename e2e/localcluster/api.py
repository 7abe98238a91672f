"""A minimal HTTPS client for the apiserver (standard library only).

The cluster bootstrap needs a handful of calls (readyz, server-side apply,
get); doing them over urllib keeps start-up fast and free of a client library.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .pki import CertPair

JSON = dict[str, Any]
FIELD_MANAGER = "rung-localcluster"


class APIError(Exception):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:2000]}")
        self.status = status
        self.body = body


class APIClient:
    def __init__(self, server: str, ca_cert: str, client: CertPair, timeout: float = 30) -> None:
        self.server = server.rstrip("/")
        self.timeout = timeout
        self._ctx = ssl.create_default_context(cafile=ca_cert)
        self._ctx.load_cert_chain(str(client.cert), str(client.key))

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        req = urllib.request.Request(self.server + path, data=body, method=method)
        req.add_header("Accept", "application/json")
        if body is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(
                req, context=self._ctx, timeout=timeout or self.timeout
            ) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as err:
            return int(err.code), bytes(err.read())

    def get(self, path: str) -> JSON | None:
        """GET a JSON object; None when it does not exist (404)."""
        status, data = self.request("GET", path)
        if status == 404:
            return None
        if status >= 300:
            raise APIError("GET", path, status, data.decode(errors="replace"))
        result: JSON = json.loads(data)
        return result

    def apply(self, path: str, obj: JSON) -> JSON:
        """Server-side apply `obj` at its object path (forcing ownership)."""
        query = urllib.parse.urlencode({"fieldManager": FIELD_MANAGER, "force": "true"})
        status, data = self.request(
            "PATCH",
            f"{path}?{query}",
            json.dumps(obj).encode(),
            content_type="application/apply-patch+yaml",
            timeout=120,
        )
        if status >= 300:
            raise APIError("PATCH", path, status, data.decode(errors="replace"))
        result: JSON = json.loads(data)
        return result

    def create(self, path: str, obj: JSON, *, dry_run: bool = False) -> JSON:
        """POST `obj` to the collection at `path`."""
        query = "?dryRun=All" if dry_run else ""
        status, data = self.request("POST", path + query, json.dumps(obj).encode())
        if status >= 300:
            raise APIError("POST", path, status, data.decode(errors="replace"))
        result: JSON = json.loads(data)
        return result

    def delete(self, path: str) -> bool:
        """DELETE the object at `path`; False if it was already gone."""
        status, data = self.request("DELETE", path)
        if status == 404:
            return False
        if status >= 300:
            raise APIError("DELETE", path, status, data.decode(errors="replace"))
        return True

    def merge_patch(self, path: str, patch: JSON) -> JSON | None:
        """JSON merge-patch the object at `path`; None if it does not exist."""
        status, data = self.request(
            "PATCH", path, json.dumps(patch).encode(), content_type="application/merge-patch+json"
        )
        if status == 404:
            return None
        if status >= 300:
            raise APIError("PATCH", path, status, data.decode(errors="replace"))
        result: JSON = json.loads(data)
        return result

    def list_items(self, path: str) -> list[JSON]:
        """The items of the list at `path` ([] when the resource is not served)."""
        status, data = self.request("GET", path)
        if status == 404:
            return []
        if status >= 300:
            raise APIError("GET", path, status, data.decode(errors="replace"))
        items: list[JSON] = json.loads(data).get("items") or []
        return items

    def readyz(self) -> bool:
        try:
            status, data = self.request("GET", "/readyz", timeout=2)
        except (OSError, urllib.error.URLError):
            return False
        return status == 200 and data.strip() == b"ok"


#: Object paths of the cluster-scoped kinds the bootstrap applies.
_CLUSTER_SCOPED = {
    ("rbac.authorization.k8s.io", "ClusterRole"): "clusterroles",
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): "clusterrolebindings",
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): (
        "mutatingwebhookconfigurations"
    ),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): (
        "validatingwebhookconfigurations"
    ),
    ("serving.kserve.io", "ClusterServingRuntime"): "clusterservingruntimes",
    ("serving.kserve.io", "ClusterStorageContainer"): "clusterstoragecontainers",
    ("apiextensions.k8s.io", "CustomResourceDefinition"): "customresourcedefinitions",
    ("gateway.networking.k8s.io", "GatewayClass"): "gatewayclasses",
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): "validatingadmissionpolicies",
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ): "validatingadmissionpolicybindings",
    ("", "Node"): "nodes",
    ("", "Namespace"): "namespaces",
}


#: ... and of the namespaced ones.
_NAMESPACED = {
    ("", "ServiceAccount"): "serviceaccounts",
    ("", "ConfigMap"): "configmaps",
    ("", "Secret"): "secrets",
    ("", "Service"): "services",
    ("rbac.authorization.k8s.io", "Role"): "roles",
    ("rbac.authorization.k8s.io", "RoleBinding"): "rolebindings",
    ("serving.kserve.io", "LLMInferenceServiceConfig"): "llminferenceserviceconfigs",
    ("gateway.networking.k8s.io", "Gateway"): "gateways",
}


def object_path(obj: JSON) -> str:
    """The REST path of an object of a kind listed above."""
    api_version = str(obj["apiVersion"])
    group, _, version = api_version.rpartition("/")
    kind = str(obj["kind"])
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    name = obj["metadata"]["name"]
    plural = _CLUSTER_SCOPED.get((group, kind))
    if plural is not None:
        return f"{prefix}/{plural}/{name}"
    plural = _NAMESPACED.get((group, kind))
    namespace = obj["metadata"].get("namespace")
    if plural is None or not namespace:
        raise ValueError(f"don't know where to apply {api_version} {kind} {name}")
    return f"{prefix}/namespaces/{namespace}/{plural}/{name}"
