"""rung.plan.promql: template rendering and the default queries."""

from __future__ import annotations

import pytest

from rung.plan.promql import (
    ERROR_RATE,
    VARIABLES,
    Indicator,
    TemplateError,
    indicators,
    render,
    template_errors,
)

VARS = {
    "namespace": "team-a",
    "name": "fraud",
    "target": "fraud-canary",
    "stable": "fraud",
    "canary": "fraud-canary",
    "interval": "1m",
}


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("{{ namespace }}", "team-a"),
        ("{{namespace}}", "team-a"),
        ("{{   namespace   }}", "team-a"),
        ("{{\tnamespace\n}}", "team-a"),
        ("{{ namespace}}", "team-a"),
        ("{{namespace }}", "team-a"),
        ("x{{name}}y{{ target }}z", "xfraudyfraud-canaryz"),
        (
            'rate(m{pod=~"{{ target }}-predictor-.*"}[{{ interval }}])',
            'rate(m{pod=~"fraud-canary-predictor-.*"}[1m])',
        ),
        ("{{ stable }} vs {{ canary }}", "fraud vs fraud-canary"),
        ("{{ name }}{{ name }}", "fraudfraud"),
        ("sum(up)", "sum(up)"),
        ("", ""),
        ('{job="a"}', '{job="a"}'),
        ("{ namespace }", "{ namespace }"),
    ],
)
def test_render_substitutes(template: str, rendered: str) -> None:
    assert render(template, VARS) == rendered


@pytest.mark.parametrize(
    ("template", "unknown"),
    [
        ("{{ nmespace }}", "nmespace"),
        ("sum(x{ns='{{namespace}}'}) / {{ revision }}", "revision"),
        ("{{Namespace}}", "Namespace"),
        ("{{ _private }}", "_private"),
    ],
)
def test_render_unknown_variable_raises_naming_it(template: str, unknown: str) -> None:
    with pytest.raises(TemplateError, match=rf"\{{\{{ {unknown} \}}\}}") as info:
        render(template, VARS)
    assert "namespace" in str(info.value)  # lists the known names


def test_template_error_is_a_value_error() -> None:
    assert issubclass(TemplateError, ValueError)


def test_render_only_uses_the_given_variables() -> None:
    with pytest.raises(TemplateError, match="canary"):
        render("{{ canary }}", {"stable": "fraud"})


def test_substituted_values_are_not_rendered_again() -> None:
    assert render("{{ name }}", {"name": "{{ other }}"}) == "{{ other }}"


@pytest.mark.parametrize("template", ["{{ }}", "{{ canary-name }}", "{{ canary.name }}"])
def test_render_rejects_malformed_placeholder(template: str) -> None:
    with pytest.raises(TemplateError):
        render(f"sum(up{{pod='{template}'}})", VARS)


@pytest.mark.parametrize(
    ("template", "errors"),
    [
        ("sum(up)", []),
        ("{{ namespace }} {{ name }} {{ target }}", []),
        ("{{ stable }}{{ canary }}{{ interval }}", []),
        ("{{ foo }}", ["foo"]),
        ("{{ foo }} {{ namespace }} {{bar}}", ["foo", "bar"]),
        ("{{ foo }}{{ foo }}", ["foo", "foo"]),
    ],
)
def test_template_errors(template: str, errors: list[str]) -> None:
    assert template_errors(template) == errors


def test_variables_are_the_documented_ones() -> None:
    assert set(VARIABLES) == {"namespace", "name", "target", "stable", "canary", "interval"}


# --- default queries -----------------------------------------------------------------


def all_indicators() -> list[Indicator]:
    return [*indicators("predictive").values(), *indicators("llm").values()]


@pytest.mark.parametrize("indicator", all_indicators(), ids=lambda i: i.name)
def test_default_queries_use_only_known_variables(indicator: Indicator) -> None:
    assert template_errors(indicator.query) == []
    rendered = render(indicator.query, VARS)
    assert "{{" not in rendered
    assert "team-a" in rendered
    assert "fraud-canary" in rendered  # scoped to the target
    assert "[1m]" in rendered


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("predictive", {"request_rate", "error_rate", "latency_p95_ms"}),
        (
            "llm",
            {
                "request_rate",
                "error_rate",
                "latency_p95_ms",
                "time_to_first_token_p95_ms",
                "tokens_per_second",
            },
        ),
    ],
)
def test_indicators_per_kind(kind: str, fields: set[str]) -> None:
    assert set(indicators(kind)) == fields  # type: ignore[arg-type]


def test_llm_latency_reads_vllm_histograms() -> None:
    assert "vllm:" in indicators("llm")["latency_p95_ms"].query
    assert "request_predict_seconds" in indicators("predictive")["latency_p95_ms"].query


def test_error_rate_counts_5xx_over_all() -> None:
    rendered = render(ERROR_RATE.query, VARS)
    numerator, denominator = rendered.split(" / ")
    assert 'response_code=~"5.."' in numerator
    assert "response_code" not in denominator


@pytest.mark.parametrize(
    ("template", "ok"),
    [
        ('sum(x{a="{{ canary }}"})', True),
        ("x{} / (sum(y{a!=''}) > 0)", True),
        ('x{pod=~"{{target}}-.*"}[{{ interval }}]', True),
        ("{{ namesapce }}", False),
        ("{{ canary }", False),
        ("x{{a}}", False),
        ("a}}b", False),
    ],
)
def test_the_admission_regex_agrees_with_render(template: str, ok: bool) -> None:
    """spec.TEMPLATE_RE (checked by the API server) accepts what render() can render."""
    import re

    from rung.api.spec import template_regex

    assert bool(re.match(template_regex(), template)) is ok
    variables = dict.fromkeys(VARIABLES, "x")
    if ok:
        render(template, variables)
    elif "{{" in template and "}}" in template and "namesapce" in template:
        with pytest.raises(TemplateError):
            render(template, variables)
