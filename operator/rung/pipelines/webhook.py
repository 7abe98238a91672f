"""Retraining requested from anything that accepts a CloudEvent over HTTP."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import requests
from cloudevents.conversion import to_structured
from cloudevents.http import CloudEvent

from rung.api.resource import ModelDeployment
from rung.pipelines.base import EVENT_TYPE, PipelineError, external_id
from rung.plan.observation import RunOutcome
from rung.plan.retraining import LaunchRequest


def build_event(request: LaunchRequest, time: datetime | None = None) -> CloudEvent:
    """A `dev.rung.retraining.requested` CloudEvent; its id is stable across relaunches."""
    md = request.md
    attributes = {
        "type": EVENT_TYPE,
        "source": f"rung/{md.namespace}/{md.name}",
        "id": external_id(md, request.run),
        "subject": request.run,
        "time": (time or datetime.now(UTC)).isoformat(),
        "datacontenttype": "application/json",
    }
    data: dict[str, Any] = {
        "model": md.name,
        "namespace": md.namespace,
        "version": request.version,
        "storageUri": request.storage_uri,
        "reason": request.reason,
        "trigger": request.trigger,
        "run": request.run,
        "data": request.data.wire() if request.data else None,
    }
    return CloudEvent(attributes, data)


class WebhookLauncher:
    """POSTs the CloudEvent in structured JSON mode; delivered (2xx) means Succeeded.

    The receiver owns the pipeline from there, so the run's outcome is the delivery.
    Deliveries are remembered by this process; after a restart an undelivered-looking
    run is posted again with the same event id (at least once: receivers de-duplicate
    on source and id).
    """

    name = "webhook"

    def __init__(self, session: requests.Session | None = None, timeout: float = 10.0) -> None:
        self.session = session or requests.Session()
        self.timeout = timeout
        self._delivered: dict[tuple[str, str, str], str] = {}
        self._lock = threading.Lock()

    def launch(self, request: LaunchRequest) -> None:
        webhook = request.pipeline.webhook
        if webhook is None:
            raise PipelineError("spec.retraining.pipeline.webhook is not set")
        headers, body = to_structured(build_event(request))
        try:
            response = self.session.post(
                webhook.url, data=body, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as error:
            raise PipelineError(f"POST {webhook.url}: {error}") from error
        if not 200 <= response.status_code < 300:
            raise PipelineError(
                f"POST {webhook.url}: {response.status_code} {response.text[:300]}".strip()
            )
        md = request.md
        with self._lock:
            self._delivered[(md.namespace, md.name, request.run)] = (
                f"CloudEvent delivered to {webhook.url} ({response.status_code})"
            )

    def outcome(self, md: ModelDeployment, run: str) -> RunOutcome:
        with self._lock:
            delivered = self._delivered.get((md.namespace, md.name, run))
        return RunOutcome("Succeeded", delivered) if delivered else RunOutcome("NotFound")
