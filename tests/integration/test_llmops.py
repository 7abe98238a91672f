"""LLMOps on real parts: `kind: llm` on KServe's LLMInferenceService, canaried in a route
group and gated on vLLM's metrics in a real Prometheus; an external provider canaried to
a self-hosted model; the provider's credentials nowhere outside their Secret.

What plays which part:
- KServe's real LLMInferenceService controller (`cmd/llmisvc` of the pinned module, run by
  the local cluster) defaults and validates every LLMInferenceService Rung applies (its
  webhooks, its CRD's schema), merges its presets into it, creates the vLLM Deployment
  (`<name>-kserve`, kwok pods), the Service `<name>-kserve-workload-svc` and, per member
  of the route group, an HTTPRoute `<name>-kserve-route` with the group's weighted
  backendRefs; it reports `WorkloadsReady` and the group's members in status.
- no Gateway implementation runs here (each programs an Envoy proxy): a stand-in limited
  to status (`testbed.gateway_standin`) accepts the HTTPRoutes of the test's namespace
  and programs their Gateways, as Envoy Gateway would; KServe adds a member to the
  group's routes only once its route is accepted. The Gateway `inference-gateway` is
  created by the tests that name it, as a platform team would.
- the model servers are `testbed.openai_server`, a real HTTP server with vLLM's
  OpenAI-compatible streaming API and vLLM's metric names (no GPU or weights here), with
  injected TTFT; Prometheus scrapes them with the `llm_isvc_name` label KServe's
  PodMonitor relabelling gives vLLM's series;
- `testbed.llm_load` plays the Gateway: it streams completions, split by the weights set
  in the cluster (the route group's, or Rung's HTTPRoute's), and injects the external
  provider's API key from the Secret the ExternalName Service names (as a Gateway's
  credential injection reads it).
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from integration_kit import (
    BackgroundWatch,
    create_md,
    custom,
    model_deployment,
    patch_md,
    rung_cli,
    wait_until,
    watch_md,
)
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from testbed.gateway_standin import GatewayStandIn, gateway
from testbed.llm_load import LlmBackend, StreamingLoadDriver
from testbed.openai_server import OpenAIServerProcess, start_openai_server
from testbed.prometheus import PrometheusServer, ScrapeTarget

NAME = "assistant"
CANARY = f"{NAME}-canary"
LLMISVC = ("serving.kserve.io", "v1alpha2", "llminferenceservices")
Obj = dict[str, Any]


@pytest.fixture(scope="module", autouse=True)
def llmisvc_controller(kube_api: client.ApiClient) -> None:
    """Proof that KServe's LLMInferenceService controller serves this cluster: a dry-run
    LLMInferenceService without `spec.model.name` comes back with it filled in by KServe's
    defaulting webhook, which nothing else does."""
    probe = {
        "apiVersion": "/".join(LLMISVC[:2]),
        "kind": "LLMInferenceService",
        "metadata": {"name": "llmisvc-probe", "namespace": "default"},
        "spec": {"model": {"uri": "hf://example/probe"}},
    }
    got = custom(kube_api).create_namespaced_custom_object(
        *LLMISVC[:2], "default", LLMISVC[2], probe, dry_run="All"
    )
    assert got["spec"]["model"].get("name") == "llmisvc-probe", (
        "KServe's LLMInferenceService webhooks do not answer (no llmisvc-controller?)"
    )


def llm_model(version: str) -> Obj:
    return {
        "kind": "llm",
        "format": "huggingface",
        "storageUri": f"hf://example/assistant-{version}",
        "version": version,
        "resources": {"limits": {"nvidia.com/gpu": 1}, "requests": {"cpu": "4"}},
    }


def level2_llm(namespace: str, prometheus_url: str, model: Obj) -> Obj:
    """Level 2 for an LLM: TTFT objective 1000 ms, so a canary at 3x stable's TTFT stays
    within it and only the relative threshold (20% of the objective) can fail it."""
    body = model_deployment(
        NAME,
        namespace,
        level=2,
        data=None,
        monitoring={
            "prometheus": {"url": prometheus_url},
            "slo": {"timeToFirstTokenP95Ms": 1000},
            "interval": "2s",
        },
        rollout={
            "steps": [20, 50, 100],
            "interval": "3s",
            "progressDeadline": "90s",
            "analysis": {"failureLimit": 2, "onNoData": "hold"},
        },
    )
    return _with_model(body, model)


def _with_model(body: Obj, model: Obj) -> Obj:
    body["spec"]["model"] = model
    return body


def llmisvc(api: client.ApiClient, namespace: str, name: str) -> Obj | None:
    try:
        return dict(
            custom(api).get_namespaced_custom_object(*LLMISVC[:2], namespace, LLMISVC[2], name)
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def _create_gateway(api: client.ApiClient, namespace: str) -> None:
    """The Gateway `inference-gateway` that `spec.rollout.gateway` names."""
    custom(api).create_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "gateways",
        gateway("inference-gateway", namespace),
    )  # fmt: skip


def _route_group_weights(obj: Obj) -> dict[str, int]:
    members = (((obj.get("status") or {}).get("router") or {}).get("group") or {}).get("members")
    return {m["name"]: int(m["weight"]) for m in members or []}


def cluster_weights(api: client.ApiClient, namespace: str) -> dict[str, int]:
    """The weights the cluster routes by role: Rung's HTTPRoute when there is one (an
    external provider takes part), else the route group as KServe reports it."""
    with suppress(ApiException):
        route = custom(api).get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", namespace, "httproutes", NAME
        )
        weights = {"stable": 0, "canary": 0}
        for ref in route["spec"]["rules"][0]["backendRefs"]:
            role = "canary" if ref["name"].startswith(CANARY) else "stable"
            weights[role] = int(ref["weight"])
        return weights
    stable = llmisvc(api, namespace, NAME) or {}
    group = _route_group_weights(stable)
    if not group:
        return {}  # no route yet: nothing is sent
    return {"stable": group.get(NAME, 0), "canary": group.get(CANARY, 0)}


class CachedWeights:
    """The cluster's weights, read at most every 0.3 s (the driver asks per request)."""

    def __init__(self, read: Callable[[], dict[str, int]]) -> None:
        self.read, self.value, self.at = read, {}, 0.0
        self.lock = threading.Lock()

    def __call__(self) -> dict[str, int]:
        import time

        with self.lock:
            if time.monotonic() - self.at > 0.3:
                with suppress(Exception):
                    self.value = self.read()
                self.at = time.monotonic()
            return dict(self.value)


class GroupWeights(BackgroundWatch):
    """Every distinct (stable, canary) weight pair of the route group, in the order the
    LLMInferenceServices' specs carried them (a watch, nothing missed)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__(api, namespace)
        self.seen: list[tuple[int, int]] = []
        self.weights: dict[str, int] = {}

    def _run(self) -> None:
        api = custom(self.api)
        while not self._stop.is_set():
            with suppress(Exception):
                for event in watch.Watch().stream(
                    api.list_namespaced_custom_object,
                    *LLMISVC[:2],
                    self.namespace,
                    LLMISVC[2],
                    timeout_seconds=2,
                ):
                    obj = event["object"]
                    name = obj["metadata"]["name"]
                    route = (obj.get("spec") or {}).get("router", {}).get("route") or {}
                    if event["type"] == "DELETED" or "weight" not in route:
                        self.weights.pop(name, None)
                    else:
                        self.weights[name] = int(route["weight"])
                    if CANARY in self.weights:
                        pair = (self.weights.get(NAME, 0), self.weights[CANARY])
                        if not self.seen or self.seen[-1] != pair:
                            self.seen.append(pair)
                    if self._stop.is_set():
                        return


class KServeRouteWeights(BackgroundWatch):
    """Every distinct (stable, canary) pair of backendRef weights in the HTTPRoutes KServe
    writes for the route group's members (`<member>-kserve-route`, the shared rule
    `v1-model-routing`), in the order they were written (a watch): what KServe tells the
    Gateway, not what Rung asked for."""

    RULE = "v1-model-routing"

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__(api, namespace)
        self.seen: list[tuple[int, int]] = []

    def record(self, route: Obj) -> None:
        if route["metadata"]["name"] not in (f"{NAME}-kserve-route", f"{CANARY}-kserve-route"):
            return
        for rule in route["spec"].get("rules") or []:
            if rule.get("name") != self.RULE:
                continue
            weights = {ref["name"]: int(ref.get("weight", 1)) for ref in rule["backendRefs"]}
            stable = weights.get(f"{NAME}-kserve-workload-svc")
            canary = weights.get(f"{CANARY}-kserve-workload-svc")
            pair = (stable, canary)
            if stable is not None and canary is not None and self.seen[-1:] != [pair]:
                self.seen.append((stable, canary))

    def _run(self) -> None:
        api = custom(self.api)
        while not self._stop.is_set():
            with suppress(Exception):
                for event in watch.Watch().stream(
                    api.list_namespaced_custom_object,
                    "gateway.networking.k8s.io", "v1", self.namespace, "httproutes",
                    timeout_seconds=2,
                ):  # fmt: skip
                    self.record(event["object"])
                    if self._stop.is_set():
                        return


def _in_order(seen: list[tuple[int, int]], wanted: list[tuple[int, int]]) -> bool:
    """`wanted` occurs in `seen` as a subsequence."""
    rest = iter(seen)
    return all(any(pair == w for pair in rest) for w in wanted)


@dataclass
class Bench:
    prometheus: PrometheusServer
    load: StreamingLoadDriver
    stable: OpenAIServerProcess
    canary: OpenAIServerProcess


@contextmanager
def bench(
    tmp_path: Path,
    api: client.ApiClient,
    namespace: str,
    *,
    canary_ttft_ms: float,
    stable_api_key: Path | None = None,
    stable_headers: Callable[[], dict[str, str]] = dict,
    canary_api_key: Path | None = None,
    canary_headers: Callable[[], dict[str, str]] = dict,
) -> Iterator[Bench]:
    stable = start_openai_server(
        "stable", tmp_path, ttft_ms=150, itl_ms=5, api_key_file=stable_api_key
    )
    canary = start_openai_server(
        "canary", tmp_path, ttft_ms=canary_ttft_ms, itl_ms=5, api_key_file=canary_api_key
    )
    load = StreamingLoadDriver(
        {
            "stable": LlmBackend(stable.url, "assistant", stable_headers),
            "canary": LlmBackend(canary.url, "assistant", canary_headers),
        },
        weights=CachedWeights(lambda: cluster_weights(api, namespace)),
        rate=12,
        max_seconds=400,
    ).start()
    prometheus = PrometheusServer(
        tmp_path / "prometheus",
        [
            ScrapeTarget("stable", stable.address, {"namespace": namespace, "llm_isvc_name": NAME}),
            ScrapeTarget(
                "canary", canary.address, {"namespace": namespace, "llm_isvc_name": CANARY}
            ),
        ],
    )
    prometheus.start()
    try:
        yield Bench(prometheus, load, stable, canary)
    finally:
        load.stop()
        prometheus.stop()
        stable.stop()
        canary.stop()


def _phase(o: Obj) -> str | None:
    return (o.get("status") or {}).get("phase")


def _md_weights(
    api: client.ApiClient, namespace: str, done: Callable[[Obj], bool], what: str
) -> tuple[list[int], Obj]:
    seen: list[int] = []

    def record(o: Obj) -> bool:
        canary = (o.get("status") or {}).get("canary")
        if canary and (not seen or seen[-1] != canary["weight"]):
            seen.append(canary["weight"])
        return done(o)

    return seen, watch_md(api, namespace, NAME, record, what, timeout=240)


# --- serving ------------------------------------------------------------------------


@pytest.mark.usefixtures("operator")
def test_kind_llm_creates_an_llm_inference_service_kserves_crd_accepts(
    kube_api: client.ApiClient, namespace: str
) -> None:
    body = _with_model(model_deployment(NAME, namespace, level=0, data=None), llm_model("v1"))
    body["spec"]["model"]["llm"] = {
        "modelName": "assistant",
        "lora": {"adapters": [{"name": "sql", "uri": "hf://example/sql-lora"}]},
        "parallelism": {"tensor": 1},
    }
    with GatewayStandIn(kube_api, namespace):
        create_md(kube_api, body)
        md = watch_md(kube_api, namespace, NAME, lambda o: _phase(o) == "Ready", "Ready")
    isvc = llmisvc(kube_api, namespace, NAME)
    assert isvc is not None
    assert isvc["apiVersion"] == "serving.kserve.io/v1alpha2"
    spec = isvc["spec"]
    assert spec["model"]["uri"] == "hf://example/assistant-v1"
    assert spec["model"]["lora"]["adapters"] == [{"name": "sql", "uri": "hf://example/sql-lora"}]
    assert spec["template"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert spec["router"]["route"] == {"group": NAME, "weight": 100}
    assert isvc["metadata"]["ownerReferences"][0]["name"] == NAME
    assert md["status"]["stable"]["version"] == "v1"
    # KServe's controller reconciled it: vLLM's Deployment and Service, a route group of one
    status = isvc["status"]
    assert status["observedGeneration"] == isvc["metadata"]["generation"]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["WorkloadsReady"] == "True"
    assert status["workloads"]["primary"]["name"] == f"{NAME}-kserve"
    assert [(m["name"], m["weight"]) for m in status["router"]["group"]["members"]] == [(NAME, 100)]
    assert isvc["metadata"]["labels"]["serving.kserve.io/routing-group"] == NAME  # its defaulter
    pods = client.CoreV1Api(kube_api).list_namespaced_pod(
        namespace, label_selector=f"app.kubernetes.io/name={NAME}"
    )
    # the label Rung's PodMonitor relabels into llm_isvc_name, on vLLM's pods
    assert {c.name for p in pods.items for c in p.spec.containers} >= {"main"}
    main = next(c for c in pods.items[0].spec.containers if c.name == "main")
    assert main.resources.limits["nvidia.com/gpu"] == "1"
    assert any(port.container_port == 8000 for port in main.ports)
    client.CoreV1Api(kube_api).read_namespaced_service(f"{NAME}-kserve-workload-svc", namespace)
    route = custom(kube_api).get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "httproutes", f"{NAME}-kserve-route"
    )
    assert route["spec"]["parentRefs"][0]["name"] == "kserve-ingress-gateway"
    # no InferenceService for an LLM on LLMInferenceService
    with pytest.raises(ApiException) as missing:
        custom(kube_api).get_namespaced_custom_object(
            "serving.kserve.io", "v1beta1", namespace, "inferenceservices", NAME
        )
    assert missing.value.status == 404


def test_kserves_crd_refuses_what_its_schema_refuses(
    kube_api: client.ApiClient, namespace: str
) -> None:
    """The CRD is KServe's: replicas and scaling together are refused by its CEL rule."""
    bad = {
        "apiVersion": "serving.kserve.io/v1alpha2",
        "kind": "LLMInferenceService",
        "metadata": {"name": "bad", "namespace": namespace},
        "spec": {"model": {"uri": "hf://x/y"}, "replicas": 1, "scaling": {"maxReplicas": 2}},
    }
    with pytest.raises(ApiException) as refused:
        custom(kube_api).create_namespaced_custom_object(*LLMISVC[:2], namespace, LLMISVC[2], bad)
    assert refused.value.status == 422
    assert "mutually exclusive" in refused.value.body


@pytest.mark.parametrize(
    ("model", "gateway", "message"),
    [
        (
            {"source": "external", "storageUri": None},
            True,
            "source external needs kind llm and external",
        ),
        (
            {
                "source": "external",
                "storageUri": None,
                "external": {
                    "endpoint": "https://api.example.com/v1",
                    "model": "m",
                    "credentialsSecretRef": {"name": "key"},
                },
            },
            False,
            "source external is reached through a Gateway: set spec.rollout.gateway",
        ),
        ({"storageUri": None}, True, "storageUri is required unless source is external"),
        (
            {"llm": {"api": "InferenceService", "lora": {"adapters": [{"name": "a", "uri": "b"}]}}},
            True,
            "lora, parallelism and scheduler need llm.api LLMInferenceService",
        ),
    ],
    ids=["external-without-provider", "external-without-gateway", "no-storage", "lora-on-isvc"],
)
def test_admission_refuses_llm_specs_that_would_break_later(
    kube_api: client.ApiClient, namespace: str, model: Obj, gateway: bool, message: str
) -> None:
    body = _with_model(model_deployment(NAME, namespace, level=2, data=None), llm_model("v1"))
    body["spec"]["model"].update(model)
    body["spec"]["model"] = {k: v for k, v in body["spec"]["model"].items() if v is not None}
    if gateway:
        body["spec"]["rollout"] = {"gateway": {"name": "inference-gateway"}}
    with pytest.raises(ApiException) as refused:
        create_md(kube_api, body)
    assert refused.value.status == 422
    assert message in refused.value.body


# --- canaries gated on vLLM's metrics ---------------------------------------------------


@pytest.mark.usefixtures("operator")
def test_healthy_llm_canary_is_promoted_through_every_step_of_the_route_group(
    kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    with (
        GatewayStandIn(kube_api, namespace),
        bench(tmp_path, kube_api, namespace, canary_ttft_ms=150) as b,
        GroupWeights(kube_api, namespace) as group,
        KServeRouteWeights(kube_api, namespace) as routes,
    ):
        create_md(kube_api, level2_llm(namespace, b.prometheus.url, llm_model("v1")))
        watch_md(kube_api, namespace, NAME, lambda o: _phase(o) == "Ready", "v1 Ready", 90)
        patch_md(kube_api, namespace, NAME, {"spec": {"model": llm_model("v2")}})
        seen, md = _md_weights(
            kube_api,
            namespace,
            lambda o: _phase(o) == "Ready" and o["status"]["stable"]["version"] == "v2",
            "v2 promoted",
        )

    assert seen[seen.index(20) :][:3] == [20, 50, 100]
    # every step in the route group's weights: stable 100 - w, canary w
    pairs = group.seen
    assert [p for p in pairs if p in ((80, 20), (50, 50), (0, 100))] == [
        (80, 20),
        (50, 50),
        (0, 100),
    ], pairs
    # ... and in the weighted HTTPRoutes KServe's controller wrote from them
    assert _in_order(routes.seen, [(80, 20), (50, 50), (0, 100)]), routes.seen
    checks = {c["metric"]: c for c in md["status"]["analysis"]["checks"]}
    assert set(checks) >= {"error-rate", "time-to-first-token-p95", "inter-token-latency-p95"}
    assert all(c["passed"] for c in checks.values())
    assert checks["time-to-first-token-p95"]["stableValue"] is not None
    assert b.load.sent[("canary", 200)] > 0
    stable = llmisvc(kube_api, namespace, NAME)
    assert stable is not None
    assert stable["spec"]["model"]["uri"] == "hf://example/assistant-v2"
    wait_until(lambda: llmisvc(kube_api, namespace, CANARY) is None, "canary removed")
    assert f"LLMInferenceService {NAME}  ✔ Ready" in rung_cli("get", NAME, "-n", namespace)


@pytest.mark.usefixtures("operator")
def test_llm_canary_with_three_times_stables_ttft_is_rolled_back_on_the_relative_threshold(
    kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    with (
        GatewayStandIn(kube_api, namespace),
        bench(tmp_path, kube_api, namespace, canary_ttft_ms=450) as b,
    ):
        create_md(kube_api, level2_llm(namespace, b.prometheus.url, llm_model("v1")))
        watch_md(kube_api, namespace, NAME, lambda o: _phase(o) == "Ready", "v1 Ready", 90)
        patch_md(kube_api, namespace, NAME, {"spec": {"model": llm_model("v2")}})
        seen, md = _md_weights(
            kube_api, namespace, lambda o: _phase(o) == "RolledBack", "rolled back"
        )

    assert 100 not in seen
    assert seen[-1] == 0
    assert md["status"]["stable"]["version"] == "v1"
    assert md["status"]["rejected"]["version"] == "v2"
    failed = [c for c in md["status"]["analysis"]["checks"] if c["passed"] is False]
    assert [c["metric"] for c in failed] == ["time-to-first-token-p95"]
    ttft = failed[0]
    # within the absolute objective (1000 ms), failed on the relative threshold only
    assert ttft["value"] < 1000
    assert ttft["value"] > 1.5 * ttft["stableValue"]
    assert "exceeds stable" in ttft["message"]
    assert "> max" not in ttft["message"]
    assert b.load.sent[("canary", 200)] > 0


# --- an external provider ---------------------------------------------------------------


def _provider_key(api: client.ApiClient, namespace: str, tmp_path: Path) -> tuple[str, Path]:
    """A fresh API key: in the Secret `provider-key` (what the ModelDeployment names) and
    in a file for the test server playing the provider. Returns both."""
    value = "sk-" + secrets.token_hex(16)
    client.CoreV1Api(api).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="provider-key"), string_data={"apiKey": value}
        ),
    )
    key_file = tmp_path / "key"
    key_file.write_text(value)
    return value, key_file


def _gateway_credentials(
    api: client.ApiClient, namespace: str, slot: str = NAME
) -> Callable[[], dict[str, str]]:
    """What a Gateway's credential injection does: read the key of the Secret the
    external provider's Service names, add it as a bearer token."""
    import base64

    def headers() -> dict[str, str]:
        core = client.CoreV1Api(api)
        service = core.read_namespaced_service(f"{slot}-external", namespace)
        ref = service.metadata.annotations["rung.dev/credentials-secret"]
        name, key = ref.split("/")
        secret = core.read_namespaced_secret(name, namespace)
        return {"Authorization": "Bearer " + base64.b64decode(secret.data[key]).decode()}

    cached: dict[str, str] = {}

    def once() -> dict[str, str]:
        if not cached:
            with suppress(ApiException):
                cached.update(headers())
        return dict(cached)

    return once


@pytest.mark.usefixtures("operator")
def test_external_provider_canaried_to_a_self_hosted_model_and_its_key_stays_in_the_secret(
    kube_api: client.ApiClient, namespace: str, tmp_path: Path, operator: Any
) -> None:
    value, key_file = _provider_key(kube_api, namespace, tmp_path)
    with (
        GatewayStandIn(kube_api, namespace),
        bench(
            tmp_path,
            kube_api,
            namespace,
            canary_ttft_ms=150,
            stable_api_key=key_file,
            stable_headers=_gateway_credentials(kube_api, namespace),
        ) as b,
    ):
        body = level2_llm(namespace, b.prometheus.url, _external(b.stable.port))
        body["spec"]["rollout"]["gateway"] = {"name": "inference-gateway"}
        _create_gateway(kube_api, namespace)
        create_md(kube_api, body)
        watch_md(kube_api, namespace, NAME, lambda o: _phase(o) == "Ready", "provider Ready", 90)
        service = client.CoreV1Api(kube_api).read_namespaced_service(f"{NAME}-external", namespace)
        assert service.spec.type == "ExternalName"
        assert service.spec.external_name == "localhost"
        route = custom(kube_api).get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", namespace, "httproutes", NAME
        )
        assert route["spec"]["rules"][0]["backendRefs"][0]["name"] == f"{NAME}-external"
        assert route["spec"]["parentRefs"][0]["name"] == "inference-gateway"

        self_hosted = {**llm_model("v2"), "source": "self-hosted", "external": None}
        patch_md(kube_api, namespace, NAME, {"spec": {"model": self_hosted}})
        seen, md = _md_weights(
            kube_api,
            namespace,
            lambda o: _phase(o) == "Ready" and o["status"]["stable"]["version"] == "v2",
            "self-hosted v2 promoted",
        )
        assert seen[seen.index(20) :][:3] == [20, 50, 100]
        assert all(c["passed"] for c in md["status"]["analysis"]["checks"])
        # the provider served through the key the Gateway injected, never refused it
        assert b.load.sent[("stable", 200)] > 0
        assert b.load.sent[("stable", 401)] == 0
        assert b.load.sent[("canary", 200)] > 0

    stable = llmisvc(kube_api, namespace, NAME)
    assert stable is not None
    assert stable["spec"]["router"]["route"]["group"] == NAME
    assert stable["spec"]["router"]["gateway"] == {
        "refs": [{"name": "inference-gateway", "namespace": namespace}]
    }
    _assert_nowhere_but_the_secret(kube_api, namespace, value, operator.log())


NOT_SELF_HOSTED = {"storageUri": None, "resources": None}
"""What a merge patch to an external provider removes from a self-hosted spec.model."""


def _external(port: int, version: str = "provider") -> Obj:
    """spec.model for the test server playing an OpenAI-compatible provider."""
    return {
        "kind": "llm",
        "format": "openai",
        "source": "external",
        "version": version,
        "external": {
            "endpoint": f"http://localhost:{port}/v1",
            "model": "assistant",
            "credentialsSecretRef": {"name": "provider-key"},
        },
    }


@pytest.mark.usefixtures("operator")
def test_self_hosted_model_canaried_back_to_an_external_provider(
    kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    _, key_file = _provider_key(kube_api, namespace, tmp_path)
    with (
        GatewayStandIn(kube_api, namespace),
        bench(
            tmp_path,
            kube_api,
            namespace,
            canary_ttft_ms=150,
            canary_api_key=key_file,
            canary_headers=_gateway_credentials(kube_api, namespace, CANARY),
        ) as b,
    ):
        body = level2_llm(namespace, b.prometheus.url, llm_model("v1"))
        body["spec"]["rollout"]["gateway"] = {"name": "inference-gateway"}
        _create_gateway(kube_api, namespace)
        create_md(kube_api, body)
        watch_md(kube_api, namespace, NAME, lambda o: _phase(o) == "Ready", "v1 Ready", 90)
        patch_md(
            kube_api,
            namespace,
            NAME,
            {"spec": {"model": {**_external(b.canary.port), **NOT_SELF_HOSTED}}},
        )
        seen, md = _md_weights(
            kube_api,
            namespace,
            lambda o: _phase(o) == "Ready" and o["status"]["stable"]["version"] == "provider",
            "the provider promoted",
        )
        assert seen[seen.index(20) :][:3] == [20, 50, 100]
        assert all(c["passed"] for c in md["status"]["analysis"]["checks"])
        assert b.load.sent[("canary", 200)] > 0
        assert b.load.sent[("canary", 401)] == 0

    # the stable slot is the provider's Service now; no LLMInferenceService is left
    wait_until(lambda: llmisvc(kube_api, namespace, NAME) is None, "self-hosted v1 removed")
    service = client.CoreV1Api(kube_api).read_namespaced_service(f"{NAME}-external", namespace)
    assert service.spec.external_name == "localhost"
    route = custom(kube_api).get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "httproutes", NAME
    )
    backends = route["spec"]["rules"][0]["backendRefs"]
    assert [(r["name"], r["weight"]) for r in backends] == [(f"{NAME}-external", 100)]


def _assert_nowhere_but_the_secret(
    api: client.ApiClient, namespace: str, value: str, operator_log: str
) -> None:
    """The value is in its Secret, and in no other object of the namespace, Event,
    ModelDeployment status or operator log line."""
    core = client.CoreV1Api(api)
    serialize = api.sanitize_for_serialization
    dumps: dict[str, str] = {"operator log": operator_log}
    for kind, items in {
        "events": core.list_namespaced_event(namespace).items,
        "configmaps": core.list_namespaced_config_map(namespace).items,
        "services": core.list_namespaced_service(namespace).items,
    }.items():
        dumps[kind] = json.dumps(serialize(items))
    for group, version, plural in (
        ("rung.dev", "v1alpha1", "modeldeployments"),
        LLMISVC,
        ("serving.kserve.io", "v1beta1", "inferenceservices"),
        ("gateway.networking.k8s.io", "v1", "httproutes"),
        ("monitoring.coreos.com", "v1", "podmonitors"),
        ("monitoring.coreos.com", "v1", "prometheusrules"),
    ):
        listed = custom(api).list_namespaced_custom_object(group, version, namespace, plural)
        dumps[plural] = json.dumps(listed)
    leaked = [where for where, text in dumps.items() if value in text]
    assert leaked == []
    secrets_ = core.list_namespaced_secret(namespace).items
    import base64

    assert [
        s.metadata.name
        for s in secrets_
        if value in base64.b64decode((s.data or {}).get("apiKey", "")).decode()
    ] == ["provider-key"]


# --- build vs buy -----------------------------------------------------------------------


@pytest.mark.usefixtures("operator")
def test_rung_assess_prices_self_hosting_and_the_provider_with_the_break_even(
    kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    with (
        GatewayStandIn(kube_api, namespace),
        bench(tmp_path, kube_api, namespace, canary_ttft_ms=150) as b,
    ):
        create_md(kube_api, level2_llm(namespace, b.prometheus.url, llm_model("v1")))
        watch_md(kube_api, namespace, NAME, lambda o: _phase(o) == "Ready", "v1 Ready", 90)
        # rates over a window the series fully covers (a series younger than the window
        # is extrapolated differently per counter): 19 scrapes in the last 20 s
        b.prometheus.wait_for_series(
            "count_over_time(vllm:e2e_request_latency_seconds_count"
            f'{{llm_isvc_name="{NAME}"}}[20s]) >= 19',
            timeout=120,
        )
        flags = ("--usage-window", "20s", "-n", namespace, "-o", "json")
        prices = (
            *("--gpu-hourly-rate", "2", "--cpu-hourly-rate", "0.05"),
            *("--prompt-per-1k-tokens", "0.001", "--generation-per-1k-tokens", "0.002"),
            *("--currency", "EUR"),
        )
        by_flags = json.loads(rung_cli("assess", *flags, *prices))
        client.CoreV1Api(kube_api).create_namespaced_config_map(
            namespace,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name="llm-prices"),
                data={
                    "currency": "EUR",
                    "gpuHourlyRate": "2",
                    "cpuHourlyRate": "0.05",
                    "promptPer1kTokens": "0.001",
                    "generationPer1kTokens": "0.002",
                },
            ),
        )
        by_configmap = json.loads(rung_cli("assess", *flags, "--llm-prices", "llm-prices"))

    for doc in (by_flags, by_configmap):
        cost = doc["deployments"][0]["llmCost"]
        assert cost["currency"] == "EUR"
        # (1 GPU x 2 + 4 CPU x 0.05) x 1 replica x 24 h
        assert cost["selfHostedPerDay"] == 52.8
        # the load driver's prompt is 4 tokens, its completions 8
        assert cost["promptTokensPerRequest"] == pytest.approx(4, rel=0.1)
        assert cost["generationTokensPerRequest"] == pytest.approx(8, rel=0.1)
        assert cost["externalPerRequest"] == pytest.approx(0.00002, rel=0.1)
        assert cost["externalPerMillionRequests"] == pytest.approx(20, rel=0.1)
        assert cost["externalPerDay"] == pytest.approx(
            cost["requestsPerSecond"] * 86_400 * cost["externalPerRequest"], rel=0.01
        )
        # 2.2 an hour / 3600 / 0.00002 a request
        assert cost["breakEvenRequestsPerSecond"] == pytest.approx(30.56, rel=0.1)
        assert cost["requestsPerSecond"] < cost["breakEvenRequestsPerSecond"]
        assert cost["cheaper"] == "external"
        assert cost["missing"] == []
    assert by_configmap["llmPrices"]["source"] == f"configmap {namespace}/llm-prices"
