"""Day-2 commands on one ModelDeployment: `rung status | approve | retrain | promote |
abort | retry | undo | pause | resume` (`rung get` is in rung.cli_get).

They talk to the API server as the user running them and write only annotations
(rung.plan.commands says what each means); the operator reads them, is woken by the
change at once, and never writes them. Each command names the rollout it is meant
for, so running it twice acts once.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from rung.api.resource import (
    ABORT_ANNOTATION,
    APPROVE_ANNOTATION,
    APPROVED_BY_ANNOTATION,
    PAUSE_ANNOTATION,
    PROMOTE_ANNOTATION,
    RETRAIN_ANNOTATION,
    RETRY_ANNOTATION,
    UNDO_ANNOTATION,
    ModelDeployment,
)
from rung.api.spec import DEFAULT_SHADOW_RUNS, ModelDeploymentSpec
from rung.api.status import CanaryStatus, RetrainingStatus
from rung.plan.commands import canary_id, command_value, rejection_id
from rung.plan.rollout import RolloutSettings

VERDICTS = {True: "pass", False: "FAIL", None: "no data"}
"""A check's result as `rung status` and `rung get` print it."""

Outcome = tuple[dict[str, str | None], str] | str
"""What a command writes and says, or why it refuses."""


def target_options() -> argparse.ArgumentParser:
    """NAME, -n and the kubectl connection flags every day-2 command takes."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("name", help="ModelDeployment name")
    parent.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    parent.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube)")
    parent.add_argument("--context", help="kubeconfig context (default: the current one)")
    return parent


def add_parsers(sub: Any) -> None:
    """Register the commands on the `rung` parser's subparsers."""
    target = target_options()
    approve = sub.add_parser(
        "approve", parents=[target], help="approve the canary waiting at the manual gate"
    )
    approve.add_argument("--version", help="canary version to approve (default: the current)")
    approve.set_defaults(func=_approve)

    status = sub.add_parser("status", parents=[target], help="show a ModelDeployment's rollout")
    status.add_argument("-o", "--output", choices=["text", "json"], default="text")
    status.set_defaults(func=_status)

    retrain = sub.add_parser(
        "retrain", parents=[target], help="request a retraining run (the manual trigger)"
    )
    retrain.set_defaults(func=_retrain)

    promote = sub.add_parser(
        "promote",
        parents=[target],
        help="skip the canary's current step and its analysis (--full: every step, the gate)",
    )
    promote.add_argument(
        "--full", action="store_true", help="promote now: skip every remaining step and the gate"
    )
    promote.set_defaults(func=_promote)
    sub.add_parser(
        "abort", parents=[target], help="take all traffic off the canary now and reject it"
    ).set_defaults(func=_abort)
    sub.add_parser(
        "retry", parents=[target], help="roll the rolled-back version out again"
    ).set_defaults(func=_retry)
    undo = sub.add_parser(
        "undo", parents=[target], help="roll back to an earlier stable version (status.revisions)"
    )
    undo.add_argument("--to", metavar="VERSION", help="version to go back to (default: the last)")
    undo.set_defaults(func=_undo)
    sub.add_parser(
        "pause", parents=[target], help="hold the canary where it is: no analysis, no step"
    ).set_defaults(func=_pause)
    sub.add_parser("resume", parents=[target], help="continue a paused canary").set_defaults(
        func=_resume
    )


def connect(args: argparse.Namespace | None = None) -> tuple[Any, str]:
    from kubernetes import client

    from rung.kube import load_config

    namespace = load_config(getattr(args, "kubeconfig", None), getattr(args, "context", None))
    return client.CustomObjectsApi(), namespace


def get_object(api: Any, namespace: str, name: str) -> dict[str, Any] | None:
    from kubernetes.client.exceptions import ApiException

    from rung.api.crd import GROUP, PLURAL, VERSION

    try:
        return dict(api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def load_named(args: argparse.Namespace) -> tuple[Any, str, dict[str, Any]] | None:
    """The API, namespace and object named on the command line; None (and a message)
    when the object does not exist."""
    api, default_ns = connect(args)
    namespace = args.namespace or default_ns
    body = get_object(api, namespace, args.name)
    if body is None:
        print(f"error: modeldeployment {namespace}/{args.name} not found", file=sys.stderr)
        return None
    return api, namespace, body


def _approve(args: argparse.Namespace) -> int:
    found = load_named(args)
    if found is None:
        return 1
    api, namespace, body = found
    md = ModelDeployment.from_body(body)
    canary = md.status.canary
    version = args.version or (canary.version if canary else None)
    if version is None:
        print(f"error: {namespace}/{args.name} has no canary to approve", file=sys.stderr)
        return 1
    _annotate(
        api, namespace, args.name, {APPROVE_ANNOTATION: version, APPROVED_BY_ANNOTATION: whoami()}
    )
    waiting = md.status.phase == "Paused"
    print(
        f"modeldeployment {namespace}/{args.name}: approved {version}"
        + ("" if waiting else " (it will be promoted when it reaches the gate)")
    )
    return 0


def shadow_summary(canary: CanaryStatus, spec: ModelDeploymentSpec) -> str | None:
    """The canary's shadow stage in one line (None: it has none)."""
    shadow = canary.shadow
    if shadow is None:
        return None
    if shadow.passed_at is not None:
        return f"passed at {shadow.passed_at} ({shadow.runs_passed} runs on mirrored requests)"
    if shadow.started_at is None:
        return f"waiting for the canary to be ready before mirroring {shadow.mirror_percent}%"
    wanted = spec.rollout.shadow if spec.rollout else None
    runs = wanted.analysis_runs if wanted and wanted.analysis_runs else DEFAULT_SHADOW_RUNS
    goal = (
        f"until {wanted.duration} have passed"
        if wanted is not None and wanted.duration
        else f"of {runs}"
    )
    return (
        f"mirroring {shadow.mirror_percent}% of requests since {shadow.started_at}"
        f" (responses discarded, no user traffic): {shadow.runs_passed} analysis runs"
        f" passed {goal}"
    )


def render_status(body: dict[str, Any]) -> str:
    """A human summary of one ModelDeployment's rollout (pure)."""
    md = ModelDeployment.from_body(body)
    st, spec = md.status, md.spec
    lines = [
        f"ModelDeployment {md.namespace}/{md.name}",
        f"  level:    {spec.maturity.level} ({', '.join(st.capabilities) or 'n/a'})",
        f"  phase:    {st.phase or 'Pending'}",
        f"  stable:   {st.stable.version if st.stable else '-'}"
        + (f"  ({st.stable.storage_uri})" if st.stable else ""),
    ]
    gov = spec.governance
    if gov is not None and (gov.owner or gov.contact):
        lines.append(
            f"  owner:    {gov.owner or '-'} ({gov.contact or 'no contact'}),"
            f" risk {gov.risk_class or 'unclassified'}"
        )
    approved = md.annotations.get(APPROVE_ANNOTATION)
    if approved:
        lines.append(f"  approved: {approved}")
    steps = spec.rollout.steps if spec.rollout else list(RolloutSettings().steps)
    if st.canary:
        shadowing = st.phase == "Shadowing"
        marks = " ".join(
            f"[{w}%]" if i == st.canary.step and not shadowing else f"{w}%"
            for i, w in enumerate(steps)
        )
        where = "shadow stage" if shadowing else f"step {st.canary.step + 1}/{len(steps)}"
        lines += [
            f"  canary:   {st.canary.version}  weight {st.canary.weight}%"
            f"  {where}  started {st.canary.started_at}",
            f"  steps:    {'[shadow] ' if shadowing else ''}{marks}",
        ]
        shadow = shadow_summary(st.canary, spec)
        if shadow:
            lines.append(f"  shadow:   {shadow}")
    if st.rejected:
        lines.append(f"  rejected: {st.rejected.version} (rolled back)")
    if st.gitops and st.gitops.commits:
        last = st.gitops.commits[-1]
        written = last.commit[:12] if last.commit else "already in Git"
        lines.append(f"  gitops:   {written}  {last.message or last.decision}  ({last.time})")
    if st.analysis and (st.analysis.checks or st.analysis.failures):
        lines.append(
            f"  analysis: last run {st.analysis.last_run}, failures {st.analysis.failures}"
        )
        for c in st.analysis.checks:
            verdict = VERDICTS[c.passed]
            value = "-" if c.value is None else f"{c.value:.4g}"
            lines.append(f"    {c.metric:<28} {value:>10}  {verdict:<8} {c.message}")
    if st.retraining and (st.retraining.runs or st.retraining.triggers):
        lines += retraining_lines(st.retraining)
    if st.slo:
        lines.append(
            f"  slo:      error rate {st.slo.error_rate}, p95 {st.slo.latency_p95_ms} ms,"
            f" {st.slo.request_rate} req/s (at {st.slo.measured_at})"
        )
    if st.conditions:
        lines.append("  conditions:")
        for cond in st.conditions:
            lines.append(f"    {cond.type:<16} {cond.status:<8} {cond.reason}: {cond.message}")
    if st.history:
        lines.append("  history:")
        for h in st.history[-10:]:
            lines.append(f"    {h.time}  {h.event:<18} {h.message}")
    return "\n".join(lines)


def _status(args: argparse.Namespace) -> int:
    found = load_named(args)
    if found is None:
        return 1
    _, _, body = found
    if args.output == "json":
        print(json.dumps(body.get("status") or {}, indent=2))
    else:
        print(render_status(body))
    return 0


def retraining_lines(rt: RetrainingStatus) -> list[str]:
    """The retraining part of `rung status` (pure)."""
    lines = [
        f"  retraining: {rt.runs_started} runs, last {rt.run or '-'}"
        + (f", next allowed at {rt.next_allowed_at}" if rt.next_allowed_at else "")
    ]
    for trigger in rt.triggers:
        blocked = f" (blocked: {trigger.blocked_by})" if trigger.blocked_by else ""
        error = f" (error: {trigger.error})" if trigger.error else ""
        lines.append(f"    {trigger.type:<9} {trigger.message}{blocked}{error}")
    for run in rt.runs[-5:]:
        lines.append(f"    {run.name:<28} {run.outcome:<10} {run.reason}")
        if run.message and run.outcome == "Failed":
            lines.append(f"      {run.message}")
    return lines


def _retrain(args: argparse.Namespace) -> int:
    """Set `rung.dev/retrain` to a new token: the operator launches one run for it."""
    from datetime import UTC, datetime

    from rung.ladder import Capability, capabilities

    found = load_named(args)
    if found is None:
        return 1
    api, namespace, body = found
    md = ModelDeployment.from_body(body)
    maturity = md.spec.maturity
    if Capability.RETRAINING not in capabilities(maturity.level, maturity.overrides):
        print(
            f"error: retraining is off for {namespace}/{args.name} (level {maturity.level}):"
            " raise spec.maturity.level to 3 or set spec.maturity.overrides.retraining",
            file=sys.stderr,
        )
        return 1
    token = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    _annotate(api, namespace, args.name, {RETRAIN_ANNOTATION: token})
    runs = md.status.retraining.runs if md.status.retraining else []
    running = [r.name for r in runs if r.outcome == "Running"]
    note = f" (run {running[0]} is still running: this request will be refused)" if running else ""
    print(f"modeldeployment {namespace}/{args.name}: retraining requested (token {token}){note}")
    return 0


def _annotate(api: Any, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
    """Set (None: remove) annotations with a merge patch: the only write of every command."""
    from rung.api.crd import GROUP, PLURAL, VERSION

    if not annotations:
        return
    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {"metadata": {"annotations": annotations}},
        _content_type="application/merge-patch+json",
    )


def whoami() -> str:
    """The user the API server sees (SelfSubjectReview), for the history; the kubeconfig
    user, then the local login, when the cluster does not say."""
    import getpass

    from kubernetes import client

    try:
        review = client.AuthenticationV1Api().create_self_subject_review(
            body=client.V1SelfSubjectReview()
        )
        info = review.status.user_info if review.status else None
        name = info.username if info else None
        if name:
            return str(name)
    except Exception:  # older clusters, no permission to review: fall back
        pass
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _command(
    args: argparse.Namespace, verb: str, build: Callable[[ModelDeployment], Outcome]
) -> int:
    """Load the object, let `build` check its state and return (annotations, message) or
    an error text; write the annotations; print one line."""
    found = load_named(args)
    if found is None:
        return 1
    api, namespace, body = found
    md = ModelDeployment.from_body(body)
    outcome = build(md)
    if isinstance(outcome, str):
        print(f"error: {namespace}/{args.name}: {outcome}", file=sys.stderr)
        return 1
    annotations, message = outcome
    _annotate(api, namespace, args.name, annotations)
    print(f"modeldeployment {namespace}/{args.name}: {verb}: {message}")
    return 0


def _promote(args: argparse.Namespace) -> int:
    def build(md: ModelDeployment) -> Outcome:
        canary, phase = md.status.canary, md.status.phase
        if canary is None or phase in ("Promoting", "RollingBack"):
            return f"no canary to promote (phase {phase or 'Pending'})"
        at_gate = phase == "Paused" and canary.paused_at is None
        value = command_value(
            canary=canary_id(canary),
            step=None if args.full else canary.step,
            gate=at_gate,
            by=whoami(),
        )
        if args.full:
            what = f"{canary.version} goes to 100% now, skipping the remaining steps"
        elif at_gate:
            what = f"{canary.version} is approved at the gate"
        else:
            what = f"{canary.version} skips the analysis of step {canary.step + 1}"
        if canary.weight == 0:
            what += " once it is ready"
        return {PROMOTE_ANNOTATION: value}, what

    return _command(args, "promote", build)


def _abort(args: argparse.Namespace) -> int:
    def build(md: ModelDeployment) -> Outcome:
        canary = md.status.canary
        if canary is None or md.status.phase in ("Promoting", "RollingBack"):
            return f"no canary to abort (phase {md.status.phase or 'Pending'})"
        value = command_value(canary=canary_id(canary), by=whoami())
        stable = md.status.stable.version if md.status.stable else "stable"
        return {ABORT_ANNOTATION: value}, f"{canary.version} rolls back to {stable} now"

    return _command(args, "abort", build)


def _retry(args: argparse.Namespace) -> int:
    from rung.plan.inference_service import model_hash

    def build(md: ModelDeployment) -> Outcome:
        rejected = md.status.rejected
        if rejected is None or rejected.hash != model_hash(md.spec.model):
            return "spec.model names no rolled-back version: nothing to retry"
        value = command_value(rejected=rejection_id(rejected), by=whoami())
        return {RETRY_ANNOTATION: value}, f"{rejected.version} rolls out again"

    return _command(args, "retry", build)


def _undo(args: argparse.Namespace) -> int:
    from rung.plan.inference_service import model_hash

    def build(md: ModelDeployment) -> Outcome:
        stable, revisions = md.status.stable, md.status.revisions
        candidates = [r for r in revisions if args.to in (None, r.version)]
        if stable is not None and args.to == stable.version:
            return f"{stable.version} is the stable version already"
        if not candidates:
            known = ", ".join(r.version for r in revisions) or "none yet"
            wanted = f"version {args.to}" if args.to else "an earlier version"
            return f"{wanted} is not in status.revisions (known: {known})"
        target = candidates[-1]
        value = command_value(
            to=target.hash, version=target.version, spec=model_hash(md.spec.model), by=whoami()
        )
        return {UNDO_ANNOTATION: value}, (
            f"back to {target.version} while spec.model names {md.spec.model.version}"
            " (a new spec.model rolls forward)"
        )

    return _command(args, "undo", build)


def _pause(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    def build(md: ModelDeployment) -> Outcome:
        canary = md.status.canary
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        value = command_value(by=whoami(), at=at)
        if PAUSE_ANNOTATION in md.annotations:
            return {}, "already paused (`rung resume` continues)"
        if canary is None:
            return {PAUSE_ANNOTATION: value}, "no canary now: the next one holds at 0%"
        return {PAUSE_ANNOTATION: value}, f"{canary.version} holds at {canary.weight}%"

    return _command(args, "pause", build)


def _resume(args: argparse.Namespace) -> int:
    def build(md: ModelDeployment) -> Outcome:
        if PAUSE_ANNOTATION not in md.annotations:
            return {}, "not paused"
        canary = md.status.canary
        what = f"{canary.version} continues from {canary.weight}%" if canary else "resumed"
        return {PAUSE_ANNOTATION: None}, what

    return _command(args, "resume", build)
