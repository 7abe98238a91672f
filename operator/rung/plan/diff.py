"""Does a live object already carry everything we want it to (pure)?"""

from __future__ import annotations

from typing import Any


def covers(live: Any, desired: Any) -> bool:
    """True when every field set in `desired` has the same value in `live`.

    Fields only in `live` (defaults and status written by others) are ignored, so a
    resync of an unchanged object decides that nothing needs writing.
    """
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(covers(live.get(key), value) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return False
        return all(covers(lv, dv) for lv, dv in zip(live, desired, strict=True))
    if isinstance(desired, float) or isinstance(live, float):
        return isinstance(live, int | float) and float(live) == float(desired)
    return bool(live == desired)
