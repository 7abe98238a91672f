"""`rung assess` on the command line: read ModelDeployments and discover CRDs, then report.

`rung.cli` adds the command with `add_arguments()`; the rest runs only when it does.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from rung.assess.llm_costs import LlmPrices, LlmUsage
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
    llm = assess.add_argument_group(
        "LLM build vs buy",
        "prices of self-hosting (per GPU-hour and CPU-hour) and of an external provider (per"
        " 1,000 tokens); token rates are measured in Prometheus. Without prices the report"
        " names the inputs it lacks instead of pricing",
    )
    llm.add_argument(
        "--llm-prices",
        metavar="[NAMESPACE/]CONFIGMAP",
        help="a ConfigMap with currency, gpuHourlyRate, cpuHourlyRate, promptPer1kTokens and"
        " generationPer1kTokens (namespace: the assessed one, else default)",
    )
    llm.add_argument("--gpu-hourly-rate", type=float, help="price of one GPU for an hour")
    llm.add_argument("--cpu-hourly-rate", type=float, help="price of one CPU core for an hour")
    llm.add_argument(
        "--prompt-per-1k-tokens", type=float, help="external provider: price of 1,000 prompt tokens"
    )
    llm.add_argument(
        "--generation-per-1k-tokens",
        type=float,
        help="external provider: price of 1,000 generated tokens",
    )
    llm.add_argument(
        "--usage-window",
        default="1h",
        help="the window token and request rates are measured over (PromQL duration, default 1h)",
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


def _flag_prices(args: argparse.Namespace) -> LlmPrices:
    """The LLM price flags as prices (LlmPriceError when one is negative)."""
    from rung.assess.llm_costs import LlmPrices

    data = {
        key: str(value)
        for key, value in (
            ("gpuHourlyRate", args.gpu_hourly_rate),
            ("cpuHourlyRate", args.cpu_hourly_rate),
            ("promptPer1kTokens", args.prompt_per_1k_tokens),
            ("generationPer1kTokens", args.generation_per_1k_tokens),
        )
        if value is not None
    }
    if data and args.currency:
        data["currency"] = args.currency
    return LlmPrices.parse(data, "flags" if data else None)


def _configmap_prices(kube: Kube, ref: str, scope: str | None) -> LlmPrices:
    """The prices in ConfigMap `ref` (`[namespace/]name`)."""
    from kubernetes import client as k8s

    from rung.assess.llm_costs import LlmPrices

    namespace, _, name = ref.rpartition("/")
    namespace = namespace or scope or "default"
    configmap = k8s.CoreV1Api(kube.api_client).read_namespaced_config_map(name, namespace)
    return LlmPrices.parse(dict(configmap.data or {}), f"configmap {namespace}/{name}")


def measure_llm_usage(
    bodies: list[dict[str, Any]], default_prometheus_url: str | None, window: str
) -> dict[tuple[str, str], LlmUsage]:
    """Requests, prompt and generation tokens per second of every LLM deployment, from
    vLLM's series over `window` in its Prometheus (the spec's, else the default)."""
    from rung.api.resource import ModelDeployment
    from rung.assess.llm_costs import LlmUsage
    from rung.metrics import MeasurementError, provider_for
    from rung.plan.live import LiveObjects
    from rung.plan.promql import (
        LLM_REQUEST_RATE,
        TOKENS_PER_SECOND,
        VLLM_GENERATION_TOKENS,
        VLLM_PROMPT_TOKENS,
        VLLM_REQUEST_RATE,
        query_variables,
        render,
    )
    from rung.plan.reads import stable_targets

    out: dict[tuple[str, str], LlmUsage] = {}
    for body in bodies:
        try:
            md = ModelDeployment.from_body(body)
        except (ValueError, KeyError):
            continue
        if md.spec.model.kind != "llm":
            continue
        key = (md.namespace, md.name)
        url = md.spec.prometheus_url(default_prometheus_url)
        if url is None:
            out[key] = LlmUsage(error="no Prometheus: pass --prometheus-url", window=window)
            continue
        if md.spec.model.llm_api() == "LLMInferenceService":
            queries = (VLLM_REQUEST_RATE, VLLM_PROMPT_TOKENS, VLLM_GENERATION_TOKENS)
            templates = [q.query for q in queries]
        else:
            generation = TOKENS_PER_SECOND.query
            prompt = generation.replace("generation_tokens_total", "prompt_tokens_total")
            templates = [LLM_REQUEST_RATE.query, prompt, generation]
        variables = query_variables(md, stable_targets(md, LiveObjects()), window)
        provider = provider_for("prometheus", url)
        try:
            values = [provider.run_query(render(t, variables)) for t in templates]
        except MeasurementError as error:
            out[key] = LlmUsage(error=str(error)[:200], window=window)
            continue
        out[key] = LlmUsage(
            requests=values[0], prompt_tokens=values[1], generation_tokens=values[2], window=window
        )
    return out


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
    from rung.assess.llm_costs import LlmPriceError
    from rung.assess.people import PeopleInputError
    from rung.assess.render import render
    from rung.kube import Kube, load_config

    try:
        rates = _flag_rates(args)
        prices = _flag_prices(args)
    except (PeopleInputError, LlmPriceError, ValueError) as error:
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
        if found is not None and args.llm_prices:
            prices = _configmap_prices(kube, args.llm_prices, scope).merged(prices)
    except PeopleInputError as error:
        print(f"error: ConfigMap {args.people_costs}: {error}", file=sys.stderr)
        return 1
    except LlmPriceError as error:
        print(f"error: ConfigMap {args.llm_prices}: {error}", file=sys.stderr)
        return 1
    except ApiException as error:
        if error.status == 404 and (args.people_costs or args.llm_prices):
            which = " or ".join(r for r in (args.people_costs, args.llm_prices) if r)
            print(f"error: ConfigMap {which} not found", file=sys.stderr)
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
        llm_prices=prices,
        llm_usage=measure_llm_usage(bodies, args.prometheus_url, args.usage_window),
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
