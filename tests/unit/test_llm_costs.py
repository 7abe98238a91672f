"""rung.assess.llm_costs: build vs buy for LLM deployments, priced only with the user's
prices and measured token rates (pure, table-tested)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rung.assess import assess
from rung.assess.llm_costs import LlmPriceError, LlmPrices, LlmUsage, llm_cost
from rung.assess.render import render
from rung.plan.capability import ClusterInventory

from . import factories as f

PRICES = LlmPrices(
    gpu_hourly_rate=2.0,
    cpu_hourly_rate=0.05,
    prompt_per_1k_tokens=0.001,
    generation_per_1k_tokens=0.002,
    currency="EUR",
)
USAGE = LlmUsage(requests=10.0, prompt_tokens=40.0, generation_tokens=80.0, window="1h")
GPU = {"limits": {"nvidia.com/gpu": 1}, "requests": {"cpu": "4"}}


def llm(resources: dict[str, Any] | None = GPU, replicas: int = 1, **model: Any) -> Any:
    fields = {"kind": "llm", "format": "huggingface", "storageUri": "hf://x/y", **model}
    if resources is not None:
        fields["resources"] = resources
    return f.md(
        level=1,
        model_fields=fields,
        serving={"minReplicas": replicas, "maxReplicas": replicas},
    )


def external_llm() -> Any:
    """An LLM served by an external provider (with the GPU spec it would need in-house)."""
    return llm(
        storageUri=None,
        source="external",
        external={
            "endpoint": "https://api.example.com/v1",
            "model": "m",
            "credentialsSecretRef": {"name": "key"},
        },
    )


def test_both_costs_and_the_break_even() -> None:
    cost = llm_cost(llm(), PRICES, USAGE)
    assert cost is not None
    # (1 GPU x 2 + 4 CPU x 0.05) x 1 replica = 2.2 an hour
    assert cost.self_hosted_per_hour == 2.2
    assert cost.self_hosted_per_day == 52.8
    # 4 prompt and 8 generated tokens a request: 4 x 0.001/1000 + 8 x 0.002/1000
    assert (cost.prompt_tokens_per_request, cost.generation_tokens_per_request) == (4.0, 8.0)
    assert cost.external_per_request == 0.00002
    assert cost.external_per_million_requests == 20.0
    assert cost.external_per_day == 17.28  # 10 req/s x 86,400 s x 0.00002
    # self-hosted per million requests at the measured rate: 52.8 / 864,000 x 1e6
    assert cost.self_hosted_per_million_requests == pytest.approx(61.1111, abs=1e-4)
    # 2.2 / 3600 / 0.00002 requests a second cost the same both ways
    assert cost.break_even_requests_per_second == pytest.approx(30.5556, abs=1e-4)
    assert cost.break_even_requests_per_day == pytest.approx(2_640_000, rel=1e-6)
    assert cost.cheaper == "external"
    assert cost.missing == ()


def test_replicas_multiply_the_capacity_and_traffic_above_break_even_favours_self_hosting() -> None:
    busy = LlmUsage(requests=100.0, prompt_tokens=400.0, generation_tokens=800.0, window="1h")
    cost = llm_cost(llm(replicas=2), PRICES, busy)
    assert cost is not None
    assert cost.self_hosted_per_day == 105.6
    assert cost.break_even_requests_per_second == pytest.approx(61.1111, abs=1e-4)
    assert cost.cheaper == "self-hosted"


@pytest.mark.parametrize(
    ("prices", "usage", "resources", "missing"),
    [
        (LlmPrices(), USAGE, GPU, {"gpuHourlyRate", "cpuHourlyRate", "promptPer1kTokens"}),
        (PRICES, None, GPU, {"measured token rates (not measured)"}),
        (PRICES, LlmUsage(error="Prometheus unreachable"), GPU, {"measured token rates"}),
        (
            PRICES,
            LlmUsage(requests=0.0, prompt_tokens=0.0, generation_tokens=0.0),
            GPU,
            {"traffic"},
        ),
        (PRICES, USAGE, None, {"spec.model.resources"}),
    ],
    ids=["no-prices", "not-measured", "unreachable", "no-traffic", "no-resources"],
)
def test_what_is_missing_is_named_never_guessed(
    prices: LlmPrices, usage: LlmUsage | None, resources: Any, missing: set[str]
) -> None:
    cost = llm_cost(llm(resources), prices, usage)
    assert cost is not None
    for needed in missing:
        assert any(m.startswith(needed) for m in cost.missing), (needed, cost.missing)
    assert cost.break_even_requests_per_second is None
    assert cost.cheaper is None


def test_not_an_llm_has_no_build_vs_buy() -> None:
    assert llm_cost(f.md(level=1), PRICES, USAGE) is None


def test_an_external_deployment_is_priced_as_bought_and_as_if_self_hosted() -> None:
    md = external_llm()
    cost = llm_cost(md, PRICES, USAGE)
    assert cost is not None
    assert cost.self_hosted is False
    assert cost.external_per_day == 17.28
    assert cost.self_hosted_per_day == 52.8  # what its resources would cost in the cluster


def test_prices_parse_and_refuse_garbage() -> None:
    parsed = LlmPrices.parse({"gpuHourlyRate": "2.5", "currency": "USD"}, "configmap a/b")
    assert (parsed.gpu_hourly_rate, parsed.currency, parsed.source) == (2.5, "USD", "configmap a/b")
    merged = parsed.merged(LlmPrices(gpu_hourly_rate=3.0, source="flags"))
    assert (merged.gpu_hourly_rate, merged.source) == (3.0, "configmap a/b + flags")
    for bad in ({"gpuHourlyRate": "-1"}, {"gpuHourlyRate": "cheap"}, {"tokens": "1"}):
        with pytest.raises(LlmPriceError):
            LlmPrices.parse(bad)


def test_every_format_carries_build_vs_buy() -> None:
    body = f.body(
        level=1,
        model_fields={
            "kind": "llm",
            "format": "huggingface",
            "storageUri": "hf://x/y",
            "resources": GPU,
        },
    )
    report = assess(
        [body],
        ClusterInventory.of(),
        llm_prices=PRICES,
        llm_usage={(f.NAMESPACE, f.NAME): USAGE},
    )
    doc = json.loads(render(report, "json"))
    cost = doc["deployments"][0]["llmCost"]
    assert cost["selfHostedPerDay"] == 52.8
    assert cost["externalPerDay"] == 17.28
    assert cost["breakEvenRequestsPerSecond"] == pytest.approx(30.5556, abs=1e-4)
    assert doc["llmPrices"]["gpuHourlyRate"] == 2.0
    table = render(report, "table")
    assert "LLM: BUILD VS BUY" in table
    assert "52.80 EUR" in table
    assert "break-even 30.6 req/s" in table
    markdown = render(report, "markdown")
    assert "## LLM: build vs buy" in markdown
    assert "cheaper now: external" in markdown
    html = render(report, "html")
    assert "<h2>LLM: build vs buy</h2>" in html
    assert "<td>52.80 EUR</td>" in html


def test_an_llm_needs_kserves_llm_inference_service_and_an_external_one_the_gateway_api() -> None:
    from rung.api.kinds import INFERENCE_SERVICE
    from rung.assess import needs_at
    from rung.plan.capability import Cluster

    cluster = Cluster(ClusterInventory.of(INFERENCE_SERVICE), None)
    needs = needs_at(llm().spec, 0, cluster)
    assert [(n.what, n.crds) for n in needs if n.kind == "component"] == [
        ("KServe LLMInferenceService", ("llminferenceservices.serving.kserve.io",))
    ]
    external = external_llm()
    needs = needs_at(external.spec, 0, cluster)
    assert [n.what for n in needs if n.kind == "component"] == ["Gateway API"]
    assert needs_at(f.md().spec, 0, cluster) == []
