"""The metric provider interface: one query in, one number (or no data) out."""

from __future__ import annotations

from typing import Protocol


class MetricsUnavailableError(RuntimeError):
    """The metrics backend could not be reached or rejected the query."""


class MetricProvider(Protocol):
    """A metrics backend that analysis and SLO snapshots read from."""

    def run_query(self, query: str) -> float | None:
        """The query's single value; None when it returned no data.

        Raises MetricsUnavailableError when the backend cannot answer.
        """
        ...
