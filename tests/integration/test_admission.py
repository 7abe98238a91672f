"""The API server rejects invalid ModelDeployments at admission, naming the field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from integration_kit import create_md, model_deployment
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.usefixtures("rung_crds")


def _with(path: str, value: Any) -> dict[str, Any]:
    """A valid level-0 spec with `path` (dot separated, under spec) set to `value`."""
    spec = copy.deepcopy(model_deployment("x", "ns")["spec"])
    node = spec
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    if value is _DELETE:
        node.pop(keys[-1])
    else:
        node[keys[-1]] = value
    return spec


_DELETE = object()
_CONTAINERS = {"containers": [{"name": "train", "image": "trainer:1"}]}
_PIPELINE_JOB = {"type": "job", "job": {"template": {"template": {"spec": _CONTAINERS}}}}


def _metric(query: str) -> dict[str, Any]:
    return {"analysis": {"metrics": [{"name": "e", "query": query, "max": 1}]}}


def _llm(llm: dict[str, Any]) -> dict[str, Any]:
    spec = _with("model.llm", llm)
    spec["model"].update({"kind": "llm", "format": "huggingface", "storageUri": "hf://org/m"})
    return spec


INVALID = [
    (
        "level above 4",
        _with("maturity.level", 5),
        ["spec.maturity.level", "less than or equal to 4"],
    ),
    ("negative level", _with("maturity.level", -1), ["spec.maturity.level"]),
    (
        "missing storageUri",
        _with("model.storageUri", _DELETE),
        ["spec.model.storageUri", "Required value"],
    ),
    ("empty storageUri", _with("model.storageUri", ""), ["spec.model.storageUri"]),
    ("missing model version", _with("model.version", _DELETE), ["spec.model.version"]),
    ("negative minReplicas", _with("serving.minReplicas", -1), ["spec.serving.minReplicas"]),
    (
        "inverted replica bounds",
        _with("serving", {"minReplicas": 3, "maxReplicas": 2}),
        ["spec.serving.maxReplicas", "greater than or equal to minReplicas"],
    ),
    (
        "steps not increasing",
        _with("rollout", {"steps": [10, 50, 25]}),
        ["spec.rollout.steps", "strictly increasing"],
    ),
    (
        "repeated step",
        _with("rollout", {"steps": [10, 10, 100]}),
        ["spec.rollout.steps", "strictly increasing"],
    ),
    (
        "step above 100",
        _with("rollout", {"steps": [50, 150]}),
        ["spec.rollout.steps[1]", "less than or equal to 100"],
    ),
    (
        "malformed interval",
        _with("rollout", {"interval": "soon"}),
        ["spec.rollout.interval", "must be a duration"],
    ),
    (
        "malformed cooldown",
        _with("retraining", {"cooldown": "1 day"}),
        ["spec.retraining.cooldown", "must be a duration"],
    ),
    (
        "deadline shorter than interval",
        _with("rollout", {"interval": "5m", "progressDeadline": "1m"}),
        ["spec.rollout.progressDeadline", "longer than interval"],
    ),
    (
        "unknown router",
        _with("rollout", {"router": "istio"}),
        ["spec.rollout.router", "Unsupported value", "gateway-api"],
    ),
    (
        "unknown launcher",
        _with("retraining", {"pipeline": {"type": "airflow"}}),
        ["spec.retraining.pipeline.type", "Unsupported value"],
    ),
    (
        "launcher without its settings",
        _with("retraining", {"pipeline": {"type": "webhook"}}),
        ["spec.retraining.pipeline.webhook", "type webhook needs webhook"],
    ),
    ("unknown model kind", _with("model.kind", "vision"), ["spec.model.kind"]),
    (
        "unknown onNoData",
        _with("rollout", {"analysis": {"onNoData": "ignore"}}),
        ["spec.rollout.analysis.onNoData"],
    ),
    (
        "metric without threshold",
        _with("rollout", {"analysis": {"metrics": [{"name": "e", "query": "up"}]}}),
        ["spec.rollout.analysis.metrics[0]", "max, min or maxIncreaseOverStable"],
    ),
    (
        "level 3 without a pipeline",
        _with("maturity.level", 3),
        ["spec.retraining.pipeline", "required at maturity level 3"],
    ),
    (
        "level 4 without ownership",
        {**_with("maturity.level", 4), "retraining": {"pipeline": _PIPELINE_JOB}},
        ["spec.governance.owner", "required at maturity level 4"],
    ),
    (
        "canary without monitoring",
        _with("maturity", {"level": 2, "overrides": {"monitoring": False}}),
        ["spec.maturity.overrides.monitoring", "need monitoring"],
    ),
    (
        "drift trigger without threshold",
        _with("retraining", {"triggers": [{"type": "drift", "query": "up"}]}),
        ["spec.retraining.triggers[0]", "drift trigger needs query and above"],
    ),
    (
        "misspelled template variable",
        _with("rollout", _metric('sum(up{namespace="{{ namesapce }}"})')),
        ["spec.rollout.analysis.metrics[0].query", "unknown template variable"],
    ),
    (
        "unbalanced template braces",
        _with("rollout", _metric('sum(up{pod=~"{{ canary }-.*"})')),
        ["spec.rollout.analysis.metrics[0].query", "unbalanced braces"],
    ),
    (
        "unknown variable in a trigger query",
        _with("retraining", {"triggers": [{"type": "drift", "query": "{{ model }}", "above": 1}]}),
        ["spec.retraining.triggers[0].query", "unknown template variable"],
    ),
    (
        "Job template without containers",
        _with(
            "retraining",
            {"pipeline": {"type": "job", "job": {"template": {"template": {"spec": {}}}}}},
        ),
        ["spec.retraining.pipeline.job.template", "template.spec.containers"],
    ),
    (
        "empty Job template",
        _with("retraining", {"pipeline": {"type": "job", "job": {"template": {}}}}),
        ["spec.retraining.pipeline.job.template", "template.spec.containers"],
    ),
    (
        "Job container without image",
        _with(
            "retraining",
            {
                "pipeline": {
                    "type": "job",
                    "job": {"template": {"template": {"spec": {"containers": [{"name": "a"}]}}}},
                }
            },
        ),
        ["spec.retraining.pipeline.job.template", "name and image"],
    ),
    (
        "gateway-api router without a Gateway",
        _with("rollout", {"router": "gateway-api"}),
        ["spec.rollout.gateway", "needs gateway"],
    ),
    (
        "gateway-api router in Serverless mode",
        {
            **_with("rollout", {"router": "gateway-api", "gateway": {"name": "gw"}}),
            "serving": {"deploymentMode": "Serverless"},
        },
        ["spec.rollout.router", "RawDeployment"],
    ),
    (
        "LLM data parallelism without dataLocal",
        _llm({"parallelism": {"data": 2}}),
        ["spec.model.llm.parallelism.dataLocal", "needs dataLocal"],
    ),
]


@pytest.mark.parametrize(("case", "spec", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_model_deployment_is_rejected_naming_the_field(
    kube_api: client.ApiClient,
    namespace: str,
    case: str,
    spec: dict[str, Any],
    expected: list[str],
) -> None:
    body = model_deployment("bad", namespace)
    body["spec"] = spec

    with pytest.raises(ApiException) as raised:
        create_md(kube_api, body)

    assert raised.value.status == 422, raised.value.body
    message = json.loads(raised.value.body)["message"]
    for fragment in expected:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"


def test_a_valid_model_deployment_gets_defaults(kube_api: client.ApiClient, namespace: str) -> None:
    body = model_deployment("good", namespace)
    body["spec"]["rollout"] = {}

    created = create_md(kube_api, body)

    spec = created["spec"]
    assert spec["serving"] == {
        "deploymentMode": "RawDeployment",
        "minReplicas": 1,
        "maxReplicas": 1,
    }
    assert spec["model"]["kind"] == "predictive"
    assert spec["rollout"]["steps"] == [10, 25, 50, 100]
    assert spec["rollout"]["router"] == "kserve"


NAMES = [
    ("1fraud", 0, "DNS label starting with a letter"),
    ("f" * 54, 0, "at most 53 characters"),
    ("f" * 43, 2, "at most 42 characters with canary rollouts"),
]


@pytest.mark.parametrize(("name", "level", "expected"), NAMES, ids=["digit", "54", "43-canary"])
def test_names_kserve_cannot_use_are_rejected(
    kube_api: client.ApiClient, namespace: str, name: str, level: int, expected: str
) -> None:
    body = model_deployment(name, namespace, level=level)
    if level >= 1:
        body["spec"]["monitoring"] = {}
    with pytest.raises(ApiException) as raised:
        create_md(kube_api, body)
    assert raised.value.status == 422, raised.value.body
    message = json.loads(raised.value.body)["message"]
    assert "metadata.name" in message
    assert expected in message


def test_a_long_name_is_fine_until_canaries_are_switched_on(
    kube_api: client.ApiClient, namespace: str
) -> None:
    from integration_kit import patch_md

    name = "f" * 43
    create_md(kube_api, model_deployment(name, namespace, level=1))
    with pytest.raises(ApiException) as raised:
        patch_md(kube_api, namespace, name, {"spec": {"maturity": {"level": 2}}})
    assert "at most 42 characters" in json.loads(raised.value.body)["message"]


def test_queries_with_promql_braces_and_known_variables_are_accepted(
    kube_api: client.ApiClient, namespace: str
) -> None:
    body = model_deployment("ok", namespace)
    body["spec"]["rollout"] = _metric(
        'sum(rate(x{pod=~"{{ target }}-.*", a!=""}[{{interval}}])) / (sum(y{}) > 0)'
    )
    create_md(kube_api, body)


def test_a_level_out_of_range_is_refused_once(kube_api: client.ApiClient, namespace: str) -> None:
    """`level: 5` is refused by its bound alone, not also by every rule of levels 2 to 4."""
    body = model_deployment("too-high", namespace, level=5, owners=None, data=None)
    with pytest.raises(ApiException) as raised:
        create_md(kube_api, body)
    causes = json.loads(raised.value.body)["details"]["causes"]
    assert [c["field"] for c in causes] == ["spec.maturity.level"]
    assert "less than or equal to 4" in causes[0]["message"]
