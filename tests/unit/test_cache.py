"""rung.cache.ObjectCache: watch events and write-throughs, newest resourceVersion wins."""

from __future__ import annotations

from typing import Any

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
