"""Reading live objects (pure, a leaf): owned objects by name, their conditions and
annotations. Everything in plan/ that looks at what is in the cluster uses these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class LiveObjects:
    """Owned objects as they are in the cluster, by name."""

    inference_services: Mapping[str, Obj] = field(default_factory=dict)
    http_routes: Mapping[str, Obj] = field(default_factory=dict)


def object_condition(obj: Obj | None, type_: str) -> Mapping[str, Any] | None:
    """A condition of type `type_` from a raw object's status (e.g. an InferenceService)."""
    if not obj:
        return None
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def condition_true(obj: Obj | None, type_: str) -> bool:
    """Whether `obj.status.conditions` has `type_` with status True."""
    found = object_condition(obj, type_)
    return found is not None and found.get("status") == "True"


def annotation(obj: Obj | None, key: str) -> str | None:
    """The annotation `key` of `obj`, if set."""
    value = (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(key)
    return None if value is None else str(value)
