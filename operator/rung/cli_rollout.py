"""`rung approve`, `rung status` and `rung retrain`: day-2 commands on one ModelDeployment.

They talk to the API server as the user running them; the operator never writes
the annotations they set (it only reads them).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rung.api.resource import APPROVE_ANNOTATION, RETRAIN_ANNOTATION, ModelDeployment
from rung.api.status import RetrainingStatus


def add_parsers(sub: Any) -> None:
    """Register the commands on the `rung` parser's subparsers."""
    approve = sub.add_parser("approve", help="approve the canary waiting at the manual gate")
    approve.add_argument("name", help="ModelDeployment name")
    approve.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    approve.add_argument("--version", help="canary version to approve (default: the current)")
    approve.set_defaults(func=_approve)

    status = sub.add_parser("status", help="show a ModelDeployment's rollout")
    status.add_argument("name", help="ModelDeployment name")
    status.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    status.add_argument("-o", "--output", choices=["text", "json"], default="text")
    status.set_defaults(func=_status)

    retrain = sub.add_parser("retrain", help="request a retraining run (the manual trigger)")
    retrain.add_argument("name", help="ModelDeployment name")
    retrain.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    retrain.set_defaults(func=_retrain)


def _api() -> tuple[Any, str]:
    from kubernetes import client

    from rung.kube import load_config

    namespace = load_config()
    return client.CustomObjectsApi(), namespace


def _get(api: Any, namespace: str, name: str) -> dict[str, Any] | None:
    from kubernetes.client.exceptions import ApiException

    from rung.api.crd import GROUP, PLURAL, VERSION

    try:
        return dict(api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def _load(args: argparse.Namespace) -> tuple[Any, str, dict[str, Any]] | None:
    """The API, namespace and object named on the command line; None (and a message)
    when the object does not exist."""
    api, default_ns = _api()
    namespace = args.namespace or default_ns
    body = _get(api, namespace, args.name)
    if body is None:
        print(f"error: modeldeployment {namespace}/{args.name} not found", file=sys.stderr)
        return None
    return api, namespace, body


def _approve(args: argparse.Namespace) -> int:
    from rung.api.crd import GROUP, PLURAL, VERSION

    found = _load(args)
    if found is None:
        return 1
    api, namespace, body = found
    md = ModelDeployment.from_body(body)
    canary = md.status.canary
    version = args.version or (canary.version if canary else None)
    if version is None:
        print(f"error: {namespace}/{args.name} has no canary to approve", file=sys.stderr)
        return 1
    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        args.name,
        {"metadata": {"annotations": {APPROVE_ANNOTATION: version}}},
        _content_type="application/merge-patch+json",
    )
    waiting = md.status.phase == "Paused"
    print(
        f"modeldeployment {namespace}/{args.name}: approved {version}"
        + ("" if waiting else " (it will be promoted when it reaches the gate)")
    )
    return 0


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
    steps = spec.rollout.steps if spec.rollout else [10, 25, 50, 100]
    if st.canary:
        marks = " ".join(f"[{w}%]" if i == st.canary.step else f"{w}%" for i, w in enumerate(steps))
        lines += [
            f"  canary:   {st.canary.version}  weight {st.canary.weight}%"
            f"  step {st.canary.step + 1}/{len(steps)}  started {st.canary.started_at}",
            f"  steps:    {marks}",
        ]
    if st.rejected:
        lines.append(f"  rejected: {st.rejected.version} (rolled back)")
    if st.analysis and (st.analysis.checks or st.analysis.failures):
        lines.append(
            f"  analysis: last run {st.analysis.last_run}, failures {st.analysis.failures}"
        )
        for c in st.analysis.checks:
            verdict = {True: "pass", False: "FAIL", None: "no data"}[c.passed]
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
    found = _load(args)
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

    from rung.api.crd import GROUP, PLURAL, VERSION
    from rung.ladder import Capability, capabilities

    found = _load(args)
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
    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        args.name,
        {"metadata": {"annotations": {RETRAIN_ANNOTATION: token}}},
        _content_type="application/merge-patch+json",
    )
    runs = md.status.retraining.runs if md.status.retraining else []
    running = [r.name for r in runs if r.outcome == "Running"]
    note = f" (run {running[0]} is still running: this request will be refused)" if running else ""
    print(f"modeldeployment {namespace}/{args.name}: retraining requested (token {token}){note}")
    return 0
