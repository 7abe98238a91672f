"""`rung run | crd | status | assess` — the operator and its command-line tools."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml


def _run(args: argparse.Namespace) -> int:
    import kopf

    from rung.audit import AuditingEvents
    from rung.cache import CachedKube, ObjectCache
    from rung.egress import UrlPolicy
    from rung.election import FencedApiClient, FencedEvents, FencedLauncher
    from rung.handlers import build_registry
    from rung.kube import CountingApiClient, Kube, KubeEvents, load_config
    from rung.reconciler import Reconciler
    from rung.settings import OperatorSettings

    base = OperatorSettings.from_env()
    settings = OperatorSettings(
        namespaces=tuple(args.namespace) or base.namespaces,
        json_logs=args.json_logs or base.json_logs,
        liveness_endpoint=args.liveness or base.liveness_endpoint,
        metrics_port=args.metrics_port or base.metrics_port,
        peering=args.peering or base.peering,
        prometheus_url=args.prometheus_url or base.prometheus_url,
        allowed_hosts=tuple(args.allowed_hosts or ()) or base.allowed_hosts,
        resync_seconds=args.resync_seconds or base.resync_seconds,
        workers=args.workers or base.workers,
        verbose=args.verbose or base.verbose,
        leader_elect=args.leader_elect or base.leader_elect,
        lease_namespace=args.lease_namespace or base.lease_namespace,
        lease_name=args.lease_name or args.peering or base.peering or base.lease_name,
        shards=args.shards or base.shards,
        identity=args.identity or base.identity,
    )
    _configure_logging(settings.json_logs, settings.verbose)
    context_namespace = load_config(args.kubeconfig)
    if settings.peering:
        logging.getLogger("rung").warning(
            "--peering is deprecated: kopf peering is not leader election; it now means"
            " --leader-elect with Leases named %s",
            settings.lease_name,
        )
    elector = _elector(settings, context_namespace) if settings.elects else None
    api = CountingApiClient() if elector is None else FencedApiClient(elector)
    kube = CachedKube(Kube(api), ObjectCache(settings.namespaces))
    events: Any = AuditingEvents(
        KubeEvents(api, elector.config.identity if elector else None),
        egress=UrlPolicy.parse(settings.allowed_hosts),
    )
    launchers = None
    if elector is not None:
        from rung.pipelines import launcher_for

        fence = elector
        events = FencedEvents(events, fence)

        def launchers(name: str) -> Any:
            return FencedLauncher(launcher_for(name, api), fence)

    reconciler = Reconciler(kube, settings, events, launchers=launchers)
    registry = build_registry(reconciler, settings, elector)
    if settings.metrics_port:
        from rung.observability import serve

        serve(settings.metrics_port, routes={"/shards": elector.snapshot} if elector else None)
    logging.getLogger("rung").info(
        "starting rung: namespaces=%s resync=%ss workers=%s prometheus=%s",
        ",".join(settings.namespaces) or "<all>",
        settings.resync_seconds,
        settings.workers,
        settings.prometheus_url,
    )
    kopf.run(
        registry=registry,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        standalone=True,  # replicas are kept apart by Leases (rung.election), not kopf peering
        liveness_endpoint=settings.liveness_endpoint,
    )
    return 0


def _elector(settings: Any, context_namespace: str) -> Any:
    """The Lease manager of `--leader-elect` / `--shards`, on a client of its own (no
    retries: a renewal that fails is tried again at the next retry period)."""
    import os

    from kubernetes import client as k8s

    from rung.election import ElectionConfig, Elector, default_identity
    from rung.kube import CountingApiClient

    config = k8s.Configuration.get_default_copy()
    config.retries = False
    election = ElectionConfig(
        identity=settings.identity or os.environ.get("POD_NAME") or default_identity(),
        namespace=settings.lease_namespace or os.environ.get("POD_NAMESPACE") or context_namespace,
        name=settings.lease_name,
        shards=settings.shards,
    )
    return Elector(CountingApiClient(config), election)


def _configure_logging(json_logs: bool, verbose: bool) -> None:
    level = logging.INFO
    handler = logging.StreamHandler()
    if json_logs:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    from rung.logs import RepeatFilter, RetriedIsWarning

    handler.addFilter(RetriedIsWarning())  # before RepeatFilter: it keys on the level
    handler.addFilter(RepeatFilter())  # a repeated warning or error once, with backoff
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # --verbose is about Rung's own decisions; kopf and HTTP stay at their usual level.
    logging.getLogger("rung").setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _crd(args: argparse.Namespace) -> int:
    from rung.api.crd import custom_resource_definition

    text = yaml.safe_dump(custom_resource_definition(), sort_keys=False, width=100)
    header = "# Generated by `rung crd` from operator/rung/api; do not edit.\n"
    if args.output_dir:
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "rung.dev_modeldeployments.yaml").write_text(header + text)
    else:
        sys.stdout.write(header + text)
    return 0


def _assess(args: argparse.Namespace) -> int:
    from rung.assess.cli import run

    return run(args)


def _add_assess(sub: Any) -> None:
    """`rung assess`; the command's code is imported only when it runs."""
    from rung.assess.cli import add_arguments

    assess = sub.add_parser("assess", help="report where each ModelDeployment stands on the ladder")
    add_arguments(assess)
    assess.set_defaults(func=_assess)


def build_parser() -> argparse.ArgumentParser:
    """The `rung` command line."""
    from importlib.metadata import version

    parser = argparse.ArgumentParser(prog="rung", description=__doc__)
    parser.add_argument("--version", action="version", version=f"rung {version('rung')}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="namespace to watch (repeatable; default: all) [RUNG_NAMESPACES]",
    )
    run.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)"
    )
    run.add_argument("--json-logs", action="store_true", help="JSON log lines [RUNG_JSON_LOGS]")
    run.add_argument(
        "--liveness", help="liveness endpoint URL, e.g. http://0.0.0.0:8080/healthz [RUNG_LIVENESS]"
    )
    run.add_argument("--metrics-port", type=int, help="port of /metrics [RUNG_METRICS_PORT]")
    run.add_argument("--peering", help=argparse.SUPPRESS)  # deprecated: --leader-elect
    run.add_argument(
        "--leader-elect",
        action="store_true",
        help="high availability: only the holder of a Lease reconciles; run two or more"
        " replicas [RUNG_LEADER_ELECT]",
    )
    run.add_argument(
        "--shards",
        type=int,
        help="split the ModelDeployments into N shards, each owned by one replica through"
        " its own Lease (implies --leader-elect), default 1 [RUNG_SHARDS]",
    )
    run.add_argument(
        "--lease-namespace",
        help="namespace of the Leases (default: $POD_NAMESPACE, else the kubeconfig's)"
        " [RUNG_LEASE_NAMESPACE]",
    )
    run.add_argument(
        "--lease-name", help="prefix of the Lease names, default rung [RUNG_LEASE_NAME]"
    )
    run.add_argument(
        "--identity",
        help="this replica's name in the Leases (default: $POD_NAME, else hostname-pid)"
        " [RUNG_IDENTITY]",
    )
    run.add_argument("--prometheus-url", help="default Prometheus [RUNG_PROMETHEUS_URL]")
    run.add_argument(
        "--allowed-hosts",
        type=lambda text: [h.strip() for h in text.split(",") if h.strip()],
        help="hosts (name, *.domain) and networks (CIDR) that URLs in ModelDeployments may"
        " name for the operator to call; default: any [RUNG_ALLOWED_HOSTS]",
    )
    run.add_argument(
        "--resync-seconds",
        type=float,
        help="safety resync: queue every object this often, default 300 "
        "(objects are also woken when their own next analysis is due) [RUNG_RESYNC_SECONDS]",
    )
    run.add_argument("--workers", type=int, help="reconciles at once, default 8 [RUNG_WORKERS]")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logs [RUNG_VERBOSE]")
    run.set_defaults(func=_run)

    from rung.cli_get import add_parser as add_get
    from rung.cli_rollout import add_parsers, target_options

    add_get(sub, target_options())
    add_parsers(sub)

    crd = sub.add_parser("crd", help="print (or write) the ModelDeployment CRD")
    crd.add_argument("--output-dir", help="write crds/rung.dev_modeldeployments.yaml here")
    crd.set_defaults(func=_crd)

    _add_assess(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `rung` console script (and of `kubectl rung`, the plugin)."""
    parser = build_parser()
    if Path(sys.argv[0]).name == "kubectl-rung":
        parser.prog = "kubectl rung"
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # one line for what a user can fix; tracebacks with -v
        message = user_error(error)
        if message is None or getattr(args, "verbose", False):
            raise
        print(f"error: {message}", file=sys.stderr)
        return 1
    return code


def user_error(error: Exception) -> str | None:
    """A one-line message for errors a user fixes outside Rung (no configuration, an
    unreachable or refusing API server); None for anything else (a bug: traceback)."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config import ConfigException
    from urllib3.exceptions import HTTPError

    if isinstance(error, ConfigException):
        return (
            f"no Kubernetes configuration ({error}): set KUBECONFIG or pass --kubeconfig"
            " (the local cluster's is .cluster/kubeconfig)"
        )
    if isinstance(error, ApiException):
        detail = error.reason
        with contextlib.suppress(ValueError, AttributeError):
            detail = json.loads(error.body or "{}").get("message") or detail
        return f"the API server answered {error.status}: {detail}"
    if isinstance(error, HTTPError):
        return f"cannot reach the API server: {error}"
    return None


if __name__ == "__main__":
    sys.exit(main())
