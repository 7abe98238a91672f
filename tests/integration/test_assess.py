"""`rung assess` against a real API server: ModelDeployments at every level, three formats.

No operator runs for these tests, so status may be empty and the report falls back to
the spec (a session operator started by other tests may fill status in; the checks
hold either way).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from integration_kit import ROOT, create_md, model_deployment
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.usefixtures("rung_crds")

PROMETHEUS = {"prometheus": {"url": "http://prometheus.monitoring:9090"}}
JOB_PIPELINE = {
    "type": "job",
    "job": {
        "template": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "train",
                            "image": "trainer:1",
                            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
                        }
                    ],
                }
            }
        }
    },
}
GOVERNANCE = {
    "owner": "team-fraud",
    "contact": "fraud@example.com",
    "intendedUse": "scoring card payments; not for credit decisions",
    "riskClass": "high",
}
RESOURCES = {"requests": {"cpu": "500m", "memory": "1Gi"}}
GOVERNANCE_FIELDS = {
    "spec.governance.owner",
    "spec.governance.contact",
    "spec.governance.intendedUse",
    "spec.governance.riskClass",
}


def _ladder(namespace: str) -> list[dict[str, Any]]:
    """One ModelDeployment per level, each missing what its next level needs."""
    l1 = model_deployment("l1", namespace, level=1, monitoring=PROMETHEUS)
    l1["spec"]["model"]["resources"] = RESOURCES
    return [
        model_deployment("l0", namespace, level=0),
        l1,
        model_deployment("l2", namespace, level=2),
        model_deployment(
            "l3", namespace, level=3, monitoring=PROMETHEUS, retraining={"pipeline": JOB_PIPELINE}
        ),
        model_deployment(
            "l4",
            namespace,
            level=4,
            monitoring=PROMETHEUS,
            retraining={"pipeline": JOB_PIPELINE},
            governance=GOVERNANCE,
        ),
    ]


@pytest.fixture
def ladder(kube_api: client.ApiClient, namespace: str) -> str:
    for body in _ladder(namespace):
        create_md(kube_api, body)
    return namespace


def rung(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m rung ...` as a user runs it, with the session's KUBECONFIG."""
    return subprocess.run(
        [sys.executable, "-m", "rung", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def _served(kube_api: client.ApiClient, group: str, version: str, plural: str) -> bool:
    try:
        found = client.CustomObjectsApi(kube_api).get_api_resources(group, version)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return any(r.name == plural for r in found.resources or [])


def test_json_report(kube_api: client.ApiClient, ladder: str) -> None:
    result = rung("assess", "-n", ladder, "-o", "json")

    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["kind"] == "MaturityAssessment"
    assert doc["scope"] == {"namespace": ladder, "allNamespaces": False}
    by_name = {d["name"]: d for d in doc["deployments"]}
    assert sorted(by_name) == ["l0", "l1", "l2", "l3", "l4"]
    assert {n: d["level"] for n, d in by_name.items()} == {f"l{i}": i for i in range(5)}
    assert [by_name[f"l{i}"]["levelName"] for i in range(5)] == [
        "Manual",
        "Monitored",
        "Progressive",
        "ContinuousTraining",
        "Governed",
    ]
    assert by_name["l0"]["capabilities"] == ["serving"]
    assert by_name["l2"]["capabilities"] == ["serving", "monitoring", "canary"]
    assert set(by_name["l4"]["capabilities"]) >= {"explainability", "payloadLogging"}

    def blockers(name: str) -> set[str]:
        return {n["what"] for n in by_name[name]["nextNeeds"] if n["blocking"]}

    assert blockers("l0") == {"spec.monitoring.prometheus.url"}
    assert blockers("l1") == set()
    assert blockers("l2") == {"spec.monitoring.prometheus.url", "spec.retraining.pipeline"}
    assert blockers("l3") == GOVERNANCE_FIELDS
    assert by_name["l4"]["nextLevel"] is None
    assert [by_name[f"l{i}"]["readyToClimb"] for i in range(5)] == [
        False,
        True,
        False,
        False,
        False,
    ]
    canary = next(c for c in by_name["l1"]["costs"] if c["capability"] == "canary")
    assert canary["summary"] == "+1 replica \u00d7 500m CPU / 1Gi during rollouts"
    assert canary["perUnit"]["cpuMillicores"] == 500
    retraining = next(c for c in by_name["l3"]["costs"] if c["capability"] == "retraining")
    assert retraining["perUnit"]["cpu"] == "1"
    assert {c["capability"] for c in by_name["l3"]["costs"] if not c["active"]} == {
        "explainability",
        "payloadLogging",
    }
    (summary,) = doc["namespaces"]
    assert (summary["namespace"], summary["total"], summary["perLevel"]) == (
        ladder,
        5,
        [1, 1, 1, 1, 1],
    )
    assert (summary["readyToClimb"], summary["atTop"]) == (1, 1)

    components = {c["name"]: c["installed"] for c in doc["components"]}
    assert components == {
        "KServe": _served(kube_api, "serving.kserve.io", "v1beta1", "inferenceservices"),
        "KServe LLMInferenceService": _served(
            kube_api, "serving.kserve.io", "v1alpha2", "llminferenceservices"
        ),
        "Prometheus Operator": _served(kube_api, "monitoring.coreos.com", "v1", "podmonitors")
        and _served(kube_api, "monitoring.coreos.com", "v1", "prometheusrules"),
        "Gateway API": _served(kube_api, "gateway.networking.k8s.io", "v1", "httproutes"),
        "Argo Workflows": _served(kube_api, "argoproj.io", "v1alpha1", "workflowtemplates"),
        "Kubeflow Pipelines": _served(kube_api, "kubeflow.org", "v1beta1", "scheduledworkflows"),
        "Knative Eventing": _served(kube_api, "eventing.knative.dev", "v1", "brokers"),
    }
    fallback = {n["what"] for n in by_name["l0"]["nextNeeds"] if n["kind"] == "component"}
    assert ("Prometheus Operator" in fallback) is not components["Prometheus Operator"]


def test_operator_default_prometheus_unblocks_level_1(ladder: str) -> None:
    result = rung(
        "assess", "-n", ladder, "-o", "json", "--prometheus-url", "http://prometheus:9090"
    )

    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    ready = {d["name"] for d in doc["deployments"] if d["readyToClimb"]}
    assert ready == {"l0", "l1"}
    assert doc["defaultPrometheusUrl"] == "http://prometheus:9090"


def test_table_report(ladder: str) -> None:
    result = rung("assess", "-n", ladder)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.match(
        r"NAMESPACE\s+NAME\s+LEVEL\s+PHASE\s+READY\s+CAPABILITIES\s+NEXT\s+CLIMB\s+NEEDS", lines[0]
    )
    rows = {line.split()[1]: line for line in lines[1:6]}
    assert sorted(rows) == ["l0", "l1", "l2", "l3", "l4"]
    assert all(row.startswith(ladder) for row in rows.values())
    assert re.search(r"1 Monitored\s.*2 Progressive\s+yes\b", rows["l1"])
    assert re.search(r"\bno\s+spec\.monitoring\.prometheus\.url$", rows["l0"])
    assert rows["l3"].endswith("spec.governance.{owner,contact,intendedUse,riskClass}")
    assert re.search(r"4 Governed\s.*\btop\b", rows["l4"])
    climb = lines[0].index("CLIMB")
    assert all(row[climb - 1] == " " and row[climb] != " " for row in rows.values())
    assert (
        f"{ladder}: 5 ModelDeployments (level 0: 1, level 1: 1, level 2: 1, level 3: 1,"
        " level 4: 1); 1 ready to climb, 1 at the top" in result.stdout
    )
    assert "COST OF THE NEXT LEVEL" in result.stdout
    assert re.search(
        rf"{ladder}/l1\s+canary \(level 2\)\s+\+1 replica \u00d7 500m CPU / 1Gi during rollouts",
        result.stdout,
    )
    assert re.search(rf"{ladder}/l3\s+explainability \(level 4\)", result.stdout)
    assert "Cluster: KServe" in result.stdout


def test_markdown_report(ladder: str) -> None:
    result = rung("assess", "-n", ladder, "-o", "markdown")

    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("# Rung maturity assessment\n")
    assert f"Scope: namespace `{ladder}`." in text
    assert f"| {ladder} | 5 | 1 | 1 | 1 | 1 | 1 | 1 | 1 |" in text
    assert "| Namespace | Name | Level | Phase | Ready | Capabilities | Next level |" in text
    assert f"| {ladder} | l1 | 1 Monitored |" in text
    assert "## Next steps" in text
    assert (
        f"- **{ladder}/l1** (1 Monitored \u2192 2 Progressive): ready to climb;"
        " set `spec.maturity.level: 2`." in text
    )
    assert f"- **{ladder}/l2** (2 Progressive \u2192 3 ContinuousTraining): before setting" in text
    assert "`spec.retraining.pipeline`" in text
    assert "`spec.governance.owner`, `spec.governance.contact`" in text
    assert f"- **{ladder}/l4** (4 Governed): at the top of the ladder." in text


def test_all_namespaces_includes_ours(ladder: str) -> None:
    result = rung("assess", "-A", "-o", "json")

    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["scope"] == {"namespace": None, "allNamespaces": True}
    ours = [d["name"] for d in doc["deployments"] if d["namespace"] == ladder]
    assert ours == ["l0", "l1", "l2", "l3", "l4"]


def test_an_empty_namespace_says_so(namespace: str) -> None:
    table = rung("assess", "-n", namespace)
    as_json = rung("assess", "-n", namespace, "-o", "json")

    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith(f"No ModelDeployments found in namespace {namespace}.")
    assert json.loads(as_json.stdout)["deployments"] == []


def test_unreachable_cluster_is_a_clear_error(tmp_path: Path, kubeconfig: str) -> None:
    text = Path(kubeconfig).read_text()
    broken = tmp_path / "kubeconfig"
    broken.write_text(re.sub(r"server: \S+", "server: https://127.0.0.1:1", text))

    result = subprocess.run(
        [sys.executable, "-m", "rung", "assess"],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": str(broken)},
        cwd=ROOT,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach the API server")
    assert result.stdout == ""
