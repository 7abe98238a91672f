"""Integration fixtures: Rung's CRD installed, and the operator running against the cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from integration_kit import (
    NAMESPACE_PREFIX,
    OperatorProcess,
    install_crds,
    kserve_webhook_url,
    run_operator,
)
from kubernetes import client


@pytest.fixture(scope="session")
def rung_crds(kube_api: client.ApiClient) -> None:
    """The ModelDeployment CRD from crds/, installed and Established."""
    install_crds(kube_api)


@pytest.fixture(scope="session")
def kserve_controller(kube_api: client.ApiClient) -> str:
    """Proof that the real KServe controller's webhooks serve this cluster.

    A server-side dry-run of an InferenceService comes back defaulted by KServe's
    mutating webhook (the deprecated mode `RawDeployment` becomes `Standard`), which no
    stand-in does. Returns the webhook's URL, printed in the test output.
    """
    url = kserve_webhook_url(kube_api)
    print(f"KServe controller webhooks at {url}")
    return url


@pytest.fixture(scope="session")
def operator(
    kubeconfig: str,
    rung_crds: None,
    kserve_controller: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """One `rung run` for the whole session with the operator's default settings, watching
    this session's namespaces; its /metrics on a free port."""
    from testbed.modelserver import free_port

    log = Path(tmp_path_factory.mktemp("operator")) / "operator.log"
    port = str(free_port())
    with run_operator(
        kubeconfig, log, "--verbose", "--metrics-port", port, "-n", f"{NAMESPACE_PREFIX}*"
    ) as op:
        yield op
    print(f"operator log: {log}")


@pytest.fixture
def restart_namespace(kube_api: client.ApiClient) -> Iterator[str]:
    """A namespace the session operator does not watch (it watches `t-<session>-*`)."""
    import uuid

    name = f"rs-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)
