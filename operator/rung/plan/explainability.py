"""Level 4 on the InferenceService: the explainer and the payload logger (pure).

- Explainability: a KServe explainer component (`spec.explainer`: `art`, or a custom
  container), or an explainer sidecar container in every predictor, reaching the model
  on localhost. The type defaults to what fits the model format; where nothing fits
  (LLMs, formats ART cannot explain) no explainer is emitted and the `Explainable`
  condition says why.
- Payload logging: KServe's logger on every predictor (`logger: {url, mode}`); Rung's
  own decisions go to the same sink (see `rung.audit`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kserve.models import V1beta1ARTExplainerSpec, V1beta1ExplainerSpec, V1beta1LoggerSpec
from kubernetes.client import V1Container, V1ContainerPort

from rung.api.resource import ModelDeployment
from rung.api.spec import Explainer, ModelSource, ResourceRequirements
from rung.api.status import Condition
from rung.ladder import Capability, LadderResult, capabilities
from rung.plan import conditions as cond
from rung.plan.events import Event
from rung.plan.resources import resource_requirements

ART_FORMATS = frozenset({"sklearn", "xgboost", "lightgbm", "pmml"})
"""Model formats whose models ART explains by default: classifiers on tabular inputs,
served over KServe's v1 protocol."""
ART_ATTACK = "SquareAttack"
"""The ART explainer type KServe 0.20 supports (`ARTExplainerType`)."""
ART_IMAGE = "kserve/art-explainer:v0.20.0"
"""ART explainer image for sidecar mode (a component gets KServe's configured one)."""
EXPLAINER_CONTAINER = "kserve-container"
"""The container name KServe expects in a custom explainer component."""
SIDECAR_CONTAINER = "explainer"
"""The explainer sidecar's name (not kserve-container/transformer-container, so KServe
keeps the model as the predictor and the predictor Service on the model's port)."""
PREDICTOR_PORT = 8080
SIDECAR_HTTP_PORT = 8082
SIDECAR_GRPC_PORT = 8083
EXPLAINABILITY_ANNOTATION = "rung.dev/explainability"
"""What level 4 put on the InferenceService (`none` when nothing): a change of it,
including switching off, makes the operator re-apply, which removes what went away."""

EXPLAINABLE = "Explainable"
AUDIT_LOGGING = "AuditLogging"
LOGGER_DEFAULT_URL = "http://default-broker"
"""Where KServe's logger sends events when no URL is set (`logger.defaultUrl`)."""
LOGGER_DEFAULT_MODE = "all"
"""What KServe's logger logs when spec.explainability.payloadLogging is unset."""

ExplainerType = Literal["art", "custom"]
ExplainerMode = Literal["component", "sidecar"]


@dataclass(frozen=True)
class ExplainerChoice:
    """The explainer for one model, or why there is none."""

    type: ExplainerType | None
    mode: ExplainerMode = "component"
    image: str | None = None
    config: dict[str, str] = field(default_factory=dict)
    resources: ResourceRequirements | None = None
    refusal: str | None = None
    """Why no explainer is emitted (type is None then)."""

    def describe(self) -> str:
        name = {"art": f"ART ({ART_ATTACK})", "custom": "custom"}.get(self.type or "", "none")
        where = "a KServe explainer component" if self.mode == "component" else "a sidecar"
        image = f" ({self.image})" if self.image else ""
        return f"{name} explainer{image} as {where}"


def ladder_of(md: ModelDeployment) -> LadderResult:
    """The capabilities in force for `md`."""
    return capabilities(md.spec.maturity.level, md.spec.maturity.overrides)


def explainer_type(spec: Explainer, model: ModelSource) -> tuple[ExplainerType | None, str | None]:
    """The explainer type for `model` (the spec's, or the format's default), or why
    none fits (then the type is None)."""
    fmt = model.format.lower()
    type_: ExplainerType | None = spec.type
    if type_ is None and model.kind == "predictive" and fmt in ART_FORMATS:
        type_ = "art"
    refusal = None
    if type_ is None:
        refusal = (
            f"no built-in explainer fits {_what(model)}: ART explains classifiers on tabular"
            f" inputs ({', '.join(sorted(ART_FORMATS))}); set"
            " spec.explainability.explainer.type custom with an image"
            + (
                " (or type art if the model classifies numeric inputs)"
                if model.kind != "llm"
                else ""
            )
        )
    elif type_ == "art" and model.kind == "llm":
        refusal = (
            "ART explains classifiers on numeric inputs, not LLMs: set"
            " spec.explainability.explainer.type custom with an image"
        )
    elif type_ == "custom" and not spec.image:
        refusal = "a custom explainer needs spec.explainability.explainer.image"
    return (None, refusal) if refusal else (type_, None)


def choose_explainer(md: ModelDeployment, model: ModelSource) -> ExplainerChoice | None:
    """The explainer for `model`, or None when the explainability capability is off."""
    if Capability.EXPLAINABILITY not in ladder_of(md):
        return None
    spec: Explainer = (
        md.spec.explainability.explainer
        if md.spec.explainability and md.spec.explainability.explainer
        else Explainer()
    )
    mode = spec.mode
    type_, refusal = explainer_type(spec, model)
    if refusal is not None:
        return ExplainerChoice(type=None, mode=mode, refusal=refusal)
    image = spec.image or (ART_IMAGE if mode == "sidecar" else None)
    return ExplainerChoice(
        type=type_,
        mode=mode,
        image=image,
        config=dict(spec.config or {}),
        resources=spec.resources,
    )


def explainer_component(md: ModelDeployment, model: ModelSource) -> V1beta1ExplainerSpec | None:
    """`spec.explainer` of the InferenceService serving `model` (component mode only)."""
    choice = choose_explainer(md, model)
    if choice is None or choice.type is None or choice.mode != "component":
        return None
    resources = resource_requirements(choice.resources)
    if choice.type == "art":
        return V1beta1ExplainerSpec(
            art=V1beta1ARTExplainerSpec(
                type=ART_ATTACK,
                image=choice.image,
                config=choice.config or None,
                resources=resources,
            )
        )
    return V1beta1ExplainerSpec(
        containers=[
            V1Container(
                name=EXPLAINER_CONTAINER,
                image=choice.image,
                args=_config_args(choice.config) or None,
                resources=resources,
            )
        ]
    )


def explainer_sidecars(
    md: ModelDeployment, model: ModelSource, isvc_name: str
) -> list[V1Container] | None:
    """Containers to add to the predictor serving `model` (sidecar mode only)."""
    choice = choose_explainer(md, model)
    if choice is None or choice.type is None or choice.mode != "sidecar":
        return None
    args = [
        "--model_name",
        isvc_name,
        "--predictor_host",
        f"localhost:{PREDICTOR_PORT}",
        "--http_port",
        str(SIDECAR_HTTP_PORT),
        "--grpc_port",
        str(SIDECAR_GRPC_PORT),
    ]
    if choice.type == "art":
        args += ["--adversary_type", ART_ATTACK]
    args += _config_args(choice.config)
    return [
        V1Container(
            name=SIDECAR_CONTAINER,
            image=choice.image,
            args=args,
            # Knative (Serverless) allows a port on the serving container only.
            ports=None
            if md.spec.serving.deployment_mode == "Serverless"
            else [
                V1ContainerPort(name="explainer", container_port=SIDECAR_HTTP_PORT, protocol="TCP")
            ],
            resources=resource_requirements(choice.resources),
        )
    ]


def payload_logger(md: ModelDeployment) -> V1beta1LoggerSpec | None:
    """KServe's logger for every predictor, when payload logging is on."""
    if Capability.PAYLOAD_LOGGING not in ladder_of(md):
        return None
    sink = md.spec.explainability.payload_logging if md.spec.explainability else None
    if sink is None:
        return V1beta1LoggerSpec(mode=LOGGER_DEFAULT_MODE)
    return V1beta1LoggerSpec(url=sink.url, mode=sink.mode)


def audit_sink(md: ModelDeployment) -> str | None:
    """Where Rung's decisions go: the payload logging URL, when that capability is on."""
    if Capability.PAYLOAD_LOGGING not in ladder_of(md):
        return None
    sink = md.spec.explainability.payload_logging if md.spec.explainability else None
    return sink.url if sink else None


def fingerprint(md: ModelDeployment, model: ModelSource) -> str:
    """A short description of the level-4 parts on the InferenceService serving `model`."""
    parts = []
    choice = choose_explainer(md, model)
    if choice is not None and choice.type is not None:
        parts.append(f"explainer={choice.type}/{choice.mode}")
    logger = payload_logger(md)
    if logger is not None:
        parts.append(f"logger={logger.mode}")
    return ",".join(parts) or "none"


def governance_conditions(
    md: ModelDeployment, conditions: list[Condition], now: str
) -> tuple[list[Condition], list[Event]]:
    """The `Explainable` and `AuditLogging` conditions, and a Warning when one turns False.

    Each is present only while its capability is on.
    """
    gen = md.generation
    events: list[Event] = []
    out = list(conditions)
    choice = choose_explainer(md, md.spec.model)
    if choice is None:
        out = cond.remove_condition(out, EXPLAINABLE)
    elif choice.type is None:
        assert choice.refusal is not None
        out = _set(out, EXPLAINABLE, "False", "NoExplainerForModel", choice.refusal, now, gen)
        if _turned_false(conditions, EXPLAINABLE):
            events.append(Event("ExplainerUnavailable", choice.refusal, "Warning"))
    else:
        out = _set(out, EXPLAINABLE, "True", "ExplainerConfigured", choice.describe(), now, gen)

    logger = payload_logger(md)
    sink = audit_sink(md)
    if logger is None:
        out = cond.remove_condition(out, AUDIT_LOGGING)
    elif md.spec.model.llm_api() == "LLMInferenceService":
        message = (
            "KServe's payload logger serves InferenceServices only: this LLM's requests and"
            " responses are not logged"
            + (f" (Rung's decisions are sent to {sink})" if sink else "")
            + "; set spec.model.llm.api to InferenceService to log them"
        )
        out = _set(out, AUDIT_LOGGING, "False", "NoPayloadLoggerForLLM", message, now, gen)
        if _turned_false(conditions, AUDIT_LOGGING):
            events.append(Event("PayloadLoggingUnavailable", message, "Warning"))
    elif sink is None:
        message = (
            f"payloads go to KServe's default sink ({LOGGER_DEFAULT_URL}) and decisions"
            " nowhere: set spec.explainability.payloadLogging.url to an audit sink"
        )
        out = _set(out, AUDIT_LOGGING, "False", "NoAuditSink", message, now, gen)
        if _turned_false(conditions, AUDIT_LOGGING):
            events.append(Event("AuditSinkMissing", message, "Warning"))
    else:
        message = f"payloads ({logger.mode}) and decisions are sent to {sink}"
        out = _set(out, AUDIT_LOGGING, "True", "AuditSinkConfigured", message, now, gen)
    return out, events


def _set(
    conditions: list[Condition],
    type_: str,
    status: Literal["True", "False"],
    reason: str,
    message: str,
    now: str,
    generation: int,
) -> list[Condition]:
    return cond.set_condition(
        conditions, type_, status, reason, message, now=now, generation=generation
    )


def _turned_false(before: list[Condition], type_: str) -> bool:
    old = cond.get_condition(before, type_)
    return old is None or old.status != "False"


def _what(model: ModelSource) -> str:
    return "LLMs" if model.kind == "llm" else f"model format {model.format}"


def _config_args(config: dict[str, str]) -> list[str]:
    args: list[str] = []
    for key in sorted(config):
        args += [f"--{key}", config[key]]
    return args
