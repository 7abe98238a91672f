"""rung.cache.ObjectCache: watch events and write-throughs, newest resourceVersion wins."""

from __future__ import annotations

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
