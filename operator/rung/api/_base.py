"""Shared building blocks of the API models: camelCase aliases and CRD schema hints."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, WithJsonSchema
from pydantic.alias_generators import to_camel

CAMEL_CASE = ConfigDict(alias_generator=to_camel, populate_by_name=True)
"""Python attributes in snake_case, JSON in camelCase (for models and pydantic dataclasses)."""


class ApiModel(BaseModel):
    """Base of every API model: Python attributes in snake_case, JSON in camelCase.

    Unknown keys are ignored when reading (the API server has already pruned them);
    `model_dump()` defaults to the wire form.
    """

    model_config = ConfigDict(
        **CAMEL_CASE,
        extra="ignore",
        use_attribute_docstrings=True,
        frozen=True,
    )

    def wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, without unset optionals."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def with_rules(*rules: dict[str, str]) -> ConfigDict:
    """ApiModel's config plus CEL rules checked on the whole object at admission."""
    validations: list[JsonValue] = [dict(rule) for rule in rules]
    return ConfigDict(
        **ApiModel.model_config, json_schema_extra={"x-kubernetes-validations": validations}
    )


def cel(
    rule: str, message: str, *, field_path: str | None = None, reason: str | None = None
) -> dict[str, str]:
    """One `x-kubernetes-validations` entry (a CEL rule checked at admission)."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


DURATION_RE = r"^([0-9]+(ms|s|m|h))+$"

Duration = Annotated[
    str,
    Field(
        max_length=32,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"self.matches('{DURATION_RE}')",
                    "must be a duration such as 30s, 5m, 1h or 1h30m",
                )
            ]
        },
    ),
    AfterValidator(lambda text: _checked_duration(text)),
]
"""A Go-style duration: digits followed by ms, s, m or h, repeated (e.g. `1h30m`)."""

Quantity = Annotated[
    int | str,
    WithJsonSchema({"x-kubernetes-int-or-string": True}),
]
"""A Kubernetes resource quantity such as `500m`, `2Gi` or `1`."""

FreeForm = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]
"""An embedded Kubernetes object (for example a Job template) kept as given."""


def _checked_duration(text: str) -> str:
    parse_duration(text)
    return text


def parse_duration(text: str) -> float:
    """Seconds in a duration string accepted by `Duration` (e.g. `1m30s` -> 90.0)."""
    import re

    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"([0-9]+)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(n) * units[u] for n, u in parts)
