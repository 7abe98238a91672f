"""The metric provider interface: one query in, one number (or no data) out.

A provider tells three outcomes apart, because they mean different things to a canary:

- a number: one finite value;
- no data (None): a well-formed, empty answer (nothing was measured yet);
- an error: `MetricsUnavailableError` when the backend cannot answer (refused,
  timed out, server error), `InvalidMeasurementError` when it answered with something
  that is not one finite number (NaN, ±Inf, several series, a matrix or a string, a
  non-numeric sample, a malformed body, a query it rejected). Garbage is never "no data".
"""

from __future__ import annotations

from typing import Protocol


class MeasurementError(RuntimeError):
    """A query did not produce a number (base of the two kinds below)."""


class MetricsUnavailableError(MeasurementError):
    """The metrics backend could not be reached, did not answer in time, or failed."""


class MetricsTimeoutError(MetricsUnavailableError):
    """The backend accepted the connection (or not) but did not answer in time."""


class InvalidMeasurementError(MeasurementError):
    """The backend answered, but not with one finite number: a failed measurement."""


class MetricProvider(Protocol):
    """A metrics backend that analysis and SLO snapshots read from."""

    def run_query(self, query: str) -> float | None:
        """The query's single finite value; None when it returned a well-formed empty answer.

        Raises MetricsUnavailableError when the backend cannot answer, and
        InvalidMeasurementError when its answer is not one finite number.
        """
        ...
