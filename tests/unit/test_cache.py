"""rung.cache.ObjectCache: watch events and write-throughs, newest resourceVersion wins."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest

from rung.cache import ObjectCache
from rung.kube import INFERENCE_SERVICE, MODEL_DEPLOYMENT

UID = "u-1"


def isvc(name: str, rv: str, owner: str = "fraud", ns: str = "a") -> dict[str, Any]:
    return {
        "apiVersion": INFERENCE_SERVICE.api_version,
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": ns,
            "resourceVersion": rv,
            "labels": {"rung.dev/model-deployment": owner},
            "ownerReferences": [{"uid": UID}],
        },
    }


def test_an_older_event_never_replaces_a_newer_write() -> None:
    cache = ObjectCache()
    cache.put(INFERENCE_SERVICE, isvc("fraud", "10"))
    cache.put(INFERENCE_SERVICE, isvc("fraud", "9"))
    found = cache.get(INFERENCE_SERVICE, "a", "fraud")
    assert found is not None
    assert found["metadata"]["resourceVersion"] == "10"


def test_owned_objects_by_owner_label_and_uid() -> None:
    cache = ObjectCache()
    cache.put(INFERENCE_SERVICE, isvc("fraud", "1"))
    cache.put(INFERENCE_SERVICE, isvc("fraud-canary", "2"))
    cache.put(INFERENCE_SERVICE, isvc("other", "3", owner="other"))
    cache.put(INFERENCE_SERVICE, isvc("fraud", "4", ns="b"))
    names = sorted(o["metadata"]["name"] for o in cache.owned(INFERENCE_SERVICE, "a", "fraud", UID))
    assert names == ["fraud", "fraud-canary"]
    assert cache.owned(INFERENCE_SERVICE, "a", "fraud", "another-uid") == []


def test_reads_are_copies() -> None:
    cache = ObjectCache()
    cache.put(INFERENCE_SERVICE, isvc("fraud", "1"))
    found = cache.get(INFERENCE_SERVICE, "a", "fraud")
    assert found is not None
    found["metadata"]["name"] = "changed"
    again = cache.get(INFERENCE_SERVICE, "a", "fraud")
    assert again is not None
    assert again["metadata"]["name"] == "fraud"


def test_priming_fills_only_watched_namespaces_and_marks_synced() -> None:
    cache = ObjectCache(namespaces=("team-*",))
    assert not cache.synced(MODEL_DEPLOYMENT)
    cache.replace_all(
        INFERENCE_SERVICE, [isvc("x", "1", ns="team-a"), isvc("y", "1", ns="kube-system")]
    )
    assert cache.synced(INFERENCE_SERVICE)
    assert cache.keys(INFERENCE_SERVICE) == [("team-a", "x")]


def test_removal() -> None:
    cache = ObjectCache()
    cache.put(INFERENCE_SERVICE, isvc("fraud", "1"))
    cache.remove(INFERENCE_SERVICE, "a", "fraud")
    assert cache.get(INFERENCE_SERVICE, "a", "fraud") is None


def test_an_object_relabelled_moves_to_its_new_owner() -> None:
    cache = ObjectCache()
    cache.put(INFERENCE_SERVICE, isvc("shared", "1", owner="fraud"))
    cache.put(INFERENCE_SERVICE, isvc("shared", "2", owner="other"))
    assert cache.owned(INFERENCE_SERVICE, "a", "fraud", UID) == []
    assert [o["metadata"]["name"] for o in cache.owned(INFERENCE_SERVICE, "a", "other", UID)] == [
        "shared"
    ]
    cache.remove(INFERENCE_SERVICE, "a", "shared")
    assert cache.owned(INFERENCE_SERVICE, "a", "other", UID) == []


def test_a_model_deployment_found_gone_is_forgotten_with_what_it_owned() -> None:
    """kopf stops watching a terminating namespace, so DELETED events may never come: a
    ModelDeployment whose status write finds it gone leaves the cache with its objects."""
    cache = ObjectCache()
    md = {"metadata": {"name": "fraud", "namespace": "a", "resourceVersion": "1"}}
    cache.put(MODEL_DEPLOYMENT, md)
    cache.put(MODEL_DEPLOYMENT, {"metadata": {**md["metadata"], "name": "other"}})
    cache.put(INFERENCE_SERVICE, isvc("fraud", "1"))
    cache.put(INFERENCE_SERVICE, isvc("fraud-canary", "2"))
    cache.put(INFERENCE_SERVICE, isvc("other", "3", owner="other"))
    cache.put(INFERENCE_SERVICE, isvc("fraud", "4", ns="b"))
    cache.forget("a", "fraud")
    assert cache.keys(MODEL_DEPLOYMENT) == [("a", "other")]
    assert sorted(cache.keys(INFERENCE_SERVICE)) == [("a", "other"), ("b", "fraud")]
    assert cache.labelled(INFERENCE_SERVICE, "a", "fraud") == []


def test_a_status_write_that_finds_the_object_gone_forgets_it() -> None:
    from kubernetes.client.exceptions import ApiException

    from rung.cache import CachedKube
    from rung.kube import Kube, ObjectGoneError

    class Gone:
        def replace_namespaced_custom_object_status(self, *args: Any, **kwargs: Any) -> Any:
            raise ApiException(status=404, reason="Not Found")

    kube = Kube.__new__(Kube)
    kube.custom = Gone()  # type: ignore[assignment]
    cache = ObjectCache()
    cached = CachedKube.__new__(CachedKube)
    cached.custom, cached.cache = kube.custom, cache
    body = {"metadata": {"name": "fraud", "namespace": "a", "resourceVersion": "1"}, "spec": {}}
    cache.put(MODEL_DEPLOYMENT, body)
    cache.put(INFERENCE_SERVICE, isvc("fraud", "1"))
    with pytest.raises(ObjectGoneError) as gone:
        cached.replace_status(body, {"phase": "Ready"})
    assert (gone.value.namespace, gone.value.name) == ("a", "fraud")
    assert cache.keys(MODEL_DEPLOYMENT) == []
    assert cache.keys(INFERENCE_SERVICE) == []


def test_the_cache_keeps_no_managed_fields_nor_kubectl_last_applied() -> None:
    """What Rung never reads and every object repeats (about two thirds of a cached
    InferenceService, Deployment and ModelDeployment in memory)."""
    from rung.cache import LAST_APPLIED

    stored = isvc("fraud", "1")
    stored["metadata"]["managedFields"] = [{"manager": "rung", "fieldsV1": {"f:spec": {}}}]
    stored["metadata"]["annotations"] = {LAST_APPLIED: "{...}", "rung.dev/applied-hash": "h"}
    cache = ObjectCache()
    cache.put(INFERENCE_SERVICE, stored)
    cache.replace_all(MODEL_DEPLOYMENT, [{**stored, "kind": "ModelDeployment"}])
    for kind in (INFERENCE_SERVICE, MODEL_DEPLOYMENT):
        found = cache.get(kind, "a", "fraud")
        assert found is not None
        assert "managedFields" not in found["metadata"]
        assert found["metadata"]["annotations"] == {"rung.dev/applied-hash": "h"}
        assert found["metadata"]["labels"] == stored["metadata"]["labels"]
    assert "managedFields" in stored["metadata"]  # the caller's object is left alone
    assert LAST_APPLIED in stored["metadata"]["annotations"]


def test_a_namespace_going_away_takes_its_objects_out_of_the_cache() -> None:
    cache = ObjectCache()
    cache.put(MODEL_DEPLOYMENT, {"metadata": {"name": "fraud", "namespace": "a"}})
    cache.put(MODEL_DEPLOYMENT, {"metadata": {"name": "fraud", "namespace": "b"}})
    cache.put(INFERENCE_SERVICE, isvc("fraud", "1"))
    cache.put(INFERENCE_SERVICE, isvc("fraud", "2", ns="b"))
    cache.forget_namespace("a")
    assert cache.keys(MODEL_DEPLOYMENT) == [("b", "fraud")]
    assert cache.keys(INFERENCE_SERVICE) == [("b", "fraud")]
    assert cache.labelled(INFERENCE_SERVICE, "a", "fraud") == []
    assert [
        o["metadata"]["namespace"] for o in cache.labelled(INFERENCE_SERVICE, "b", "fraud")
    ] == ["b"]


def test_the_cache_keeps_no_reference_to_what_it_was_given() -> None:
    given = isvc("fraud", "1")
    cache = ObjectCache()
    cache.put(INFERENCE_SERVICE, given)
    given["metadata"]["labels"]["rung.dev/model-deployment"] = "changed"
    found = cache.get(INFERENCE_SERVICE, "a", "fraud")
    assert found is not None
    assert found["metadata"]["labels"] == {"rung.dev/model-deployment": "fraud"}


def _predictor_deployment(i: int) -> dict[str, Any]:
    """About what KServe's predictor Deployment of a level-0 model looks like (3.5 kB
    as JSON), with its own strings as if decoded from a watch event."""
    obj = isvc(f"model-{i:05d}", str(1000 + i), owner=f"model-{i:05d}")
    container = {
        "name": "kserve-container",
        "image": f"kserve/sklearnserver:v0.20.0-{i}",
        "args": [f"--model_name=model-{i:05d}", "--model_dir=/mnt/models", "--http_port=8080"],
        "env": [{"name": f"VAR_{k}", "value": f"value-{k}-{i}"} for k in range(12)],
        "resources": {"limits": {"cpu": "1", "memory": "2Gi"}, "requests": {"cpu": "1"}},
        "readinessProbe": {"httpGet": {"path": f"/v1/models/model-{i}", "port": 8080}},
    }
    obj["spec"] = {"replicas": 1, "template": {"spec": {"containers": [container]}}}
    obj["status"] = {
        "conditions": [
            {"type": t, "status": "True", "reason": f"Reason{t}{i}", "message": f"m {t} {i}"}
            for t in ("Available", "Progressing")
        ],
        "observedGeneration": 1,
    }
    decoded: dict[str, Any] = json.loads(json.dumps(obj))
    return decoded


def test_cached_objects_cost_a_fraction_of_their_decoded_form() -> None:
    """Objects are held as JSON text: decoded, every dict, list and string is an
    allocation of its own, 5-8 times the text (1,000 level-0 ModelDeployments held
    50 MiB of decoded objects in the operator, 9 MiB as text)."""
    objects = [_predictor_deployment(i) for i in range(300)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        decoded = json.loads(json.dumps(objects))
        as_dicts = tracemalloc.get_traced_memory()[0] - before
        del decoded
        before = tracemalloc.get_traced_memory()[0]
        cache = ObjectCache()
        for obj in objects:
            cache.put(INFERENCE_SERVICE, obj)
        cached = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert cached < as_dicts / 3, (cached, as_dicts)
    found = cache.get(INFERENCE_SERVICE, "a", "model-00007")
    assert found == {**objects[7], "metadata": objects[7]["metadata"]}
