"""Generate the ModelDeployment CustomResourceDefinition from the pydantic models.

Pydantic emits JSON Schema with `$ref`s, `anyOf` for optionals and titles; the API
server wants a structural OpenAPI v3 schema. `structural()` inlines the references,
drops nullability (an unset optional is simply absent) and keeps descriptions,
defaults, bounds and `x-kubernetes-*` extensions.
"""

from __future__ import annotations

import copy
from typing import Any

from rung.api.spec import MAX_LEVEL, ModelDeploymentSpec
from rung.api.status import ModelDeploymentStatus

GROUP = "rung.dev"
VERSION = "v1alpha1"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
SINGULAR = "modeldeployment"
SHORT_NAMES = ["md", "mdep"]
API_VERSION = f"{GROUP}/{VERSION}"

_DROP = {"title", "$defs", "additionalProperties_", "discriminator"}
_KEEP_EXTRA = {
    "description",
    "type",
    "properties",
    "required",
    "items",
    "enum",
    "default",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "maxProperties",
    "pattern",
    "format",
    "additionalProperties",
    "anyOf",
    "nullable",
}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = copy.deepcopy(defs[node.pop("$ref").rsplit("/", 1)[-1]])
        target.update(node)  # siblings such as description/default win
        node = target
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) == 1 and not options[0].get("x-kubernetes-int-or-string"):
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            merged = dict(options[0])
            if "$ref" in merged:
                merged = _resolve(merged, defs)
            for key, value in rest.items():
                if key == "x-kubernetes-validations":
                    merged[key] = list(merged.get(key, [])) + list(value)
                else:
                    merged[key] = value
            node = merged
        else:
            node["anyOf"] = options
    if "const" in node:
        node["enum"] = [node.pop("const")]
        node.setdefault("type", "string")
    return {k: _resolve(v, defs) for k, v in node.items()}


def _clean(node: Any) -> Any:
    if isinstance(node, list):
        return [_clean(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _clean(prop) for name, prop in value.items()}
        elif key.startswith("x-kubernetes-") or key in ("default", "enum"):
            out[key] = copy.deepcopy(value)
        elif key in _KEEP_EXTRA:
            out[key] = _clean(value)
    if out.get("default", "absent") is None:
        del out["default"]
    if out.get("x-kubernetes-int-or-string"):
        return {k: v for k, v in out.items() if k in ("description", "x-kubernetes-int-or-string")}
    if isinstance(out.get("default"), dict):
        # CEL rules are checked against defaults as written, so object defaults
        # spell out their nested defaults (minus unset optionals).
        out["default"] = _without_none(out["default"])
    if out.get("type") == "number" and isinstance(out.get("default"), int):
        out["default"] = float(out["default"])
    if "description" in out:
        out["description"] = _explained(out)
    return out


DURATION_RULE = "self.matches('^([0-9]+(ms|s|m|h))+$')"


def _explained(node: dict[str, Any]) -> str:
    """The description `kubectl explain` shows, with the format of a duration and the
    default (the schema carries both, but kubectl explain prints only descriptions)."""
    text = " ".join(node["description"].split())
    rules = [v.get("rule") for v in node.get("x-kubernetes-validations", [])]
    if DURATION_RULE in rules and "Format:" not in text:
        text += " Format: a duration such as 500ms, 30s, 5m, 1h or 1h30m."
    default = node.get("default")
    if default is not None and not isinstance(default, dict | list) and "Default:" not in text:
        shown = str(default).lower() if isinstance(default, bool) else default
        text += f" Default: {shown}."
    return text


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def structural(model: type[Any]) -> dict[str, Any]:
    """The structural schema of a pydantic model, as the API server accepts it."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    return dict(_clean(_resolve(raw, defs)))


def _status_schema() -> dict[str, Any]:
    schema = structural(ModelDeploymentStatus)
    conditions = schema["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    return schema


def _ready(column: str) -> str:
    return f'.status.conditions[?(@.type=="{column}")].status'


PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Level", "type": "integer", "jsonPath": ".spec.maturity.level"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Stable", "type": "string", "jsonPath": ".status.stable.version"},
    {"name": "Canary", "type": "string", "jsonPath": ".status.canary.version"},
    {"name": "Weight", "type": "integer", "jsonPath": ".status.canary.weight"},
    {"name": "Ready", "type": "string", "jsonPath": _ready("Ready")},
    {"name": "Monitoring", "type": "string", "jsonPath": _ready("MonitoringReady")},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {
        "name": "Capabilities",
        "type": "string",
        "jsonPath": ".status.capabilitySummary",
        "priority": 1,
    },
    {"name": "URL", "type": "string", "jsonPath": ".status.url", "priority": 1},
]


MAX_NAME = 53
"""KServe names the predictor Deployment and Service `<name>-predictor`: a DNS label."""
MAX_CANARY_NAME = 42
"""A canary's predictor is `<name>-r-<8 hex>-predictor` (kserve router) or
`<name>-canary-predictor` (gateway-api): both must fit 63 characters."""
NAME_RULES = [
    {
        "rule": "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
        "message": "metadata.name must be a DNS label starting with a letter (KServe names"
        " Services after it)",
    },
    {
        "rule": f"size(self.metadata.name) <= {MAX_NAME}",
        "message": f"metadata.name may have at most {MAX_NAME} characters: KServe's"
        " <name>-predictor must fit 63",
    },
    {
        "rule": f"size(self.metadata.name) <= {MAX_CANARY_NAME}"
        " || !(has(self.spec.maturity) && (has(self.spec.maturity.overrides)"
        " && has(self.spec.maturity.overrides.canary) ? self.spec.maturity.overrides.canary"
        " : (has(self.spec.maturity.level) && self.spec.maturity.level >= 2)))",
        "message": f"metadata.name may have at most {MAX_CANARY_NAME} characters with canary"
        " rollouts (level 2 and above): the canary's <name>-r-<hash>-predictor must fit 63",
    },
]
"""CEL rules on the object's name (the only metadata a CRD rule can read)."""


def only_for_valid_levels(schema: dict[str, Any], level: str) -> dict[str, Any]:
    """Rules that read the maturity level hold when the level is out of range, so that
    `level: 5` is refused once, by its own bound, not again by every rule of a level."""
    guarded = []
    for rule in schema.get("x-kubernetes-validations", []):
        if level in rule["rule"]:
            rule = {**rule, "rule": f"{level} > {MAX_LEVEL} || ({rule['rule']})"}
        guarded.append(rule)
    if guarded:
        schema = {**schema, "x-kubernetes-validations": guarded}
    return schema


def custom_resource_definition() -> dict[str, Any]:
    """The complete CustomResourceDefinition manifest."""
    spec_schema = only_for_valid_levels(structural(ModelDeploymentSpec), "self.maturity.level")
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "rung"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": SHORT_NAMES,
                "categories": ["all", "rung", "ml"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": (
                                "A machine-learning model served by KServe and run at a "
                                "chosen MLOps maturity level (0 Manual .. 4 Governed). "
                                "Rung turns the level into monitoring, canary rollouts, "
                                "retraining and governance."
                            ),
                            "required": ["spec"],
                            "x-kubernetes-validations": NAME_RULES,
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": _status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }
