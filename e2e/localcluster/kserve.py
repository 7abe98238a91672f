"""KServe's controller manager on the local control plane, installed as a release is.

The manager binary is built by e2e/cluster/build.sh. Everything it is installed
with comes from the KServe Go module at the pinned version:

- ServiceAccount, Roles, ClusterRoles, their bindings and the admission webhook
  configurations from `charts/kserve-resources/files/kserve/resources.yaml`: the
  kustomize rendering of `config/default` that the Helm chart installs (its RBAC
  equals `config/rbac/`, its webhooks `config/webhook/manifests.yaml`, with the
  namespace `kserve` filled in);
- the `inferenceservice-config` ConfigMap from `config/configmap/inferenceservice.yaml`;
- the ClusterServingRuntimes listed in `config/runtimes/kustomization.yaml` and the
  `default` ClusterStorageContainer, with the image placeholders replaced as the
  kustomizations (and the release) replace them.

Local differences, all in `configure()` and `webhook_configurations()`: the default
deployment mode is Standard (RawDeployment), Istio VirtualServices are off, and
each webhook's `clientConfig.service` becomes `url: https://127.0.0.1:<port>/<path>`
with the cluster CA as `caBundle`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .api import APIClient, APIError
from .manifests import module_dir
from .versions import cache_dir, read_versions

JSON = dict[str, Any]

MODULE = "github.com/kserve/kserve"
NAMESPACE = "kserve"
SERVICE_ACCOUNT = "kserve-controller-manager"
CONFIGMAP = "inferenceservice-config"
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
#: Lifetime requested for the manager's ServiceAccount token (TokenRequest).
TOKEN_SECONDS = 30 * 24 * 3600

#: Kinds taken from the rendered release manifest; the rest of it (the Deployment,
#: its Services, the cert-manager Certificate, an empty Secret) has no use here.
_RELEASE_KINDS = (
    "ServiceAccount",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
)
_BUNDLE_FORMAT = 1  # bump when install_bundle() changes what it caches

#: The KServe resources that `down` deletes before stopping the controller, so that
#: their finalizers are honoured: (API path prefix, plural).
KSERVE_RESOURCES = (
    ("/apis/serving.kserve.io/v1beta1", "inferenceservices"),
    ("/apis/serving.kserve.io/v1alpha1", "inferencegraphs"),
    ("/apis/serving.kserve.io/v1alpha1", "trainedmodels"),
)


def _load_yaml(path: Path) -> list[JSON]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open() as fh:
        return [d for d in yaml.load_all(fh, Loader=loader) if d]


def _image_map(kustomization: JSON, version: str) -> dict[str, str]:
    """Placeholder image name -> image, from a kustomization's `images:`. The release
    pins KServe's own images to its version where the kustomization says `latest`."""
    images = {}
    for entry in kustomization.get("images") or []:
        name = entry.get("newName") or entry["name"]
        tag = str(entry.get("newTag") or "latest")
        if tag == "latest" and name.startswith("kserve/"):
            tag = version
        images[entry["name"]] = f"{name}:{tag}"
    return images


def _replace_images(obj: Any, images: dict[str, str]) -> Any:
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if key == "image" and isinstance(value, str):
                value = images.get(value.split(":", 1)[0], value)
            out[key] = _replace_images(value, images)
        return out
    if isinstance(obj, list):
        return [_replace_images(v, images) for v in obj]
    return obj


def cached_bundle(name: str, form: int, build: Callable[[Path, str], JSON]) -> JSON:
    """`build(module root, version)`'s documents with their version, read from the pinned
    module once and then from a JSON cache named by `name`, the version and `form` (the
    bundle's format, bumped when what it holds changes)."""
    version = read_versions()["KSERVE_VERSION"]
    cached = cache_dir() / "manifests" / f"{name}-install-{version}-v{form}.json"
    if cached.is_file():
        bundle: JSON = json.loads(cached.read_text())
        return bundle
    bundle = {"version": version, **build(module_dir(MODULE, version), version)}
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(bundle))
    tmp.replace(cached)
    return bundle


def release_objects(path: Path) -> JSON:
    """From a rendered release manifest, what a local install uses: `rbac` (the
    ServiceAccount, roles and bindings) and `webhooks` (their configurations)."""
    release = [d for d in _load_yaml(path) if d["kind"] in _RELEASE_KINDS]
    return {
        "rbac": [d for d in release if "Webhook" not in d["kind"]],
        "webhooks": [d for d in release if "Webhook" in d["kind"]],
    }


def install_bundle() -> JSON:
    """The documents to install, read from the module (cached as JSON by version)."""
    return cached_bundle("kserve", _BUNDLE_FORMAT, _read_bundle)


def _read_bundle(root: Path, version: str) -> JSON:
    (configmap,) = _load_yaml(root / "config/configmap/inferenceservice.yaml")
    pinned = re.compile(r'"(kserve/[a-z0-9-]+):latest"')
    configmap["data"] = {k: pinned.sub(rf'"\1:{version}"', v) for k, v in configmap["data"].items()}

    runtimes: list[JSON] = []
    for directory in ("config/storagecontainers", "config/runtimes"):
        (kustomization,) = _load_yaml(root / directory / "kustomization.yaml")
        images = _image_map(kustomization, version)
        for resource in kustomization["resources"]:
            runtimes += [
                _replace_images(d, images) for d in _load_yaml(root / directory / resource)
            ]

    return {
        **release_objects(root / "charts/kserve-resources/files/kserve/resources.yaml"),
        "configmap": configmap,
        "runtimes": runtimes,
    }


def _merge_json_setting(data: dict[str, str], key: str, settings: JSON) -> None:
    value = json.loads(data.get(key) or "{}")
    value.update(settings)
    data[key] = json.dumps(value, indent=2)


def configure(configmap: JSON) -> JSON:
    """The ConfigMap with the local settings (see docs/local-cluster.md)."""
    cm: JSON = json.loads(json.dumps(configmap))
    data = cm["data"]
    # Standard is what v0.20 calls RawDeployment (which it still accepts and rewrites):
    # plain Deployments, Services and an Ingress; no Knative.
    _merge_json_setting(data, "deploy", {"defaultDeploymentMode": "Standard"})
    # No Istio here: don't look for VirtualServices (the controller would warn on
    # every InferenceService).
    _merge_json_setting(data, "ingress", {"disableIstioVirtualHost": True})
    return cm


def webhook_configurations(docs: list[JSON], port: int, ca_bundle: bytes) -> list[JSON]:
    """The release's webhook configurations, calling the manager on 127.0.0.1:`port`."""
    ca = base64.b64encode(ca_bundle).decode()
    out = []
    for doc in docs:
        doc = json.loads(json.dumps(doc))
        doc["metadata"].pop("creationTimestamp", None)
        doc["metadata"].get("annotations", {}).pop("cert-manager.io/inject-ca-from", None)
        for hook in doc["webhooks"]:
            service = hook["clientConfig"].pop("service")
            hook["clientConfig"]["url"] = f"https://127.0.0.1:{port}{service['path']}"
            hook["clientConfig"]["caBundle"] = ca
        out.append(doc)
    return out


def request_token(client: APIClient, service_account: str = SERVICE_ACCOUNT) -> tuple[str, str]:
    """A TokenRequest for a ServiceAccount in `kserve` (default: the manager's):
    (token, expiration timestamp)."""
    result = client.create(
        f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{service_account}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": TOKEN_SECONDS},
        },
    )
    return result["status"]["token"], result["status"]["expirationTimestamp"]


#: A dry-run InferenceService: the webhooks are wired when the mutating one
#: rewrites the legacy deployment mode and the validating one lets it through.
_PROBE: JSON = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {
        "name": "webhook-probe",
        "namespace": NAMESPACE,
        "annotations": {DEPLOYMENT_MODE_ANNOTATION: "RawDeployment"},
    },
    "spec": {
        "predictor": {
            "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "gs://probe/model"}
        }
    },
}


def webhooks_wired(client: APIClient) -> bool:
    """The apiserver calls KServe's InferenceService webhooks (dry run, nothing stored)."""
    got = client.create(
        f"/apis/serving.kserve.io/v1beta1/namespaces/{NAMESPACE}/inferenceservices",
        _PROBE,
        dry_run=True,
    )
    annotations = got["metadata"].get("annotations") or {}
    return bool(annotations.get(DEPLOYMENT_MODE_ANNOTATION) == "Standard")


def delete_all(client: APIClient, timeout: float = 60.0, log: Callable[[str], None] = print) -> int:
    """Delete every InferenceService, InferenceGraph and TrainedModel in the cluster
    while the controller runs, so that it removes its finalizers; wait until they are
    gone. Whatever is left after `timeout` has its finalizers stripped. Returns how
    many objects there were."""
    paths: list[str] = []
    for prefix, plural in KSERVE_RESOURCES:
        for obj in client.list_items(f"{prefix}/{plural}"):
            meta = obj["metadata"]
            paths.append(f"{prefix}/namespaces/{meta['namespace']}/{plural}/{meta['name']}")
    return delete_and_wait(client, paths, "KServe object(s)", timeout, log)


def delete_and_wait(
    client: APIClient, paths: list[str], what: str, timeout: float, log: Callable[[str], None]
) -> int:
    """Delete the objects at `paths` while their controller runs (it removes its
    finalizers) and wait until they are gone; strip the finalizers of whatever is left
    after `timeout`. Returns how many there were."""
    if not paths:
        return 0
    for path in paths:
        client.delete(path)
    deadline = time.monotonic() + timeout
    left = paths
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if client.get(p) is not None]
    for path in left:
        log(f"{path} still exists after {timeout:.0f}s; removing its finalizers")
        try:
            client.merge_patch(path, {"metadata": {"finalizers": None}})
        except APIError as err:
            log(f"could not remove the finalizers of {path}: {err}")
    log(f"deleted {len(paths)} {what} ({len(left)} had their finalizers stripped)")
    return len(paths)
