"""Helpers for integration tests on a real API server: apply, watch, run the operator.

The real KServe controller runs in the local control plane and reconciles every
InferenceService. Names say when a helper plays a part that a missing component would
play in a real cluster (for example `play_kubelet_pods_not_ready`: kwok, which plays
the kubelet, never makes a pod unready by itself).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE_PREFIX = os.environ.get("RUNG_TEST_NS_PREFIX", "t-")
"""This pytest session's test namespaces (set by tests/conftest.py)."""
GROUP, VERSION, PLURAL = "rung.dev", "v1alpha1", "modeldeployments"
ISVC = ("serving.kserve.io", "v1beta1", "inferenceservices")
Obj = dict[str, Any]


def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def install_crds(api: client.ApiClient) -> None:
    """Apply crds/ (server-side) and wait until every CRD is Established."""
    ext = client.ApiextensionsV1Api(api)
    names = []
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        names.append(crd["metadata"]["name"])
        for attempt in range(5):
            try:
                existing = ext.read_custom_resource_definition(crd["metadata"]["name"])
                crd["metadata"]["resourceVersion"] = existing.metadata.resource_version
                ext.replace_custom_resource_definition(crd["metadata"]["name"], crd)
            except ApiException as error:
                if error.status == 409 and attempt < 4:
                    continue  # the API server updated its status meanwhile: read again
                if error.status != 404:
                    raise
                crd["metadata"].pop("resourceVersion", None)
                ext.create_custom_resource_definition(crd)
            break
    for name in names:
        wait_until(
            lambda n=name: any(  # type: ignore[misc]
                c.type == "Established" and c.status == "True"
                for c in (ext.read_custom_resource_definition(n).status.conditions or [])
            ),
            f"CRD {name} established",
        )


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """Poll `predicate` (cheap, local reads) until truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def watch_object(
    api: client.ApiClient,
    gvp: tuple[str, str, str],
    namespace: str,
    name: str,
    predicate: Callable[[Obj], bool],
    what: str,
    timeout: float = 60,
) -> Obj:
    """Watch one custom object until `predicate(obj)` holds; return that object."""
    group, version, plural = gvp
    api_ = custom(api)
    deadline = time.monotonic() + timeout
    last: Obj | None = None
    while time.monotonic() < deadline:
        try:
            current = api_.get_namespaced_custom_object(group, version, namespace, plural, name)
        except ApiException as error:
            if error.status != 404:
                raise
            current = None
        if current is not None:
            last = current
            if predicate(current):
                return current
        rv = current["metadata"]["resourceVersion"] if current else None
        remaining = max(1, int(deadline - time.monotonic()))
        stream = watch.Watch().stream(
            api_.list_namespaced_custom_object,
            group,
            version,
            namespace,
            plural,
            field_selector=f"metadata.name={name}",
            resource_version=rv,
            timeout_seconds=min(remaining, 30),
        )
        try:
            for event in stream:
                obj = event["object"]
                if event["type"] in ("ADDED", "MODIFIED"):
                    last = obj
                    if predicate(obj):
                        return dict(obj)
        except ApiException as error:
            if error.status != 410:  # resource version too old: re-list
                raise
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}; last seen:\n"
        + yaml.safe_dump((last or {}).get("status") or last or {}, sort_keys=False)
    )


def md_holds(
    api: client.ApiClient,
    namespace: str,
    name: str,
    predicate: Callable[[Obj], bool],
    what: str,
    seconds: float,
) -> Obj:
    """Watch the ModelDeployment for `seconds` (an observation window, not a wait for an
    outcome): fail as soon as `predicate` stops holding; return the last object seen."""
    seen: list[Obj] = []

    def broken(obj: Obj) -> bool:
        seen.append(obj)
        return not predicate(obj)

    try:
        obj = watch_object(
            api, (GROUP, VERSION, PLURAL), namespace, name, broken, what, timeout=seconds
        )
    except AssertionError:
        return seen[-1]
    raise AssertionError(f"{what} stopped holding:\n" + yaml.safe_dump(obj.get("status") or {}))


def watch_md(
    api: client.ApiClient,
    namespace: str,
    name: str,
    predicate: Callable[[Obj], bool],
    what: str,
    timeout: float = 60,
) -> Obj:
    return watch_object(api, (GROUP, VERSION, PLURAL), namespace, name, predicate, what, timeout)


def condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return None


def is_condition(obj: Mapping[str, Any], type_: str, status: str) -> bool:
    found = condition(obj, type_)
    return found is not None and found["status"] == status


OWNERS: Obj = {
    "onCall": {"name": "team-fraud", "contact": "#fraud-oncall"},
    "releaseOwner": {"name": "ada", "contact": "ada@example.com"},
    "pipelineOwner": {"name": "team-ml-platform", "contact": "ml-platform@example.com"},
    "riskReviewer": {"name": "risk-office", "contact": "risk@example.com"},
}
"""spec.owners holding every responsibility (release owner and risk reviewer are required
from levels 2 and 4)."""


def training_data(name: str, version: str = "2025-02-01") -> Obj:
    """spec.model.data: the dataset a model was trained on (required from level 3)."""
    return {"uri": f"s3://datasets/{name}", "version": version}


def model_deployment(
    name: str, namespace: str, *, level: int = 0, version: str = "v1", **spec_extra: Any
) -> Obj:
    """A ModelDeployment that every level admits: spec.owners holds every responsibility
    and spec.model.data names its dataset, unless `owners=None` / `data=None` leave them
    out (to see them refused)."""
    data = spec_extra.pop("data", training_data(name))
    spec: Obj = {
        "maturity": {"level": level},
        "model": {
            "format": "sklearn",
            "storageUri": f"s3://models/{name}/{version}",
            "version": version,
            **({"data": data} if data is not None else {}),
        },
        "owners": {k: dict(v) for k, v in OWNERS.items()},
    }
    spec.update(spec_extra)
    spec = {k: v for k, v in spec.items() if v is not None}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def create_md(api: client.ApiClient, body: Obj) -> Obj:
    ns = body["metadata"]["namespace"]
    return dict(custom(api).create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body))


def patch_md(api: client.ApiClient, namespace: str, name: str, patch: Obj) -> Obj:
    return dict(
        custom(api).patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            patch,
            _content_type="application/merge-patch+json",
        )
    )


def get_isvc(api: client.ApiClient, namespace: str, name: str) -> Obj | None:
    try:
        return dict(custom(api).get_namespaced_custom_object(*ISVC[:2], namespace, ISVC[2], name))
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def play_kubelet_pods_not_ready(
    api: client.ApiClient,
    namespace: str,
    isvc: str,
    message: str = "container exited with code 1",
) -> int:
    """Stand in for a kubelet whose model-server container crashed: mark the
    InferenceService's predictor pods not ready, their containers terminated with
    `message` (what a real container writes to its termination log).

    kwok plays the kubelet here and only ever makes pods ready, so a test writes, through
    the pods' status subresource, what a kubelet reports; the Deployment controller and
    the real KServe controller take it from there (KServe turns the message into
    `modelStatus.lastFailureInfo`). Returns the number of pods changed.
    """
    core = client.CoreV1Api(api)
    pods = core.list_namespaced_pod(
        namespace, label_selector=f"serving.kserve.io/inferenceservice={isvc}"
    ).items
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    terminated = {
        "reason": "Error",
        "exitCode": 1,
        "message": message,
        "startedAt": now,
        "finishedAt": now,
    }
    for pod in pods:
        core.patch_namespaced_pod_status(
            pod.metadata.name,
            namespace,
            {
                "status": {
                    "conditions": [
                        {
                            "type": kind,
                            "status": "False",
                            "lastTransitionTime": now,
                            "reason": "ContainersNotReady",
                        }
                        for kind in ("Ready", "ContainersReady")
                    ],
                    "containerStatuses": [
                        {
                            "name": container.name,
                            "image": container.image or "",
                            "imageID": "",
                            "ready": False,
                            "restartCount": 1,
                            "state": {"terminated": terminated},
                            "lastState": {"terminated": terminated},
                        }
                        for container in pod.spec.containers
                    ],
                }
            },
        )
    return len(pods)


def kserve_webhook_url(api: client.ApiClient) -> str:
    """The URL of the real KServe controller's InferenceService defaulting webhook,
    after checking that it answers: a dry-run InferenceService comes back with
    `serving.kserve.io/deploymentMode: Standard` (KServe >= 0.15 normalises the
    deprecated `RawDeployment`). Fails the session when KServe is not there."""
    hooks = client.AdmissionregistrationV1Api(api).list_mutating_webhook_configuration().items
    urls = [
        h.client_config.url or f"service {h.client_config.service.name}"
        for config in hooks
        for h in config.webhooks or []
        if "inferenceservice" in h.name
    ]
    assert urls, "no KServe InferenceService webhook is registered in this cluster"
    probe = {
        "apiVersion": "/".join(ISVC[:2]),
        "kind": "InferenceService",
        "metadata": {
            "name": "kserve-probe",
            "namespace": "default",
            "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"},
        },
        "spec": {
            "predictor": {
                "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://m/probe"}
            }
        },
    }
    stored = custom(api).create_namespaced_custom_object(
        *ISVC[:2], "default", ISVC[2], probe, dry_run="All"
    )
    mode = stored["metadata"]["annotations"].get("serving.kserve.io/deploymentMode")
    assert mode == "Standard", f"KServe's defaulting webhook did not answer (mode {mode!r})"
    return str(urls[0])


def rung_cli(*args: str) -> str:
    """Run the `rung` command line (as a user would) and return what it printed."""
    return subprocess.run(
        [sys.executable, "-m", "rung", *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout


@dataclass
class OperatorProcess:
    """`rung run` started as a subprocess (the way it runs in a Pod)."""

    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def api_requests(self) -> dict[tuple[str, str], float]:
        """rung_api_requests_total by (method, resource), from the operator's /metrics."""
        return {
            (labels["method"], labels["resource"]): value
            for labels, value in self.samples("rung_api_requests_total")
        }

    def reconciles(self) -> float:
        """rung_reconciles_total, every outcome (no-op passes included)."""
        return sum(value for _, value in self.samples("rung_reconciles_total"))

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        """The samples of the metric `name` on the operator's /metrics: (labels, value)."""
        import urllib.request

        assert self.metrics_port is not None, "started without --metrics-port"
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        found = []
        for line in text.splitlines():
            if line.startswith(name + "{"):
                labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
                found.append((labels, float(line.rsplit(" ", 1)[1])))
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def run_operator(
    kubeconfig: str, log_path: Path, *args: str, env: Mapping[str, str] | None = None
) -> Iterator[OperatorProcess]:
    """Run the operator until the block ends; fail with its log if it dies early."""
    full_env = {**os.environ, "KUBECONFIG": kubeconfig, "PYTHONUNBUFFERED": "1", **(env or {})}
    log_file = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rung", "run", *args],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=full_env,
        cwd=ROOT,
    )
    port = next((int(args[i + 1]) for i, a in enumerate(args) if a == "--metrics-port"), None)
    op = OperatorProcess(proc, log_path, port)
    try:
        wait_until(
            lambda: proc.poll() is not None or "starting rung" in op.log(),
            "operator start",
            timeout=60,
        )
        if proc.poll() is not None:
            raise AssertionError(f"operator exited early:\n{op.log()[-4000:]}")
        yield op
    finally:
        op.stop()
        log_file.close()


WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "APPLY")


def write_requests(api: client.ApiClient) -> int:
    """Write requests the API server has served for the kinds Rung manages.

    Read from the API server's own `apiserver_request_total` counter (which also counts
    writes that change nothing): ModelDeployments, InferenceServices, Prometheus
    Operator objects and HTTPRoutes. Events (every component writes them) are counted
    per namespace and involved object by the caller.
    """
    return sum(write_requests_by_kind(api).values())


def write_requests_by_kind(
    api: client.ApiClient, also: tuple[str, ...] = ()
) -> dict[tuple[str, str, str], int]:
    """`write_requests`, by (verb, resource, subresource); `also` adds API groups."""
    text = _raw_metrics(api)
    total: dict[tuple[str, str, str], int] = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if labels.get("verb") not in WRITE_VERBS:
            continue
        group, resource = labels.get("group", ""), labels.get("resource", "")
        ours = group in (
            "rung.dev",
            "serving.kserve.io",
            "monitoring.coreos.com",
            "gateway.networking.k8s.io",
            *also,
        )
        if ours:
            key = (labels["verb"], resource, labels.get("subresource", ""))
            total[key] = total.get(key, 0) + int(float(line.rsplit(" ", 1)[1]))
    return total


def _raw_metrics(api: client.ApiClient) -> str:
    config = api.configuration
    import urllib3

    http = urllib3.PoolManager(
        cert_reqs="CERT_REQUIRED" if config.verify_ssl else "CERT_NONE",
        ca_certs=config.ssl_ca_cert,
        cert_file=config.cert_file,
        key_file=config.key_file,
    )
    headers = {}
    if config.api_key.get("authorization"):
        headers["authorization"] = config.api_key["authorization"]
    response = http.request("GET", f"{config.host}/metrics", headers=headers)
    return str(response.data.decode())


class BackgroundWatch:
    """A recorder that watches a namespace in a thread of its own while its `with` block
    runs; subclasses say what `_run` watches and records, checking `_stop`."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        import threading

        self.api, self.namespace = api, namespace
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        raise NotImplementedError


class CanaryWeights(BackgroundWatch):
    """Every canary weight each ModelDeployment of a namespace goes through (a watch),
    by name; consecutive repeats are recorded once."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__(api, namespace)
        self.seen: dict[str, list[int]] = {}

    def _run(self) -> None:
        from kubernetes import watch

        api = custom(self.api)
        version = None
        while not self._stop.is_set():
            stream = watch.Watch().stream(
                api.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                resource_version=version,
                timeout_seconds=1,
            )
            for event in stream:
                obj = event["object"]
                version = obj["metadata"]["resourceVersion"]
                canary = (obj.get("status") or {}).get("canary")
                weight = None if canary is None else int(canary["weight"])
                seen = self.seen.setdefault(obj["metadata"]["name"], [])
                if weight is not None and (not seen or seen[-1] != weight):
                    seen.append(weight)
