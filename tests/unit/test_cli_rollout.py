"""`rung status` rendering (pure)."""

from __future__ import annotations

from typing import Any

from rung.cli_rollout import render_status


def _body(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "fraud", "namespace": "team-a", "annotations": {}},
        "spec": {
            "model": {"format": "sklearn", "storageUri": "s3://m/v2", "version": "v2"},
            **spec,
        },
        "status": {
            "phase": "Progressing",
            "capabilities": ["serving", "monitoring", "canary"],
            "stable": {"version": "v1", "storageUri": "s3://m/v1"},
            "canary": {
                "version": "v2",
                "storageUri": "s3://m/v2",
                "weight": 25,
                "step": 1,
                "startedAt": "2026-11-28T12:00:00Z",
            },
            "analysis": {
                "lastRun": "2026-11-28T12:01:00Z",
                "failures": 1,
                "checks": [
                    {
                        "metric": "error-rate",
                        "value": 0.2,
                        "passed": False,
                        "message": "0.2 > max 0.01",
                    },
                    {"metric": "latency-p95", "message": "no data for the canary"},
                ],
            },
        },
    }


def test_shows_the_rollout_steps_and_each_check() -> None:
    text = render_status(_body(maturity={"level": 2}))
    assert "canary:   v2  weight 25%  step 2/4" in text
    assert "10% [25%] 50% 100%" in text
    assert "FAIL" in text
    assert "no data" in text


def test_shows_ownership_and_approval_at_level_4() -> None:
    body = _body(
        maturity={"level": 4},
        governance={
            "owner": "fraud-team",
            "contact": "#fraud",
            "intendedUse": "scoring",
            "riskClass": "high",
        },
    )
    body["metadata"]["annotations"]["rung.dev/approve"] = "v2"
    text = render_status(body)
    assert "owner:    fraud-team (#fraud), risk high" in text
    assert "approved: v2" in text
