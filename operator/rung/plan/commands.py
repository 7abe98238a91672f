"""Day-2 commands read from annotations (pure).

`rung promote | abort | retry | undo | pause` each write one annotation on the
ModelDeployment: a small JSON object that names the rollout it is meant for (the
canary by its hash and start time, the rejection by its time, the spec.model in force
for an undo) and who asked. The operator reads them and never writes them back. A
command acts only while that rollout is in the state it was issued for, so running it
twice, or an operator restart in between, never acts twice: the state a command moves
the rollout to no longer matches it. `rung resume` removes the pause annotation.

The `by` a command carries is what the CLI found out about its user (SelfSubjectReview);
whoever may patch the object could write another name, so the API server's audit log
stays the authority on who wrote an annotation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rung.api.resource import (
    ABORT_ANNOTATION,
    APPROVED_BY_ANNOTATION,
    PAUSE_ANNOTATION,
    PROMOTE_ANNOTATION,
    RETRY_ANNOTATION,
    UNDO_ANNOTATION,
)
from rung.api.status import CanaryStatus, ModelRef, RejectedModel


@dataclass(frozen=True)
class Promote:
    """Skip the current step's analysis (`step` set), approve at the gate (`gate`: given
    while the canary waited there), or skip every remaining step and the gate (`step`
    None: `--full`)."""

    canary: str
    step: int | None
    by: str
    gate: bool = False


@dataclass(frozen=True)
class Abort:
    """Take all traffic off the canary now and reject its version."""

    canary: str
    by: str


@dataclass(frozen=True)
class Retry:
    """Roll the rejected version out again."""

    rejected: str
    by: str


@dataclass(frozen=True)
class Undo:
    """Serve an earlier stable model (`to`, a hash from status.revisions) while spec.model
    is still the one in force when the command was given (`spec`, its hash)."""

    to: str
    version: str
    spec: str
    by: str


@dataclass(frozen=True)
class Pause:
    """Hold the canary where it is: no analysis, no step, no deadline."""

    by: str
    at: str


@dataclass(frozen=True)
class Commands:
    """The commands found on one ModelDeployment, and what could not be read."""

    promote: Promote | None = None
    abort: Abort | None = None
    retry: Retry | None = None
    undo: Undo | None = None
    pause: Pause | None = None
    approved_by: str | None = None
    invalid: tuple[str, ...] = ()
    """One message per annotation that is not a command Rung can read."""


def canary_id(canary: CanaryStatus) -> str:
    """The canary a command names: its model hash and when it started."""
    return f"{(canary.hash or '')[:16]}@{canary.started_at or ''}"


def rejection_id(rejected: RejectedModel) -> str:
    """The rejection `rung retry` names: the model hash and when it was rolled back."""
    return f"{(rejected.hash or '')[:16]}@{rejected.rejected_at or ''}"


def find_revision(revisions: list[ModelRef], to: str) -> ModelRef | None:
    """The earlier stable model whose hash is `to`."""
    return next((r for r in reversed(revisions) if r.hash == to), None)


def read_commands(annotations: Mapping[str, str]) -> Commands:
    """Parse the command annotations; a malformed one is reported, never acted on."""
    invalid: list[str] = []

    def fields(key: str, *names: str) -> dict[str, Any] | None:
        text = annotations.get(key)
        if text is None:
            return None
        try:
            value = json.loads(text)
        except ValueError as error:
            invalid.append(f"annotation {key}: not JSON ({error})")
            return None
        missing = [n for n in names if not isinstance(value, dict) or n not in value]
        if missing:
            invalid.append(f"annotation {key}: missing {', '.join(missing)}")
            return None
        return dict(value)

    promote = fields(PROMOTE_ANNOTATION, "canary")
    abort = fields(ABORT_ANNOTATION, "canary")
    retry = fields(RETRY_ANNOTATION, "rejected")
    undo = fields(UNDO_ANNOTATION, "to", "spec")
    pause = fields(PAUSE_ANNOTATION)
    step = promote.get("step") if promote else None
    if promote is not None and step is not None and not isinstance(step, int):
        invalid.append(f"annotation {PROMOTE_ANNOTATION}: step must be a number or null")
        promote = None
    return Commands(
        promote=Promote(str(promote["canary"]), step, _by(promote), promote.get("gate") is True)
        if promote
        else None,
        abort=Abort(str(abort["canary"]), _by(abort)) if abort else None,
        retry=Retry(str(retry["rejected"]), _by(retry)) if retry else None,
        undo=Undo(str(undo["to"]), str(undo.get("version", "")), str(undo["spec"]), _by(undo))
        if undo
        else None,
        pause=Pause(_by(pause), str(pause.get("at", ""))) if pause is not None else None,
        approved_by=annotations.get(APPROVED_BY_ANNOTATION),
        invalid=tuple(invalid),
    )


def command_value(**fields: Any) -> str:
    """The annotation value the CLI writes (compact JSON, keys sorted)."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def _by(value: Mapping[str, Any]) -> str:
    return str(value.get("by") or "unknown")
