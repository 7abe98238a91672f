"""People cost: effort and rates per responsibility, priced when the user says (pure).

Rung does not guess what people cost. `PeopleRates` holds what the user supplied
(a ConfigMap or `rung assess` flags): a price per hour (one for everybody, or one per
responsibility), a currency, and the effort each responsibility takes, in hours per
week for one ModelDeployment. `people_cost()` prices one responsibility of one
deployment when both inputs are there, and otherwise names the inputs it lacks.

ConfigMap keys (all optional; numbers as strings):

    currency: EUR
    hourlyRate: "90"                 # every responsibility
    onCall.hourlyRate: "120"         # one responsibility
    onCall.hoursPerWeek: "2"
    releaseOwner.hoursPerWeek: "1"
    pipelineOwner.hoursPerWeek: "3"
    riskReviewer.hoursPerWeek: "0.5"
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic.dataclasses import dataclass as report_part

from rung.api._base import CAMEL_CASE
from rung.api.owners import RESPONSIBILITIES, Responsibility

WEEKS_PER_MONTH = 52 / 12
"""Weeks in an average month, to turn a weekly cost into a monthly one."""
HOURLY_RATE = "hourlyRate"
HOURS_PER_WEEK = "hoursPerWeek"
CURRENCY = "currency"


class PeopleInputError(ValueError):
    """A rate or an effort that is not a finite, non-negative number, or an unknown key."""


@dataclass(frozen=True)
class PeopleRates:
    """What the user says people cost: rates and effort per responsibility key."""

    hourly_rate: float | None = None
    """Price of an hour for every responsibility without its own rate."""
    currency: str = ""
    rates: Mapping[str, float] = field(default_factory=dict)
    """Price of an hour per responsibility key (`onCall` ...)."""
    hours_per_week: Mapping[str, float] = field(default_factory=dict)
    """Effort per responsibility key, in hours per week for one ModelDeployment."""
    source: str | None = None
    """Where the inputs came from (`configmap team-a/rung-people-costs`, `flags`)."""

    def rate(self, key: str) -> float | None:
        """The price of an hour of `key`, if known."""
        return self.rates.get(key, self.hourly_rate)

    @property
    def given(self) -> bool:
        """Whether any input was supplied."""
        return bool(self.hourly_rate is not None or self.rates or self.hours_per_week)

    @classmethod
    def parse(cls, data: Mapping[str, str], source: str | None = None) -> PeopleRates:
        """Rates from ConfigMap-style keys (see the module docstring)."""
        keys = {r.key for r in RESPONSIBILITIES}
        hourly: float | None = None
        rates: dict[str, float] = {}
        hours: dict[str, float] = {}
        currency = ""
        for key, raw in data.items():
            if key == CURRENCY:
                currency = raw.strip()
                continue
            if key == HOURLY_RATE:
                hourly = _number(key, raw)
                continue
            responsibility, _, what = key.partition(".")
            if responsibility not in keys or what not in (HOURLY_RATE, HOURS_PER_WEEK):
                known = ", ".join(sorted(keys))
                raise PeopleInputError(
                    f"unknown key {key!r}: use currency, hourlyRate, or <responsibility>."
                    f"hourlyRate / <responsibility>.hoursPerWeek with a responsibility of {known}"
                )
            (rates if what == HOURLY_RATE else hours)[responsibility] = _number(key, raw)
        return cls(hourly, currency, rates, hours, source)

    def merged(self, other: PeopleRates) -> PeopleRates:
        """These rates, with `other`'s (flags over a ConfigMap) taking precedence."""
        sources = [s for s in (self.source, other.source) if s]
        return PeopleRates(
            other.hourly_rate if other.hourly_rate is not None else self.hourly_rate,
            other.currency or self.currency,
            {**self.rates, **other.rates},
            {**self.hours_per_week, **other.hours_per_week},
            " + ".join(sources) or None,
        )


def _number(key: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError as error:
        raise PeopleInputError(f"{key}: {raw!r} is not a number") from error
    if not math.isfinite(value) or value < 0:
        raise PeopleInputError(f"{key}: {raw!r} must be a finite number, 0 or more")
    return value


@report_part(frozen=True, config=CAMEL_CASE, kw_only=True)
class PeopleCost:
    """What one responsibility of one ModelDeployment costs in people's time."""

    responsibility: str
    """The responsibility's key under spec.owners (`onCall` ...)."""
    title: str
    capability: str
    level: int
    active: bool
    """Whether its capability is on now (else: it comes with the next level)."""
    hours_per_week: float | None = None
    hourly_rate: float | None = None
    currency: str = ""
    per_week: float | None = None
    """hoursPerWeek x hourlyRate; None when an input is missing."""
    per_month: float | None = None
    """perWeek x 52 / 12."""
    missing: tuple[str, ...] = ()
    """The inputs that would price it, e.g. `onCall.hoursPerWeek`."""


def people_cost(
    responsibility: Responsibility, rates: PeopleRates, *, capability: str, active: bool
) -> PeopleCost:
    """The cost of `responsibility`, or the inputs it lacks."""
    key = responsibility.key
    hours = rates.hours_per_week.get(key)
    rate = rates.rate(key)
    missing = []
    if hours is None:
        missing.append(f"{key}.{HOURS_PER_WEEK}")
    if rate is None:
        missing.append(f"{key}.{HOURLY_RATE} (or {HOURLY_RATE})")
    per_week = hours * rate if hours is not None and rate is not None else None
    return PeopleCost(
        responsibility=key,
        title=responsibility.title,
        capability=capability,
        level=responsibility.level,
        active=active,
        hours_per_week=hours,
        hourly_rate=rate,
        currency=rates.currency,
        per_week=per_week,
        per_month=per_week * WEEKS_PER_MONTH if per_week is not None else None,
        missing=tuple(missing),
    )


def money(amount: float, currency: str) -> str:
    """`1,234.50 EUR` (or without a currency when none was given)."""
    text = f"{amount:,.2f}"
    return f"{text} {currency}" if currency else text
