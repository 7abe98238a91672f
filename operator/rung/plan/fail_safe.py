"""What a reconcile that keeps failing does to a canary (pure).

A reconcile can fail for reasons no plan foresaw: a bug in planning, an input the
models accept but a planner chokes on. The failure is reported at once (`Degraded=True`,
reason `ReconcileFailed`, an Event). If it happens during a canary, the canary may be
holding traffic that nothing will ever judge again. So, as Argo Rollouts counts analysis
errors against `consecutiveErrorLimit`, failed reconciles of one object are counted, and
at `FAILURE_LIMIT` in a row a canary is rolled back without the planner:
`fail_safe_rollback()` says the status (RollingBack at weight 0, the canary's model to be
rejected, a history entry) and the Events, and the router's `traffic_to_stable()` the
patches on the live objects that send every request to stable. Once planning works
again (a fixed operator), the rollout continues from RollingBack as usual.
"""

from __future__ import annotations

from datetime import datetime

from rung.api.status import HISTORY_LIMIT, ModelDeploymentStatus
from rung.plan import conditions as cond
from rung.plan import reasons
from rung.plan.apply_failure import ROLLOUT_PHASES_TO_ABORT
from rung.plan.events import Event, timestamp
from rung.plan.rollout import RolloutState, rollback

FAILURE_LIMIT = 3
"""Failed reconciles in a row, during a canary, before the fail-safe rolls it back. With
the work queue's backoff (1 s, 2 s, ...) that is about 3 s after the first failure."""


def fail_safe_due(status: ModelDeploymentStatus, failures: int) -> bool:
    """Whether `failures` failed reconciles in a row should take traffic off the canary:
    one that is rolling out, or already rolling back (the planner may be what fails
    to finish the rollback)."""
    return (
        failures >= FAILURE_LIMIT
        and status.canary is not None
        and status.stable is not None
        and (status.phase in ROLLOUT_PHASES_TO_ABORT or status.phase == "RollingBack")
    )


def fail_safe_rollback(
    status: ModelDeploymentStatus,
    message: str,
    failures: int,
    generation: int | None,
    now: datetime,
) -> tuple[ModelDeploymentStatus, list[Event]]:
    """Status and Events once `failures` reconciles in a row failed with `message` during
    a canary (`fail_safe_due`): RollingBack at weight 0, Degraded with the message.
    Already RollingBack: unchanged, nothing announced."""
    assert fail_safe_due(status, failures)
    if status.phase == "RollingBack":
        return status, []
    at = timestamp(now)
    decision = rollback(
        RolloutState.of(status),
        at,
        reasons.FAIL_SAFE_ROLLBACK,
        f"{failures} reconciles in a row failed: {message}",
    )
    conditions = cond.set_condition(
        status.conditions,
        cond.DEGRADED,
        "True",
        reasons.RECONCILE_FAILED,
        message,
        now=at,
        generation=generation,
    )
    history = [*status.history, *decision.history][-HISTORY_LIMIT:]
    update = {
        "phase": decision.state.phase,
        "canary": decision.state.canary,
        "conditions": conditions,
        "history": history,
    }
    return status.model_copy(update=update), decision.events
