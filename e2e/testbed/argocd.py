"""Argo CD's part in health assessment: run a resource health Lua script on an object.

Argo CD runs `resource.customizations.health.<group>_<kind>` scripts in gopher-lua
(Lua 5.1) with the live object as the global `obj`, every JSON number a float. This
module does the same with `lupa`'s Lua 5.1 runtime, so a health script can be tested
on real objects without an Argo CD installation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lupa import lua51

ROOT = Path(__file__).resolve().parents[2]
MODEL_DEPLOYMENT_HEALTH = ROOT / "charts" / "rung" / "argocd" / "health.lua"
STATUSES = ("Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown")


@dataclass(frozen=True)
class Health:
    """What the script returned: Argo CD's health status and message."""

    status: str
    message: str


def _as_json_numbers(value: Any) -> Any:
    """Ints become floats (JSON numbers in gopher-lua); containers recurse."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _as_json_numbers(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_as_json_numbers(v) for v in value]
    return value


def health(obj: Mapping[str, Any], script: Path = MODEL_DEPLOYMENT_HEALTH) -> Health:
    """Evaluate the health `script` on `obj` as Argo CD would."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals()["obj"] = runtime.table_from(_as_json_numbers(obj), recursive=True)
    result = runtime.execute(script.read_text())
    if result is None:
        raise AssertionError(f"{script.name} returned nothing")
    status, message = result["status"], result["message"]
    if status not in STATUSES:
        raise AssertionError(f"{script.name} returned an unknown health status {status!r}")
    return Health(str(status), "" if message is None else str(message))
