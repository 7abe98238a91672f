"""KServe's own webhooks accept every object Rung writes, and see no drift in them.

For every file in examples/, with both routers, at levels 0-4 (each example at its
own level and, for the canary phases, at level 2 or its own if higher), every
object Rung would write at each rollout phase (stable only, the canary at each step,
promoting, rolling back) is sent to the real API server as a server-side apply with
`dryRun=All`: it passes the CRD schemas and the real KServe controller's mutating and
validating webhooks, and what comes back (defaulted and normalised by KServe) is
what Rung's drift check accepts as already applied, so an idle resync writes nothing.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from integration_kit import ROOT
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rung.api.resource import ModelDeployment
from rung.api.spec import ModelSource
from rung.api.status import ModelRef
from rung.kube import FIELD_MANAGER, kind_of
from rung.plan.diff import needs_apply, with_applied_hash
from rung.plan.inference_service import model_hash
from rung.plan.live import LiveObjects
from rung.plan.monitoring import plan_monitoring
from rung.plan.reads import stable_targets
from rung.plan.reconcile import ClusterFeatures, Observation, plan
from rung.plan.routers import Traffic, router_for

pytestmark = pytest.mark.usefixtures("rung_crds", "kserve_controller")

EXAMPLES = sorted((ROOT / "examples").glob("level-*.yaml"))
ROUTERS = ("kserve", "gateway-api")
FEATURES = ClusterFeatures(prometheus_operator=True, gateway_api=True)
Obj = dict[str, Any]


def _examples() -> Iterator[tuple[str, Obj]]:
    for path in EXAMPLES:
        for body in yaml.safe_load_all(path.read_text()):
            yield path.name, body


def _deployment(body: Obj, namespace: str, router: str, level: int) -> ModelDeployment:
    body = copy.deepcopy(body)
    body["metadata"].update(namespace=namespace, uid="6b1c2f4e-0000-4000-8000-000000000001")
    body["metadata"].setdefault("generation", 1)
    spec = body["spec"]
    spec["maturity"]["level"] = level
    rollout = spec.setdefault("rollout", {})
    rollout["router"] = router
    if router == "gateway-api":
        rollout.setdefault("gateway", {"name": "inference-gateway"})
    return ModelDeployment.from_body(body)


def _ref(model: ModelSource, predictor_name: str | None = None) -> ModelRef:
    return ModelRef(
        version=model.version,
        storage_uri=model.storage_uri,
        hash=model_hash(model),
        model=model,
        predictor_name=predictor_name,
    )


def _phases(md: ModelDeployment) -> Iterator[tuple[str, list[Obj]]]:
    """(phase, the objects Rung writes in it) from stable only through rollback."""
    stable = md.spec.model
    canary = stable.model_copy(
        update={"storage_uri": f"{stable.storage_uri}-next", "version": f"{stable.version}-next"}
    )
    stable_ref = _ref(stable)
    canary_ref = _ref(canary, f"r-{model_hash(canary)[:8]}")
    # Stable only, as the planner builds it (with the monitoring objects of the level).
    first = plan(Observation(md=md, now=_now(), features=FEATURES))
    yield "stable", first.desired
    if md.spec.maturity.level < 2:
        return
    monitoring = plan_monitoring(md, FEATURES, stable_targets(md, LiveObjects()))
    router = router_for(md.spec.rollout.router if md.spec.rollout else "kserve")
    base = Traffic(stable=stable_ref, annotations=monitoring.predictor_annotations)
    steps = md.spec.rollout.steps if md.spec.rollout else [10, 25, 50, 100]
    for weight in steps:
        yield f"canary-{weight}", router.objects(md, _with(base, canary_ref, weight))
    yield "promoting", router.objects(md, _with(base, canary_ref, 100, promoting=True))
    yield "rolling-back", router.objects(md, _with(base, canary_ref, 0, rolling_back=True))
    promoted = _ref(canary, canary_ref.predictor_name)
    yield "promoted", router.objects(md, Traffic(stable=promoted, annotations=base.annotations))
    # A canary that changes only resources keeps the storageUri (promoted in place).
    wire = stable.model_dump(by_alias=True, exclude_none=True, mode="json")
    same_uri = ModelSource.model_validate(
        {**wire, "version": f"{stable.version}-res", "resources": {"requests": {"cpu": "2"}}}
    )
    same_ref = _ref(same_uri, f"r-{model_hash(same_uri)[:8]}")
    yield "same-uri-canary", router.objects(md, _with(base, same_ref, steps[0]))
    yield "same-uri-promoting", router.objects(md, _with(base, same_ref, 100, promoting=True))


def _with(base: Traffic, canary: ModelRef, weight: int, **flags: bool) -> Traffic:
    return Traffic(
        stable=base.stable,
        canary=canary,
        canary_weight=weight,
        annotations=base.annotations,
        **flags,
    )


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _dry_run_apply(api: client.ApiClient, manifest: Obj) -> Obj:
    kind = kind_of(manifest)
    meta = manifest["metadata"]
    response = client.CustomObjectsApi(api).patch_namespaced_custom_object(
        kind.group,
        kind.version,
        meta["namespace"],
        kind.plural,
        meta["name"],
        manifest,
        field_manager=FIELD_MANAGER,
        force=True,
        dry_run="All",
        _content_type="application/apply-patch+yaml",
        _preload_content=False,  # the client drops a 201 (created) body
    )
    stored: Obj = json.loads(response.data)
    return stored


def _levels(own: int) -> list[int]:
    """Each example at its own level; those below level 2 also with a canary."""
    return [own] if own >= 2 else [own, 2]


CASES = [
    (name, body, router, level)
    for name, body in _examples()
    for router in ROUTERS
    for level in _levels(int(body["spec"]["maturity"]["level"]))
    if body["spec"].get("serving", {}).get("deploymentMode", "RawDeployment") != "Serverless"
]


@pytest.mark.parametrize(
    ("example", "body", "router", "level"),
    CASES,
    ids=[f"{c[0]}-{c[2]}-level{c[3]}" for c in CASES],
)
def test_kserve_accepts_every_object_rung_writes_without_drift(
    kube_api: client.ApiClient, namespace: str, example: str, body: Obj, router: str, level: int
) -> None:
    md = _deployment(body, namespace, router, level)
    checked = 0
    for phase, objects in _phases(md):
        for planned in objects:
            manifest = with_applied_hash(planned)
            what = (
                f"{example} ({router}) {phase}: {manifest['kind']}/{manifest['metadata']['name']}"
            )
            try:
                stored = _dry_run_apply(kube_api, manifest)
            except ApiException as error:
                pytest.fail(f"{what} refused: {error.status} {error.body}", pytrace=False)
            assert not needs_apply(stored, manifest), f"{what}: drift after KServe's webhooks"
            checked += 1
    assert checked >= 1


def test_kserve_webhook_refuses_what_it_should(kube_api: client.ApiClient, namespace: str) -> None:
    """The webhooks under test are really there: a canary with autoscaling is refused."""
    body = next(b for _, b in _examples() if b["spec"]["maturity"]["level"] == 2)
    md = _deployment(body, namespace, "kserve", 2)
    first_step = next(objects for phase, objects in _phases(md) if phase.startswith("canary-"))
    isvc = copy.deepcopy(first_step[0])
    isvc["spec"]["canary"][0]["predictor"]["maxReplicas"] = 3
    with pytest.raises(ApiException) as refused:
        _dry_run_apply(kube_api, isvc)
    assert "must not set maxReplicas" in str(refused.value.body)
