"""`rung assess` on the command line: read ModelDeployments and discover CRDs, then report.

`rung.cli` adds the command with `add_arguments()`; the rest runs only when it does.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from rung.assess.people import PeopleRates
    from rung.kube import Kube
    from rung.plan.capability import ClusterInventory

OUTPUT_FORMATS = ("table", "json", "markdown", "html")
"""As rung.assess.render.FORMATS (a unit test keeps them equal), without importing it."""


def add_arguments(assess: argparse.ArgumentParser) -> None:
    """The flags of `rung assess`."""
    where = assess.add_mutually_exclusive_group()
    where.add_argument("-n", "--namespace", help="namespace (default: the context's namespace)")
    where.add_argument(
        "-A", "--all-namespaces", action="store_true", help="every namespace of the cluster"
    )
    assess.add_argument(
        "-o",
        "--output",
        choices=OUTPUT_FORMATS,
        default="table",
        help="format (html: one self-contained page with charts)",
    )
    assess.add_argument(
        "--prometheus-url",
        help="the operator's default Prometheus (its --prometheus-url), if it has one",
    )
    people = assess.add_argument_group(
        "people cost",
        "rates and effort per responsibility; without them the report names"
        " the inputs it lacks instead of pricing people",
    )
    people.add_argument(
        "--people-costs",
        metavar="[NAMESPACE/]CONFIGMAP",
        help="a ConfigMap with currency, hourlyRate, <responsibility>.hourlyRate and"
        " <responsibility>.hoursPerWeek (namespace: the assessed one, else default)",
    )
    people.add_argument("--hourly-rate", type=float, help="price of an hour, every responsibility")
    people.add_argument("--currency", help="currency of the rates, e.g. EUR")
    people.add_argument(
        "--effort",
        action="append",
        default=[],
        metavar="RESPONSIBILITY=HOURS",
        help="hours a week one ModelDeployment takes of a responsibility (onCall,"
        " releaseOwner, pipelineOwner, riskReviewer); repeatable",
    )
    people.add_argument(
        "--rate",
        action="append",
        default=[],
        metavar="RESPONSIBILITY=PRICE",
        help="price of an hour of one responsibility; repeatable",
    )


def _flag_rates(args: argparse.Namespace) -> PeopleRates:
    """The people-cost flags as rates (ValueError when one does not parse)."""
    from rung.assess.people import PeopleRates

    data: dict[str, str] = {}
    for flag, suffix in (("effort", "hoursPerWeek"), ("rate", "hourlyRate")):
        for item in getattr(args, flag) or []:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--{flag} {item!r}: use RESPONSIBILITY=NUMBER")
            data[f"{key.strip()}.{suffix}"] = value.strip()
    if args.hourly_rate is not None:
        data["hourlyRate"] = str(args.hourly_rate)
    if args.currency:
        data["currency"] = args.currency
    return PeopleRates.parse(data, "flags" if data else None)


def _configmap_rates(kube: Kube, ref: str, scope: str | None) -> PeopleRates:
    """The rates in ConfigMap `ref` (`[namespace/]name`)."""
    from kubernetes import client as k8s

    from rung.assess.people import PeopleRates

    namespace, _, name = ref.rpartition("/")
    namespace = namespace or scope or "default"
    configmap = k8s.CoreV1Api(kube.api_client).read_namespaced_config_map(name, namespace)
    return PeopleRates.parse(dict(configmap.data or {}), f"configmap {namespace}/{name}")


def run(args: argparse.Namespace) -> int:
    """Read the cluster, then print the maturity report; 1 when the cluster cannot be read."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from rung.assess import assess
    from rung.assess.people import PeopleInputError
    from rung.assess.render import render
    from rung.kube import Kube, load_config

    try:
        rates = _flag_rates(args)
    except (PeopleInputError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    try:
        context_namespace = load_config()
    except k8s_config.ConfigException as error:
        print(f"error: no Kubernetes configuration: {error}", file=sys.stderr)
        return 1
    scope = None if args.all_namespaces else (args.namespace or context_namespace)
    try:
        kube = Kube(k8s.ApiClient())
        found = _read(kube, scope)
        if found is not None and args.people_costs:
            rates = _configmap_rates(kube, args.people_costs, scope).merged(rates)
    except PeopleInputError as error:
        print(f"error: ConfigMap {args.people_costs}: {error}", file=sys.stderr)
        return 1
    except ApiException as error:
        if error.status == 404 and args.people_costs:
            print(f"error: ConfigMap {args.people_costs} not found", file=sys.stderr)
            return 1
        print(f"error: the API server refused: {error.status} {error.reason}", file=sys.stderr)
        return 1
    except (HTTPError, OSError) as error:
        print(f"error: cannot reach the API server: {error}", file=sys.stderr)
        return 1
    if found is None:
        return 1
    bodies, inventory = found
    report = assess(
        bodies,
        inventory,
        default_prometheus_url=args.prometheus_url,
        scope=scope,
        people_rates=rates,
    )
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
