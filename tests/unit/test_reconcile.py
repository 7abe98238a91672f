"""rung.plan.reconcile.plan: desired objects, status and events for levels 0 and 1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from rung.api.resource import ModelDeployment
from rung.api.status import HISTORY_LIMIT, Condition, ModelDeploymentStatus, SloSnapshot
from rung.plan.conditions import get_condition
from rung.plan.inference_service import build_inference_service, model_hash
from rung.plan.monitoring import KSERVE_SCRAPE_ANNOTATION
from rung.plan.reconcile import (
    ClusterFeatures,
    Event,
    Observation,
    Plan,
    SloReading,
    plan,
    timestamp,
)

from . import factories as f

WITH_PO = ClusterFeatures(prometheus_operator=True)
WITHOUT_PO = ClusterFeatures(prometheus_operator=False)
SNAPSHOT = SloSnapshot(measured_at=f.NOW_TEXT, request_rate=3.0, error_rate=0.0)
V2 = {"storageUri": "s3://models/fraud/v2", "version": "v2"}


def run(
    md: ModelDeployment,
    *,
    now: datetime = f.NOW,
    isvc: dict[str, Any] | None = None,
    features: ClusterFeatures = WITHOUT_PO,
    slo: SloReading | None = None,
) -> Plan:
    services = {f.NAME: isvc} if isvc is not None else {}
    return plan(
        Observation(
            md=md,
            now=now,
            inference_services=services,
            features=features,
            slo=slo,
            deployments=f.predictor_deployments(services),
        )
    )


def after(previous: Plan | ModelDeploymentStatus, **md_kwargs: Any) -> ModelDeployment:
    """The ModelDeployment once `previous`'s status has been written back."""
    status = previous.status if isinstance(previous, Plan) else previous
    return f.md(status=status.wire(), **md_kwargs)


def condition(p: Plan, type_: str) -> Condition:
    found = get_condition(p.status.conditions, type_)
    assert found is not None, f"no {type_} condition in {p.status.conditions}"
    return found


def summary(p: Plan, type_: str) -> tuple[str, str]:
    c = condition(p, type_)
    return c.status, c.reason


# --- first deployment ----------------------------------------------------------------


def test_first_deployment_announces_deploying() -> None:
    p = run(f.md())
    assert p.events == [Event("Deploying", "deploying model v1 from s3://models/fraud/v1")]


def test_first_deployment_records_deployed_in_history() -> None:
    (entry,) = run(f.md()).status.history
    assert (entry.time, entry.event, entry.version) == (f.NOW_TEXT, "Deployed", "v1")


def test_history_and_status_carry_the_data_the_version_was_trained_on() -> None:
    status = run(f.md()).status
    (entry,) = status.history
    assert entry.data is not None
    assert (entry.data.uri, entry.data.version) == ("s3://datasets/fraud", "2025-02-01")
    assert status.stable is not None
    assert status.stable.data == entry.data


def test_a_version_without_data_has_none_in_history() -> None:
    (entry,) = run(f.md(model_fields={"data": None})).status.history
    assert entry.data is None


def test_first_deployment_status() -> None:
    md = f.md(generation=4)
    status = run(md).status
    assert status.phase == "Progressing"
    assert status.observed_generation == 4
    assert status.level == 0
    assert status.capabilities == ["serving"]
    assert status.inference_service == f.NAME
    assert status.url is None
    assert status.canary is None
    assert status.stable is not None
    assert status.stable.version == "v1"
    assert status.stable.storage_uri == "s3://models/fraud/v1"
    assert status.stable.hash == model_hash(md.spec.model)


def test_first_deployment_conditions() -> None:
    p = run(f.md(generation=4))
    assert summary(p, "Ready") == ("False", "InferenceServiceNotReady")
    assert summary(p, "Progressing") == ("True", "Deploying")
    assert summary(p, "Degraded") == ("False", "AsExpected")
    assert get_condition(p.status.conditions, "MonitoringReady") is None
    for c in p.status.conditions:
        assert c.last_transition_time == f.NOW_TEXT
        assert c.observed_generation == 4


def test_level_0_desires_only_the_inference_service() -> None:
    md = f.md()
    assert run(md).desired == [build_inference_service(md, md.spec.model)]


def test_level_0_adds_no_scrape_annotations() -> None:
    (isvc,) = run(f.md()).desired
    assert not any("prometheus" in key for key in isvc["metadata"]["annotations"])
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"


# --- readiness mirrored from the InferenceService ------------------------------------


def test_ready_inference_service_makes_the_deployment_ready() -> None:
    first = run(f.md())
    p = run(after(first), now=f.LATER, isvc=f.live_isvc())
    assert p.status.phase == "Ready"
    assert summary(p, "Ready") == ("True", "InferenceServiceReady")
    assert summary(p, "Progressing") == ("False", "Deployed")
    assert p.status.url == "http://fraud.team-a.example.com"
    assert p.events == []


def test_ready_on_first_sight_is_ready_at_once() -> None:
    p = run(f.md(), isvc=f.live_isvc())
    assert p.status.phase == "Ready"
    assert summary(p, "Ready") == ("True", "InferenceServiceReady")


@pytest.mark.parametrize(
    ("live", "reason", "message"),
    [
        (None, "InferenceServiceNotReady", "waiting for the InferenceService to become ready"),
        (
            f.live_isvc(ready=None),
            "InferenceServiceNotReady",
            "waiting for the InferenceService to become ready",
        ),
        (
            f.live_isvc(ready="False", reason="PredictorNotReady", message="0/1 pods"),
            "PredictorNotReady",
            "0/1 pods",
        ),
        (
            f.live_isvc(ready="Unknown"),
            "InferenceServiceNotReady",
            "waiting for the InferenceService to become ready",
        ),
    ],
    ids=["absent", "no-conditions", "not-ready-with-reason", "unknown"],
)
def test_not_ready_mirrors_kserve_reason(
    live: dict[str, Any] | None, reason: str, message: str
) -> None:
    p = run(f.md(), isvc=live)
    assert p.status.phase == "Progressing"
    ready = condition(p, "Ready")
    assert (ready.status, ready.reason, ready.message) == ("False", reason, message)


def test_ready_service_still_on_the_old_model_is_not_ready() -> None:
    first = run(f.md(), isvc=f.live_isvc())
    p = run(after(first, model_fields=V2), now=f.LATER, isvc=f.live_isvc())
    assert p.status.phase == "Progressing"
    assert summary(p, "Ready") == ("False", "InferenceServiceNotReady")
    assert summary(p, "Progressing") == ("True", "Deploying")


# --- KServe failures -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_status", "message"),
    [
        (
            {
                "transitionStatus": "BlockedByFailedLoad",
                "lastFailureInfo": {"reason": "ModelLoadFailed", "message": "no such file"},
            },
            "no such file",
        ),
        (
            {"transitionStatus": "InvalidSpec", "lastFailureInfo": {"reason": "NoRuntime"}},
            "NoRuntime",
        ),
        ({"transitionStatus": "InvalidSpec"}, "InvalidSpec"),
    ],
)
def test_kserve_failure_fails_and_degrades(model_status: dict[str, Any], message: str) -> None:
    live = f.live_isvc(ready="False", model_status=model_status)
    p = run(f.md(), isvc=live)
    assert p.status.phase == "Failed"
    degraded = condition(p, "Degraded")
    assert (degraded.status, degraded.reason, degraded.message) == ("True", "ModelFailed", message)


@pytest.mark.parametrize("transition", ["UpToDate", "InProgress", None])
def test_other_transition_states_are_not_failures(transition: str | None) -> None:
    model_status = {"transitionStatus": transition} if transition else {}
    p = run(f.md(), isvc=f.live_isvc(model_status=model_status))
    assert p.status.phase == "Ready"
    assert summary(p, "Degraded") == ("False", "AsExpected")


def test_recovery_clears_degraded() -> None:
    broken = {"transitionStatus": "BlockedByFailedLoad"}
    first = run(f.md(), isvc=f.live_isvc(ready="False", model_status=broken))
    p = run(after(first), now=f.LATER, isvc=f.live_isvc())
    assert p.status.phase == "Ready"
    degraded = condition(p, "Degraded")
    assert (degraded.status, degraded.last_transition_time) == ("False", f.LATER_TEXT)


# --- model changes -------------------------------------------------------------------


@pytest.mark.parametrize("level", [0, 1])
@pytest.mark.parametrize(
    ("change", "version"),
    [
        (V2, "v2"),
        ({"version": "v2"}, "v2"),
        ({"runtime": "kserve-mlserver"}, "v1"),
        ({"resources": {"requests": {"cpu": "1"}}}, "v1"),
    ],
    ids=["uri-and-version", "version", "runtime", "resources"],
)
def test_model_change_replaces_the_model(level: int, change: dict[str, Any], version: str) -> None:
    first = run(f.md(level=level), isvc=f.live_isvc())
    md = after(first, level=level, model_fields=change)
    p = run(md, now=f.LATER, isvc=f.live_isvc())
    assert [e.reason for e in p.events] == ["ModelReplaced"]
    assert p.events[0].type == "Normal"
    assert p.events[0].message.startswith(f"replacing model v1 with {version}")
    entry = p.status.history[-1]
    assert (entry.time, entry.event, entry.message, entry.version) == (
        f.LATER_TEXT,
        "ModelReplaced",
        f"v1 -> {version}",
        version,
    )
    assert p.status.stable is not None
    assert p.status.stable.hash == model_hash(md.spec.model)
    assert p.status.canary is None


def test_model_change_desires_the_new_model() -> None:
    first = run(f.md())
    (isvc,) = run(after(first, model_fields=V2), now=f.LATER).desired
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "s3://models/fraud/v2"
    assert isvc["metadata"]["labels"]["rung.dev/model-version"] == "v2"


@pytest.mark.parametrize(
    "change",
    [
        {"serving": {"minReplicas": 2, "maxReplicas": 4}},
        {"monitoring": {"slo": {"latencyP95Ms": 100}}},
    ],
    ids=["serving", "monitoring"],
)
def test_non_model_change_is_not_a_model_replacement(change: dict[str, Any]) -> None:
    first = run(f.md(), isvc=f.live_isvc())
    p = run(after(first, generation=2, **change), now=f.LATER, isvc=f.live_isvc())
    assert p.events == []
    assert p.status.history == first.status.history
    assert p.status.observed_generation == 2


# --- level changes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "capabilities"),
    [
        (0, 1, "serving, monitoring"),
        (1, 0, "serving"),
        (0, 2, "serving, monitoring, canary"),
    ],
)
def test_level_change_is_announced_and_recorded(old: int, new: int, capabilities: str) -> None:
    first = run(f.md(level=old), isvc=f.live_isvc())
    p = run(after(first, level=new), now=f.LATER, isvc=f.live_isvc())
    assert p.events == [
        Event("LevelChanged", f"maturity level {old} -> {new}: capabilities {capabilities}")
    ]
    entry = p.status.history[-1]
    assert (entry.time, entry.event, entry.message) == (
        f.LATER_TEXT,
        "LevelChanged",
        f"{old} -> {new}",
    )
    assert p.status.level == new
    assert p.status.capabilities == capabilities.split(", ")


def test_first_deployment_is_not_a_level_change() -> None:
    assert [e.reason for e in run(f.md(level=3)).events] == ["Deploying"]


def test_level_and_model_change_together() -> None:
    first = run(f.md(level=0), isvc=f.live_isvc())
    p = run(after(first, level=1, model_fields=V2), now=f.LATER)
    assert [e.reason for e in p.events] == ["LevelChanged", "ModelReplaced"]
    assert [h.event for h in p.status.history] == ["Deployed", "LevelChanged", "ModelReplaced"]


def test_dropping_to_level_0_removes_monitoring_from_status() -> None:
    first = run(f.md(level=1), isvc=f.live_isvc(), slo=SloReading(snapshot=SNAPSHOT))
    assert first.status.slo == SNAPSHOT
    p = run(after(first, level=0), now=f.LATER, isvc=f.live_isvc())
    assert p.status.slo is None
    assert get_condition(p.status.conditions, "MonitoringReady") is None
    assert [o["kind"] for o in p.desired] == ["InferenceService"]


# --- refusals ------------------------------------------------------------------------


def test_refused_capability_is_a_warning_event() -> None:
    md = f.md(maturity={"level": 2, "overrides": {"monitoring": False}})
    p = run(md)
    assert Event("CapabilityRefused", "canary is off: it needs monitoring", "Warning") in p.events
    assert p.status.capabilities == ["serving"]


def test_refusal_is_announced_once() -> None:
    md_kwargs: dict[str, Any] = {"maturity": {"level": 2, "overrides": {"monitoring": False}}}
    first = run(f.md(**md_kwargs), isvc=f.live_isvc())
    again = run(after(first, **md_kwargs), now=f.LATER, isvc=f.live_isvc())
    assert again.events == []


def test_refusal_is_recorded_in_history() -> None:
    p = run(f.md(maturity={"level": 2, "overrides": {"monitoring": False}}))
    assert any(h.event in ("Refused", "CapabilityRefused") for h in p.status.history)


# --- monitoring (level 1) ------------------------------------------------------------


def test_level_1_with_prometheus_operator_adds_pod_monitor_and_rule() -> None:
    p = run(f.md(level=1), features=WITH_PO)
    assert [o["kind"] for o in p.desired] == ["InferenceService", "PodMonitor", "PrometheusRule"]
    annotations = p.desired[0]["metadata"]["annotations"]
    assert annotations[KSERVE_SCRAPE_ANNOTATION] == "true"
    assert "prometheus.io/scrape" not in annotations


def test_level_1_without_prometheus_operator_uses_scrape_annotations() -> None:
    p = run(f.md(level=1), features=WITHOUT_PO)
    assert [o["kind"] for o in p.desired] == ["InferenceService"]
    annotations = p.desired[0]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8080"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert annotations[KSERVE_SCRAPE_ANNOTATION] == "true"


@pytest.mark.parametrize("features", [WITH_PO, WITHOUT_PO])
def test_monitoring_override_at_level_0(features: ClusterFeatures) -> None:
    p = run(f.md(maturity={"level": 0, "overrides": {"monitoring": True}}), features=features)
    assert p.status.capabilities == ["serving", "monitoring"]
    assert get_condition(p.status.conditions, "MonitoringReady") is not None


def test_monitoring_switched_off_at_level_1() -> None:
    p = run(f.md(maturity={"level": 1, "overrides": {"monitoring": False}}), features=WITH_PO)
    assert [o["kind"] for o in p.desired] == ["InferenceService"]
    assert get_condition(p.status.conditions, "MonitoringReady") is None


@pytest.mark.parametrize(
    ("reading", "status", "reason", "message"),
    [
        (None, "Unknown", "AwaitingFirstReading", "the SLO indicators have not been read yet"),
        (
            SloReading(snapshot=SNAPSHOT),
            "True",
            "MetricsAvailable",
            "scraped through PodMonitor fraud-model-server",
        ),
        (
            SloReading(error="connection refused"),
            "False",
            "PrometheusUnreachable",
            "connection refused",
        ),
    ],
    ids=["no-reading", "snapshot", "error"],
)
def test_monitoring_ready_on_first_reading(
    reading: SloReading | None, status: str, reason: str, message: str
) -> None:
    p = run(f.md(level=1), features=WITH_PO, slo=reading)
    c = condition(p, "MonitoringReady")
    assert (c.status, c.reason, c.message) == (status, reason, message)


@pytest.mark.parametrize(
    ("first", "second", "status", "reason", "moved"),
    [
        (None, SloReading(snapshot=SNAPSHOT), "True", "MetricsAvailable", True),
        (None, SloReading(error="timeout"), "False", "PrometheusUnreachable", True),
        (None, None, "Unknown", "AwaitingFirstReading", False),
        (SloReading(snapshot=SNAPSHOT), None, "True", "MetricsAvailable", False),
        (
            SloReading(snapshot=SNAPSHOT),
            SloReading(snapshot=SNAPSHOT),
            "True",
            "MetricsAvailable",
            False,
        ),
        (
            SloReading(snapshot=SNAPSHOT),
            SloReading(error="timeout"),
            "False",
            "PrometheusUnreachable",
            True,
        ),
        (SloReading(error="timeout"), None, "False", "PrometheusUnreachable", False),
        (
            SloReading(error="timeout"),
            SloReading(snapshot=SNAPSHOT),
            "True",
            "MetricsAvailable",
            True,
        ),
    ],
    ids=[
        "unknown-to-true",
        "unknown-to-false",
        "unknown-stays",
        "true-kept-without-reading",
        "true-stays",
        "true-to-false",
        "false-kept-without-reading",
        "false-to-true",
    ],
)
def test_monitoring_ready_transitions(
    first: SloReading | None,
    second: SloReading | None,
    status: str,
    reason: str,
    moved: bool,
) -> None:
    p1 = run(f.md(level=1), features=WITH_PO, slo=first)
    p2 = run(after(p1, level=1), now=f.LATER, features=WITH_PO, slo=second)
    c = condition(p2, "MonitoringReady")
    assert (c.status, c.reason) == (status, reason)
    assert c.last_transition_time == (f.LATER_TEXT if moved else f.NOW_TEXT)


def test_snapshot_is_written_to_status() -> None:
    p = run(f.md(level=1), slo=SloReading(snapshot=SNAPSHOT))
    assert p.status.slo == SNAPSHOT


def test_unreachable_prometheus_keeps_the_last_snapshot() -> None:
    first = run(f.md(level=1), slo=SloReading(snapshot=SNAPSHOT))
    p = run(after(first, level=1), now=f.LATER, slo=SloReading(error="timeout"))
    assert p.status.slo == SNAPSHOT


# --- idempotence: a resync writes nothing --------------------------------------------

IDLE_SCENARIOS: dict[str, dict[str, Any]] = {
    "level-0-waiting": {"md": {}, "isvc": None},
    "level-0-not-ready": {"md": {}, "isvc": f.live_isvc(ready="False", reason="Pending")},
    "level-0-ready": {"md": {}, "isvc": f.live_isvc()},
    "level-0-failed": {
        "md": {},
        "isvc": f.live_isvc(ready="False", model_status={"transitionStatus": "InvalidSpec"}),
    },
    "level-1-no-po": {"md": {"level": 1}, "isvc": f.live_isvc(), "features": WITHOUT_PO},
    "level-1-po": {"md": {"level": 1}, "isvc": f.live_isvc(), "features": WITH_PO},
    "level-1-snapshot": {
        "md": {"level": 1},
        "isvc": f.live_isvc(),
        "features": WITH_PO,
        "slo": SloReading(snapshot=SNAPSHOT),
    },
    "level-1-unreachable": {
        "md": {"level": 1},
        "isvc": f.live_isvc(),
        "slo": SloReading(error="timeout"),
    },
    "level-4-governed": {
        "md": {
            "level": 4,
            "retraining": {"pipeline": {"type": "webhook", "webhook": {"url": "http://h"}}},
            "governance": {
                "owner": "team-a",
                "contact": "#team-a",
                "intendedUse": "fraud scoring",
                "riskClass": "high",
            },
        },
        "isvc": f.live_isvc(),
    },
    "llm": {"md": {"level": 1, "model_fields": {"kind": "llm"}}, "isvc": f.live_isvc()},
}


@pytest.mark.parametrize("scenario", list(IDLE_SCENARIOS))
@pytest.mark.parametrize("same_reading", [False, True], ids=["no-new-reading", "same-reading"])
def test_resync_of_own_output_changes_nothing(scenario: str, same_reading: bool) -> None:
    case = IDLE_SCENARIOS[scenario]
    observe = {
        "isvc": case["isvc"],
        "features": case.get("features", WITHOUT_PO),
    }
    settled = run(f.md(**case["md"]), slo=case.get("slo"), **observe)
    resync = run(
        after(settled, **case["md"]),
        now=f.LATER,
        slo=case.get("slo") if same_reading else None,
        **observe,
    )
    assert resync.status == settled.status
    assert resync.status.wire() == settled.status.wire()
    assert resync.events == []
    assert resync.desired == settled.desired


def test_resync_many_times_is_a_fixed_point() -> None:
    p = run(f.md(level=1), isvc=f.live_isvc(), features=WITH_PO)
    settled = p.status
    for minutes in range(1, 6):
        p = run(
            after(p, level=1),
            now=f.NOW + timedelta(minutes=minutes),
            isvc=f.live_isvc(),
            features=WITH_PO,
        )
        assert p.status == settled
        assert p.events == []


# --- transition times, generations, history ------------------------------------------


def test_transition_time_kept_for_unchanged_conditions() -> None:
    first = run(f.md())
    p = run(after(first), now=f.LATER, isvc=f.live_isvc())
    assert condition(p, "Ready").last_transition_time == f.LATER_TEXT
    assert condition(p, "Progressing").last_transition_time == f.LATER_TEXT
    assert condition(p, "Degraded").last_transition_time == f.NOW_TEXT


def test_new_generation_updates_observed_generation_but_not_transition_times() -> None:
    first = run(f.md(generation=1), isvc=f.live_isvc())
    p = run(after(first, generation=2), now=f.LATER, isvc=f.live_isvc())
    assert p.status.observed_generation == 2
    for c in p.status.conditions:
        assert c.observed_generation == 2
        assert c.last_transition_time == f.NOW_TEXT


def test_conditions_written_by_others_are_kept() -> None:
    first = run(f.md())
    foreign = Condition(
        type="Approved", status="True", reason="ByHuman", last_transition_time=f.NOW_TEXT
    )
    status = first.status.model_copy(update={"conditions": [*first.status.conditions, foreign]})
    p = run(after(status), now=f.LATER)
    assert foreign in p.status.conditions


def test_history_is_bounded_newest_last() -> None:
    old = [
        {"time": f.NOW_TEXT, "event": "Old", "message": f"entry {i}"} for i in range(HISTORY_LIMIT)
    ]
    first = run(f.md(), isvc=f.live_isvc())
    status = first.status.model_copy(
        update={"history": ModelDeploymentStatus.model_validate({"history": old}).history}
    )
    p = run(after(status, level=1, model_fields=V2), now=f.LATER)
    assert len(p.status.history) == HISTORY_LIMIT
    assert [h.event for h in p.status.history[-2:]] == ["LevelChanged", "ModelReplaced"]
    assert p.status.history[0].message == "entry 2"
    ModelDeploymentStatus.model_validate(p.status.wire())  # still valid against the schema


def test_unrelated_status_sections_are_carried_over() -> None:
    first = run(f.md())
    retraining = {"lastTriggeredAt": f.NOW_TEXT, "runs": []}
    analysis = {"failures": 1, "checks": []}
    status = ModelDeploymentStatus.model_validate(
        {**first.status.wire(), "retraining": retraining, "analysis": analysis}
    )
    p = run(after(status), now=f.LATER)
    assert p.status.retraining == status.retraining
    assert p.status.analysis == status.analysis


# --- timestamps ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (f.NOW, f.NOW_TEXT),
        (f.NOW.replace(microsecond=999_999), f.NOW_TEXT),
        (datetime(2025, 3, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2))), f.NOW_TEXT),
        (datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC), "2024-12-31T23:59:59Z"),
    ],
)
def test_timestamp_is_rfc3339_utc_seconds(moment: datetime, text: str) -> None:
    assert timestamp(moment) == text


def test_an_apply_failure_stays_degraded_until_the_objects_are_in_place() -> None:
    """plan() keeps Degraded=ApplyFailed (and Failed) while the wanted objects differ from
    the live ones, so a refusal repeated every pass changes status once."""
    from rung.plan.apply_failure import ApplyFailure, after_apply_failure
    from rung.plan.diff import with_applied_hash

    first = run(f.md())
    failed, _ = after_apply_failure(
        first.status, [ApplyFailure("InferenceService/fraud", 400, "denied")], 1, f.NOW
    )
    md = after(failed)
    again = plan(Observation(md=md, now=f.LATER, owned={}))
    assert summary(again, "Degraded") == ("True", "ApplyFailed")
    assert again.status.phase == "Failed"

    live = {d["metadata"]["name"]: with_applied_hash(d) for d in again.desired}
    live[f.NAME]["status"] = f.live_isvc()["status"]
    done = plan(
        Observation(
            md=md,
            now=f.LATER,
            inference_services=live,
            owned={"InferenceService": live},
            deployments=f.predictor_deployments(live),
        )
    )
    assert summary(done, "Degraded") == ("False", "AsExpected")
    assert done.status.phase == "Ready"
