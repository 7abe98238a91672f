"""Does a live object already carry everything we want it to (pure)?

Admission webhooks rewrite some of what Rung sends into an equivalent form; KServe's
defaulting webhook, for one, turns the deployment mode `RawDeployment` into
`Standard` (v0.15+) and writes resource quantities in canonical form. `covers()`
compares such fields by meaning, so an unchanged object is never re-applied.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity

from rung.plan.live import APPLIED_HASH_ANNOTATION

Path = tuple[str, ...]

#: Annotation values that KServe's defaulting webhook replaces by an equivalent one.
EQUIVALENT_ANNOTATION_VALUES: dict[str, dict[str, str]] = {
    "serving.kserve.io/deploymentMode": {"RawDeployment": "Standard", "Serverless": "Knative"},
}
QUANTITY_PARENTS = frozenset({"requests", "limits"})
"""Maps whose values are resource quantities (`resources.requests`, `.limits`)."""


def _canonical_annotation(key: str) -> Callable[[Any], Any]:
    aliases = EQUIVALENT_ANNOTATION_VALUES[key]
    return lambda value: aliases.get(value, value) if isinstance(value, str) else value


def _quantity(value: Any) -> Any:
    if isinstance(value, str | int | float):
        try:
            return Decimal(parse_quantity(value))  # type: ignore[no-untyped-call]
        except (ValueError, ArithmeticError):
            return value
    return value


def _normaliser(path: Path) -> Callable[[Any], Any] | None:
    """How to read the value at `path` before comparing, when webhooks rewrite it."""
    annotation = len(path) == 3 and path[:2] == ("metadata", "annotations")
    if annotation and path[2] in EQUIVALENT_ANNOTATION_VALUES:
        return _canonical_annotation(path[2])
    if len(path) >= 3 and path[-3] == "resources" and path[-2] in QUANTITY_PARENTS:
        return _quantity
    return None


def covers(live: Any, desired: Any, path: Path = ()) -> bool:
    """True when every field set in `desired` has the same value in `live`.

    Fields only in `live` (defaults and status written by others) are ignored, so a
    resync of an unchanged object decides that nothing needs writing. Values that a
    webhook normalises (see EQUIVALENT_ANNOTATION_VALUES, resource quantities) are
    compared in their normal form.
    """
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(covers(live.get(key), value, (*path, key)) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return False
        return all(covers(lv, dv, path) for lv, dv in zip(live, desired, strict=True))
    normalise = _normaliser(path)
    if normalise is not None:
        return bool(normalise(live) == normalise(desired))
    if isinstance(desired, float) or isinstance(live, float):
        return isinstance(live, int | float) and float(live) == float(desired)
    return bool(live == desired)


def with_applied_hash(manifest: dict[str, Any]) -> dict[str, Any]:
    """`manifest` annotated with a hash of itself, the record of what was last applied.

    A field the operator stops sending is only removed by server-side apply when
    the manifest is applied again; comparing this hash notices such removals, which
    `covers()` (live has every desired field) cannot.
    """
    import hashlib
    import json

    hashed = json.dumps(_without_traffic(manifest), sort_keys=True)
    digest = hashlib.sha256(hashed.encode()).hexdigest()[:16]
    meta = dict(manifest.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), APPLIED_HASH_ANNOTATION: digest}
    return {**manifest, "metadata": meta}


def _without_traffic(manifest: dict[str, Any]) -> dict[str, Any]:
    """An InferenceService without its traffic split, for the applied hash.

    KServe copies an InferenceService's annotations into the pod templates of its
    predictors (and Knative revisions), so a hash that changed with every canary step
    restarted every predictor pod at every step. The split is no part of the pods;
    `covers()` still notices when the live split differs from the wanted one.
    """
    if manifest.get("kind") != "InferenceService":
        return manifest
    spec = dict(manifest.get("spec") or {})
    if "predictor" in spec:
        spec["predictor"] = {
            k: v for k, v in spec["predictor"].items() if k != "canaryTrafficPercent"
        }
    if "canary" in spec:
        spec["canary"] = [
            {k: v for k, v in entry.items() if k != "trafficPercent"} for entry in spec["canary"]
        ]
    return {**manifest, "spec": spec}


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
