"""rung.audit: decisions to the audit sink as CloudEvents, never blocking reconciles."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cloudevents.http import from_http
from prometheus_client import REGISTRY

from rung.api.resource import ModelDeployment
from rung.audit import AuditingEvents, HttpSender, decision_event
from rung.plan.events import Event

from . import factories as f

SINK = "http://127.0.0.1:9/events"
GOVERNANCE = {"owner": "o", "contact": "c", "intendedUse": "u", "riskClass": "high"}
PIPELINE = {"pipeline": {"type": "webhook", "webhook": {"url": "http://retrain"}}}
CANARY_STATUS = {
    "phase": "Progressing",
    "stable": {"version": "v1", "storageUri": "s3://models/fraud/v1"},
    "canary": {
        "version": "v2",
        "storageUri": "s3://models/fraud/v2",
        "weight": 20,
        "step": 0,
        "startedAt": f.NOW_TEXT,
    },
}
STEP = Event("StepAdvanced", "canary v2: weight 20% -> 50%")


def body(sink: str | None = SINK, level: int = 4, **kwargs: Any) -> dict[str, Any]:
    explainability = {"payloadLogging": {"url": sink}} if sink else {}
    kwargs.setdefault("status", CANARY_STATUS)
    kwargs.setdefault("model_fields", {"storageUri": "s3://models/fraud/v2", "version": "v2"})
    return f.body(
        level=level,
        governance=GOVERNANCE,
        retraining=PIPELINE,
        explainability=explainability,
        **kwargs,
    )


def counted(result: str) -> float:
    return REGISTRY.get_sample_value("rung_audit_events_total", {"result": result}) or 0.0


class Recorder:
    """The wrapped EventSink: records what it was asked to post."""

    def __init__(self, fail: bool = False) -> None:
        self.posted: list[str] = []
        self.fail = fail

    def post(self, body: dict[str, Any], event: Event) -> None:
        self.posted.append(event.reason)
        if self.fail:
            raise RuntimeError("kopf could not post")


class FakeSender:
    """A Sender answering with `statuses` in turn (an exception instance is raised)."""

    def __init__(self, *statuses: int | Exception, gate: threading.Event | None = None) -> None:
        self.statuses = list(statuses) or [202]
        self.calls: list[tuple[str, dict[str, str], bytes, float]] = []
        self.gate = gate

    def __call__(self, url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> int:
        if self.gate is not None:
            self.gate.wait(10)
        self.calls.append((url, dict(headers), body, timeout))
        answer = self.statuses[min(len(self.calls), len(self.statuses)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


def auditing(sender: FakeSender, inner: Recorder | None = None, **kwargs: Any) -> AuditingEvents:
    kwargs.setdefault("backoff", 0.001)
    return AuditingEvents(inner or Recorder(), send=sender, clock=lambda: f.NOW, **kwargs)


# --- the CloudEvent ------------------------------------------------------------------


def test_decision_event_attributes_and_data() -> None:
    event = decision_event(ModelDeployment.from_body(body()), STEP, f.NOW)
    assert event["type"] == "dev.rung.decision.stepadvanced"
    assert event["source"] == f"rung/{f.NAMESPACE}/{f.NAME}"
    assert event["subject"] == "v2"
    assert event["specversion"] == "1.0"
    assert event["time"] == f.NOW_TEXT
    assert event.data == {
        "reason": "StepAdvanced",
        "message": "canary v2: weight 20% -> 50%",
        "type": "Normal",
        "level": 4,
        "phase": "Progressing",
        "stable": "v1",
        "canary": "v2",
        "time": f.NOW_TEXT,
        "data": f.DATA,
        "stableData": None,
        "canaryData": None,
    }


def test_decision_event_without_a_canary() -> None:
    status = {"phase": "Ready", "stable": {"version": "v2", "storageUri": "s3://m/v2"}}
    event = decision_event(
        ModelDeployment.from_body(body(status=status)), Event("Promoted", "v2 is stable"), f.NOW
    )
    assert event["type"] == "dev.rung.decision.promoted"
    assert event.data["canary"] is None
    assert event.data["stable"] == "v2"


# --- delivery ------------------------------------------------------------------------


def test_each_decision_is_posted_and_sent_as_structured_cloud_event() -> None:
    inner, sender = Recorder(), FakeSender()
    sink = auditing(sender, inner)
    sink.post(body(), STEP)
    assert sink.flush(5)
    assert inner.posted == ["StepAdvanced"]
    ((url, headers, data, timeout),) = sender.calls
    assert url == SINK
    assert headers["content-type"] == "application/cloudevents+json"
    assert timeout == 2.0
    received = from_http(headers, data)
    assert received["type"] == "dev.rung.decision.stepadvanced"
    assert received.data["canary"] == "v2"


def test_decisions_keep_their_order() -> None:
    sender = FakeSender()
    sink = auditing(sender)
    reasons = ["CanaryStarted", "StepAdvanced", "StepAdvanced", "AwaitingApproval", "Promoted"]
    for reason in reasons:
        sink.post(body(), Event(reason, reason))
    assert sink.flush(5)
    sent = [from_http(h, b).data["reason"] for _, h, b, _ in sender.calls]
    assert sent == reasons


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sink": None},
        {"level": 3},
        {"maturity": {"level": 4, "overrides": {"payloadLogging": False}}},
    ],
    ids=["no-url", "level-3", "payload-logging-off"],
)
def test_nothing_is_sent_without_a_sink_in_force(kwargs: dict[str, Any]) -> None:
    inner, sender = Recorder(), FakeSender()
    sink = auditing(sender, inner)
    sink.post(body(**kwargs), STEP)
    assert sink.flush(1)
    assert inner.posted == ["StepAdvanced"]
    assert sender.calls == []


def test_posting_does_not_wait_for_the_sink() -> None:
    gate = threading.Event()
    sender = FakeSender(gate=gate)
    sink = auditing(sender)
    for _ in range(5):
        sink.post(body(), STEP)  # returns while the sink is still stuck on the first one
    assert sender.calls == []
    gate.set()
    assert sink.flush(5)
    assert len(sender.calls) == 5


def test_transport_failures_are_retried_a_bounded_number_of_times() -> None:
    before = counted("failed")
    sender = FakeSender(ConnectionRefusedError("refused"))
    sink = auditing(sender, attempts=3)
    sink.post(body(), STEP)  # does not raise
    assert sink.flush(5)
    assert len(sender.calls) == 3
    assert counted("failed") == before + 1


def test_server_errors_are_retried_until_accepted() -> None:
    before = counted("delivered")
    sender = FakeSender(503, 500, 200)
    sink = auditing(sender, attempts=3)
    sink.post(body(), STEP)
    assert sink.flush(5)
    assert len(sender.calls) == 3
    assert counted("delivered") == before + 1


def test_a_refused_event_is_not_retried() -> None:
    before = counted("failed")
    sender = FakeSender(400)
    sink = auditing(sender, attempts=3)
    sink.post(body(), STEP)
    assert sink.flush(5)
    assert len(sender.calls) == 1
    assert counted("failed") == before + 1


def test_failures_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    sink = auditing(FakeSender(TimeoutError("slow")), attempts=2)
    sink.post(body(), STEP)
    assert sink.flush(5)
    assert "StepAdvanced on team-a/fraud could not be sent" in caplog.text
    assert "TimeoutError: slow" in caplog.text


def test_a_full_queue_drops_and_counts() -> None:
    before = counted("dropped")
    gate = threading.Event()
    sink = auditing(FakeSender(gate=gate), max_pending=2)
    for _ in range(6):
        sink.post(body(), STEP)
    dropped = counted("dropped") - before
    gate.set()
    assert sink.flush(5)
    assert 3 <= dropped <= 4  # the sender may already hold one when the queue fills


def test_a_malformed_object_is_counted_not_raised() -> None:
    before = counted("invalid")
    inner = Recorder()
    sink = auditing(FakeSender(), inner)
    broken = body()
    broken["spec"]["maturity"]["level"] = "four"
    sink.post(broken, STEP)
    assert inner.posted == ["StepAdvanced"]
    assert counted("invalid") == before + 1


def test_the_decision_is_audited_even_if_the_kubernetes_event_fails() -> None:
    sender = FakeSender()
    sink = auditing(sender, Recorder(fail=True))
    with pytest.raises(RuntimeError):
        sink.post(body(), STEP)
    assert sink.flush(5)
    assert len(sender.calls) == 1


def test_close_stops_the_sender_thread() -> None:
    sink = auditing(FakeSender())
    sink.post(body(), STEP)
    sink.close()
    assert sink._thread is not None
    assert not sink._thread.is_alive()


def test_close_without_anything_sent_is_a_no_op() -> None:
    auditing(FakeSender()).close()


# --- over real HTTP ------------------------------------------------------------------


@contextmanager
def http_sink(delay: float = 0.0, status: int = 202) -> Iterator[tuple[str, list[Any]]]:
    received: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers["content-length"]))
            time.sleep(delay)
            received.append(from_http(dict(self.headers), data))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", received
    finally:
        server.shutdown()
        server.server_close()


def test_http_delivery_to_a_real_sink() -> None:
    with http_sink() as (url, received):
        sink = AuditingEvents(Recorder(), send=HttpSender())
        sink.post(body(sink=url), STEP)
        assert sink.flush(5)
        sink.close()
    (event,) = received
    assert event["type"] == "dev.rung.decision.stepadvanced"
    assert event["source"] == "rung/team-a/fraud"
    assert event["subject"] == "v2"


def test_http_timeout_is_a_counted_failure() -> None:
    before = counted("failed")
    with http_sink(delay=4.0) as (url, _):
        sink = AuditingEvents(Recorder(), send=HttpSender(), timeout=0.2, attempts=2, backoff=0)
        sink.post(body(sink=url), STEP)
        assert sink.flush(5)  # two attempts that waited for the answer would take 8 s
        sink.close()
    assert counted("failed") == before + 1


def test_unreachable_sink_is_a_counted_failure() -> None:
    before = counted("failed")
    sink = AuditingEvents(Recorder(), send=HttpSender(), timeout=0.5, attempts=2, backoff=0)
    sink.post(body(sink="http://127.0.0.1:9/"), STEP)  # discard port: refused
    assert sink.flush(5)
    sink.close()
    assert counted("failed") == before + 1


def test_a_sink_outside_the_allowed_hosts_is_never_called(caplog: pytest.LogCaptureFixture) -> None:
    from rung.egress import UrlPolicy

    inner, sender = Recorder(), FakeSender()
    sink = auditing(sender, inner, egress=UrlPolicy(("*.monitoring.svc",)))
    sink.post(body(), STEP)
    sink.post(body(), STEP)
    assert sink.flush(5)
    assert inner.posted == ["StepAdvanced", "StepAdvanced"]  # Kubernetes Events still go out
    assert sender.calls == []
    refused = [r for r in caplog.records if "not among the operator's allowed hosts" in r.message]
    assert len(refused) == 1  # once per sink


# --- outboxed decisions: delivered once each part, by id ------------------------------


def test_an_outboxed_decision_is_delivered_once_with_its_id() -> None:
    inner, sender = Recorder(), FakeSender()
    sink = auditing(sender, inner)
    event = Event("StepAdvanced", "canary v2: weight 20% -> 50%", id="abc123", time=f.NOW_TEXT)
    first = sink.post(body(), event)
    assert sink.flush(5)
    again = sink.post(body(), event)
    assert (first, again) == (False, True)  # pending, then delivered
    assert inner.posted == ["StepAdvanced"]  # the Kubernetes Event once
    ((_, headers, data, _),) = sender.calls  # the CloudEvent once
    received = from_http(headers, data)
    assert (received["id"], received["time"]) == ("abc123", f.NOW_TEXT)


def test_an_outboxed_decision_given_up_is_sent_again_on_the_next_post() -> None:
    sender = FakeSender(OSError("down"), OSError("down"), 202)
    sink = auditing(sender, attempts=2)
    event = Event("Promoted", "v2 is now stable", id="p1")
    assert sink.post(body(), event) is False
    assert sink.flush(5)
    assert sink.post(body(), event) is False  # given up before: queued again
    assert sink.flush(5)
    assert sink.post(body(), event) is True
    assert len(sender.calls) == 3


def test_the_kubernetes_event_not_delivered_is_not_delivered() -> None:
    class Down(Recorder):
        def post(self, body: dict[str, Any], event: Event) -> bool:  # type: ignore[override]
            return False

    sink = auditing(FakeSender(), Down())
    assert sink.post(body(status={}), Event("Promoted", "x", id="k1")) is False
