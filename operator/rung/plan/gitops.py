"""Git write-back decisions (pure): what the manifest in Git should say, and how to say it.

With `spec.gitops`, two decisions of the operator are written back to the manifest the
cluster is synced from, so that Git, Argo CD and the cluster agree again:

  rollback   a canary was rolled back while spec.model still names it: the stable model
             is committed back into the manifest (otherwise the next sync, or a human
             reading Git, would take the rejected model for the one in force);
  retrained  a retraining pipeline handed its model back in the annotation
             `rung.dev/retrained-model` (instead of patching spec, which a self-healing
             sync would revert): that model is committed into the manifest.

`write_back()` says which one is due; `edit_manifest()` changes the manifest's text
(keeping its comments, key order and the other documents of the file); `recorded()`
and `write_failed()` turn the outcome into status. A decision is identified by an id,
recorded in status.gitops.commits once written, and never written again; a manifest that
already names the model is recorded without a commit, so an operator stopped between
its push and its status write does not push twice.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML

from rung.api.resource import RETRAINED_MODEL_ANNOTATION, ModelDeployment
from rung.api.spec import ModelSource
from rung.api.status import (
    GIT_COMMIT_LIMIT,
    Condition,
    GitCommit,
    GitOpsStatus,
    ModelDeploymentStatus,
)
from rung.plan import conditions as cond
from rung.plan import reasons
from rung.plan.commands import rejection_id
from rung.plan.events import Event

GIT_WRITE_BACK = "GitWriteBack"
"""The condition: True once the last decision is in Git, False with the error when not."""
DECISION_TRAILER = "Rung-Decision"


@dataclass(frozen=True)
class GitWrite:
    """One decision to write back: the model fields the manifest's spec.model must have."""

    decision: str
    """Its id (status.gitops.commits[].decision)."""
    kind: str
    """rollback or retrained."""
    version: str
    model: Mapping[str, Any]
    """spec.model as it should read in Git (wire form, defaults left out)."""
    replace_model: bool
    """True: spec.model becomes exactly `model` (a rollback restores every field);
    False: only the keys of `model` are set (a retrained model keeps format, runtime ...)."""
    subject: str
    body: str

    def message(self, md: ModelDeployment) -> str:
        """The commit message: what decided it, and trailers naming the decision."""
        return (
            f"{self.subject}\n\n{self.body}\n\n"
            f"{DECISION_TRAILER}: {self.decision}\n"
            f"Rung-ModelDeployment: {md.namespace}/{md.name}\n"
        )


class ManifestError(ValueError):
    """The manifest cannot be edited (no such document, not YAML)."""


def write_back(md: ModelDeployment) -> GitWrite | None:
    """The decision to write to Git now, if one is due and not written yet."""
    if md.spec.gitops is None:
        return None
    done = {c.decision for c in (md.status.gitops.commits if md.status.gitops else [])}
    for due in (_rollback(md), _retrained(md)):
        if due is not None and due.decision not in done:
            return due
    return None


def _rollback(md: ModelDeployment) -> GitWrite | None:
    """After a rollback, while spec.model still names the rejected model."""
    st = md.status
    rejected, stable = st.rejected, st.stable
    if st.phase != "RolledBack" or rejected is None or stable is None or stable.model is None:
        return None
    if md.spec.model.version != rejected.version:
        return None  # the spec has moved on (or back): nothing to restore
    why = next(
        (h.message for h in reversed(st.history) if h.event == reasons.ROLLING_BACK),
        "rolled back",
    )
    return GitWrite(
        decision=f"rollback:{rejection_id(rejected)}",
        kind="rollback",
        version=stable.version,
        model=_minimal(stable.model),
        replace_model=True,
        subject=f"rung: roll {md.name} back to {stable.version} ({rejected.version} rejected)",
        body=(
            f"The canary {rejected.version} of ModelDeployment {md.namespace}/{md.name} was"
            f" rolled back at {rejected.rejected_at}: {why}.\n"
            f"{stable.version} ({stable.storage_uri}) is serving; this restores it in Git so"
            " that Git, the sync and the cluster agree."
        ),
    )


def _retrained(md: ModelDeployment) -> GitWrite | None:
    """A model a retraining run handed back in the annotation, not yet in spec."""
    handed = retrained_model(md.annotations)
    if handed is None:
        return None
    run, model = handed
    if md.spec.model.version == model["version"]:
        return None  # already synced from Git (or patched)
    data = model.get("data")
    return GitWrite(
        decision=f"retrained:{run}:{model['version']}",
        kind="retrained",
        version=str(model["version"]),
        model=model,
        replace_model=False,
        subject=f"rung: {md.name} {model['version']} from retraining run {run}",
        body=(
            f"Retraining run {run} of ModelDeployment {md.namespace}/{md.name} handed back"
            f" {model['version']} ({model['storageUri']})"
            + (
                f", trained on {data.get('uri')}@{data.get('version') or data.get('digest')}"
                if isinstance(data, dict)
                else ""
            )
            + f"; it replaces {md.spec.model.version}. Applied by the sync, it is rolled out"
            " as the ModelDeployment's level says (a canary from level 2)."
        ),
    )


def retrained_model(annotations: Mapping[str, str]) -> tuple[str, dict[str, Any]] | None:
    """(run, spec.model fields) from the hand-back annotation; None when absent or not a
    readable model (`retrained_model_problem` says why)."""
    text = annotations.get(RETRAINED_MODEL_ANNOTATION)
    if text is None or retrained_model_problem(annotations) is not None:
        return None
    value = json.loads(text)
    model = {k: value[k] for k in ("storageUri", "version") if k in value}
    if isinstance(value.get("data"), dict):
        model["data"] = {**value["data"], "trainingRun": str(value["run"])}
    return str(value["run"]), model


def retrained_model_problem(annotations: Mapping[str, str]) -> str | None:
    """Why the hand-back annotation cannot be read, if it is there and cannot."""
    text = annotations.get(RETRAINED_MODEL_ANNOTATION)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as error:
        return f"annotation {RETRAINED_MODEL_ANNOTATION}: not JSON ({error})"
    if not isinstance(value, dict):
        return f"annotation {RETRAINED_MODEL_ANNOTATION}: not a JSON object"
    missing = [k for k in ("run", "storageUri", "version") if not value.get(k)]
    if missing:
        return f"annotation {RETRAINED_MODEL_ANNOTATION}: missing {', '.join(missing)}"
    return None


def _minimal(model: ModelSource) -> dict[str, Any]:
    """spec.model in wire form without the fields left at their defaults."""
    return model.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True, mode="json")


# --- the manifest -------------------------------------------------------------------------


def _yaml() -> YAML:
    yaml = YAML()  # round trip: comments, key order and quoting are kept
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def edit_manifest(text: str, md: ModelDeployment, write: GitWrite) -> str | None:
    """The manifest with this ModelDeployment's spec.model as `write` says; None when it
    already says so (nothing to commit). Other documents and fields are left alone."""
    yaml = _yaml()
    try:
        documents = list(yaml.load_all(text))
    except Exception as error:  # ruamel raises many types for bad YAML
        raise ManifestError(f"not YAML: {error}") from error
    target = next(
        (
            d
            for d in documents
            if isinstance(d, dict)
            and d.get("kind") == "ModelDeployment"
            and (d.get("metadata") or {}).get("name") == md.name
            and (d.get("metadata") or {}).get("namespace") in (None, md.namespace)
        ),
        None,
    )
    if target is None:
        raise ManifestError(f"no ModelDeployment {md.name} in the manifest")
    spec = target.setdefault("spec", {})
    model = spec.setdefault("model", {})
    changed = False
    for key, value in write.model.items():
        if _plain(model.get(key)) != value:
            model[key] = value
            changed = True
    if write.replace_model:
        defaults = ModelSource.model_fields
        for key in [k for k in model if k not in write.model]:
            field = next((f for n, f in defaults.items() if (f.alias or n) == key), None)
            default = None if field is None or field.is_required() else field.default
            if _plain(model[key]) != default:
                del model[key]
                changed = True
    if not changed:
        return None
    out = io.StringIO()
    yaml.dump_all(documents, out)
    return out.getvalue()


def _plain(value: Any) -> Any:
    """A ruamel value as plain dicts, lists and scalars (for comparing)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def manifest_model(text: str, md: ModelDeployment) -> dict[str, Any] | None:
    """This ModelDeployment's spec.model in the manifest (for tests and `rung status`)."""
    for document in _yaml().load_all(text):
        if (
            isinstance(document, dict)
            and document.get("kind") == "ModelDeployment"
            and (document.get("metadata") or {}).get("name") == md.name
        ):
            found = _plain((document.get("spec") or {}).get("model"))
            return found if isinstance(found, dict) else None
    return None


# --- status -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GitWriteOutcome:
    """What writing a decision back did: committed (sha), found in Git already (None),
    or failed (error)."""

    commit: str | None = None
    error: str | None = None
    attempts: int = 1


def recorded(
    md: ModelDeployment, write: GitWrite, outcome: GitWriteOutcome, at: str
) -> tuple[ModelDeploymentStatus, list[Event]]:
    """Status (and the Events) once `write` is in Git, or failed to get there."""
    status = md.status
    gitops = status.gitops or GitOpsStatus()
    spec = md.spec.gitops
    assert spec is not None
    where = f"{spec.repository} {spec.branch}:{spec.path}"
    if outcome.error is not None:
        message = f"{write.kind} of {write.version} not written to {where}: {outcome.error}"
        old = cond.get_condition(status.conditions, GIT_WRITE_BACK)
        events = (
            []
            if old is not None and old.status == "False" and old.message == message[:1000]
            else [Event(reasons.GIT_WRITE_FAILED, message, "Warning")]
        )
        return _with_condition(status, md, "False", reasons.GIT_WRITE_FAILED, message, at), events
    entry = GitCommit(
        decision=write.decision,
        commit=outcome.commit,
        time=at,
        version=write.version,
        message=write.subject,
    )
    gitops = gitops.model_copy(update={"commits": [*gitops.commits, entry][-GIT_COMMIT_LIMIT:]})
    if outcome.commit is not None:
        message = f"committed {outcome.commit[:12]} to {where}: {write.subject}"
        reason = reasons.GIT_COMMITTED
    else:
        message = f"{where} already names {write.version}: nothing to commit"
        reason = reasons.GIT_IN_SYNC
    written = status.model_copy(update={"gitops": gitops})
    return _with_condition(written, md, "True", reason, message, at), [Event(reason, message)]


def write_failed(
    md: ModelDeployment, message: str, at: str
) -> tuple[ModelDeploymentStatus, list[Event]]:
    """Status when no write could even be tried (e.g. the credentials Secret is missing)."""
    old = cond.get_condition(md.status.conditions, GIT_WRITE_BACK)
    events = (
        []
        if old is not None and old.status == "False" and old.message == message[:1000]
        else [Event(reasons.GIT_WRITE_FAILED, message, "Warning")]
    )
    return _with_condition(md.status, md, "False", reasons.GIT_WRITE_FAILED, message, at), events


def _with_condition(
    status: ModelDeploymentStatus,
    md: ModelDeployment,
    value: Any,
    reason: str,
    message: str,
    at: str,
) -> ModelDeploymentStatus:
    conditions: list[Condition] = cond.set_condition(
        status.conditions,
        GIT_WRITE_BACK,
        value,
        reason,
        message[:1000],
        now=at,
        generation=md.generation,
    )
    return status.model_copy(update={"conditions": conditions})
