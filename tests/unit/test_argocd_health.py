"""charts/rung/argocd/health.lua: Argo CD's health status of a ModelDeployment.

The script runs as Argo CD runs it (Lua 5.1, the object as `obj`; testbed.argocd).
Objects in argocd_fixtures/ were captured from a live ModelDeployment by
tests/integration/test_chart.py; the others are written here for phases the operator
does not reach yet or states a live run cannot hold still.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.argocd import health

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "argocd_fixtures"
Obj = dict[str, Any]


def captured(name: str) -> Obj:
    obj: Obj = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())
    return obj


def with_status(base: str = "ready", *, generation: int | None = None, **status: Any) -> Obj:
    """A captured object with some of its status fields replaced (None removes one)."""
    obj = copy.deepcopy(captured(base))
    for key, value in status.items():
        if value is None:
            obj["status"].pop(key, None)
        else:
            obj["status"][key] = value
    if generation is not None:
        obj["metadata"]["generation"] = generation
    return obj


def condition(type_: str, status: str, reason: str, message: str = "") -> Obj:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2025-03-01T12:00:00Z",
    }


# --- live objects ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [("progressing", "Progressing"), ("ready", "Healthy"), ("failed", "Degraded")],
)
def test_captured_objects(fixture: str, expected: str) -> None:
    assert health(captured(fixture)).status == expected


def test_degraded_says_why() -> None:
    assert "unpickling error" in health(captured("failed")).message


# --- healthy only when the operator has caught up -------------------------------------------


def test_ready_for_the_current_generation_is_healthy() -> None:
    result = health(captured("ready"))

    assert result.status == "Healthy"
    assert result.message == "model v1 is serving"


def test_ready_for_an_older_generation_is_progressing() -> None:
    result = health(with_status(generation=2))

    assert result.status == "Progressing"
    assert "generation 2" in result.message


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": "rung.dev/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": "x"}},
        {"metadata": {"name": "x", "generation": 1}, "status": {}},
        {"metadata": {"name": "x", "generation": 1}, "status": {"phase": "Ready"}},
    ],
    ids=["no status", "empty status", "no observedGeneration"],
)
def test_without_status_is_progressing(obj: Obj) -> None:
    assert health(obj).status == "Progressing"


def test_ready_condition_false_without_phase_is_progressing() -> None:
    obj = with_status(
        phase=None,
        conditions=[condition("Ready", "False", "InferenceServiceNotReady", "waiting")],
    )

    assert health(obj).status == "Progressing"


# --- phases ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["Progressing", "Promoting", "RollingBack", "Pending"])
def test_moving_phases_are_progressing_even_while_ready(phase: str) -> None:
    obj = with_status(phase=phase, canary={"version": "v2", "weight": 25, "step": 1})

    result = health(obj)

    assert result.status == "Progressing"
    assert result.message.startswith(f"{phase}: canary v2 at 25%")


@pytest.mark.parametrize("phase", ["Failed", "RolledBack"])
def test_failed_and_rolled_back_are_degraded(phase: str) -> None:
    obj = with_status(
        phase=phase,
        conditions=[
            condition("Ready", "True", "InferenceServiceReady", "model v1 is serving"),
            condition("Degraded", "True", "AnalysisFailed", "error-rate 0.2 above 0.01"),
        ],
    )

    result = health(obj)

    assert result.status == "Degraded"
    assert result.message == f"{phase}: error-rate 0.2 above 0.01"


def test_degraded_condition_wins_over_ready() -> None:
    obj = with_status(
        conditions=[
            condition("Ready", "True", "InferenceServiceReady", "model v1 is serving"),
            condition("Degraded", "True", "ApplyFailed", "422 Unprocessable Entity"),
        ]
    )

    assert health(obj).status == "Degraded"


def test_paused_waits_for_approval_as_suspended() -> None:
    obj = with_status(
        phase="Paused",
        canary={"version": "v2", "weight": 50, "step": 2},
        conditions=[
            condition("Ready", "True", "InferenceServiceReady", "model v1 is serving"),
            condition(
                "Progressing",
                "True",
                "AwaitingApproval",
                "canary v2 passed analysis; annotate rung.dev/approve=v2 to promote",
            ),
        ],
    )

    result = health(obj)

    assert result.status == "Suspended"
    assert "rung.dev/approve=v2" in result.message


# --- the documented copy -----------------------------------------------------------------------


def test_docs_carry_the_same_script() -> None:
    docs = (REPO / "docs" / "argocd.md").read_text()
    key = "  resource.customizations.health.rung.dev_ModelDeployment: |\n"
    block = docs.split(key, 1)[1].split("```", 1)[0]
    documented = "".join(line[4:] if line.strip() else line for line in block.splitlines(True))

    assert documented == (REPO / "charts" / "rung" / "argocd" / "health.lua").read_text()
