"""rung.plan.apply_failure: what a refused or failed apply does to status (table tests)."""

from __future__ import annotations

from typing import Any

import pytest

from rung.api.status import CanaryStatus, Condition, ModelDeploymentStatus, ModelRef
from rung.plan.apply_failure import (
    APPLY_FAILED,
    ApplyFailure,
    after_apply_failure,
    keep_apply_failure,
)
from rung.plan.conditions import get_condition
from rung.plan.diff import with_applied_hash

from . import factories as f

STABLE = ModelRef(version="v1", storage_uri="s3://m/v1", hash="h1")
CANARY = CanaryStatus(
    version="v2", storage_uri="s3://m/v2", hash="h2", weight=25, step=1, started_at=f.NOW_TEXT
)
REFUSED = ApplyFailure(
    "InferenceService/fraud",
    400,
    'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the request:'
    ' canary "r-1" must not set maxReplicas (canary uses fixed replicas)',
)
SERVER_TROUBLE = ApplyFailure(
    "InferenceService/fraud", 500, 'failed calling webhook "x": connection refused'
)


def status(phase: str | None, canary: CanaryStatus | None = None) -> ModelDeploymentStatus:
    return ModelDeploymentStatus(phase=phase, stable=STABLE, canary=canary)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "refused"),
    [
        (400, True),
        (403, True),
        (404, True),
        (422, True),
        (409, False),
        (429, False),
        (500, False),
        (503, False),
        (None, False),
    ],
)
def test_refused_means_a_4xx_that_a_retry_cannot_fix(code: int | None, refused: bool) -> None:
    assert ApplyFailure("X/y", code, "m").refused is refused


@pytest.mark.parametrize(
    ("before", "failure", "phase", "weight", "events"),
    [
        (status("Ready"), REFUSED, "Failed", None, ["ApplyFailed"]),
        (status(None), SERVER_TROUBLE, "Failed", None, ["ApplyFailed"]),
        (status("Progressing", CANARY), REFUSED, "RollingBack", 0, ["ApplyFailed", "ApplyRefused"]),
        (status("Paused", CANARY), REFUSED, "RollingBack", 0, ["ApplyFailed", "ApplyRefused"]),
        (status("Promoting", CANARY), REFUSED, "RollingBack", 0, ["ApplyFailed", "ApplyRefused"]),
        (status("Progressing", CANARY), SERVER_TROUBLE, "Progressing", 25, ["ApplyFailed"]),
        (
            status("RollingBack", CANARY.model_copy(update={"weight": 0})),
            REFUSED,
            "RollingBack",
            0,
            ["ApplyFailed"],
        ),
    ],
    ids=[
        "stable-refused-fails",
        "stable-server-error-fails",
        "canary-refused-rolls-back",
        "paused-canary-refused-rolls-back",
        "promotion-refused-rolls-back",
        "canary-server-error-holds",
        "rollback-refused-stays-rolling-back",
    ],
)
def test_after_apply_failure(
    before: ModelDeploymentStatus,
    failure: ApplyFailure,
    phase: str,
    weight: int | None,
    events: list[str],
) -> None:
    after, announced = after_apply_failure(before, [failure], 3, f.NOW)
    assert after.phase == phase
    assert (after.canary.weight if after.canary else None) == weight
    assert [e.reason for e in announced] == events
    degraded = get_condition(after.conditions, "Degraded")
    assert degraded is not None
    assert (degraded.status, degraded.reason) == ("True", APPLY_FAILED)
    assert failure.message in degraded.message
    assert "InferenceService/fraud" in degraded.message
    assert degraded.observed_generation == 3
    assert all(e.type == "Warning" for e in announced)


def test_a_refused_canary_leaves_a_history_entry_with_the_refusal() -> None:
    after, _ = after_apply_failure(status("Progressing", CANARY), [REFUSED], 1, f.NOW)
    assert after.history[-1].event == "RollingBack"
    assert "must not set maxReplicas" in after.history[-1].message


def test_the_same_failure_twice_gives_the_same_status() -> None:
    """So the reconciler writes status and posts Events once, not once per pass."""
    once, _ = after_apply_failure(status("Ready"), [REFUSED], 1, f.NOW)
    twice, _ = after_apply_failure(once, [REFUSED], 1, f.LATER)
    assert twice.wire() == once.wire()


WANTED: dict[str, Any] = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "fraud", "namespace": "team-a"},
    "spec": {"predictor": {"minReplicas": 1}},
}
FAILED = Condition(
    type="Degraded",
    status="True",
    reason=APPLY_FAILED,
    message="refused",
    last_transition_time=f.NOW_TEXT,
)
OTHER = Condition(
    type="Degraded",
    status="True",
    reason="ModelFailed",
    message="x",
    last_transition_time=f.NOW_TEXT,
)


@pytest.mark.parametrize(
    ("previous", "live", "kept"),
    [
        ([FAILED], {}, True),
        ([FAILED], {"InferenceService": {"fraud": {"metadata": {}, "spec": {}}}}, True),
        ([FAILED], {"InferenceService": {"fraud": with_applied_hash(WANTED)}}, False),
        ([OTHER], {}, False),
        ([], {}, False),
    ],
    ids=["missing-object", "object-differs", "object-in-place", "other-reason", "none"],
)
def test_keep_apply_failure_while_objects_differ(
    previous: list[Condition], live: dict[str, Any], kept: bool
) -> None:
    assert (keep_apply_failure(previous, live, [WANTED]) is not None) is kept
