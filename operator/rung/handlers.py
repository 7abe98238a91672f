"""kopf wiring only: watch events feed the caches and the work queue; workers reconcile.

- Every watch event of a ModelDeployment, or of an object Rung owns (InferenceService,
  HTTPRoute, PodMonitor, PrometheusRule, retraining Job), updates the cache and
  queues its ModelDeployment at once.
- Workers (a bounded pool) take keys from a keyed work queue: never two on one
  object, a slow Prometheus on one object never holds up another. A reconcile says
  when the object next needs attention (analysis, deadline, snapshot, trigger) and
  the queue wakes it then.
- A slow safety resync (--resync-seconds, minutes) queues everything; with the caches
  it reads nothing from the API server and writes only what drifted.
- Event handlers are coroutines: they run in the event loop with the work queue
  (which is not thread-safe), never in kopf's thread pool.
- With leader election (rung.election), only objects whose shard this replica owns
  are queued and reconciled; a shard acquired queues its objects, a shard lost or
  released is no longer handed out (and its writes are refused).
- Only event handlers are registered: kopf keeps no progress or
  diff-base annotations, so Rung's own status writes are the only writes.
No decisions here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from rung.api.crd import GROUP, PLURAL, VERSION
from rung.api.resource import MANAGED_BY, MANAGED_BY_LABEL, OWNER_LABEL
from rung.cache import CachedKube
from rung.election import Elector, NotOwnedError
from rung.kube import MODEL_DEPLOYMENT, OWNED_KINDS, READ_KINDS, Kind
from rung.reconciler import Reconciler, ReconcileResult, TransientError
from rung.settings import OperatorSettings
from rung.workqueue import WorkQueue

log = logging.getLogger(__name__)
Key = tuple[str, str]


class Controller:
    """The work queue and its workers around one Reconciler."""

    def __init__(
        self, reconciler: Reconciler, settings: OperatorSettings, elector: Elector | None = None
    ) -> None:
        self.reconciler = reconciler
        self.settings = settings
        self.elector = elector
        self.queue: WorkQueue[Key] = WorkQueue()
        self._in_flight: set[Key] = set()
        self._last_error: dict[Key, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.workers, thread_name_prefix="reconcile"
        )

    @property
    def kube(self) -> CachedKube | None:
        kube = self.reconciler.kube
        return kube if isinstance(kube, CachedKube) else None

    def owns(self, key: Key) -> bool:
        """Whether this replica reconciles `key` (always, without leader election)."""
        return self.elector is None or self.elector.owns(key)

    def enqueue(self, namespace: str | None, name: str | None, after: float = 0.0) -> None:
        if namespace and name and self.owns((namespace, name)):
            self.queue.add((namespace, name), after)

    def claim(self, owned: Callable[[Key], bool]) -> None:
        """A shard was acquired: queue every known object of it."""
        kube = self.kube
        for key in kube.cache.keys(MODEL_DEPLOYMENT) if kube is not None else []:
            if owned(key):
                self.enqueue(*key)

    def busy(self, owned: Callable[[Key], bool]) -> bool:
        """Whether a reconcile of such an object is running."""
        return any(owned(key) for key in self._in_flight)

    async def start(self) -> None:
        """Prime the caches, queue every ModelDeployment, start workers and the resync."""
        kube = self.kube
        if kube is not None:
            kinds = (MODEL_DEPLOYMENT, *OWNED_KINDS, *READ_KINDS)
            primed = await asyncio.to_thread(kube.prime, kinds, self.settings.namespaces)
            log.info("caches primed: %s", ", ".join(k.plural for k in primed) or "none")
            for key in kube.cache.keys(MODEL_DEPLOYMENT):
                self.enqueue(*key)
        self._tasks = [
            asyncio.create_task(self._work(), name=f"rung-worker-{i}")
            for i in range(self.settings.workers)
        ]
        self._tasks.append(asyncio.create_task(self._resync(), name="rung-resync"))
        if self.elector is not None:
            self._tasks.append(asyncio.create_task(self.elector.run(self), name="rung-election"))

    async def stop(self) -> None:
        if self.elector is not None:
            await self.elector.stop(self)  # fences closed, Leases released for the others
        self.queue.shutdown()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            key = await self.queue.get()
            if not self.owns(key):  # its shard was lost or released since it was queued
                self.queue.forget(key)
                self.queue.done(key)
                continue
            self._in_flight.add(key)
            try:
                result = await loop.run_in_executor(self._pool, self._reconcile, key)
            except Exception as error:
                self._failed(key, error)
            else:
                self._recovered(key)
                if result.requeue_after is not None:
                    self.enqueue(*key, after=result.requeue_after)
            finally:
                self._in_flight.discard(key)
                self.queue.done(key)

    def _reconcile(self, key: Key) -> ReconcileResult:
        """One reconcile, in a worker thread; its writes are fenced by the elector."""
        if self.elector is None:
            return self.reconciler.reconcile(*key)
        with self.elector.reconciling(key):
            return self.reconciler.reconcile(*key)

    def _failed(self, key: Key, error: Exception) -> None:
        """Retry with backoff; log once per distinct error (not once per attempt)."""
        if isinstance(error, NotOwnedError):  # the owner now is another replica
            log.info("reconcile of %s/%s stopped: %s", *key, error)
            self.queue.forget(key)
            return
        delay = self.queue.backoff(key)
        self.queue.add(key, delay)
        text = f"{type(error).__name__}: {error}"
        if self._last_error.get(key) == text:
            log.debug("reconcile of %s/%s failed again, retrying in %ss: %s", *key, delay, text)
            return
        self._last_error[key] = text
        if isinstance(error, TransientError):
            log.warning("reconcile of %s/%s: %s; retrying in %ss", *key, error, delay)
        else:
            log.error("reconcile of %s/%s failed; retrying in %ss", *key, delay, exc_info=error)

    def _recovered(self, key: Key) -> None:
        self.queue.forget(key)
        if self._last_error.pop(key, None) is not None:
            log.info("reconcile of %s/%s succeeded again", *key)

    async def _resync(self) -> None:
        """The safety net: queue every known ModelDeployment every resync period."""
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            kube = self.kube
            keys = kube.cache.keys(MODEL_DEPLOYMENT) if kube is not None else []
            for key in keys:
                self.enqueue(*key)


def build_registry(
    reconciler: Reconciler, settings: OperatorSettings, elector: Elector | None = None
) -> kopf.OperatorRegistry:
    """A kopf registry whose watch events feed the cache and the work queue."""
    registry = kopf.OperatorRegistry()
    controller = Controller(reconciler, settings, elector)
    _register_startup(registry, controller)
    _register_model_deployments(registry, controller)
    for kind in (*OWNED_KINDS, *READ_KINDS):
        _register_owned(registry, controller, kind)
    _register_jobs(registry, controller)
    if any(set(pattern) & set("*?[") for pattern in settings.namespaces):
        _register_namespaces(registry, controller)
    return registry


def _register_startup(registry: kopf.OperatorRegistry, controller: Controller) -> None:
    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same credentials as our own client: in-cluster token or kubeconfig.
        info: kopf.ConnectionInfo | None = kopf.login_via_client(**kwargs)
        return info

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 300
        settings.networking.request_timeout = 60
        await controller.start()

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: Any) -> None:
        await controller.stop()


def _register_model_deployments(registry: kopf.OperatorRegistry, controller: Controller) -> None:
    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def on_model_deployment(
        type: str | None, body: kopf.Body, namespace: str | None, name: str | None, **_: Any
    ) -> None:
        _update_cache(controller, MODEL_DEPLOYMENT, type, body)
        if type != "DELETED":
            controller.enqueue(namespace, name)


def _register_owned(registry: kopf.OperatorRegistry, controller: Controller, kind: Kind) -> None:
    # Changes to what Rung owns (KServe reporting readiness, someone editing an
    # HTTPRoute) reconcile the owner at once.
    @kopf.on.event(
        kind.group,
        kind.version,
        kind.plural,
        labels={MANAGED_BY_LABEL: MANAGED_BY},
        registry=registry,
        id=f"owned-{kind.plural}",
    )
    async def on_owned(
        type: str | None,
        body: kopf.Body,
        namespace: str | None,
        labels: Mapping[str, str],
        **_: Any,
    ) -> None:
        _update_cache(controller, kind, type, body)
        controller.enqueue(namespace, labels.get(OWNER_LABEL))


def _register_namespaces(registry: kopf.OperatorRegistry, controller: Controller) -> None:
    # With glob patterns kopf watches each matching namespace apart and stops as soon
    # as one is terminating: the DELETED events of the objects in it never come. Forget
    # them here, or their wake-ups would run on in the cache forever. (kopf watches the
    # namespaces anyway to match the patterns; its RBAC is already required.)
    @kopf.on.event("", "v1", "namespaces", registry=registry)
    async def on_namespace(type: str | None, body: kopf.Body, name: str | None, **_: Any) -> None:
        kube = controller.kube
        terminating = type == "DELETED" or bool(
            (body.get("metadata") or {}).get("deletionTimestamp")
        )
        if kube is not None and name and terminating and kube.cache.watches(name):
            kube.cache.forget_namespace(name)


def _register_jobs(registry: kopf.OperatorRegistry, controller: Controller) -> None:
    @kopf.on.event("batch", "v1", "jobs", labels={MANAGED_BY_LABEL: MANAGED_BY}, registry=registry)
    async def on_job(
        type: str | None, namespace: str | None, labels: Mapping[str, str], **_: Any
    ) -> None:
        if type is not None:  # a retraining run changed: its owner looks at the outcome
            controller.enqueue(namespace, labels.get(OWNER_LABEL))


def _update_cache(controller: Controller, kind: Kind, type: str | None, body: kopf.Body) -> None:
    kube = controller.kube
    if kube is None:
        return
    meta = body.get("metadata") or {}
    if type == "DELETED":
        kube.cache.remove(kind, meta.get("namespace", ""), meta.get("name", ""))
    else:
        obj = dict(body)
        obj.setdefault("apiVersion", kind.api_version)
        obj.setdefault("kind", kind.kind)
        kube.cache.put(kind, obj)
