"""What an apply the API server or a webhook refused does to status (pure).

The reconciler writes status before it applies what the plan asks for. When an
apply fails, `after_apply_failure()` says what status and which Events follow:

- `Degraded=True`, reason `ApplyFailed`, with the API server's (or webhook's) own
  message, shown by `kubectl get md`, `kubectl describe` and `rung status`;
- a canary whose objects are *refused* (a 4xx answer: an admission webhook's
  denial, an invalid object, a forbidden request) is rolled back at once, so
  status never claims a weight that the cluster does not route. A server-side
  trouble (5xx, unreachable webhook) holds the rollout where it is; if it lasts,
  the progress deadline rolls the canary back;
- without a canary the phase is `Failed`.

`keep_apply_failure()` lets the next plan keep that condition while the objects
in the cluster still differ from the ones wanted, so a refusal that repeats every
pass writes status once and announces itself once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rung.api.status import HISTORY_LIMIT, Condition, ModelDeploymentStatus
from rung.plan import conditions as cond
from rung.plan import reasons
from rung.plan.diff import needs_apply, with_applied_hash
from rung.plan.events import Event, timestamp
from rung.plan.rollout import RolloutState, rollback

APPLY_FAILED = reasons.APPLY_FAILED
"""Degraded reason while an owned object cannot be applied."""
APPLY_REFUSED = reasons.APPLY_REFUSED
"""Event and history reason of a canary rolled back because its objects were refused."""
ROLLOUT_PHASES_TO_ABORT = frozenset({"Shadowing", "Progressing", "Paused", "Promoting"})


@dataclass(frozen=True)
class ApplyFailure:
    """An apply that did not happen: what and why, as the API server said."""

    object_ref: str
    """`Kind/name` of the object."""
    code: int | None
    """HTTP status code (None: no answer)."""
    message: str

    @property
    def refused(self) -> bool:
        """The API server or a webhook refused the object itself (retrying won't help)."""
        return self.code is not None and 400 <= self.code < 500 and self.code not in (409, 429)

    def describe(self) -> str:
        return f"{self.object_ref}: {self.message}"


def after_apply_failure(
    status: ModelDeploymentStatus,
    failures: Sequence[ApplyFailure],
    generation: int | None,
    now: datetime,
) -> tuple[ModelDeploymentStatus, list[Event]]:
    """Status and Events once `failures` happened applying the plan's `status`."""
    assert failures
    at = timestamp(now)
    message = "; ".join(f.describe() for f in failures)[:1000]
    events = [Event(APPLY_FAILED, message, "Warning")]
    update: dict[str, Any] = {}
    history = list(status.history)
    if status.canary is not None and status.phase in ROLLOUT_PHASES_TO_ABORT:
        if any(f.refused for f in failures):
            decision = rollback(
                RolloutState.of(status), at, APPLY_REFUSED, f"the cluster refused it: {message}"
            )
            update.update(phase=decision.state.phase, canary=decision.state.canary)
            events += decision.events
            history += decision.history
    elif status.canary is None:
        update["phase"] = "Failed"
    conditions = cond.set_condition(
        status.conditions,
        cond.DEGRADED,
        "True",
        APPLY_FAILED,
        message,
        now=at,
        generation=generation,
    )
    update.update(conditions=conditions, history=history[-HISTORY_LIMIT:])
    return status.model_copy(update=update), events


def keep_apply_failure(
    previous: Sequence[Condition],
    live: Mapping[str, Mapping[str, Mapping[str, Any]]],
    desired: Sequence[dict[str, Any]],
) -> Condition | None:
    """The previous `ApplyFailed` condition, while some wanted object is still not applied.

    `live` maps a kind to its live objects by name. Once every desired object is in
    place, None: the failure is over and the planner's own Degraded stands.
    """
    degraded = cond.get_condition(previous, cond.DEGRADED)
    if degraded is None or degraded.reason != APPLY_FAILED or degraded.status != "True":
        return None
    for manifest in desired:
        kind_objects = live.get(manifest.get("kind", ""), {})
        current = kind_objects.get(manifest["metadata"]["name"])
        if needs_apply(dict(current) if current is not None else None, with_applied_hash(manifest)):
            return degraded
    return None
