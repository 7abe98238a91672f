"""The local control plane behaves like a real cluster: API, scheduling, controllers,
kwok-simulated pods, CRDs, admission, authn/authz and clean teardown."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from localcluster import ClusterError, LocalCluster, Ports
from localcluster.process import cmdline, pid_alive

T = TypeVar("T")


def wait_for(check: Callable[[], T], what: str, timeout: float = 90.0) -> T:
    """Poll `check` at short intervals until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what} (last: {last!r})")
        time.sleep(0.1)
        last = check()
    return last


def status_of(call: Callable[[], object]) -> int:
    try:
        call()
    except ApiException as err:
        return int(err.status)
    return 200


# --------------------------------------------------------------------- basics
def test_readyz_answers_ok(kubeconfig: str) -> None:
    out = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "get", "--raw", "/readyz"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "ok"


def test_a_kwok_node_is_ready(kube_api: client.ApiClient) -> None:
    nodes = client.CoreV1Api(kube_api).list_node().items

    def ready(node: client.V1Node) -> bool:
        conds = {c.type: c.status for c in node.status.conditions or []}
        return conds.get("Ready") == "True"

    assert any(ready(n) for n in nodes), [n.metadata.name for n in nodes]


def test_deployment_reaches_two_available_replicas(
    kube_api: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(
                        containers=[client.V1Container(name="web", image="nginx:stable")]
                    ),
                ),
            ),
        ),
    )
    wait_for(
        lambda: (
            (
                apps.read_namespaced_deployment_status("web", namespace).status.available_replicas
                or 0
            )
            == 2
        ),
        "2 available replicas",
    )
    pods = client.CoreV1Api(kube_api).list_namespaced_pod(namespace, label_selector="app=web")
    assert {p.status.phase for p in pods.items} == {"Running"}
    assert all(p.spec.node_name for p in pods.items)


def test_job_completes(kube_api: client.ApiClient, namespace: str) -> None:
    batch = client.BatchV1Api(kube_api)
    batch.create_namespaced_job(
        namespace,
        client.V1Job(
            metadata=client.V1ObjectMeta(name="once"),
            spec=client.V1JobSpec(
                backoff_limit=0,
                template=client.V1PodTemplateSpec(
                    spec=client.V1PodSpec(
                        restart_policy="Never",
                        containers=[
                            client.V1Container(name="work", image="busybox", command=["true"])
                        ],
                    )
                ),
            ),
        ),
    )

    def complete() -> bool:
        conds = batch.read_namespaced_job_status("once", namespace).status.conditions or []
        return any(c.type == "Complete" and c.status == "True" for c in conds)

    wait_for(complete, "the Job to complete")
    assert batch.read_namespaced_job_status("once", namespace).status.succeeded == 1


# ----------------------------------------------------------------------- CRDs
@pytest.mark.parametrize(
    "name",
    [
        "inferenceservices.serving.kserve.io",
        "llminferenceservices.serving.kserve.io",
        "httproutes.gateway.networking.k8s.io",
        "podmonitors.monitoring.coreos.com",
        "servicemonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    ],
)
def test_third_party_crd_is_established(kube_api: client.ApiClient, name: str) -> None:
    crd = client.ApiextensionsV1Api(kube_api).read_custom_resource_definition(name)
    conds = {c.type: c.status for c in crd.status.conditions or []}
    assert conds.get("Established") == "True"


def test_inferenceservice_can_be_created(kube_api: client.ApiClient, namespace: str) -> None:
    custom = client.CustomObjectsApi(kube_api)
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris"},
        "spec": {
            "predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "gs://b/m"}}
        },
    }
    custom.create_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", namespace, "inferenceservices", isvc
    )
    got = custom.get_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", namespace, "inferenceservices", "iris"
    )
    assert got["spec"]["predictor"]["model"]["modelFormat"]["name"] == "sklearn"


# ---------------------------------------------------------- admission, GC, auth
def test_validating_admission_policy_is_enforced(
    kube_api: client.ApiClient, namespace: str
) -> None:
    adm = client.AdmissionregistrationV1Api(kube_api)
    name = f"deny-marked-{namespace}"
    adm.create_validating_admission_policy(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["configmaps"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": "!has(object.metadata.labels) || "
                        "!('rung-deny' in object.metadata.labels)",
                        "message": "marked for denial",
                    }
                ],
            },
        }
    )
    adm.create_validating_admission_policy_binding(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
                },
            },
        }
    )
    core = client.CoreV1Api(kube_api)
    try:

        def denied() -> bool:
            cm = client.V1ConfigMap(
                metadata=client.V1ObjectMeta(generate_name="marked-", labels={"rung-deny": "yes"})
            )
            try:
                core.create_namespaced_config_map(namespace, cm)
            except ApiException as err:
                return err.status in (400, 403, 422) and "marked for denial" in err.body
            return False

        wait_for(denied, "the policy to deny a marked ConfigMap")
        core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="unmarked"))
        )
    finally:
        adm.delete_validating_admission_policy_binding(name)
        adm.delete_validating_admission_policy(name)


def test_garbage_collector_deletes_dependents(kube_api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name="dependent",
                owner_references=[
                    client.V1OwnerReference(
                        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
                    )
                ],
            )
        ),
    )
    core.delete_namespaced_config_map(
        "owner", namespace, body=client.V1DeleteOptions(propagation_policy="Background")
    )
    wait_for(
        lambda: status_of(lambda: core.read_namespaced_config_map("dependent", namespace)) == 404,
        "the dependent ConfigMap to be garbage-collected",
    )


def test_service_account_token_is_authorized_by_rbac(
    kube_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    rbac = client.RbacAuthorizationV1Api(kube_api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    token = core.create_namespaced_service_account_token(
        "reader",
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
        ),
    ).status.token

    cfg = client.Configuration()
    cfg.host = kube_api.configuration.host
    cfg.ssl_ca_cert = kube_api.configuration.ssl_ca_cert
    cfg.api_key = {"authorization": token}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    with client.ApiClient(cfg) as sa_api:
        as_sa = client.CoreV1Api(sa_api)
        whoami = client.AuthenticationV1Api(sa_api).create_self_subject_review(
            client.V1SelfSubjectReview()
        )
        assert whoami.status.user_info.username == f"system:serviceaccount:{namespace}:reader"

        assert status_of(lambda: as_sa.list_namespaced_config_map(namespace)) == 403
        assert status_of(lambda: as_sa.list_namespaced_secret(namespace)) == 403

        rbac.create_namespaced_role(
            namespace,
            client.V1Role(
                metadata=client.V1ObjectMeta(name="configmap-reader"),
                rules=[
                    client.V1PolicyRule(
                        api_groups=[""], resources=["configmaps"], verbs=["get", "list"]
                    )
                ],
            ),
        )
        rbac.create_namespaced_role_binding(
            namespace,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name="reader"),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name="configmap-reader"
                ),
                subjects=[
                    client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)
                ],
            ),
        )
        wait_for(
            lambda: status_of(lambda: as_sa.list_namespaced_config_map(namespace)) == 200,
            "the RoleBinding to grant access",
        )
        assert status_of(lambda: as_sa.list_namespaced_secret(namespace)) == 403


# ------------------------------------------------------------------- lifecycle
def _processes_mentioning(path: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or not pid_alive(int(entry.name)):
            continue
        if any(str(path) in arg for arg in cmdline(int(entry.name))):
            found.append(int(entry.name))
    return found


def test_second_cluster_comes_up_and_down_leaving_nothing(tmp_path: Path) -> None:
    state = tmp_path / f"c-{uuid.uuid4().hex[:6]}"
    cluster = LocalCluster(state, ports=Ports.free(), install_crds=False)
    try:
        cluster.up()
        assert cluster.is_running()
        assert cluster.started_here
        again = LocalCluster(state)
        assert again.up() == cluster.kubeconfig  # reused, not restarted
        assert not again.started_here
        pids = [p for p in cluster.status()["processes"].values() if p]
        assert len(pids) == 5
        assert _processes_mentioning(state)
    finally:
        cluster.down()
    assert not [p for p in pids if pid_alive(p)]
    assert _processes_mentioning(state) == []
    assert not state.exists()
    assert not cluster.is_running()


def test_failing_component_is_named_and_nothing_is_left_running(tmp_path: Path) -> None:
    state = tmp_path / "broken"
    cluster = LocalCluster(
        state,
        ports=Ports.free(),
        install_crds=False,
        extra_args={"kube-apiserver": ["--no-such-flag=1"]},
    )
    with pytest.raises(ClusterError, match="kube-apiserver") as info:
        cluster.up()
    assert "no-such-flag" in str(info.value)  # the log tail is part of the message
    assert _processes_mentioning(state) == []
    cluster.down()
    assert not state.exists()
