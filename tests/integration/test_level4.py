"""Level 4 on real parts: explainer and payload logger in the InferenceServices, the
approval gate, ownership metadata at admission, and the decision trail in an audit sink.

The audit sink is an HTTP server on 127.0.0.1 started by the test; it parses every
request with `cloudevents.http.from_http`, so a malformed CloudEvent fails the test.
Rollouts run on the level-2 bench (real Prometheus scraping real KServe model servers);
the real KServe controller reconciles the InferenceServices.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import from_http
from integration_kit import (
    condition,
    create_md,
    get_isvc,
    md_holds,
    model_deployment,
    patch_md,
    rung_cli,
    wait_until,
    watch_md,
)
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from test_level2 import NAME, _deploy_v1, _phase, _to_v2, bench, level2

from rung.plan.diff import covers
from rung.plan.explainability import ART_IMAGE, SIDECAR_CONTAINER
from testbed.loopback import LoopbackServer, QuietHandler

Obj = dict[str, Any]
GOVERNANCE = {
    "owner": "team-fraud",
    "contact": "fraud-oncall@example.com",
    "intendedUse": "Scores card payments for fraud review; not for credit decisions.",
    "riskClass": "high",
}
# Level 3 is part of level 4: a pipeline is required; without triggers it only runs
# on `rung retrain`, which these tests never do.
RETRAINING = {"pipeline": {"type": "webhook", "webhook": {"url": "http://127.0.0.1:9/retrain"}}}
ART = {"art": {"type": "SquareAttack"}}
ROLLOUT_DECISIONS = [
    "CanaryStarted",
    "StepAdvanced",
    "StepAdvanced",
    "AwaitingApproval",
    "Promoting",
    "Promoted",
]


# --- the audit sink ------------------------------------------------------------------


@dataclass
class AuditSink:
    """CloudEvents received over HTTP, and requests that were not valid CloudEvents."""

    url: str = ""
    events: list[Any] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def decisions(self, namespace: str) -> list[Any]:
        with self.lock:
            return [e for e in self.events if e["source"] == f"rung/{namespace}/{NAME}"]

    def reasons(self, namespace: str) -> list[str]:
        return [e.data["reason"] for e in self.decisions(namespace)]


@contextmanager
def audit_sink() -> Iterator[AuditSink]:
    sink = AuditSink()

    class Handler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
            data = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                event = from_http(dict(self.headers), data)
            except Exception as error:
                with sink.lock:
                    sink.invalid.append(f"{error}: {data[:200]!r}")
                self.send_response(400)
            else:
                with sink.lock:
                    sink.events.append(event)
                self.send_response(202)
            self.end_headers()

    with LoopbackServer(Handler, "/events") as server:
        sink.url = server.url
        yield sink


# --- helpers -------------------------------------------------------------------------


def level4(
    namespace: str,
    prometheus_url: str,
    router: str,
    sink_url: str | None,
    *,
    explainer: Obj | None = None,
    **rollout: Any,
) -> Obj:
    body = level2(namespace, prometheus_url, router, **rollout)
    spec = body["spec"]
    spec["maturity"]["level"] = 4
    spec["governance"] = GOVERNANCE
    spec["retraining"] = RETRAINING
    spec["explainability"] = {}
    if explainer is not None:
        spec["explainability"]["explainer"] = explainer
    if sink_url is not None:
        spec["explainability"]["payloadLogging"] = {"url": sink_url, "mode": "all"}
    return body


def plain_level4(namespace: str, sink_url: str | None = None, **model: Any) -> Obj:
    """A level-4 ModelDeployment without rollout settings (defaults), for first deploys."""
    body = model_deployment(
        NAME,
        namespace,
        level=4,
        governance=GOVERNANCE,
        retraining=RETRAINING,
        explainability=({"payloadLogging": {"url": sink_url}} if sink_url else {}),
    )
    body["spec"]["model"].update(model)
    return body


def isvc(api: client.ApiClient, namespace: str, name: str = NAME) -> Obj:
    found = get_isvc(api, namespace, name)
    assert found is not None, f"no InferenceService {name}"
    return found


def approve(namespace: str) -> str:
    return rung_cli("approve", NAME, "-n", namespace)


def held_at_the_gate(api: client.ApiClient, namespace: str, operator: Any) -> Obj:
    """Wait for the Paused phase, then watch three rollout intervals pass: still Paused."""
    md = watch_md(api, namespace, NAME, lambda o: _phase(o) == "Paused", "paused", timeout=120)
    now = md_holds(api, namespace, NAME, lambda o: _phase(o) == "Paused", "Paused", 6)
    assert _phase(now) == "Paused"
    assert now["status"]["stable"]["version"] == "v1"
    return md


def promoted(api: client.ApiClient, namespace: str) -> Obj:
    return watch_md(
        api,
        namespace,
        NAME,
        lambda o: _phase(o) == "Ready" and o["status"]["stable"]["version"] == "v2",
        "v2 promoted",
        timeout=60,
    )


def k8s_event_reasons(api: client.ApiClient, namespace: str) -> set[str]:
    items = client.CoreV1Api(api).list_namespaced_event(namespace).items
    return {str(e.reason) for e in items if e.involved_object.kind == "ModelDeployment"}


# --- admission -----------------------------------------------------------------------

GOVERNANCE_FIELDS = ["owner", "contact", "intendedUse", "riskClass"]


@pytest.mark.usefixtures("rung_crds")
@pytest.mark.parametrize(
    "given",
    [{}, {"owner": "team-fraud"}, {"owner": "team-fraud", "riskClass": "high"}],
    ids=["none", "owner-only", "owner-and-risk"],
)
def test_level_4_without_ownership_metadata_is_rejected_naming_what_is_missing(
    kube_api: client.ApiClient, namespace: str, given: Obj
) -> None:
    body = plain_level4(namespace)
    if given:
        body["spec"]["governance"] = given
    else:
        del body["spec"]["governance"]
    with pytest.raises(ApiException) as caught:
        create_md(kube_api, body)
    assert caught.value.status == 422
    message = str(caught.value.body)
    for name in GOVERNANCE_FIELDS:
        missing = f"spec.governance.{name}: Required value: spec.governance.{name} is required"
        assert (missing in message) == (name not in given), (name, message)
    assert "at maturity level 4" in message


@pytest.mark.usefixtures("rung_crds")
def test_level_4_with_ownership_metadata_is_accepted(
    kube_api: client.ApiClient, namespace: str
) -> None:
    created = create_md(kube_api, plain_level4(namespace))
    assert created["spec"]["governance"] == GOVERNANCE


@pytest.mark.usefixtures("rung_crds")
def test_custom_explainer_without_image_is_rejected(
    kube_api: client.ApiClient, namespace: str
) -> None:
    body = plain_level4(namespace)
    body["spec"]["explainability"] = {"explainer": {"type": "custom"}}
    with pytest.raises(ApiException) as caught:
        create_md(kube_api, body)
    assert caught.value.status == 422
    message = str(caught.value.body)
    assert "spec.explainability.explainer.image" in message
    assert "required for type custom" in message


# --- full rollouts -------------------------------------------------------------------


def test_gateway_api_rollout_is_explained_audited_and_held_for_approval(
    kube_api: client.ApiClient, namespace: str, tmp_path: Path, operator: Any
) -> None:
    with (
        audit_sink() as sink,
        bench(tmp_path, kube_api, namespace, "gateway-api") as b,
    ):
        body = level4(namespace, b.prometheus.url, "gateway-api", sink.url)
        _deploy_v1(kube_api, namespace, body)

        stable = isvc(kube_api, namespace)
        assert covers(stable["spec"]["explainer"], ART)
        assert covers(stable["spec"]["predictor"]["logger"], {"url": sink.url, "mode": "all"})
        md = watch_md(kube_api, namespace, NAME, lambda o: True, "v1")
        explainable, audit = condition(md, "Explainable"), condition(md, "AuditLogging")
        assert explainable is not None
        assert (explainable["status"], explainable["reason"]) == ("True", "ExplainerConfigured")
        assert audit is not None
        assert audit["status"] == "True"
        assert sink.url in audit["message"]

        _to_v2(kube_api, namespace)
        canary = wait_until(
            lambda: get_isvc(kube_api, namespace, f"{NAME}-canary"), "canary InferenceService"
        )
        # both InferenceServices of the canary explain and log
        for each in (isvc(kube_api, namespace), canary):
            assert covers(each["spec"]["explainer"], ART)
            assert covers(each["spec"]["predictor"]["logger"], {"url": sink.url, "mode": "all"})
        assert canary["spec"]["predictor"]["model"]["storageUri"].endswith("/v2")

        paused = held_at_the_gate(kube_api, namespace, operator)
        assert paused["status"]["canary"]["weight"] == 100
        assert "approved v2" in approve(namespace)
        done = promoted(kube_api, namespace)
        assert [h["event"] for h in done["status"]["history"]][-3:] == [
            "AwaitingApproval",
            "Approved",
            "Promoted",
        ]
        final = isvc(kube_api, namespace)
        assert covers(final["spec"]["explainer"], ART)
        assert final["spec"]["predictor"]["model"]["storageUri"].endswith("/v2")

        wait_until(lambda: "Promoted" in sink.reasons(namespace), "Promoted in the audit sink")
        decisions = sink.decisions(namespace)
        reasons = sink.reasons(namespace)
        assert sink.invalid == []
        assert reasons[0] == "Deploying"
        assert [r for r in reasons if r in set(ROLLOUT_DECISIONS)] == ROLLOUT_DECISIONS
        # every decision announced as a Kubernetes Event went to the sink as well
        wait_until(
            lambda: k8s_event_reasons(kube_api, namespace) >= set(ROLLOUT_DECISIONS),
            "rollout Events",
        )
        wait_until(
            lambda: k8s_event_reasons(kube_api, namespace) <= set(sink.reasons(namespace)),
            "every Event reason in the audit sink",
        )
        for event in decisions:
            reason = event.data["reason"]
            assert event["specversion"] == "1.0"
            assert event["type"] == f"dev.rung.decision.{reason.lower()}"
            assert event["source"] == f"rung/{namespace}/{NAME}"
            assert event["subject"] == ("v1" if reason == "Deploying" else "v2")
            assert event["id"]
            assert event.data["level"] == 4
            assert set(event.data) >= {"reason", "message", "type", "stable", "canary", "time"}
        by_reason = {e.data["reason"]: e.data for e in decisions}
        assert by_reason["AwaitingApproval"]["phase"] == "Paused"
        assert by_reason["AwaitingApproval"]["canary"] == "v2"
        assert by_reason["AwaitingApproval"]["stable"] == "v1"
        assert "approved" in by_reason["Promoting"]["message"]
        assert by_reason["Promoted"]["stable"] == "v2"
        assert by_reason["Promoted"]["canary"] is None


def test_kserve_canary_with_explainer_sidecar_waits_for_approval(
    kube_api: client.ApiClient, namespace: str, tmp_path: Path, operator: Any
) -> None:
    with (
        audit_sink() as sink,
        bench(tmp_path, kube_api, namespace, "kserve") as b,
    ):
        body = level4(
            namespace, b.prometheus.url, "kserve", sink.url, explainer={"mode": "sidecar"}
        )
        _deploy_v1(kube_api, namespace, body)

        spec = isvc(kube_api, namespace)["spec"]
        assert "explainer" not in spec
        (sidecar,) = spec["predictor"]["containers"]
        assert sidecar["name"] == SIDECAR_CONTAINER
        assert sidecar["image"] == ART_IMAGE
        args = sidecar["args"]
        assert args[args.index("--predictor_host") + 1] == "localhost:8080"
        assert args[args.index("--model_name") + 1] == NAME
        assert spec["predictor"]["model"]["modelFormat"] == {"name": "sklearn"}

        _to_v2(kube_api, namespace)
        with_canary = wait_until(
            lambda: (
                (get_isvc(kube_api, namespace, NAME) or {}).get("spec", {}).get("canary")
                and get_isvc(kube_api, namespace, NAME)
            ),
            "the canary predictor",
        )
        canary = with_canary["spec"]["canary"][0]["predictor"]
        assert [c["name"] for c in canary["containers"]] == [SIDECAR_CONTAINER]
        assert covers(canary["logger"], {"url": sink.url, "mode": "all"})
        assert canary["model"]["storageUri"].endswith("/v2")

        held_at_the_gate(kube_api, namespace, operator)
        approve(namespace)
        done = promoted(kube_api, namespace)

        final = isvc(kube_api, namespace)["spec"]
        assert not final.get("canary")
        assert final["predictor"]["name"] == done["status"]["stable"]["predictorName"]
        assert [c["name"] for c in final["predictor"]["containers"]] == [SIDECAR_CONTAINER]
        assert covers(final["predictor"]["logger"], {"url": sink.url, "mode": "all"})
        wait_until(lambda: "Promoted" in sink.reasons(namespace), "Promoted in the audit sink")
        assert sink.invalid == []
        reasons = sink.reasons(namespace)
        assert [r for r in reasons if r in set(ROLLOUT_DECISIONS)] == ROLLOUT_DECISIONS


# --- what cannot be explained, sinks that fail, switching off -------------------------


@pytest.mark.usefixtures("operator")
def test_llm_gets_no_explainer_and_says_why(kube_api: client.ApiClient, namespace: str) -> None:
    with audit_sink() as sink:
        create_md(
            kube_api,
            plain_level4(
                namespace,
                sink.url,
                kind="llm",
                format="huggingface",
                storageUri="hf://meta-llama/Llama-3.1-8B-Instruct",
                # the plain InferenceService (huggingface runtime), where KServe's logger
                # and explainers apply; LLMInferenceServices: test_llmops.py
                llm={"api": "InferenceService"},
            ),
        )
        md = watch_md(
            kube_api,
            namespace,
            NAME,
            lambda o: _phase(o) == "Ready" and condition(o, "Explainable") is not None,
            "Ready with an Explainable condition",
        )
        explainable = condition(md, "Explainable")
        assert explainable is not None
        assert (explainable["status"], explainable["reason"]) == ("False", "NoExplainerForModel")
        assert "LLMs" in explainable["message"]
        assert "spec.explainability.explainer.type custom" in explainable["message"]
        spec = isvc(kube_api, namespace)["spec"]
        assert "explainer" not in spec
        assert "containers" not in spec["predictor"]
        assert covers(spec["predictor"]["logger"], {"url": sink.url, "mode": "all"})
        wait_until(
            lambda: "ExplainerUnavailable" in k8s_event_reasons(kube_api, namespace),
            "ExplainerUnavailable Event",
        )
        wait_until(
            lambda: "ExplainerUnavailable" in sink.reasons(namespace),
            "ExplainerUnavailable in the audit sink",
        )
        warning = next(
            e for e in sink.decisions(namespace) if e.data["reason"] == "ExplainerUnavailable"
        )
        assert warning.data["type"] == "Warning"


@pytest.mark.usefixtures("operator")
def test_unreachable_audit_sink_never_blocks_reconciling(
    kube_api: client.ApiClient, namespace: str, operator: Any
) -> None:
    dead = "http://127.0.0.1:9/events"  # the discard port: connection refused
    create_md(kube_api, plain_level4(namespace, dead))
    md = watch_md(kube_api, namespace, NAME, lambda o: _phase(o) == "Ready", "Ready")
    assert condition(md, "AuditLogging")["status"] == "True"  # type: ignore[index]
    wait_until(
        lambda: (
            f"audit: Deploying on {namespace}/{NAME} could not be sent to {dead}" in operator.log()
        ),
        "the failed delivery logged",
    )
    # and the operator keeps reconciling: a model change still goes through
    patch_md(kube_api, namespace, NAME, {"spec": {"maturity": {"level": 1}}})
    watch_md(
        kube_api,
        namespace,
        NAME,
        lambda o: (o.get("status") or {}).get("level") == 1,
        "level 1 in status",
    )


@pytest.mark.usefixtures("operator")
def test_switching_explainability_and_logging_off_removes_them(
    kube_api: client.ApiClient, namespace: str
) -> None:
    with audit_sink() as sink:
        create_md(kube_api, plain_level4(namespace, sink.url))
        watch_md(kube_api, namespace, NAME, lambda o: _phase(o) == "Ready", "Ready")
        spec = isvc(kube_api, namespace)["spec"]
        assert covers(spec["explainer"], ART)
        assert spec["predictor"]["logger"]["url"] == sink.url

        patch_md(
            kube_api,
            namespace,
            NAME,
            {
                "spec": {
                    "maturity": {"overrides": {"explainability": False, "payloadLogging": False}}
                }
            },
        )
        wait_until(
            lambda: "explainer" not in isvc(kube_api, namespace)["spec"],
            "explainer removed from the InferenceService",
        )
        spec = isvc(kube_api, namespace)["spec"]
        assert "logger" not in spec["predictor"]
        md = watch_md(
            kube_api,
            namespace,
            NAME,
            lambda o: condition(o, "Explainable") is None and condition(o, "AuditLogging") is None,
            "level-4 conditions gone",
        )
        assert "explainability" not in md["status"]["capabilities"]
        assert "approvalGate" in md["status"]["capabilities"]
