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


APPLIED_HASH_ANNOTATION = "rung.dev/applied-hash"


def with_applied_hash(manifest: dict[str, Any]) -> dict[str, Any]:
    """`manifest` annotated with a hash of itself, the record of what was last applied.

    A field the operator stops sending is only removed by server-side apply when
    the manifest is applied again; comparing this hash notices such removals, which
    `covers()` (live has every desired field) cannot.
    """
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
    meta = dict(manifest.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), APPLIED_HASH_ANNOTATION: digest}
    return {**manifest, "metadata": meta}


def needs_apply(live: dict[str, Any] | None, desired: dict[str, Any]) -> bool:
    """Whether `desired` (with its applied hash) must be applied over `live`.

    Yes when the object is missing, when what we want changed since the last apply
    (hash), or when someone changed a field we own (drift).
    """
    if live is None:
        return True
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    wanted = ((desired.get("metadata") or {}).get("annotations") or {}).get(APPLIED_HASH_ANNOTATION)
    return annotations.get(APPLIED_HASH_ANNOTATION) != wanted or not covers(live, desired)
