"""`rung assess` on the command line: read ModelDeployments and discover CRDs, then report.

The parser is `rung.cli`'s; this module is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from rung.kube import Kube
    from rung.plan.capability import ClusterInventory


def run(args: argparse.Namespace) -> int:
    """Read the cluster, then print the maturity report; 1 when the cluster cannot be read."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from rung.assess import assess
    from rung.assess.render import render
    from rung.kube import Kube, load_config

    try:
        context_namespace = load_config()
    except k8s_config.ConfigException as error:
        print(f"error: no Kubernetes configuration: {error}", file=sys.stderr)
        return 1
    scope = None if args.all_namespaces else (args.namespace or context_namespace)
    try:
        found = _read(Kube(k8s.ApiClient()), scope)
    except ApiException as error:
        print(f"error: the API server refused: {error.status} {error.reason}", file=sys.stderr)
        return 1
    except (HTTPError, OSError) as error:
        print(f"error: cannot reach the API server: {error}", file=sys.stderr)
        return 1
    if found is None:
        return 1
    bodies, inventory = found
    report = assess(bodies, inventory, default_prometheus_url=args.prometheus_url, scope=scope)
    sys.stdout.write(render(report, args.output))
    return 0


def _read(kube: Kube, scope: str | None) -> tuple[list[dict[str, Any]], ClusterInventory] | None:
    """The ModelDeployments in `scope` (None: all namespaces) and the cluster's inventory;
    None (and a message) when the ModelDeployment CRD is not installed."""
    from rung.api.kinds import MODEL_DEPLOYMENT
    from rung.plan.capability import ClusterInventory
    from rung.plan.registry import COMPONENT_KINDS

    if not kube.has_crd(MODEL_DEPLOYMENT):
        print(
            f"error: the ModelDeployment CRD ({MODEL_DEPLOYMENT.name}) is not installed in this"
            " cluster; install it with `rung crd | kubectl apply --server-side -f -`",
            file=sys.stderr,
        )
        return None
    inventory = ClusterInventory.of(*(k for k in COMPONENT_KINDS if kube.has_crd(k)))
    return _list_all(kube, scope), inventory


def _list_all(kube: Kube, scope: str | None) -> list[dict[str, Any]]:
    """Every ModelDeployment in `scope`, following the pages of the list."""
    from rung.api.kinds import MODEL_DEPLOYMENT as MD

    bodies: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        if scope is None:
            listed = kube.custom.list_cluster_custom_object(
                MD.group, MD.version, MD.plural, limit=500, _continue=token
            )
        else:
            listed = kube.custom.list_namespaced_custom_object(
                MD.group, MD.version, scope, MD.plural, limit=500, _continue=token
            )
        page = cast(dict[str, Any], listed)
        bodies.extend(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue") or None
        if not token:
            return bodies
