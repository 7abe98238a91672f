"""Fixtures of the local-cluster tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster import LocalCluster, Ports


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[tuple[LocalCluster, list[str]]]:
    """A cluster of the test's own with KServe's controllers (brought up by the test,
    torn down after it), and the messages it logged."""
    if os.environ.get("RUNG_CLUSTER_KSERVE") == "0":
        pytest.skip("RUNG_CLUSTER_KSERVE=0")
    messages: list[str] = []
    cluster = LocalCluster(
        tmp_path / f"c-{uuid.uuid4().hex[:6]}", ports=Ports.free(), kserve=True, log=messages.append
    )
    try:
        yield cluster, messages
    finally:
        cluster.down()
