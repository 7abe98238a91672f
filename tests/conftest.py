"""Shared fixtures.

Cluster tests (``@pytest.mark.cluster``) get a real Kubernetes API server:

- ``kubeconfig``: path of an admin kubeconfig. ``$KUBECONFIG`` when set (kind,
  any cluster); otherwise the local control plane in ``.cluster/`` is brought up,
  reusing a running one. A cluster the fixture started itself is torn down at the
  end of the session unless ``RUNG_KEEP_CLUSTER=1``.
- ``kube_api``: a ``kubernetes.client.ApiClient`` for it.
- ``namespace``: a fresh namespace per test, deleted afterwards.

The local cluster's kubectl is put on PATH, and ``KUBECONFIG`` is exported for the
session once the cluster is known, so subprocesses (kubectl, the operator) see it.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client, config

from localcluster import BinDirs, ClusterError, LocalCluster

NAMESPACE_PREFIX = os.environ.setdefault("RUNG_TEST_NS_PREFIX", f"t-{uuid.uuid4().hex[:4]}-")
"""Test namespaces of this pytest session: `t-<session>-<random>` (exported as
RUNG_TEST_NS_PREFIX). The session's operator watches only these, so several pytest
sessions can share one cluster."""


#: Markers by directory: one rule, so a new test file cannot forget its marker.
DIRECTORY_MARKERS = {
    "tests/cluster": ("cluster", "testbed"),
    "tests/integration": ("cluster", "integration"),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.fspath)
        for directory, markers in DIRECTORY_MARKERS.items():
            if f"/{directory}/" in path:
                for marker in markers:
                    item.add_marker(getattr(pytest.mark, marker))


def pytest_configure(config: pytest.Config) -> None:
    k8s_bin = str(BinDirs.from_versions().kubernetes)
    if os.path.isdir(k8s_bin) and k8s_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = k8s_bin + os.pathsep + os.environ.get("PATH", "")


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[str]:
    """Admin kubeconfig path of the cluster under test."""
    external = os.environ.get("KUBECONFIG")
    if external:
        yield external
        return
    cluster = LocalCluster()
    try:
        path = str(cluster.up())
    except ClusterError as err:
        pytest.fail(f"could not start the local cluster: {err}", pytrace=False)
    os.environ["KUBECONFIG"] = path
    try:
        yield path
    finally:
        os.environ.pop("KUBECONFIG", None)
        if cluster.started_here and os.environ.get("RUNG_KEEP_CLUSTER") != "1":
            cluster.down()


@pytest.fixture(scope="session")
def kube_api(kubeconfig: str) -> Iterator[client.ApiClient]:
    """A kubernetes ApiClient authenticated as the cluster admin."""
    api = config.new_client_from_config(config_file=kubeconfig)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def namespace(kube_api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace (with its default ServiceAccount) for one test; deleted afterwards."""
    name = f"{NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # Pods are refused until the controller-manager has created the default ServiceAccount.
    deadline = time.monotonic() + 60
    while not core.list_namespaced_service_account(
        name, field_selector="metadata.name=default"
    ).items:
        if time.monotonic() > deadline:
            pytest.fail(f"no default ServiceAccount in namespace {name}")
        time.sleep(0.05)
    try:
        yield name
    finally:
        core.delete_namespace(name)
