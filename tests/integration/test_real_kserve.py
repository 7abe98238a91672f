"""The operator with the real KServe controller: a climb through every level, refusals.

KServe's controller manager (built from its Go module, its webhooks on 127.0.0.1)
reconciles every InferenceService here; kwok runs the predictor pods.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from integration_kit import (
    ISVC,
    ROOT,
    condition,
    create_md,
    custom,
    get_isvc,
    is_condition,
    md_holds,
    patch_md,
    rung_cli,
    wait_until,
    watch_md,
)
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.usefixtures("operator")
Obj = dict[str, Any]
DEAD_PROMETHEUS = "http://127.0.0.1:9"  # the discard port: monitoring reads fail, serving works


def _events(api: client.ApiClient, namespace: str) -> list[tuple[str, str]]:
    items = client.CoreV1Api(api).list_namespaced_event(namespace).items
    items = [e for e in items if e.involved_object.kind == "ModelDeployment"]
    return [
        (e.reason, e.message) for e in sorted(items, key=lambda e: e.metadata.creation_timestamp)
    ]


def _level4_example(namespace: str) -> Obj:
    body: Obj = yaml.safe_load((ROOT / "examples" / "level-4.yaml").read_text())
    body["metadata"]["namespace"] = namespace
    body["spec"]["monitoring"]["prometheus"]["url"] = DEAD_PROMETHEUS
    return body


def _ready_at(level: int) -> Any:
    def check(o: Obj) -> bool:
        status = o.get("status") or {}
        return (
            status.get("level") == level
            and status.get("observedGeneration") == o["metadata"]["generation"]
            and status.get("phase") == "Ready"
            and is_condition(o, "Ready", "True")
        )

    return check


def test_a_climb_from_level_0_to_4_is_ready_at_every_level(
    kube_api: client.ApiClient, namespace: str
) -> None:
    """examples/level-4.yaml applied at level 0, then raised one level at a time: KServe
    makes the InferenceService (and at level 4 its explainer) ready at each level."""
    body = _level4_example(namespace)
    body["spec"]["maturity"]["level"] = 0
    create_md(kube_api, body)
    expected = {
        0: ["serving"],
        1: ["serving", "monitoring"],
        2: ["serving", "monitoring", "canary"],
        3: ["serving", "monitoring", "canary", "retraining"],
    }
    name = body["metadata"]["name"]
    for level in range(5):
        if level:
            patch_md(kube_api, namespace, name, {"spec": {"maturity": {"level": level}}})
        md = watch_md(kube_api, namespace, name, _ready_at(level), f"Ready at level {level}")
        if level in expected:
            assert md["status"]["capabilities"] == expected[level]
        # KServe has acted on what this level applies (at level 4: the explainer).
        isvc = wait_until(
            lambda explains=(level == 4): (
                (i := get_isvc(kube_api, namespace, name))
                and ("explainer" in i["spec"]) == explains
                and is_condition(i, "Ready", "True")
                and i
            ),
            f"KServe Ready with the level-{level} InferenceService",
        )
        # KServe's defaulting webhook rewrote the mode; Rung does not fight it.
        assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    history = [h["event"] for h in md["status"]["history"]]
    assert history.count("LevelChanged") == 4


def test_an_apply_a_webhook_refuses_is_degraded_with_its_message(
    kube_api: client.ApiClient, namespace: str, operator: Any
) -> None:
    """KServe's validating webhook refuses to change a running InferenceService's
    deployment mode: Degraded=True with KServe's own message after one reconcile, an
    Event, `rung status` shows it, and the refusal repeated every resync is written once."""
    from integration_kit import model_deployment

    create_md(kube_api, model_deployment("iris", namespace))
    watch_md(kube_api, namespace, "iris", _ready_at(0), "Ready")

    patch_md(kube_api, namespace, "iris", {"spec": {"serving": {"deploymentMode": "Serverless"}}})

    generation_2: list[Obj] = []

    def refused(o: Obj) -> bool:
        if (o.get("status") or {}).get("observedGeneration") == 2:
            generation_2.append(o)
        found = condition(o, "Degraded")
        return bool(found and found["status"] == "True" and found["reason"] == "ApplyFailed")

    md = watch_md(kube_api, namespace, "iris", refused, "Degraded=ApplyFailed")
    degraded = condition(md, "Degraded")
    assert degraded is not None
    assert "deploymentMode cannot be changed" in degraded["message"]
    assert "InferenceService/iris" in degraded["message"]
    assert md["status"]["phase"] == "Failed"
    # One reconcile: its status write before the apply, then the refusal.
    assert len(generation_2) <= 2
    wait_until(
        lambda: any(r == "ApplyFailed" for r, _ in _events(kube_api, namespace)),
        "an ApplyFailed Event",
    )
    assert "deploymentMode cannot be changed" in rung_cli("status", "iris", "-n", namespace)
    # Its announcements delivered (status.outbox emptied), status settles.
    md = watch_md(
        kube_api, namespace, "iris", lambda o: not o["status"].get("outbox"), "outbox delivered"
    )
    # The apply is retried (every 5 s) and refused again: status is not written again,
    # no new Event, one warning in the log.
    tried = operator.api_requests().get(("PATCH", "inferenceservices"), 0)
    now = md_holds(kube_api, namespace, "iris", lambda o: o["status"] == md["status"], "status", 12)
    assert operator.api_requests().get(("PATCH", "inferenceservices"), 0) >= tried + 2
    assert now["status"] == md["status"]
    assert [r for r, _ in _events(kube_api, namespace)].count("ApplyFailed") == 1
    assert operator.log().count(f"applying for {namespace}/iris failed") == 1
    # Going back to the running mode heals it.
    patch_md(
        kube_api, namespace, "iris", {"spec": {"serving": {"deploymentMode": "RawDeployment"}}}
    )
    healed = watch_md(
        kube_api,
        namespace,
        "iris",
        lambda o: is_condition(o, "Degraded", "False") and _ready_at(0)(o),
        "Degraded=False again",
    )
    assert healed["status"]["phase"] == "Ready"


@pytest.fixture
def approved_models_only(kube_api: client.ApiClient, namespace: str) -> Iterator[str]:
    """A cluster policy, as platform teams write them: in this namespace an
    InferenceService may route traffic to a canary only from s3://approved/."""
    name = f"approved-models-{uuid.uuid4().hex[:6]}"
    admission = client.AdmissionregistrationV1Api(kube_api)
    message = "canaries may only serve models from s3://approved/"
    admission.create_validating_admission_policy(
        {
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [ISVC[0]],
                            "apiVersions": [ISVC[1]],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": [ISVC[2]],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": "!has(object.spec.canary) || object.spec.canary.all(c,"
                        " c.predictor.model.storageUri.startsWith('s3://approved/'))",
                        "message": message,
                    }
                ],
            },
        }
    )
    admission.create_validating_admission_policy_binding(
        {
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
    probe: Obj = {
        "apiVersion": "/".join(ISVC[:2]),
        "kind": "InferenceService",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {
            "predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://x"}},
            "canary": [
                {
                    "trafficPercent": 10,
                    "predictor": {
                        "name": "c",
                        "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://x/2"},
                    },
                }
            ],
        },
    }
    probe["metadata"]["annotations"] = {"serving.kserve.io/deploymentMode": "RawDeployment"}

    def enforced() -> bool:
        try:
            custom(kube_api).create_namespaced_custom_object(
                *ISVC[:2], namespace, ISVC[2], copy.deepcopy(probe), dry_run="All"
            )
        except ApiException as error:
            return message in str(error.body)
        return False

    wait_until(enforced, "the admission policy enforced")
    try:
        yield message
    finally:
        admission.delete_validating_admission_policy_binding(name)
        admission.delete_validating_admission_policy(name)


def test_a_canary_the_cluster_refuses_is_rolled_back_at_once(
    kube_api: client.ApiClient, namespace: str, approved_models_only: str
) -> None:
    """The canary's InferenceService is refused by admission: the rollout goes straight
    back to stable (reason ApplyRefused, long before its 10 min progress deadline), and
    no canary ever appears in the cluster."""
    from integration_kit import model_deployment

    body = model_deployment(
        "fraud",
        namespace,
        level=2,
        monitoring={"prometheus": {"url": DEAD_PROMETHEUS}},
        rollout={"router": "kserve", "progressDeadline": "10m", "interval": "1m"},
    )
    body["spec"]["model"]["storageUri"] = "s3://approved/fraud/v1"
    create_md(kube_api, body)
    watch_md(kube_api, namespace, "fraud", _ready_at(2), "v1 Ready")

    patch_md(
        kube_api,
        namespace,
        "fraud",
        {"spec": {"model": {"storageUri": "s3://unreviewed/fraud/v2", "version": "v2"}}},
    )
    md = watch_md(
        kube_api,
        namespace,
        "fraud",
        lambda o: (o.get("status") or {}).get("phase") == "RolledBack",
        "rolled back",
        timeout=60,
    )
    assert md["status"]["stable"]["storageUri"] == "s3://approved/fraud/v1"
    assert md["status"]["rejected"]["version"] == "v2"
    rolling_back = [h for h in md["status"]["history"] if h["event"] == "RollingBack"]
    assert rolling_back[-1]["message"].startswith("ApplyRefused")
    assert approved_models_only in rolling_back[-1]["message"]
    isvc = get_isvc(kube_api, namespace, "fraud")
    assert isvc is not None
    assert not isvc["spec"].get("canary")
    # Events follow the status write that decided them (status.outbox): wait for them.
    wanted = {"ApplyFailed", "ApplyRefused", "RolledBack"}
    wait_until(
        lambda: wanted <= {r for r, _ in _events(kube_api, namespace)},
        f"Events {sorted(wanted)}",
    )


def test_a_canary_step_restarts_no_predictor_pod(
    kube_api: client.ApiClient, namespace: str
) -> None:
    """kserve router, RawDeployment: moving the split from 20 % to 50 % changes the
    canary's trafficPercent and nothing KServe copies into the pod templates, so neither
    predictor Deployment rolls (KServe copies the InferenceService's annotations, the
    applied hash among them, into them)."""
    from integration_kit import model_deployment

    name = "steps"
    body = model_deployment(
        name,
        namespace,
        level=2,
        monitoring={"prometheus": {"url": DEAD_PROMETHEUS}},
        rollout={
            "router": "kserve",
            "steps": [20, 50, 100],
            "interval": "10m",
            "progressDeadline": "30m",
        },
    )
    create_md(kube_api, body)
    watch_md(kube_api, namespace, name, _ready_at(2), "v1 Ready")
    patch_md(
        kube_api,
        namespace,
        name,
        {"spec": {"model": {"storageUri": f"s3://models/{name}/v2", "version": "v2"}}},
    )
    at_20 = watch_md(
        kube_api,
        namespace,
        name,
        lambda o: ((o.get("status") or {}).get("canary") or {}).get("weight") == 20,
        "canary at 20 %",
    )
    apps = client.AppsV1Api(kube_api)

    def templates() -> dict[str, tuple[int, Any]]:
        return {
            d.metadata.name: (d.metadata.generation, d.spec.template.metadata.annotations)
            for d in apps.list_namespaced_deployment(namespace).items
        }

    before = templates()
    assert len(before) == 2, before  # stable and canary predictors
    rung_cli("promote", name, "-n", namespace)  # skips the 20 % step's analysis
    wait_until(
        lambda: any(
            s.get("trafficPercent") == 50
            for s in ((get_isvc(kube_api, namespace, name) or {}).get("status") or {}).get(
                "canaryStatuses"
            )
            or []
        ),
        "KServe routing 50 % to the canary",
    )
    assert at_20["status"]["canary"]["step"] == 0
    assert templates() == before
