"""Read, plan, apply, write status: the I/O around `plan.reconcile.plan()`."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from rung import observability as metrics
from rung.api.resource import ModelDeployment
from rung.api.spec import Pipeline
from rung.api.status import OUTBOX_LIMIT, CheckResult, ModelDeploymentStatus, OutboxEntry
from rung.egress import UrlPolicy
from rung.gitrepo import Credentials, GitError, GitWriter
from rung.kube import (
    DEPLOYMENT,
    HTTP_ROUTE,
    INFERENCE_SERVICE,
    LLM_INFERENCE_SERVICE,
    MODEL_DEPLOYMENT,
    OWNED_KINDS,
    READ_KINDS,
    SERVICE,
    Kind,
    Kube,
    ObjectGoneError,
    kind_of,
)
from rung.metrics import (
    InvalidMeasurementError,
    MetricProvider,
    MetricsUnavailableError,
    provider_for,
)
from rung.pipelines import Launcher, PipelineError, launcher_for
from rung.plan import reasons
from rung.plan.apply_failure import ApplyFailure, after_apply_failure
from rung.plan.diff import needs_apply, with_applied_hash
from rung.plan.events import Event, timestamp
from rung.plan.fail_safe import fail_safe_due, fail_safe_rollback
from rung.plan.gitops import (
    GitWriteOutcome,
    edit_manifest,
    recorded,
    retrained_model_problem,
    write_back,
    write_failed,
)
from rung.plan.live import LiveObjects
from rung.plan.observation import ClusterFeatures, Observation, Reading, RunOutcome
from rung.plan.outbox import clear_in, undelivered
from rung.plan.reads import ReadPlan, interpret, reads, router_of
from rung.plan.reconcile import plan
from rung.plan.retraining import LaunchRequest
from rung.settings import OperatorSettings

log = logging.getLogger(__name__)
CONFLICT_ATTEMPTS = 3
APPLY_RETRY_SECONDS = 5.0
"""How soon a failed apply is tried again."""
OUTBOX_RETRY_SECONDS = 2.0
"""How soon an undelivered announcement in status.outbox is tried again."""
GIT_RETRY_SECONDS = 30.0
"""How soon a failed write-back to Git is tried again."""
MIN_REQUEUE_SECONDS = 1.0
"""The soonest an object is woken again by its own schedule."""
FEATURES_TTL = 300.0
KIND = "ModelDeployment"


class EventSink(Protocol):
    """Where decisions are announced (a Kubernetes Event, and the audit sink).

    `post` returns False when the announcement is not (yet) fully delivered, so that
    its outbox entry stays; None or True: delivered. Posting an event with an `id`
    again must be harmless (the Event and CloudEvent are named by it)."""

    def post(self, body: dict[str, Any], event: Event) -> bool | None: ...


class TransientError(RuntimeError):
    """A failure worth retrying with backoff (conflict, throttling, server trouble)."""


@dataclass
class ReconcileResult:
    """What one reconcile did; counted by tests and metrics."""

    applied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    status_written: bool = False
    events: list[Event] = field(default_factory=list)
    analysis_checks: list[CheckResult] = field(default_factory=list)
    retraining_runs: list[tuple[str, str]] = field(default_factory=list)
    """(launcher, outcome) of retraining runs started, finished or failed to launch."""
    requeue_after: float | None = None
    """Seconds until the object next needs attention by itself (an analysis, a
    deadline, a snapshot, a trigger); None: only when something changes."""


class Reconciler:
    """Brings one ModelDeployment's world in line with its spec."""

    def __init__(
        self,
        kube: Kube,
        settings: OperatorSettings,
        events: EventSink,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        providers: Callable[[str, str], MetricProvider] = provider_for,
        launchers: Callable[[str], Launcher] | None = None,
        git: GitWriter | None = None,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.egress = UrlPolicy.parse(settings.allowed_hosts)
        """Which URLs named by ModelDeployments the operator may call (--allowed-hosts)."""
        self.events = events
        self.clock = clock
        self.providers = providers
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._features: ClusterFeatures | None = None
        self._served: dict[Kind, tuple[bool, float]] = {}
        self._features_at = 0.0
        self._providers: dict[str, MetricProvider] = {}
        self._launcher_factory = launchers or (lambda name: launcher_for(name, kube.api_client))
        self._launchers: dict[str, Launcher] = {}
        self._launch_failures: dict[tuple[str, str, str], str] = {}
        """Why the last launch of a run failed, by (namespace, name, run), in this process."""
        self._failures: dict[tuple[str, str], int] = {}
        """Failed reconciles in a row, by object (the fail-safe counts them)."""
        self._delivered: dict[tuple[str, str], dict[str, float]] = {}
        """Outbox ids this process has delivered that are still in status, by object,
        with when (the clock's timestamp): the next status write drops them
        (rung.plan.outbox)."""
        self.git = git or GitWriter()
        """Writes decisions back to Git (spec.gitops)."""

    def features(self) -> ClusterFeatures:
        """What the cluster offers; discovered again every FEATURES_TTL seconds, so that
        CRDs installed after start-up (e.g. the Prometheus Operator's) are picked up."""
        if self._features is None or time.monotonic() - self._features_at > FEATURES_TTL:
            from rung.kube import HTTP_ROUTE, POD_MONITOR

            self._features = ClusterFeatures(
                prometheus_operator=self.kube.has_crd(POD_MONITOR),
                gateway_api=self.kube.has_crd(HTTP_ROUTE),
            )
            self._features_at = time.monotonic()
        return self._features

    def _serves(self, kind: Kind) -> bool:
        """Whether the cluster serves `kind` (asked again every FEATURES_TTL seconds)."""
        known = self._served.get(kind)
        if known is None or time.monotonic() - known[1] > FEATURES_TTL:
            known = (self.kube.has_crd(kind), time.monotonic())
            self._served[kind] = known
        return known[0]

    def _lock(self, namespace: str, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault((namespace, name), threading.Lock())

    def reconcile(self, namespace: str, name: str) -> ReconcileResult:
        """One pass for the ModelDeployment `namespace/name`; serialised per object."""
        started = time.monotonic()
        try:
            result = self._reconcile_with_retries(namespace, name)
        except Exception as error:
            metrics.RECONCILE_ERRORS.labels(KIND, type(error).__name__).inc()
            metrics.RECONCILES.labels(KIND, "error").inc()
            if not isinstance(error, TransientError) and type(error).__name__ not in UNREPORTED:
                key = (namespace, name)
                self._failures[key] = failures = self._failures.get(key, 0) + 1
                self._report_failure(namespace, name, error, failures)
            raise
        finally:
            metrics.RECONCILE_DURATION.labels(KIND).observe(time.monotonic() - started)
        self._failures.pop((namespace, name), None)
        changed = result.applied or result.deleted or result.status_written or result.events
        metrics.RECONCILES.labels(KIND, "changed" if changed else "noop").inc()
        for ref in result.applied:
            metrics.OBJECTS_APPLIED.labels(ref.split("/")[0]).inc()
        for ref in result.deleted:
            metrics.OBJECTS_DELETED.labels(ref.split("/")[0]).inc()
        for event in result.events:
            metrics.DECISIONS.labels(event.reason, event.type).inc()
            outcome = reasons.ROLLOUT_OUTCOMES.get(event.reason)
            if outcome:
                metrics.ROLLOUTS.labels(outcome).inc()
        for launcher, outcome in result.retraining_runs:
            metrics.RETRAINING_RUNS.labels(launcher, outcome).inc()
        for check in result.analysis_checks:
            verdict = {True: "pass", False: "fail", None: "no-data"}[check.passed]
            metrics.ANALYSIS_CHECKS.labels(check.metric, verdict).inc()
        return result

    def _report_failure(
        self, namespace: str, name: str, error: Exception, failures: int = 1
    ) -> None:
        """Make a failed reconcile visible where users look: `Degraded=True` with reason
        `ReconcileFailed` and the real message, and a Warning Event, once per distinct
        message (the next successful pass sets Degraded again from the plan). Written on
        the raw status, so that even a spec the models cannot parse is reported. The
        `failures`-th failure in a row of a canary rolls it back (`_fail_safe`)."""
        message = describe(error)
        try:
            body = self.kube.get(MODEL_DEPLOYMENT, namespace, name)
            if body is None or body["metadata"].get("deletionTimestamp"):
                return
            if self._fail_safe(body, message, failures):
                return
            status = dict(body.get("status") or {})
            conditions = [dict(c) for c in status.get("conditions") or []]
            old = next((c for c in conditions if c.get("type") == "Degraded"), None)
            if old and (old.get("reason"), old.get("message")) == (
                reasons.RECONCILE_FAILED,
                message,
            ):
                return  # reported already
            now = self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            degraded = {
                "type": "Degraded",
                "status": "True",
                "reason": reasons.RECONCILE_FAILED,
                "message": message,
                "lastTransitionTime": (
                    old["lastTransitionTime"]
                    if old and old.get("status") == "True" and old.get("lastTransitionTime")
                    else now
                ),
                "observedGeneration": body["metadata"].get("generation"),
            }
            conditions = [c for c in conditions if c.get("type") != "Degraded"] + [degraded]
            stored = self.kube.replace_status(body, {**status, "conditions": conditions})
            self.events.post(stored, Event(reasons.RECONCILE_FAILED, message, "Warning"))
        except Exception as report_error:  # the report is best effort; the error is raised
            log.debug("could not report the failure of %s/%s: %s", namespace, name, report_error)

    def _fail_safe(self, body: dict[str, Any], message: str, failures: int) -> bool:
        """Take traffic off a canary without the planner once reconciling its object
        failed `failures` times in a row (rung.plan.fail_safe): status first (RollingBack,
        announced through the outbox), then the router's patches on the live objects.
        Whether it acted; its own failures are logged, never raised."""
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        try:
            status = ModelDeploymentStatus.model_validate(body.get("status") or {})
            if not fail_safe_due(status, failures):
                return False
            md = ModelDeployment.from_body(body)
            now = self.clock()
            rolled_back, events = fail_safe_rollback(status, message, failures, md.generation, now)
            outbox = [*status.outbox, *_outbox_entries(events, now)]
            result = ReconcileResult()
            body = self._write_status(body, _outboxed(rolled_back, outbox), result)
            patches = router_of(md).traffic_to_stable(md, _live_objects(self._live(md)))
            for patch in patches:
                self.kube.patch(patch.kind, namespace, patch.name, patch.patch)
            if events or patches:
                log.warning(
                    "%s/%s: %d reconciles in a row failed during the canary; fail-safe: "
                    "traffic moved to stable (%s)",
                    namespace,
                    name,
                    failures,
                    ", ".join(f"{p.kind.kind}/{p.name}" for p in patches) or "already there",
                )
            self._deliver(body, outbox)
            return bool(events or patches)
        except Exception as error:
            log.warning("%s/%s: the fail-safe rollback failed: %s", namespace, name, error)
            return False

    def _reconcile_with_retries(self, namespace: str, name: str) -> ReconcileResult:
        with self._lock(namespace, name):
            for attempt in range(1, CONFLICT_ATTEMPTS + 1):
                try:
                    return self._reconcile(namespace, name, fresh=attempt > 1)
                except ObjectGoneError:
                    # Deleted without a DELETED event (its namespace went): nothing to do,
                    # nothing to retry; the cache has forgotten it and what it owned.
                    log.debug("%s/%s no longer exists", namespace, name)
                    self._failures.pop((namespace, name), None)
                    self._delivered.pop((namespace, name), None)
                    return ReconcileResult()
                except ApiException as error:
                    if error.status == 409 and attempt < CONFLICT_ATTEMPTS:
                        # Someone wrote the object between our read and our status write
                        # (or the cache was behind): read it from the API server, redo.
                        continue
                    if error.status in (409, 429) or (error.status or 0) >= 500:
                        raise TransientError(f"{error.status} {error.reason}") from error
                    raise
            raise AssertionError("unreachable")

    def _reconcile(self, namespace: str, name: str, fresh: bool = False) -> ReconcileResult:
        result = ReconcileResult()
        read = getattr(self.kube, "get_fresh", self.kube.get) if fresh else self.kube.get
        body = read(MODEL_DEPLOYMENT, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return result
        md = ModelDeployment.from_body(body)
        now = self.clock()
        live = self._live(md)
        observation = self._observe(md, live, now)
        the_plan = plan(observation)
        if observation.measurements is not None and the_plan.status.analysis is not None:
            result.analysis_checks = list(the_plan.status.analysis.checks)
        # Decisions are committed to status before the world is changed to match
        # them: a restarted operator resumes from status and re-applies, so no
        # step is skipped or repeated, whatever moment it was stopped at. Their
        # announcements go into status.outbox in the same write, and leave it once
        # delivered: none is lost when the operator stops in between.
        decided = list(the_plan.events)
        box = _Announcements.of(md.status.outbox, self._delivered_in((namespace, name), md))
        box.add(_outbox_entries(decided, now))
        body = self._write_decision(body, the_plan.status, box, result)
        if the_plan.launch is not None:
            launch_failures: list[Event] = []
            self._launch(the_plan.launch, launch_failures, result)
            if launch_failures:
                # Announced through the outbox like every decision: an operator that
                # stops now still delivers them (once: each attempt has its own id).
                decided.extend(launch_failures)
                box.add(_outbox_entries(launch_failures, now))
                body = self._write_decision(body, the_plan.status, box, result)
        pipeline = md.spec.retraining.pipeline if md.spec.retraining else None
        for event in decided:
            outcome = reasons.RETRAINING_OUTCOMES.get(event.reason)
            if outcome and pipeline is not None:
                result.retraining_runs.append((pipeline.type, outcome))
        failures = self._apply_plan(md, the_plan.desired, live, result)
        if failures is None:
            return result  # the namespace is being deleted with everything in it
        if failures:
            failed, failure_events = after_apply_failure(
                the_plan.status, failures, md.generation, now
            )
            if _but_outbox(failed.wire()) != _but_outbox(body.get("status") or {}):
                log.warning("applying for %s/%s failed: %s", namespace, name, failures[0].message)
                decided.extend(failure_events)
                box.add(_outbox_entries(failure_events, now))
            body = self._write_decision(body, failed, box, result)
        elif the_plan.status_when_applied is not None:
            body = self._write_decision(body, the_plan.status_when_applied, box, result)
        self._deliver(body, box.to_write)
        late: list[Event] = []  # decided after this pass's status (Git write-back)
        body, git_failed = self._write_back(body, now, result, late)
        result.events = decided + late
        result.requeue_after = self._outbox_requeue(body, self._requeue_after(body, live, now))
        if git_failed:
            result.requeue_after = _no_later_than(result.requeue_after, GIT_RETRY_SECONDS)
        if failures:
            # A refusal may clear without a change Rung can see (a policy lifted, a
            # webhook back): try again soon, writing nothing while it repeats.
            result.requeue_after = _no_later_than(result.requeue_after, APPLY_RETRY_SECONDS)
        _log_result(md, result)
        return result

    def _write_back(
        self, body: dict[str, Any], now: datetime, result: ReconcileResult, late: list[Event]
    ) -> tuple[dict[str, Any], bool]:
        """spec.gitops: write the decision due (rollback, retrained model) to Git, then
        record it in status (plan.gitops decides; this does the I/O). Returns the object as
        stored and whether a write failed (to be tried again)."""
        md = ModelDeployment.from_body(body)
        if md.spec.gitops is None:
            return body, False
        at = timestamp(now)
        problem = retrained_model_problem(md.annotations)
        write = write_back(md)
        if write is None and problem is None:
            return body, False
        failed = True
        if write is None:
            status, events = write_failed(md, problem or "", at)
        elif (refusal := self.egress.refusal(md.spec.gitops.repository)) is not None:
            status, events = write_failed(md, f"refused: {refusal}", at)
        else:
            try:
                credentials = self._git_credentials(md)
            except GitError as error:
                status, events = write_failed(md, str(error), at)
            else:
                gitops = md.spec.gitops
                try:
                    written = self.git.write(
                        gitops.repository,
                        gitops.branch,
                        gitops.path,
                        lambda text: edit_manifest(text, md, write),
                        write.message(md),
                        gitops.author,
                        credentials,
                    )
                    outcome = GitWriteOutcome(commit=written.commit, attempts=written.attempts)
                    failed = False
                except GitError as error:
                    outcome = GitWriteOutcome(error=str(error))
                status, events = recorded(md, write, outcome, at)
                log.info(
                    "git write-back for %s/%s (%s): %s",
                    md.namespace,
                    md.name,
                    write.decision,
                    outcome.error or outcome.commit or "already in Git",
                )
        outbox = [*md.status.outbox, *_outbox_entries(events, now)]
        body = self._write_status(body, _outboxed(status, outbox), result)
        late.extend(events)
        self._deliver(body, outbox)
        return body, failed

    def _git_credentials(self, md: ModelDeployment) -> Credentials | None:
        """The basic-auth credentials spec.gitops names (never logged, never in status)."""
        import base64

        from kubernetes import client as k8s

        gitops = md.spec.gitops
        ref = gitops.credentials_secret_ref if gitops else None
        if ref is None:
            return None
        try:
            secret = k8s.CoreV1Api(self.kube.api_client).read_namespaced_secret(
                ref.name, md.namespace
            )
        except ApiException as error:
            if error.status == 404:
                raise GitError(f"credentials Secret {ref.name} not found") from None
            raise GitError(
                f"credentials Secret {ref.name} cannot be read: {error.status} {error.reason}"
            ) from None
        data = secret.data or {}
        missing = [k for k in ("username", "password") if k not in data]
        if missing:
            raise GitError(f"credentials Secret {ref.name} has no {' or '.join(missing)}")
        return Credentials(
            base64.b64decode(data["username"]).decode(), base64.b64decode(data["password"]).decode()
        )

    def _requeue_after(
        self, body: dict[str, Any], live: dict[Kind, dict[str, dict[str, Any]]], now: datetime
    ) -> float | None:
        """When the object next needs attention, as the read plan of its new status says."""
        md = ModelDeployment.from_body(body)
        objects = _live_objects(live)
        due = reads(md, objects, now, self.settings.prometheus_url).next_due
        if due is None:
            return None
        # Never sooner than a second: what is due now was done by this pass, and an
        # object waiting on the cluster is woken by its watches.
        return max(MIN_REQUEUE_SECONDS, (due - now).total_seconds())

    def _live(self, md: ModelDeployment) -> dict[Kind, dict[str, dict[str, Any]]]:
        """Every owned object, by kind and name."""
        features = self.features()
        return {
            kind: {o["metadata"]["name"]: o for o in self._owned(kind, md, features)}
            for kind in (*OWNED_KINDS, *READ_KINDS)
        }

    def _observe(
        self, md: ModelDeployment, live: dict[Kind, dict[str, dict[str, Any]]], now: datetime
    ) -> Observation:
        """Read what the plan's read list asks for, into one Observation."""
        objects = _live_objects(live)
        to_read = reads(md, objects, now, self.settings.prometheus_url)
        answers = interpret(md, to_read, self._query(to_read), now)
        return Observation(
            md=md,
            now=now,
            inference_services=objects.inference_services,
            http_routes=objects.http_routes,
            deployments=objects.deployments,
            owned={kind.kind: objects for kind, objects in live.items()},
            features=self.features(),
            slo=answers.slo,
            measurements=answers.measurements,
            analysis_error=answers.analysis_error,
            invalid_measurements=answers.invalid_measurements,
            retraining_readings=answers.retraining_readings,
            run_outcomes=self._run_outcomes(md, to_read.runs),
        )

    def _query(self, to_read: ReadPlan) -> dict[str, Reading]:
        """Run every query of `to_read`; each answer is a value, no data, or an error."""
        queries = to_read.promql()
        if not queries or not to_read.prometheus_url:
            return {}
        url = to_read.prometheus_url
        refusal = None if url == self.settings.prometheus_url else self.egress.refusal(url)
        if refusal is not None:  # the spec's Prometheus, not the operator's own
            return {query: Reading(error=f"refused: {refusal}") for query in queries}
        provider = self._provider(to_read.prometheus_url)
        readings: dict[str, Reading] = {}
        unavailable: Reading | None = None
        for query in queries:
            if unavailable is not None:
                # One timeout per pass, not one per query: the rest are not sent.
                readings[query] = unavailable
                continue
            readings[query] = _read(provider, query)
            if readings[query].error is not None and not readings[query].invalid:
                unavailable = readings[query]
        return readings

    def _deliver(self, body: dict[str, Any], outbox: list[OutboxEntry]) -> None:
        """Post every outbox entry not delivered yet (idempotent by id) and remember those
        delivered: the object's next status write drops them from status (no write of
        their own now; rung.plan.outbox)."""
        meta = body["metadata"]
        delivered = self._delivered.setdefault((meta["namespace"], meta["name"]), {})
        for entry in undelivered(outbox, delivered):
            event = Event(entry.reason, entry.message, entry.type, id=entry.id, time=entry.time)
            if self.events.post(body, event) is not False:
                delivered[entry.id] = self.clock().timestamp()

    def _delivered_in(self, key: tuple[str, str], md: ModelDeployment) -> dict[str, float]:
        """The delivered ids still in `md`'s outbox (those gone from it are forgotten)."""
        ids = {entry.id for entry in md.status.outbox}
        kept = {i: at for i, at in self._delivered.get(key, {}).items() if i in ids}
        if kept:
            self._delivered[key] = kept
        else:
            self._delivered.pop(key, None)
        return kept

    def _write_decision(
        self,
        body: dict[str, Any],
        status: ModelDeploymentStatus,
        box: _Announcements,
        result: ReconcileResult,
    ) -> dict[str, Any]:
        """`status` with the pass's announcements, the delivered ones dropped; no write
        when dropping them would be its only change and can still wait."""
        waiting = self._clear_in(box.delivered.values())
        if waiting and _outboxed(status, box.kept).wire() == (body.get("status") or {}):
            return body
        return self._write_status(body, _outboxed(status, box.to_write), result)

    def _clear_in(self, delivered_at: Iterable[float]) -> float | None:
        """rung.plan.outbox.clear_in for entries delivered at these times."""
        now = self.clock().timestamp()
        return clear_in(now - at for at in delivered_at)

    def _outbox_requeue(self, body: dict[str, Any], after: float | None) -> float | None:
        """Look again soon while an announcement is undelivered; and, while delivered ones
        are left in status, no later than when a write of their own is due to clear them."""
        meta = body["metadata"]
        ids = [e.get("id") for e in (body.get("status") or {}).get("outbox") or []]
        delivered = self._delivered.get((meta["namespace"], meta["name"]), {})
        if any(i not in delivered for i in ids):
            # An Event or audit CloudEvent still on its way: try again soon.
            return _no_later_than(after, OUTBOX_RETRY_SECONDS)
        waiting = self._clear_in(delivered[i] for i in ids if i in delivered)
        if waiting is None:
            return after
        return _no_later_than(after, max(MIN_REQUEUE_SECONDS, waiting))

    def _write_status(
        self, body: dict[str, Any], status: ModelDeploymentStatus, result: ReconcileResult
    ) -> dict[str, Any]:
        """Write `status` when it differs from the object's; return the object as stored."""
        wire = status.wire()
        old = body.get("status") or {}
        if wire == old:
            return body
        result.status_written = True
        if log.isEnabledFor(logging.DEBUG):
            changed = sorted(k for k in {*wire, *old} if wire.get(k) != old.get(k))
            meta = body["metadata"]
            log.debug("status of %s/%s: writing %s", meta["namespace"], meta["name"], changed)
        return self.kube.replace_status(body, wire)

    def _apply_plan(
        self,
        md: ModelDeployment,
        desired: list[dict[str, Any]],
        live: dict[Kind, dict[str, dict[str, Any]]],
        result: ReconcileResult,
    ) -> list[ApplyFailure] | None:
        """Apply what differs, delete what is no longer wanted; return what was refused.

        Every object is tried even after one fails, so that (say) an HTTPRoute taking
        traffic off a refused canary is still applied. Conflicts and throttling are
        raised (the pass is retried); every other error is returned, for
        `after_apply_failure` to turn into status. None: the namespace is terminating.
        """
        wanted: dict[Kind, set[str]] = {kind: set() for kind in OWNED_KINDS}
        failures: list[ApplyFailure] = []
        for planned in desired:
            manifest = with_applied_hash(planned)
            kind = kind_of(manifest)
            obj_name = manifest["metadata"]["name"]
            wanted[kind].add(obj_name)
            if not needs_apply(live[kind].get(obj_name), manifest):
                continue
            try:
                self.kube.apply(manifest)
            except ApiException as error:
                if error.status in (409, 429):
                    raise
                if _namespace_terminating(error):
                    log.debug("%s/%s: namespace is terminating", md.namespace, md.name)
                    return None
                failures.append(
                    ApplyFailure(f"{kind.kind}/{obj_name}", error.status, _api_message(error))
                )
                continue
            result.applied.append(f"{kind.kind}/{obj_name}")
        for kind, objects in live.items():
            if kind not in wanted:
                continue  # read only (KServe's Deployments)
            for obj_name in objects:
                if obj_name not in wanted[kind]:
                    self.kube.delete(kind, md.namespace, obj_name)
                    result.deleted.append(f"{kind.kind}/{obj_name}")
        return failures

    def _owned(
        self, kind: Kind, md: ModelDeployment, features: ClusterFeatures
    ) -> list[dict[str, Any]]:
        if kind.group == "monitoring.coreos.com" and not features.prometheus_operator:
            return []
        if kind.group == "gateway.networking.k8s.io" and not features.gateway_api:
            return []
        if kind == LLM_INFERENCE_SERVICE and not self._serves(LLM_INFERENCE_SERVICE):
            return []
        if kind in READ_KINDS:
            return self.kube.list_labelled(kind, md.namespace, md.name)
        return self.kube.list_owned(kind, md.namespace, md.name, md.uid)

    def _provider(self, url: str) -> MetricProvider:
        """One provider per Prometheus URL, reused across passes (and its connections)."""
        if url not in self._providers:
            self._providers[url] = self.providers("prometheus", url)
        return self._providers[url]

    def _launcher(self, name: str) -> Launcher:
        if name not in self._launchers:
            self._launchers[name] = self._launcher_factory(name)
        return self._launchers[name]

    def _pipeline_refusal(self, pipeline: Pipeline) -> str | None:
        """Why the pipeline's endpoint may not be called (--allowed-hosts), if so."""
        if pipeline.webhook is not None and pipeline.type == "webhook":
            return self.egress.refusal(pipeline.webhook.url)
        if pipeline.kubeflow_pipeline is not None and pipeline.type == "kubeflow-pipeline":
            return self.egress.refusal(pipeline.kubeflow_pipeline.endpoint)
        return None

    def _run_outcomes(self, md: ModelDeployment, runs: tuple[str, ...]) -> dict[str, RunOutcome]:
        """What the launcher reports about each run; unreadable ones are left out."""
        pipeline = md.spec.retraining.pipeline if md.spec.retraining else None
        if not runs or pipeline is None:
            return {}
        launcher = self._launcher(pipeline.type)
        outcomes: dict[str, RunOutcome] = {}
        refusal = self._pipeline_refusal(pipeline)
        for run in runs:
            try:
                if refusal is not None:
                    raise PipelineError(f"refused: {refusal}")
                outcome = launcher.outcome(md, run)
            except PipelineError as error:
                log.warning("retraining run %s/%s: %s", md.namespace, run, error)
                continue
            key = (md.namespace, md.name, run)
            failure = self._launch_failures.get(key)
            if outcome.state == "NotFound" and failure:
                outcome = RunOutcome("NotFound", failure)
            elif outcome.state != "NotFound":
                self._launch_failures.pop(key, None)
            outcomes[run] = outcome
        return outcomes

    def _launch(self, request: LaunchRequest, events: list[Event], result: ReconcileResult) -> None:
        """Launch the run the plan (already in status) asks for; failures are reported."""
        md = request.md
        key = (md.namespace, md.name, request.run)
        launcher = self._launcher(request.pipeline.type)
        try:
            refusal = self._pipeline_refusal(request.pipeline)
            if refusal is not None:
                raise PipelineError(f"refused: {refusal}")
            launcher.launch(request)
        except Exception as error:  # a PipelineError, or a launcher that broke on the input
            if not isinstance(error, PipelineError):
                error = PipelineError(describe(error))
            self._launch_failures[key] = str(error)
            log.warning("launching %s for %s/%s failed: %s", request.run, *key[:2], error)
            events.append(
                Event(
                    reasons.RETRAINING_LAUNCH_FAILED,
                    f"{request.pipeline.type} run {request.run} (attempt {request.attempt}):"
                    f" {error}",
                    "Warning",
                )
            )
            result.retraining_runs.append((launcher.name, "launch-failed"))
            return
        self._launch_failures.pop(key, None)
        log.info("launched %s run %s for %s/%s", launcher.name, request.run, *key[:2])
        result.retraining_runs.append(
            (launcher.name, "started" if request.attempt == 1 else "relaunched")
        )


def _no_later_than(after: float | None, seconds: float) -> float:
    """The next wake-up brought forward to at most `seconds` (none yet: `seconds`)."""
    return min(after, seconds) if after else seconds


def _live_objects(live: dict[Kind, dict[str, dict[str, Any]]]) -> LiveObjects:
    return LiveObjects(
        live[INFERENCE_SERVICE],
        live[HTTP_ROUTE],
        live[DEPLOYMENT],
        llm_inference_services=live.get(LLM_INFERENCE_SERVICE, {}),
        services=live.get(SERVICE, {}),
    )


def _outbox_entries(events: list[Event], now: datetime) -> list[OutboxEntry]:
    import uuid

    at = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        OutboxEntry(
            id=uuid.uuid4().hex[:16], reason=e.reason, message=e.message, type=e.type, time=at
        )
        for e in events
    ]


def _but_outbox(status: dict[str, Any]) -> dict[str, Any]:
    """A status's decisions, without their announcements (a new decision or not)."""
    return {k: v for k, v in status.items() if k != "outbox"}


@dataclass
class _Announcements:
    """One pass's view of status.outbox: `kept`, the entries as status holds them plus
    those the pass adds; `to_write`, the same without the ones delivered already."""

    kept: list[OutboxEntry]
    to_write: list[OutboxEntry]
    delivered: dict[str, float]

    @classmethod
    def of(cls, outbox: list[OutboxEntry], delivered: dict[str, float]) -> _Announcements:
        return cls(list(outbox), undelivered(outbox, delivered), delivered)

    def add(self, entries: list[OutboxEntry]) -> None:
        self.kept += entries
        self.to_write += entries


def _outboxed(status: ModelDeploymentStatus, outbox: list[OutboxEntry]) -> ModelDeploymentStatus:
    """`status` carrying `outbox` (bounded: the oldest entries beyond the limit go)."""
    if len(outbox) > OUTBOX_LIMIT:
        log.warning("outbox over %d entries: the oldest are dropped undelivered", OUTBOX_LIMIT)
    return status.model_copy(update={"outbox": outbox[-OUTBOX_LIMIT:]})


UNREPORTED = ("NotOwnedError",)
"""Errors that are not the object's fault (another replica owns it now)."""


def describe(error: BaseException) -> str:
    """An error as one line for a condition or an Event: a validation error as each
    field and what is wrong with it, anything else as its type and message."""
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'object'}: {e['msg']}"
            for e in error.errors(include_url=False)
        ]
        return f"invalid {error.title}: " + "; ".join(problems)[:900]
    return f"{type(error).__name__}: {error}"[:1000]


def _read(provider: MetricProvider, query: str) -> Reading:
    """One query's answer as a Reading: a number, no data, an error, or garbage.

    Nothing a provider raises escapes: a crash here would stop every later step of the
    reconcile (the progress deadline among them)."""
    try:
        value = provider.run_query(query)
    except InvalidMeasurementError as error:
        return Reading(error=str(error), invalid=True)
    except MetricsUnavailableError as error:
        return Reading(error=str(error))
    except Exception as error:  # a provider bug must not stop the reconcile
        log.debug("metric provider raised on %r", query, exc_info=True)
        return Reading(error=f"metric provider failed: {type(error).__name__}: {error}"[:500])
    if value is not None and (not isinstance(value, int | float) or not math.isfinite(value)):
        return Reading(error=f"not a finite number: {value!r:.80}", invalid=True)
    return Reading(value=None if value is None else float(value))


def _log_result(md: ModelDeployment, result: ReconcileResult) -> None:
    if not (result.applied or result.deleted or result.status_written or result.events):
        after = result.requeue_after
        log.debug(
            "reconcile %s/%s: no change (%s)",
            md.namespace,
            md.name,
            "next on a change" if after is None else f"next in {after:.1f} s",
        )
        return
    log.info(
        "reconciled %s/%s: applied %s, deleted %s, events %s",
        md.namespace,
        md.name,
        result.applied,
        result.deleted,
        [e.reason for e in result.events],
    )


def _error_body(error: ApiException) -> dict[str, Any]:
    """The Status object the API server sent with an error ({} when unreadable)."""
    import json

    try:
        body = json.loads(error.body or "{}")
    except (ValueError, TypeError):
        return {}
    return body if isinstance(body, dict) else {}


def _namespace_terminating(error: ApiException) -> bool:
    details = _error_body(error).get("details") or {}
    return any(c.get("reason") == "NamespaceTerminating" for c in details.get("causes") or [])


def _api_message(error: ApiException) -> str:
    return str(_error_body(error).get("message") or error.body)[:500]
