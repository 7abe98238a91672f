"""KServe's real controller manager on the local control plane: it runs as its own
ServiceAccount, its webhooks default and validate InferenceServices, it makes a
RawDeployment InferenceService Ready with kwok pods, and `down` leaves nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from test_local_cluster import wait_for

from localcluster import LocalCluster
from localcluster.process import cmdline, pid_alive, read_pidfile

JSON = dict[str, Any]

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
MODE = "serving.kserve.io/deploymentMode"
SKLEARN_URI = "gs://kfserving-examples/models/sklearn/1.0/model"


def sklearn_isvc(name: str, annotations: dict[str, str] | None = None, **spec: Any) -> JSON:
    predictor = {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": SKLEARN_URI}}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"predictor": predictor, **spec},
    }


def is_ready(isvc: JSON) -> bool:
    conditions = isvc.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


@pytest.fixture(scope="module")
def kserve_running(kube_api: client.ApiClient) -> None:
    try:
        client.AdmissionregistrationV1Api(kube_api).read_mutating_webhook_configuration(
            "inferenceservice.serving.kserve.io"
        )
    except ApiException as err:
        if err.status == 404:
            pytest.skip("KServe's controller is not installed (RUNG_CLUSTER_KSERVE=0?)")
        raise


@pytest.fixture(scope="module")
def local_cluster(kubeconfig: str, kserve_running: None) -> LocalCluster:
    """The local cluster under test (skipped on an external $KUBECONFIG)."""
    cluster = LocalCluster()
    if str(cluster.kubeconfig) != kubeconfig:
        pytest.skip("needs the local cluster, not an external $KUBECONFIG")
    return cluster


@pytest.fixture
def isvcs(kube_api: client.ApiClient, kserve_running: None) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


# ------------------------------------------------------------------ identity
def test_manager_runs_as_its_service_account_not_admin(local_cluster: LocalCluster) -> None:
    pid = read_pidfile(local_cluster.state_dir / "pids" / "kserve-controller.pid")
    assert pid is not None
    kubeconfig_arg = next(a for a in cmdline(pid) if a.startswith("--kubeconfig="))
    manager_kubeconfig = yaml.safe_load(Path(kubeconfig_arg.split("=", 1)[1]).read_text())
    (user,) = manager_kubeconfig["users"]
    assert set(user["user"]) == {"token"}  # no client certificate

    with config.new_client_from_config_dict(manager_kubeconfig) as api:
        whoami = client.AuthenticationV1Api(api).create_self_subject_review(
            client.V1SelfSubjectReview()
        )
        assert whoami.status.user_info.username == (
            "system:serviceaccount:kserve:kserve-controller-manager"
        )
        assert "system:masters" not in (whoami.status.user_info.groups or [])

        def allowed(verb: str, group: str, resource: str) -> bool:
            review = client.AuthorizationV1Api(api).create_self_subject_access_review(
                client.V1SelfSubjectAccessReview(
                    spec=client.V1SelfSubjectAccessReviewSpec(
                        resource_attributes=client.V1ResourceAttributes(
                            verb=verb, group=group, resource=resource
                        )
                    )
                )
            )
            return bool(review.status.allowed)

        assert allowed("update", "serving.kserve.io", "inferenceservices/status")
        assert allowed("create", "apps", "deployments")
        assert not allowed("*", "*", "*")
        assert not allowed("delete", "", "nodes")


# ------------------------------------------------------------------- webhooks
@pytest.mark.parametrize(
    ("annotations", "expected"),
    [({MODE: "RawDeployment"}, "Standard"), ({}, "Standard"), ({MODE: "Serverless"}, "Knative")],
)
def test_mutating_webhook_normalises_the_deployment_mode(
    isvcs: client.CustomObjectsApi, namespace: str, annotations: dict[str, str], expected: str
) -> None:
    got = isvcs.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, sklearn_isvc("mode", annotations), dry_run="All"
    )
    assert got["metadata"]["annotations"][MODE] == expected
    assert got["metadata"]["annotations"]["modelFormat"] == "sklearn"
    # Serialisation defaults the webhook writes back into the spec.
    assert got["spec"]["predictor"]["model"]["name"] == ""
    assert got["spec"]["predictor"]["model"]["resources"] == {}


def _canary(name: str, percent: int) -> JSON:
    model = {"modelFormat": {"name": "sklearn"}, "storageUri": f"gs://bucket/{name}"}
    return {"trafficPercent": percent, "predictor": {"name": name, "model": model}}


@pytest.mark.parametrize(
    ("annotations", "canary", "message"),
    [
        (
            {MODE: "RawDeployment"},
            [_canary("v2", 60), _canary("v3", 60)],
            "sum of canary trafficPercent values (120) must be <= 100",
        ),
        (
            {MODE: "Serverless"},
            [_canary("v2", 10)],
            "canary is only supported in Standard deployment mode",
        ),
    ],
    ids=["traffic-sum", "serverless"],
)
def test_validating_webhook_refuses_an_invalid_canary(
    isvcs: client.CustomObjectsApi,
    namespace: str,
    annotations: dict[str, str],
    canary: list[JSON],
    message: str,
) -> None:
    with pytest.raises(ApiException) as info:
        isvcs.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, sklearn_isvc("bad", annotations, canary=canary)
        )
    assert info.value.status == 403
    body = json.loads(info.value.body)["message"]
    assert 'admission webhook "inferenceservice.kserve-webhook-server.validator"' in body
    assert message in body


# ------------------------------------------------------------------ controller
def test_raw_deployment_inference_service_becomes_ready(
    kube_api: client.ApiClient, isvcs: client.CustomObjectsApi, namespace: str
) -> None:
    isvcs.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, sklearn_isvc("iris", {MODE: "RawDeployment"})
    )
    isvc = wait_for(
        lambda: (
            (got := isvcs.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "iris"))
            and is_ready(got)
            and got
        ),
        "the InferenceService to become Ready",
        timeout=60,
    )
    assert isvc["metadata"]["annotations"][MODE] == "Standard"
    assert isvc["status"]["deploymentMode"] == "Standard"
    assert "inferenceservice.finalizers" in isvc["metadata"]["finalizers"]
    assert isvc["status"]["address"]["url"] == (
        f"http://iris-predictor.{namespace}.svc.cluster.local"
    )

    deployment = client.AppsV1Api(kube_api).read_namespaced_deployment("iris-predictor", namespace)
    assert deployment.status.available_replicas == 1
    (pod,) = (
        client.CoreV1Api(kube_api)
        .list_namespaced_pod(namespace, label_selector="serving.kserve.io/inferenceservice=iris")
        .items
    )
    assert pod.status.phase == "Running"
    assert pod.spec.node_name == "kwok-node-0"
    # The ClusterServingRuntime's image, and the pod mutator's storage initializer.
    assert pod.spec.containers[0].image.startswith("kserve/sklearnserver:")
    assert [c.name for c in pod.spec.init_containers] == ["storage-initializer"]


# ------------------------------------------------------------------- lifecycle
def _processes_mentioning(path: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or not pid_alive(int(entry.name)):
            continue
        if any(str(path) in arg for arg in cmdline(int(entry.name))):
            found.append(int(entry.name))
    return found


def test_down_deletes_inference_services_first_and_leaves_no_process(
    own_cluster: tuple[LocalCluster, list[str]],
) -> None:
    cluster, messages = own_cluster
    cluster.up()
    pids = [p for p in cluster.status()["processes"].values() if p]
    assert len(pids) == 7  # etcd, 3 Kubernetes, kwok, KServe's manager and llmisvc
    with config.new_client_from_config(config_file=str(cluster.kubeconfig)) as api:
        custom = client.CustomObjectsApi(api)
        custom.create_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, sklearn_isvc("iris")
        )
        wait_for(
            lambda: is_ready(
                custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "iris")
            ),
            "the InferenceService to become Ready",
            timeout=60,
        )
    cluster.down()
    deleted = [i for i, m in enumerate(messages) if m.startswith("deleted 1 KServe object(s)")]
    assert deleted, messages
    assert "(0 had their finalizers stripped)" in messages[deleted[0]]
    assert deleted[0] < messages.index("stopping kserve-controller")
    assert not [p for p in pids if pid_alive(p)]
    assert _processes_mentioning(cluster.state_dir) == []
    assert not cluster.state_dir.exists()
