"""The decision trail: every decision also goes to the audit sink as a CloudEvent.

`AuditingEvents` wraps the reconciler's `EventSink`. Each decision is still posted as a
Kubernetes Event by the wrapped sink; when the ModelDeployment has payload logging on
and `spec.explainability.payloadLogging.url` set, the decision is also queued as a
structured CloudEvent:

- type `dev.rung.decision.<reason, lower case>`, e.g. `dev.rung.decision.promoted`
- source `rung/<namespace>/<name>`, subject the model version (`spec.model.version`)
- data `{reason, message, type, level, phase, stable, canary, time}` and the lineage:
  `data` (spec.model.data: what the subject version was trained on), `stableData`,
  `canaryData` (null when unknown)

A single background thread delivers the queue in order, with a short timeout and a
bounded number of attempts. Delivery never blocks or breaks reconciling: a slow or
dead sink only costs queued events, and every failure is logged and counted in
`rung_audit_events{result}`, never raised.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from cloudevents.conversion import to_structured
from cloudevents.http import CloudEvent

from rung import observability as metrics
from rung.api.resource import ModelDeployment
from rung.api.spec import TrainingData
from rung.egress import UrlPolicy
from rung.plan.events import Event, timestamp
from rung.plan.explainability import audit_sink

log = logging.getLogger(__name__)

EVENT_TYPE_PREFIX = "dev.rung.decision."


class EventSink(Protocol):
    """Where decisions are announced (as `rung.reconciler.EventSink`)."""

    def post(self, body: dict[str, Any], event: Event) -> bool | None: ...


class Sender(Protocol):
    """POSTs `body` to `url`; returns the HTTP status, raises on transport failure."""

    def __call__(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout: float
    ) -> int: ...


class HttpSender:
    """A `Sender` over one urllib3 connection pool, without urllib3's own retries."""

    def __init__(self) -> None:
        import urllib3

        self._urllib3 = urllib3
        self._pool = urllib3.PoolManager(num_pools=4, maxsize=1)

    def __call__(self, url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> int:
        response = self._pool.request(
            "POST",
            url,
            body=body,
            headers=dict(headers),
            timeout=self._urllib3.Timeout(total=timeout),
            retries=False,
            redirect=False,
        )
        return int(response.status)


def decision_event(md: ModelDeployment, event: Event, now: datetime) -> CloudEvent:
    """The CloudEvent announcing `event`, taken on `md` (as it is after the decision)."""
    at = event.time or timestamp(now)
    status = md.status
    attributes = {
        "type": EVENT_TYPE_PREFIX + event.reason.lower(),
        "source": f"rung/{md.namespace}/{md.name}",
        "subject": md.spec.model.version,
        "time": at,
    }
    if event.id:
        attributes["id"] = event.id  # a delivery again after a restart keeps its id
    return CloudEvent(
        attributes,
        {
            "reason": event.reason,
            "message": event.message,
            "type": event.type,
            "level": md.spec.maturity.level,
            "phase": status.phase,
            "stable": status.stable.version if status.stable else None,
            "canary": status.canary.version if status.canary else None,
            "time": at,
            "data": _wire(md.spec.model.data),
            "stableData": _wire(status.stable.data if status.stable else None),
            "canaryData": _wire(status.canary.data if status.canary else None),
        },
    )


def _wire(data: TrainingData | None) -> dict[str, Any] | None:
    return data.wire() if data is not None else None


@dataclass(frozen=True)
class _Delivery:
    url: str
    headers: Mapping[str, str]
    body: bytes
    what: str
    id: str | None = None


STATES_KEPT = 10_000
"""Delivery states remembered (by event id) before the settled ones are forgotten."""


class AuditingEvents:
    """An EventSink that posts through `inner` and sends each decision to the audit sink."""

    def __init__(
        self,
        inner: EventSink,
        *,
        send: Sender | None = None,
        timeout: float = 2.0,
        attempts: int = 3,
        backoff: float = 0.5,
        max_pending: int = 1000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        egress: UrlPolicy | None = None,
    ) -> None:
        self.inner = inner
        self.egress = egress or UrlPolicy()
        self._refused: set[str] = set()
        self._posted: set[str] = set()
        """Event ids whose Kubernetes Event the inner sink delivered."""
        self._audits: dict[str, str] = {}
        """Event id -> "pending" (queued or being sent) or "done" (delivered, or refused
        by the sink). Unknown or given up: sent (again) on the next post."""
        self._state_lock = threading.Lock()
        self._failing: dict[str, str] = {}
        """Sinks whose last delivery failed, with why (logged once per change)."""
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.clock = clock
        self._send = send
        self._queue: queue.Queue[_Delivery | None] = queue.Queue(maxsize=max_pending)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def post(self, body: dict[str, Any], event: Event) -> bool:
        """Post the Kubernetes Event and queue the audit CloudEvent; True once both are
        delivered (an event with an id may be posted again until then: each part is
        done once)."""
        posted: bool | None = True
        try:
            if event.id is None or event.id not in self._posted:
                posted = self.inner.post(body, event)
                if posted is not False and event.id is not None:
                    self._posted.add(event.id)
        finally:
            audited = self._audit(body, event)
        return posted is not False and audited

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued decision was delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def close(self, timeout: float = 2.0) -> None:
        """Deliver what is queued (for at most `timeout`), then stop the sender thread."""
        if self._thread is None:
            return
        self.flush(timeout)
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout=max(timeout, 0.1))

    def _audit(self, body: Mapping[str, Any], event: Event) -> bool:
        """Queue the decision's CloudEvent; whether it is settled (delivered, or nothing
        to send). An event with an id is queued once while pending."""
        if event.id is not None:
            with self._state_lock:
                state = self._audits.get(event.id)
            if state is not None:
                return state == "done"
        meta = body.get("metadata") or {}
        what = f"{event.reason} on {meta.get('namespace')}/{meta.get('name')}"
        try:
            md = ModelDeployment.from_body(body)
            sink = audit_sink(md)
            if sink is None:
                return True
            refusal = self.egress.refusal(sink)
            if refusal is not None:
                metrics.AUDIT_EVENTS.labels("refused").inc()
                if sink not in self._refused:  # once per sink, not per decision
                    self._refused.add(sink)
                    log.warning("audit: decisions for %s not sent: %s", what, refusal)
                return True
            headers, data = to_structured(decision_event(md, event, self.clock()))
        except Exception as error:  # a malformed object must not stop the reconciler
            metrics.AUDIT_EVENTS.labels("invalid").inc()
            log.warning("audit: cannot build the CloudEvent for %s: %s", what, error)
            return True
        self._set_state(event.id, "pending")
        try:
            self._queue.put_nowait(_Delivery(sink, dict(headers), bytes(data), what, event.id))
        except queue.Full:
            self._set_state(event.id, None)
            metrics.AUDIT_EVENTS.labels("dropped").inc()
            log.warning("audit: %d decisions queued; dropped %s", self._queue.maxsize, what)
            return event.id is None  # an outboxed decision is queued again next time
        self._ensure_thread()
        return event.id is None  # without an id, nobody waits for the delivery

    def _set_state(self, event_id: str | None, state: str | None) -> None:
        if event_id is None:
            return
        with self._state_lock:
            if state is None:
                self._audits.pop(event_id, None)
            else:
                self._audits[event_id] = state
            if len(self._audits) > STATES_KEPT:
                for key in [k for k, v in self._audits.items() if v == "done"]:
                    del self._audits[key]

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None:
                if self._send is None:
                    self._send = HttpSender()
                self._thread = threading.Thread(target=self._run, name="rung-audit", daemon=True)
                self._thread.start()
                atexit.register(self.close)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._deliver(item)
            finally:
                self._queue.task_done()

    def _deliver(self, item: _Delivery) -> None:
        send = self._send
        assert send is not None
        problem = "not sent"
        for attempt in range(self.attempts):
            if attempt and self._stop.wait(self.backoff * 2 ** (attempt - 1)):
                break
            try:
                status = send(item.url, item.headers, item.body, self.timeout)
            except Exception as error:  # transport failures: timeouts, refused, DNS
                problem = f"{type(error).__name__}: {error}"
                continue
            if 200 <= status < 300:
                metrics.AUDIT_EVENTS.labels("delivered").inc()
                log.debug("audit: sent %s to %s", item.what, item.url)
                if self._failing.pop(item.url, None) is not None:
                    log.info("audit: %s accepts decisions again", item.url)
                self._set_state(item.id, "done")
                return
            problem = f"HTTP {status}"
            if status < 500 and status not in (408, 429):
                self._set_state(item.id, "done")  # the sink refuses this event for good
                break  # retrying will not help
        else:
            self._set_state(item.id, None)  # given up for now: an outboxed one is sent again
        metrics.AUDIT_EVENTS.labels("failed").inc()
        repeated = self._failing.get(item.url) == problem
        self._failing[item.url] = problem
        log.log(
            logging.DEBUG if repeated else logging.WARNING,  # once per sink and problem
            "audit: %s could not be sent to %s: %s",
            item.what,
            item.url,
            problem,
        )
