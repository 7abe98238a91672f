"""Level 0 on a real API server: the InferenceService lifecycle and status mirroring."""

from __future__ import annotations

import pytest
from integration_kit import (
    ISVC,
    NAMESPACE_PREFIX,
    OperatorProcess,
    condition,
    create_md,
    custom,
    get_isvc,
    is_condition,
    md_holds,
    model_deployment,
    patch_md,
    play_kubelet_pods_not_ready,
    wait_until,
    watch_md,
    watch_object,
    write_requests_by_kind,
)
from kubernetes import client

pytestmark = pytest.mark.usefixtures("operator")


def _ready(ns: str, name: str, api: client.ApiClient) -> dict:
    """Wait until KServe has made the InferenceService ready and status says phase Ready."""
    return watch_md(
        api, ns, name, lambda o: (o.get("status") or {}).get("phase") == "Ready", "phase Ready"
    )


def test_create_builds_an_owned_inference_service(
    kube_api: client.ApiClient, namespace: str
) -> None:
    md = create_md(kube_api, model_deployment("iris", namespace))

    isvc = wait_until(lambda: get_isvc(kube_api, namespace, "iris"), "InferenceService")

    owner = isvc["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "ModelDeployment",
        "iris",
        md["metadata"]["uid"],
    )
    assert owner["controller"] is True
    labels = isvc["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "rung"
    assert labels["rung.dev/model-deployment"] == "iris"
    model = isvc["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "sklearn"}
    assert model["storageUri"] == "s3://models/iris/v1"
    # Rung sets RawDeployment; KServe >= 0.15 stores it under its new name, Standard.
    mode = isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
    assert mode in ("RawDeployment", "Standard")
    status = watch_md(
        kube_api,
        namespace,
        "iris",
        lambda o: (o.get("status") or {}).get("observedGeneration") == 1,
        "first status",
    )["status"]
    assert status["level"] == 0
    assert status["capabilities"] == ["serving"]
    assert status["phase"] == "Progressing"
    assert status["stable"]["version"] == "v1"
    # No finalizer: with the operator down, deleting a ModelDeployment still works.
    current = watch_md(kube_api, namespace, "iris", lambda o: True, "current")
    assert not current["metadata"].get("finalizers")


def test_readiness_is_mirrored_into_conditions(kube_api: client.ApiClient, namespace: str) -> None:
    create_md(kube_api, model_deployment("iris", namespace))

    md = _ready(namespace, "iris", kube_api)

    assert is_condition(md, "Ready", "True")
    assert is_condition(md, "Progressing", "False")
    assert is_condition(md, "Degraded", "False")
    isvc = get_isvc(kube_api, namespace, "iris")
    assert isvc
    assert md["status"]["url"] == isvc["status"]["url"]  # as KServe reports it
    # The operator wrote status and annotations only: a spec write would bump generation.
    assert md["metadata"]["generation"] == 1
    assert md["status"]["observedGeneration"] == 1

    assert play_kubelet_pods_not_ready(kube_api, namespace, "iris") >= 1

    def kserve_not_ready() -> dict | None:
        found = condition(get_isvc(kube_api, namespace, "iris") or {}, "Ready")
        return found if found and found["status"] == "False" else None

    isvc_ready = wait_until(kserve_not_ready, "KServe reporting the InferenceService not ready")
    # Rung may see the unready Deployment first; then KServe's own reason is mirrored.
    md = watch_md(
        kube_api,
        namespace,
        "iris",
        lambda o: (
            (c := condition(o, "Ready")) is not None
            and c["status"] == "False"
            and c["reason"] == isvc_ready["reason"]
        ),
        "KServe's reason mirrored",
    )
    assert is_condition(md, "Ready", "False")


def test_spec_change_updates_the_inference_service(
    kube_api: client.ApiClient, namespace: str
) -> None:
    create_md(kube_api, model_deployment("iris", namespace))
    _ready(namespace, "iris", kube_api)

    patch_md(
        kube_api,
        namespace,
        "iris",
        {"spec": {"model": {"storageUri": "s3://models/iris/v2", "version": "v2"}}},
    )

    isvc = watch_object(
        kube_api,
        ISVC,
        namespace,
        "iris",
        lambda o: o["spec"]["predictor"]["model"]["storageUri"] == "s3://models/iris/v2",
        "InferenceService updated",
    )
    assert isvc["metadata"]["labels"]["rung.dev/model-version"] == "v2"
    md = watch_md(
        kube_api,
        namespace,
        "iris",
        lambda o: (o.get("status") or {}).get("observedGeneration") == 2,
        "observedGeneration 2",
    )
    assert md["status"]["stable"]["version"] == "v2"
    assert [h["event"] for h in md["status"]["history"]] == ["Deployed", "ModelReplaced"]


def test_decisions_are_kubernetes_events(kube_api: client.ApiClient, namespace: str) -> None:
    create_md(kube_api, model_deployment("iris", namespace))
    core = client.CoreV1Api(kube_api)

    events = wait_until(
        lambda: [
            e
            for e in core.list_namespaced_event(namespace).items
            if e.involved_object.kind == "ModelDeployment" and e.reason == "Deploying"
        ],
        "a Deploying event",
    )
    assert events[0].involved_object.name == "iris"
    assert "v1" in events[0].message


def test_an_idle_operator_reads_and_writes_nothing(
    kube_api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    """50 Ready level-0 ModelDeployments, then a quiet window of 10 s: the operator sends
    no request at all to the API server (its reads come from watch caches, nothing is
    due), and the API server sees no write to any kind Rung manages."""
    core = client.CoreV1Api(kube_api)
    # Earlier tests' namespaces are torn down by the namespace controller (deletes that
    # the write counter would see): wait until they are gone.
    wait_until(
        lambda: (
            not [
                n
                for n in core.list_namespace().items
                if n.metadata.name.startswith(NAMESPACE_PREFIX) and n.metadata.name != namespace
            ]
        ),
        "earlier test namespaces gone",
        timeout=120,
    )
    names = [f"m-{i:02d}" for i in range(50)]
    for name in names:
        create_md(kube_api, model_deployment(name, namespace))
    for name in names:
        watch_md(kube_api, namespace, name, lambda o: _phase(o) == "Ready", f"{name} Ready")
    # An idle window is one in which nothing else changed either: KServe and the
    # Deployment controller may still touch the 50 models on a loaded machine (their
    # changes are real work for Rung). Take windows until one is quiet outside Rung.
    for _ in range(6):
        wait_until(
            lambda: _quiet(kube_api, operator, 5.0),
            "the operator and KServe quiet for 5 s",
            timeout=180,
        )
        log_offset = len(operator.log())
        before_ops = operator.api_requests()
        before_others = _others(kube_api)
        before_writes = write_requests_by_kind(kube_api)
        events_before = _md_events(core, namespace)
        md_holds(kube_api, namespace, names[0], lambda o: _phase(o) == "Ready", "Ready", 10)
        if _others(kube_api) == before_others:
            break
    else:
        raise AssertionError("no quiet 10 s window outside Rung in six tries")
    after_ops = operator.api_requests()
    after_writes = write_requests_by_kind(kube_api)
    events_after = _md_events(core, namespace)

    sent = {k: v - before_ops.get(k, 0) for k, v in after_ops.items() if v != before_ops.get(k)}
    window = [line for line in operator.log()[log_offset:].splitlines() if "rung." in line]
    assert sent == {}, f"requests from the idle operator: {sent}; its log meanwhile: {window[-40:]}"
    writes = {
        k: v - before_writes.get(k, 0)
        for k, v in after_writes.items()
        if v != before_writes.get(k) and not (k[2] == "status" and k[1] != "modeldeployments")
    }
    assert writes == {}, f"writes to Rung's kinds while idle: {writes}"
    assert events_after == events_before
    assert operator.process.poll() is None


def _others(api: client.ApiClient) -> dict[tuple[str, str, str], int]:
    """Writes by KServe and the controllers: InferenceService status and Deployments."""
    return {
        k: v
        for k, v in write_requests_by_kind(api, also=("apps",)).items()
        if (k[1] == "inferenceservices" and k[2] == "status") or k[1] == "deployments"
    }


def _md_events(core: client.CoreV1Api, namespace: str) -> int:
    """Events about ModelDeployments in `namespace`, counting repeats."""
    items = core.list_namespaced_event(namespace).items
    return sum(e.count or 1 for e in items if e.involved_object.kind == "ModelDeployment")


def _phase(o: dict) -> str | None:
    return (o.get("status") or {}).get("phase")


def _quiet(api: client.ApiClient, operator: OperatorProcess, seconds: float) -> bool:
    """True once neither the operator's request and reconcile counters (a pass that
    changes nothing still means it is digesting watch events) nor the API server's writes
    to the kinds Rung manages (KServe's status writes included) nor to Deployments (whose
    rollouts Rung reads) moved for `seconds`: the 50 models have settled."""
    import time

    def counters() -> tuple[object, ...]:
        return (
            operator.api_requests(),
            operator.reconciles(),
            write_requests_by_kind(api, also=("apps",)),
        )

    start = counters()
    time.sleep(seconds)
    return counters() == start


def test_deleting_removes_what_it_owned(kube_api: client.ApiClient, namespace: str) -> None:
    create_md(kube_api, model_deployment("iris", namespace))
    wait_until(lambda: get_isvc(kube_api, namespace, "iris"), "InferenceService")

    custom(kube_api).delete_namespaced_custom_object(
        "rung.dev",
        "v1alpha1",
        namespace,
        "modeldeployments",
        "iris",
        propagation_policy="Foreground",
    )

    wait_until(
        lambda: get_isvc(kube_api, namespace, "iris") is None,
        "InferenceService garbage-collected",
        timeout=90,
    )
