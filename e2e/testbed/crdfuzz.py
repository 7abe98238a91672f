"""Hypothesis strategies for ModelDeployment specs, drawn from the CRD's own schema.

`spec_strategy(crd)` walks `openAPIV3Schema.properties.spec` of the generated CRD and
builds values that mostly fit it (types, enums, bounds, lengths, patterns) and now and
then do not (a wrong type, a value out of range, an unknown template variable), so that
the API server's schema and CEL rules are exercised on both sides. Field names come
from the schema, so a field added to the API is fuzzed without touching this module.
"""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st

Schema = dict[str, Any]

QUERIES = [
    "up",
    'sum(rate(x{pod=~"{{ target }}-.*"}[{{ interval }}]))',
    '(sum(rate(e{ns="{{ namespace }}", w="{{ canary }}"}[1m])) or vector(0)) / (sum(y) > 0)',
    'max(model_drift_score{model="{{ name }}"})',
    "{{ stable }}",
    "{{ namesapce }}",  # unknown variable: refused
    'sum(x{a="{{ canary }"})',  # unbalanced: refused
    "x{}",
]
DURATIONS = ["1s", "10s", "30s", "1m", "5m", "1h30m", "250ms", "0s", "10m", "soon", "5 m", ""]
CRONS = ["0 3 * * 0", "*/5 * * * *", "@daily", "61 * * * *", "not a cron", "* * * * * *"]
URLS = [
    "http://prometheus.monitoring.svc:9090",
    "https://sink.example.com/events",
    "http://127.0.0.1:9",
    "ftp://nope",
    "http://",
]
QUANTITIES: list[Any] = ["500m", "1", "2Gi", "100Mi", 1, 4, "1.5", "abc", "-1", "1e3"]
LEAF_JUNK: list[Any] = [None, -1, 3.5, "x", True, [], {}]


def _string(schema: Schema, name: str) -> st.SearchStrategy[Any]:
    low = int(schema.get("minLength", 0))
    high = min(int(schema.get("maxLength", 40)), 40)
    if name in ("query",):
        return st.sampled_from(QUERIES)
    if name in ("interval", "progressDeadline", "cooldown", "for"):
        return st.sampled_from(DURATIONS)
    if name == "cron":
        return st.sampled_from(CRONS)
    if name in ("url", "endpoint"):
        return st.sampled_from(URLS)
    if name == "version":
        return st.one_of(
            st.from_regex(r"\Av[0-9]{1,3}(\.[0-9]{1,2})?\Z"), st.sampled_from(["-bad", "v 1", ""])
        )
    alphabet = string.ascii_lowercase + string.digits + "-./:"
    return st.text(alphabet=alphabet, min_size=max(low, 0), max_size=max(high, low))


def _number(schema: Schema, integer: bool) -> st.SearchStrategy[Any]:
    low, high = schema.get("minimum"), schema.get("maximum")
    if integer:
        lo = int(low) if low is not None else -5
        hi = int(high) if high is not None else lo + 1000
        inside = st.integers(lo, hi)
        outside = st.sampled_from([lo - 1, hi + 1])
    else:
        lo_f = float(low) if low is not None else -1e6
        hi_f = float(high) if high is not None else 1e6
        inside = st.floats(lo_f, hi_f, allow_nan=False, allow_infinity=False)
        outside = st.sampled_from([lo_f - 1.0, hi_f + 1.0])
    return st.one_of(inside, inside, inside, outside)


def from_schema(schema: Schema, name: str = "spec", depth: int = 0) -> st.SearchStrategy[Any]:
    """Values for `schema` (mostly valid), `name` being the field's name."""
    if "enum" in schema:
        return st.one_of(st.sampled_from(schema["enum"]), st.sampled_from(["Bogus"]))
    if schema.get("x-kubernetes-int-or-string"):
        return st.sampled_from(QUANTITIES)
    kind = schema.get("type")
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        if name == "steps":
            return st.integers(1, 100)
        return _number(schema, integer=True)
    if kind == "number":
        return _number(schema, integer=False)
    if kind == "string":
        return _string(schema, name)
    if kind == "array":
        items = from_schema(schema.get("items") or {}, name, depth + 1)
        top = min(int(schema.get("maxItems", 4)), 4)
        if name == "steps":
            return st.lists(items, min_size=0, max_size=top).map(
                lambda v: sorted(set(v)) if v and v[0] % 3 else v
            )
        return st.lists(items, max_size=top)
    if kind == "object" or "properties" in schema:
        return _object(schema, depth)
    return st.sampled_from(LEAF_JUNK)


def _object(schema: Schema, depth: int) -> st.SearchStrategy[Any]:
    properties: dict[str, Schema] = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    if not properties:
        if isinstance(extra, dict):
            return st.dictionaries(
                st.sampled_from(["cpu", "memory", "nvidia.com/gpu", "nb_classes", "max_iter"]),
                from_schema(extra, "value", depth + 1),
                max_size=3,
            )
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2)
        return st.just({})
    required = set(schema.get("required") or [])
    if depth > 6:
        return st.just({})
    fields = {
        key: from_schema(sub, key, depth + 1)
        for key, sub in properties.items()
        if key not in required
    }
    needed = {key: from_schema(properties[key], key, depth + 1) for key in required}
    return st.builds(
        lambda must, maybe: {**maybe, **must},
        st.fixed_dictionaries(needed),
        st.fixed_dictionaries({}, optional=fields),
    )


def spec_strategy(crd: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Specs for the CRD's ModelDeployment: drawn from its schema, the model always set
    (most of the time valid), a wrong-typed leaf now and then."""
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    model = st.fixed_dictionaries(
        {
            "format": st.sampled_from(["sklearn", "xgboost", "huggingface"]),
            "storageUri": st.sampled_from(["s3://models/m/v1", "gs://b/m", "pvc://models/m"]),
            "version": st.sampled_from(["v1", "v2", "1.0"]),
        }
    )
    return st.builds(
        _assemble,
        from_schema(schema),
        model,
        st.tuples(st.integers(0, 9), st.sampled_from(LEAF_JUNK), st.integers(0, 30)),
    )


def _assemble(
    drawn: dict[str, Any], good_model: dict[str, Any], junk: tuple[int, Any, int]
) -> dict[str, Any]:
    """The drawn spec with a usable model (the drawn model fields over it, now and then)."""
    drawn_model = drawn.get("model") if isinstance(drawn.get("model"), dict) else {}
    model = {**good_model, **drawn_model} if junk[0] < 2 else good_model
    return _with_junk({**drawn, "model": model}, junk)


def _with_junk(spec: dict[str, Any], junk: tuple[int, Any, int]) -> dict[str, Any]:
    """One leaf replaced by a wrong value in about one spec out of ten."""
    choice, value, index = junk
    if choice != 9:
        return spec
    leaves: list[tuple[dict[str, Any], str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                if isinstance(child, dict | list):
                    walk(child)
                else:
                    leaves.append((node, key))
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(spec)
    if leaves:
        parent, key = leaves[index % len(leaves)]
        parent[key] = value
    return spec


def name_strategy() -> st.SearchStrategy[str]:
    """Object names: mostly fine, some too long or not a DNS label."""
    fine = st.from_regex(r"\Af[a-z0-9]{0,10}\Z")
    odd = st.sampled_from(["f" * 43, "f" * 54, "9lives", "a" * 42])
    return st.one_of(fine, fine, fine, odd)
