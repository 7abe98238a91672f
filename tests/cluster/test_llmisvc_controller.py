"""KServe's real LLMInferenceService controller (`cmd/llmisvc`) on the local control
plane: it runs as its own ServiceAccount, its webhooks default and validate
LLMInferenceServices, its presets are installed, it makes vLLM's Deployment (kwok pods)
and reports `WorkloadsReady`, and `down` deletes the LLMInferenceServices before it
stops the controller (so that it removes its finalizer)."""

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

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1alpha2", "llminferenceservices"


def llmisvc(name: str, **spec: Any) -> JSON:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMInferenceService",
        "metadata": {"name": name},
        "spec": {"model": {"uri": f"hf://example/{name}"}, **spec},
    }


def conditions(obj: JSON) -> dict[str, str]:
    return {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions") or []}


@pytest.fixture(scope="module")
def llmisvc_running(kube_api: client.ApiClient) -> None:
    try:
        client.AdmissionregistrationV1Api(kube_api).read_mutating_webhook_configuration(
            "llminferenceservice.serving.kserve.io"
        )
    except ApiException as err:
        if err.status == 404:
            pytest.skip("KServe's controllers are not installed (RUNG_CLUSTER_KSERVE=0?)")
        raise


@pytest.fixture
def objects(kube_api: client.ApiClient, llmisvc_running: None) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


def test_controller_runs_as_its_service_account(kubeconfig: str, llmisvc_running: None) -> None:
    cluster = LocalCluster()
    if str(cluster.kubeconfig) != kubeconfig:
        pytest.skip("needs the local cluster, not an external $KUBECONFIG")
    pid = read_pidfile(cluster.state_dir / "pids" / "llmisvc-controller.pid")
    assert pid is not None
    kubeconfig_arg = next(a for a in cmdline(pid) if a.startswith("--kubeconfig="))
    own = yaml.safe_load(Path(kubeconfig_arg.split("=", 1)[1]).read_text())
    assert set(own["users"][0]["user"]) == {"token"}
    with config.new_client_from_config_dict(own) as api:
        whoami = client.AuthenticationV1Api(api).create_self_subject_review(
            client.V1SelfSubjectReview()
        )
    assert whoami.status.user_info.username == (
        "system:serviceaccount:kserve:llmisvc-controller-manager"
    )


def test_presets_and_the_default_gateway_are_installed(objects: client.CustomObjectsApi) -> None:
    presets = objects.list_namespaced_custom_object(
        GROUP, VERSION, "kserve", "llminferenceserviceconfigs"
    )["items"]
    names = {p["metadata"]["name"] for p in presets}
    assert {"kserve-config-llm-template", "kserve-config-llm-router-route"} <= names
    objects.get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", "kserve", "gateways", "kserve-ingress-gateway"
    )


def test_defaulting_webhook_names_the_model_and_labels_the_route_group(
    objects: client.CustomObjectsApi, namespace: str
) -> None:
    body = llmisvc("chat", router={"route": {"group": "chat", "weight": 1}, "gateway": {}})
    got = objects.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body, dry_run="All"
    )
    assert got["spec"]["model"]["name"] == "chat"
    assert got["metadata"]["labels"]["serving.kserve.io/routing-group"] == "chat"


def test_validating_webhook_refuses_data_parallelism_without_data_local(
    objects: client.CustomObjectsApi, namespace: str
) -> None:
    with pytest.raises(ApiException) as info:
        objects.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, llmisvc("dp", parallelism={"data": 2})
        )
    # KServe's Go validator (no CEL rule of its CRD says this), as a field error
    assert info.value.status == 422
    body = json.loads(info.value.body)["message"]
    assert "spec.parallelism.dataLocal" in body
    assert "dataLocal must be set when data is set" in body
    # With dataLocal (Rung's llm.parallelism.dataLocal, which its CRD requires with
    # data), KServe's webhooks accept it.
    accepted = objects.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        llmisvc("dp", parallelism={"data": 2, "dataLocal": 1}),
        dry_run="All",
    )
    assert accepted["spec"]["parallelism"] == {"data": 2, "dataLocal": 1}


def test_workloads_become_ready_on_kwok(
    kube_api: client.ApiClient, objects: client.CustomObjectsApi, namespace: str
) -> None:
    gpu = {"limits": {"nvidia.com/gpu": "1"}}
    body = llmisvc("chat", template={"containers": [{"name": "main", "resources": gpu}]})
    objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    got = wait_for(
        lambda: (
            (o := objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "chat"))
            and conditions(o).get("WorkloadsReady") == "True"
            and o
        ),
        "WorkloadsReady",
        timeout=60,
    )
    assert "serving.kserve.io/llmisvc-finalizer" in got["metadata"]["finalizers"]
    assert got["status"]["workloads"]["primary"]["name"] == "chat-kserve"
    deployment = client.AppsV1Api(kube_api).read_namespaced_deployment("chat-kserve", namespace)
    assert deployment.status.available_replicas == 1
    client.CoreV1Api(kube_api).read_namespaced_service("chat-kserve-workload-svc", namespace)


# ------------------------------------------------------------------- lifecycle
def test_down_deletes_llm_inference_services_first(
    own_cluster: tuple[LocalCluster, list[str]],
) -> None:
    cluster, messages = own_cluster
    cluster.up()
    pids = [p for p in cluster.status()["processes"].values() if p]
    with config.new_client_from_config(config_file=str(cluster.kubeconfig)) as api:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, llmisvc("chat")
        )
        wait_for(
            lambda: (
                "serving.kserve.io/llmisvc-finalizer"
                in client.CustomObjectsApi(api)
                .get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "chat")["metadata"]
                .get("finalizers", [])
            ),
            "KServe's finalizer",
            timeout=60,
        )
    cluster.down()
    deleted = [i for i, m in enumerate(messages) if m.startswith("deleted 1 LLMInferenceService")]
    assert deleted, messages
    assert "(0 had their finalizers stripped)" in messages[deleted[0]]
    assert deleted[0] < messages.index("stopping llmisvc-controller")
    assert not [p for p in pids if pid_alive(p)]
