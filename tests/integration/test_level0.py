"""Level 0 on a real API server: the InferenceService lifecycle and status mirroring."""

from __future__ import annotations

import pytest
from integration_kit import (
    ISVC,
    NAMESPACE_PREFIX,
    create_md,
    custom,
    get_isvc,
    is_condition,
    model_deployment,
    patch_md,
    play_kubelet_pods_not_ready,
    wait_until,
    watch_md,
    watch_object,
    write_requests,
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
    md = watch_md(
        kube_api, namespace, "iris", lambda o: is_condition(o, "Ready", "False"), "Ready False"
    )
    ready = next(c for c in md["status"]["conditions"] if c["type"] == "Ready")
    isvc_ready = next(
        c
        for c in (get_isvc(kube_api, namespace, "iris") or {})["status"]["conditions"]
        if c["type"] == "Ready"
    )
    assert isvc_ready["status"] == "False"
    assert ready["reason"] == isvc_ready["reason"]  # KServe's own reason, mirrored


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


def test_idle_resync_writes_nothing(kube_api: client.ApiClient, namespace: str, operator) -> None:
    create_md(kube_api, model_deployment("iris", namespace))
    _ready(namespace, "iris", kube_api)
    core = client.CoreV1Api(kube_api)
    # Earlier tests' namespaces are torn down by the namespace controller (deletes that
    # the counter would see): wait until they are gone.
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
    idle = f"reconcile {namespace}/iris: no change"
    # The operator has settled once a reconcile finds nothing to do.
    wait_until(lambda: idle in operator.log(), "a reconcile with nothing to do")
    before = write_requests(kube_api)
    events_before = len(core.list_namespaced_event(namespace).items)
    seen = operator.log().count(idle)
    # Watch the operator's log until three more resync ticks have passed.
    wait_until(lambda: operator.log().count(idle) >= seen + 3, "three idle resyncs")
    after = write_requests(kube_api)
    events_after = len(core.list_namespaced_event(namespace).items)

    assert after - before == 0, (
        f"{after - before} write requests during an idle resync:\n" + operator.log()[-3000:]
    )
    assert events_after == events_before
    assert operator.process.poll() is None


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
