"""rung.plan.diff.covers: does a live object already carry every desired field?"""

from __future__ import annotations

from typing import Any

import pytest

from rung.plan.diff import covers


@pytest.mark.parametrize(
    ("live", "desired"),
    [
        ("a", "a"),
        (1, 1),
        (None, None),
        (True, True),
        ({}, {}),
        ([], []),
        ({"a": 1, "b": 2}, {"a": 1}),
        ({"a": {"b": {"c": 1, "x": 9}, "y": 8}}, {"a": {"b": {"c": 1}}}),
        ({"spec": {"replicas": 1}, "status": {"ready": True}}, {"spec": {"replicas": 1}}),
        ([{"a": 1, "extra": 2}, {"b": 2}], [{"a": 1}, {"b": 2}]),
        ({"l": [1, 2, 3]}, {"l": [1, 2, 3]}),
        ({"a": 1}, {"missing": None}),
        (1, 1.0),
        (1.0, 1),
        (0.5, 0.5),
        ({"weight": 100}, {"weight": 100.0}),
    ],
    ids=[
        "equal-strings",
        "equal-ints",
        "both-none",
        "equal-bools",
        "empty-dicts",
        "empty-lists",
        "extra-live-field-ignored",
        "nested-extra-live-fields-ignored",
        "status-written-by-others-ignored",
        "extra-fields-inside-list-items-ignored",
        "equal-lists",
        "desired-none-matches-absent",
        "int-live-float-desired",
        "float-live-int-desired",
        "equal-floats",
        "nested-int-vs-float",
    ],
)
def test_covers(live: Any, desired: Any) -> None:
    assert covers(live, desired) is True


@pytest.mark.parametrize(
    ("live", "desired"),
    [
        ("a", "b"),
        (1, 2),
        (1, 1.5),
        (1.5, 1),
        ("1", 1),
        ("1", 1.0),
        (None, "a"),
        (None, {"a": 1}),
        ("x", {"a": 1}),
        ({"a": 1}, {"a": 2}),
        ({}, {"a": 1}),
        ({"a": {"b": 1}}, {"a": {"b": 2}}),
        ({"a": {"b": 1}}, {"a": {"b": 1, "c": 1}}),
        ([1, 2], [1, 2, 3]),
        ([1, 2, 3], [1, 2]),
        ([], [1]),
        ([1], []),
        ([2, 1], [1, 2]),
        ({"l": [1]}, {"l": 1}),
        (None, []),
        ({"a": 1}, [1]),
        ([{"a": 1}], [{"a": 2}]),
        (None, 1.0),
        ("1.0", 1.0),
    ],
    ids=[
        "different-strings",
        "different-ints",
        "int-vs-different-float",
        "float-vs-different-int",
        "string-vs-int",
        "string-vs-float",
        "absent-vs-string",
        "absent-vs-dict",
        "scalar-vs-dict",
        "different-value",
        "missing-key",
        "nested-different-value",
        "nested-missing-key",
        "list-shorter-than-desired",
        "list-longer-than-desired",
        "empty-vs-nonempty-list",
        "nonempty-vs-empty-list",
        "list-order-matters",
        "list-vs-scalar",
        "absent-vs-empty-list",
        "dict-vs-list",
        "list-item-differs",
        "absent-vs-float",
        "string-vs-float-lookalike",
    ],
)
def test_does_not_cover(live: Any, desired: Any) -> None:
    assert covers(live, desired) is False


# --- applied hash: removals are noticed ----------------------------------------------

from rung.plan.diff import APPLIED_HASH_ANNOTATION, needs_apply, with_applied_hash  # noqa: E402


def _obj(**annotations: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "X", "metadata": {"name": "a", "annotations": annotations}}


def test_applied_hash_is_stable_and_content_sensitive() -> None:
    one = with_applied_hash(_obj(a="1"))
    assert one == with_applied_hash(_obj(a="1"))
    assert (
        one["metadata"]["annotations"][APPLIED_HASH_ANNOTATION]
        != with_applied_hash(_obj(a="2"))["metadata"]["annotations"][APPLIED_HASH_ANNOTATION]
    )


def test_missing_object_needs_apply() -> None:
    assert needs_apply(None, with_applied_hash(_obj()))


def test_unchanged_object_needs_no_apply() -> None:
    desired = with_applied_hash(_obj(a="1"))
    live = {**desired, "status": {"x": 1}}
    assert not needs_apply(live, desired)


def test_a_field_we_stop_sending_needs_apply() -> None:
    # live carries a (and the hash of {a, b}); desired drops b: covers() alone says fine
    assert covers(_obj(a="1", b="2"), _obj(a="1"))  # a subset check misses the removal
    live = with_applied_hash(_obj(a="1", b="2"))
    assert needs_apply(live, with_applied_hash(_obj(a="1")))


def test_drift_on_an_owned_field_needs_apply() -> None:
    desired = with_applied_hash(_obj(a="1"))
    live = with_applied_hash(_obj(a="1"))
    live["metadata"]["annotations"]["a"] = "edited"
    assert needs_apply(live, desired)


def _isvc(stable_percent: int | None, canary_percent: int) -> dict[str, Any]:
    predictor: dict[str, Any] = {"name": "r-1", "model": {"storageUri": "s3://m/v1"}}
    if stable_percent is not None:
        predictor["canaryTrafficPercent"] = stable_percent
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "fraud", "annotations": {}},
        "spec": {
            "predictor": predictor,
            "canary": [
                {
                    "trafficPercent": canary_percent,
                    "predictor": {"name": "r-2", "model": {"storageUri": "s3://m/v2"}},
                }
            ],
        },
    }


def _hash(obj: dict[str, Any]) -> str:
    return str(with_applied_hash(obj)["metadata"]["annotations"][APPLIED_HASH_ANNOTATION])


def test_a_canary_step_keeps_the_inference_service_hash_so_no_pod_restarts() -> None:
    """KServe copies the InferenceService's annotations into its pod templates: a hash
    that moved with the traffic split restarted every predictor at every step."""
    assert _hash(_isvc(None, 20)) == _hash(_isvc(None, 50))
    assert _hash(_isvc(20, 0)) == _hash(_isvc(50, 0))
    # ... yet the new split is applied: the live one no longer covers it
    live = with_applied_hash(_isvc(None, 20))
    assert needs_apply(live, with_applied_hash(_isvc(None, 50)))
    assert not needs_apply(live, with_applied_hash(_isvc(None, 20)))
    # a change the pods do see moves the hash
    other = _isvc(None, 20)
    other["spec"]["canary"][0]["predictor"]["model"]["storageUri"] = "s3://m/v3"
    assert _hash(other) != _hash(_isvc(None, 20))


@pytest.mark.parametrize(
    ("live", "desired", "expected"),
    [
        ("Standard", "RawDeployment", True),
        ("RawDeployment", "RawDeployment", True),
        ("Knative", "Serverless", True),
        ("Knative", "RawDeployment", False),
        ("Standard", "Serverless", False),
    ],
    ids=["raw-is-standard", "raw-unchanged", "serverless-is-knative", "mode-changed", "wrong"],
)
def test_kserve_deployment_mode_aliases(live: str, desired: str, expected: bool) -> None:
    """KServe's defaulting webhook rewrites the deprecated mode names (v0.15+)."""
    key = "serving.kserve.io/deploymentMode"
    live_obj = {"metadata": {"annotations": {key: live}}}
    desired_obj = {"metadata": {"annotations": {key: desired}}}
    assert covers(live_obj, desired_obj) is expected


@pytest.mark.parametrize(
    ("live", "desired", "expected"),
    [
        ("500m", "0.5", True),
        ("1", "1000m", True),
        ("1Gi", "1024Mi", True),
        ("2", 2, True),
        ("1Gi", "1G", False),
        ("not-a-quantity", "not-a-quantity", True),
        ("1", "2", False),
    ],
)
def test_resource_quantities_compare_by_value(live: Any, desired: Any, expected: bool) -> None:
    """Webhooks write quantities in canonical form; "500m" and "0.5" are the same CPU."""
    for section in ("requests", "limits"):
        live_obj = {"spec": {"model": {"resources": {section: {"cpu": live}}}}}
        desired_obj = {"spec": {"model": {"resources": {section: {"cpu": desired}}}}}
        assert covers(live_obj, desired_obj) is expected


def test_quantity_rule_only_under_resources() -> None:
    assert covers({"spec": {"limits": {"x": "1"}}}, {"spec": {"limits": {"x": "1000m"}}}) is False
