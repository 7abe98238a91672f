"""Traffic routers behind one interface; `router_for` rejects unknown names."""

from __future__ import annotations

from rung.plan.routers.base import LiveObjects, Router, Targets, Traffic
from rung.plan.routers.gateway_api import GatewayApiRouter
from rung.plan.routers.kserve import KServeRouter
from rung.plan.routers.llm import LlmRouter

ROUTERS: dict[str, type[KServeRouter] | type[GatewayApiRouter] | type[LlmRouter]] = {
    "kserve": KServeRouter,
    "gateway-api": GatewayApiRouter,
    "llm": LlmRouter,
}
"""`llm` is not named in spec.rollout.router: it serves every `kind: llm` model on
LLMInferenceServices (or from an external provider), whatever spec.rollout.router says."""


def router_for(name: str) -> Router:
    """The router called `name` (spec.rollout.router)."""
    try:
        return ROUTERS[name]()
    except KeyError:
        known = ", ".join(sorted(ROUTERS))
        raise ValueError(f"unknown traffic router {name!r}; known: {known}") from None


__all__ = ["ROUTERS", "LiveObjects", "Router", "Targets", "Traffic", "router_for"]
