"""`rung get NAME [-w]`: a ModelDeployment's rollout as a tree, redrawn on every change.

`rollout_tree()` is pure (the object and its InferenceServices in, a rich Tree out), so
tests render it without a cluster. The watch redraws in place on a terminal and prints
each new picture, separated by a rule, when the output is a pipe or a file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from rung.api.resource import APPROVE_ANNOTATION, OWNER_LABEL, ModelDeployment
from rung.api.status import CheckResult, ModelRef
from rung.cli_rollout import VERDICTS
from rung.plan.commands import read_commands
from rung.plan.inference_service import CANARY_HASH_ANNOTATION, MODEL_HASH_ANNOTATION
from rung.plan.rollout import RolloutSettings

ICONS = {True: "✔", False: "✖", None: "…"}
HEALTHY = {"Degraded": "False", "Undone": "False"}
"""A condition's healthy status where it is not True; conditions in another status are
shown (Progressing is the phase, shown at the top)."""


def add_parser(sub: Any, target: argparse.ArgumentParser) -> None:
    """Register `rung get` on the `rung` parser's subparsers."""
    get = sub.add_parser(
        "get", parents=[target], help="show a rollout as a tree (-w: redraw on every change)"
    )
    get.add_argument("-w", "--watch", action="store_true", help="redraw on every change")
    get.add_argument(
        "--timeout", type=float, help="-w: stop after this many seconds (default: never)"
    )
    get.set_defaults(func=_get)


def rollout_tree(body: Mapping[str, Any], services: Sequence[Mapping[str, Any]]) -> Tree:
    """The rollout of one ModelDeployment and its InferenceServices, as a tree (pure)."""
    md = ModelDeployment.from_body(body)
    st, spec = md.status, md.spec
    root = Tree(
        Text.assemble(
            (f"ModelDeployment {md.namespace}/{md.name}", "bold"),
            f"  level {spec.maturity.level} ({', '.join(st.capabilities) or 'n/a'})  phase ",
            (st.phase or "Pending", "bold"),
        )
    )
    for label, ref in (("stable", st.stable), ("canary", st.canary)):
        if ref is not None:
            _model_branch(root, label, ref, md, services)
    if st.canary is not None:
        steps = tuple(spec.rollout.steps) if spec.rollout else RolloutSettings().steps
        current = st.canary.step if st.canary.weight else -1  # 0 %: not ready yet
        marks = " ".join(
            f"[{w}%]" if i == current else (f"{w}% ✔" if i < st.canary.step else f"{w}%")
            for i, w in enumerate(steps)
        )
        root.add(
            Text(
                f"steps     {marks}   step {st.canary.step + 1}/{len(steps)}"
                f" since {st.canary.step_started_at or '-'}"
            )
        )
    if st.canary is not None and st.canary.shadow is not None:
        from rung.cli_rollout import shadow_summary

        root.add(Text(f"shadow    {shadow_summary(st.canary, spec)}"))
    if st.rejected is not None:
        root.add(
            Text(f"rejected  {st.rejected.version} (rolled back {st.rejected.rejected_at or ''})")
        )
    _analysis_branch(root, md)
    _gate_branch(root, md)
    if st.retraining is not None and st.retraining.runs:
        runs = root.add(Text(f"retraining  {st.retraining.runs_started} runs"))
        for run in st.retraining.runs[-3:]:
            runs.add(Text(f"{run.name}  {run.outcome}  {run.reason}  {run.version or ''}"))
    problems = [
        c
        for c in st.conditions
        if c.type != "Progressing" and c.status != HEALTHY.get(c.type, "True")
    ]
    if problems:
        conditions = root.add(Text("conditions"))
        for c in problems:
            conditions.add(Text(f"{c.type}={c.status}  {c.reason}: {c.message}"))
    if st.history:
        history = root.add(Text("history"))
        for entry in st.history[-6:]:
            history.add(Text(f"{entry.time}  {entry.event:<16} {entry.message}"))
    return root


def _model_branch(
    root: Tree,
    label: str,
    ref: ModelRef,
    md: ModelDeployment,
    services: Sequence[Mapping[str, Any]],
) -> None:
    canary = md.status.canary
    if label == "stable":
        weight = 100 - (canary.weight if canary else 0)
    else:
        weight = canary.weight if canary else 0
    paused = (
        f"  paused by {canary.paused_by}"
        if label == "canary" and canary and canary.paused_at
        else ""
    )
    branch = root.add(
        Text.assemble(
            f"{label:<9} ", (ref.version, "bold"), f"  weight {weight}%{paused}  {ref.storage_uri}"
        )
    )
    for isvc in services:
        annotations = (isvc.get("metadata") or {}).get("annotations") or {}
        if ref.hash in (
            annotations.get(MODEL_HASH_ANNOTATION),
            annotations.get(CANARY_HASH_ANNOTATION),
        ):
            branch.add(Text(_service_line(isvc)))


def _service_line(isvc: Mapping[str, Any]) -> str:
    """One InferenceService (or LLMInferenceService: its workloads, `WorkloadsReady`):
    ready only when ready at the generation applied."""
    meta, status = isvc.get("metadata") or {}, isvc.get("status") or {}
    kind = str(isvc.get("kind") or "InferenceService")
    wanted = "WorkloadsReady" if kind == "LLMInferenceService" else "Ready"
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == wanted), None)
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    current = generation is None or observed == generation
    is_ready = bool(ready and ready.get("status") == "True" and current)
    reason = ready.get("reason") if ready else None
    why = f" ({reason})" if reason and not is_ready else ""
    stale = "" if current else f" (observed generation {observed} < {generation})"
    state = "Ready" if is_ready else "NotReady"
    return f"{kind} {meta.get('name')}  {ICONS[is_ready]} {state}{why}{stale}"


def _analysis_branch(root: Tree, md: ModelDeployment) -> None:
    analysis = md.status.analysis
    if analysis is None or not (analysis.checks or analysis.failures or analysis.last_error):
        return
    rollout = md.spec.rollout
    limit = rollout.analysis.failure_limit if rollout and rollout.analysis else 2
    branch = root.add(
        Text(
            f"analysis  last run {analysis.last_run or '-'}, failures {analysis.failures}/{limit},"
            f" errors in a row {analysis.consecutive_errors}"
        )
    )
    for check in analysis.checks:
        branch.add(Text(_check_line(check)))
    if analysis.last_error:
        branch.add(Text(f"last error: {analysis.last_error}"))


def _check_line(check: CheckResult) -> str:
    value = "-" if check.value is None else f"{check.value:.4g}"
    stable = "" if check.stable_value is None else f" (stable {check.stable_value:.4g})"
    verdict = VERDICTS[check.passed]
    return (
        f"{ICONS[check.passed]} {check.metric:<24} {value:>9}{stable}  {verdict}  {check.message}"
    )


def _gate_branch(root: Tree, md: ModelDeployment) -> None:
    st = md.status
    commands = read_commands(md.annotations)
    approved = md.annotations.get(APPROVE_ANNOTATION)
    gate = (
        "manual"
        if "approval-gate" in st.capabilities
        or (md.spec.rollout is not None and md.spec.rollout.gate == "manual")
        else None
    )
    if gate is None and approved is None and commands.pause is None:
        return
    parts = []
    if gate:
        waiting = st.phase == "Paused" and st.canary is not None and st.canary.paused_at is None
        parts.append("manual: waiting for `rung approve`" if waiting else "manual")
    if approved:
        parts.append(f"approved {approved} by {commands.approved_by or 'unknown'}")
    if commands.pause is not None:
        parts.append(f"paused by {commands.pause.by} (`rung resume`)")
    root.add(Text("gate      " + "; ".join(parts)))


def render(body: Mapping[str, Any], services: Sequence[Mapping[str, Any]], color: bool) -> str:
    """The tree as text: plain (no colour, no cursor moves) unless `color`."""
    import io

    console = Console(
        width=110, record=True, file=io.StringIO(), color_system="standard" if color else None
    )
    console.print(rollout_tree(body, services))
    return console.export_text(styles=color)


def _get(args: argparse.Namespace) -> int:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from rung.cli_rollout import load_named

    found = load_named(args)
    if found is None:
        return 1
    api, namespace, body = found

    def services() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for version, plural in (
            ("v1beta1", "inferenceservices"),
            ("v1alpha2", "llminferenceservices"),
        ):
            try:
                found: Any = client.CustomObjectsApi().list_namespaced_custom_object(
                    "serving.kserve.io",
                    version,
                    namespace,
                    plural,
                    label_selector=f"{OWNER_LABEL}={args.name}",
                )
            except ApiException as error:
                if error.status == 404:  # not served by this cluster
                    continue
                raise
            items += list(found.get("items") or [])
        return items

    tty = sys.stdout.isatty()
    if not args.watch:
        print(render(body, services(), color=tty), end="")
        return 0
    last = ""
    for seen in _watch(api, namespace, args.name, body, args.timeout):
        text = render(seen, services(), color=tty)
        if text == last:
            continue
        last = text
        if tty:
            sys.stdout.write("\x1b[H\x1b[2J" + text)
        else:
            sys.stdout.write(("-" * 40) + "\n" + text)
        sys.stdout.flush()
    return 0


def _watch(
    api: Any, namespace: str, name: str, first: dict[str, Any], timeout: float | None
) -> Iterator[dict[str, Any]]:
    """The object now, then after every change; watches again where a watch ended."""
    import time

    from kubernetes import watch
    from kubernetes.client.exceptions import ApiException

    from rung.api.crd import GROUP, PLURAL, VERSION

    yield first
    version = (first.get("metadata") or {}).get("resourceVersion")
    deadline = None if timeout is None else time.monotonic() + timeout
    while deadline is None or time.monotonic() < deadline:
        left = 300 if deadline is None else max(1, int(deadline - time.monotonic()))
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            field_selector=f"metadata.name={name}",
            resource_version=version,
            timeout_seconds=min(left, 300),
        )
        try:
            for event in stream:
                obj = event["object"]
                version = (obj.get("metadata") or {}).get("resourceVersion", version)
                if event["type"] == "DELETED":
                    return
                yield obj
        except ApiException as error:
            if error.status != 410:  # 410 Gone: the version is too old; read it again
                raise
            again = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            version = again["metadata"]["resourceVersion"]
            yield again
