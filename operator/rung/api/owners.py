"""Responsibilities: the people each capability brings, and who holds them (API part).

Rung's own mapping of people to the ladder: each capability that needs a person to
act on what it produces names that person's responsibility here, once. The capability
registry (`rung.plan.registry`) attaches each responsibility to its capability, `rung
assess` reports who holds it, and the CRD's CEL rules require those a level cannot
work without (`REQUIRED` below). This module is in the API layer only because the CRD
schema is generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from rung.api._base import ApiModel


@dataclass(frozen=True)
class Responsibility:
    """One responsibility: what a person does for a capability to work."""

    key: str
    """The field under spec.owners (camelCase)."""
    title: str
    """A short name for people: `on-call`, `release owner` ..."""
    capability: str
    """The capability that brings it (as in status.capabilities)."""
    level: int
    """The level that brings it by default (that of its capability)."""
    duty: str
    """What the holder does."""
    required: bool = False
    """Whether the API server refuses the level without it (a CEL rule on the spec)."""

    @property
    def field(self) -> str:
        """The spec path: `spec.owners.<key>`."""
        return f"spec.owners.{self.key}"


ON_CALL = Responsibility(
    "onCall",
    "on-call",
    "monitoring",
    1,
    "answers the SLO alerts (PrometheusRule) and watches the SLO snapshot in status",
)
RELEASE_OWNER = Responsibility(
    "releaseOwner",
    "release owner",
    "canary",
    2,
    "decides on canaries: approves, pauses, promotes or aborts a rollout when analysis"
    " cannot (`rung approve`, `rung abort`)",
    required=True,
)
PIPELINE_OWNER = Responsibility(
    "pipelineOwner",
    "pipeline owner",
    "retraining",
    3,
    "owns the retraining pipeline and the data it trains on: fixes failed runs, hands"
    " retrained models back",
)
RISK_REVIEWER = Responsibility(
    "riskReviewer",
    "risk reviewer",
    "governance",
    4,
    "reviews the model's risk, reads the decision trail and approves promotions at the"
    " approval gate",
    required=True,
)

RESPONSIBILITIES: tuple[Responsibility, ...] = (
    ON_CALL,
    RELEASE_OWNER,
    PIPELINE_OWNER,
    RISK_REVIEWER,
)
"""Every responsibility, in ladder order."""


class Owner(ApiModel):
    """Who holds one responsibility."""

    name: Annotated[str, Field(min_length=1, max_length=253)]
    """The person or team holding it, e.g. `team-fraud` or `Ada Lovelace`."""
    contact: Annotated[str, Field(min_length=1, max_length=253)]
    """How to reach them: an email address, a chat channel or a pager rotation."""


class Owners(ApiModel):
    """Who holds the responsibilities the capabilities bring (Rung's own mapping of
    people to levels; `rung assess` reports the unassigned ones)."""

    on_call: Owner | None = None
    """Level 1 (monitoring): answers the SLO alerts and watches the SLO snapshot."""
    release_owner: Owner | None = None
    """Level 2 (canary): approves, pauses, promotes or aborts canaries when analysis
    cannot decide. Required from level 2 (unless overrides switch canary off)."""
    pipeline_owner: Owner | None = None
    """Level 3 (retraining): owns the retraining pipeline and the data it trains on."""
    risk_reviewer: Owner | None = None
    """Level 4 (governance): reviews risk, reads the decision trail and approves
    promotions at the approval gate. Required at level 4."""

    def holder(self, responsibility: Responsibility) -> Owner | None:
        """Who holds `responsibility`, if anyone."""
        for name, info in type(self).model_fields.items():
            if info.alias == responsibility.key:
                value = getattr(self, name)
                return value if isinstance(value, Owner) else None
        raise KeyError(responsibility.key)
