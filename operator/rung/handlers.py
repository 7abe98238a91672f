"""kopf wiring only: which events reach the reconciler. No decisions here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from rung.api.crd import GROUP, PLURAL, VERSION
from rung.api.resource import MANAGED_BY, MANAGED_BY_LABEL, OWNER_LABEL
from rung.reconciler import Reconciler, TransientError
from rung.settings import OperatorSettings

log = logging.getLogger(__name__)
RETRY_DELAYS = (1, 2, 5, 10, 30, 60)


def build_registry(reconciler: Reconciler, settings: OperatorSettings) -> kopf.OperatorRegistry:
    """A kopf registry whose handlers all funnel into `reconciler.reconcile`."""
    registry = kopf.OperatorRegistry()

    def run(namespace: str | None, name: str | None) -> None:
        if namespace is None or name is None:
            return
        try:
            reconciler.reconcile(namespace, name)
        except TransientError as error:
            raise kopf.TemporaryError(f"will retry: {error}", delay=2) from error

    _register_startup(registry)
    _register_model_deployments(registry, run)
    _register_resync(registry, run, settings)
    _register_owned_objects(registry, run)
    return registry


Run = Callable[[str | None, str | None], None]


def _register_startup(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same credentials as our own client: in-cluster token or kubeconfig.
        info: kopf.ConnectionInfo | None = kopf.login_via_client(**kwargs)
        return info

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="rung.dev")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="rung.dev", key="last-handled-configuration"
        )
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 300
        settings.networking.request_timeout = 60
        settings.batching.error_delays = RETRY_DELAYS


def _register_model_deployments(registry: kopf.OperatorRegistry, run: Run) -> None:
    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
    def on_change(namespace: str | None, name: str | None, **_: Any) -> None:
        run(namespace, name)


def _register_resync(registry: kopf.OperatorRegistry, run: Run, settings: OperatorSettings) -> None:
    # Periodic resync without kopf timers: a timer would put a finalizer on every
    # ModelDeployment, leaving them undeletable whenever the operator is not running.
    # kopf's index keeps the list of objects in the watched namespaces for us.
    @kopf.index(GROUP, VERSION, PLURAL, id="model_deployments", registry=registry)
    def model_deployments(namespace: str | None, name: str | None, **_: Any) -> dict[Any, None]:
        return {(namespace, name): None}

    async def resync_forever(index: kopf.Index[Any, None]) -> None:
        while True:
            await asyncio.sleep(settings.resync_seconds)
            for namespace, name in list(index):
                try:
                    await asyncio.to_thread(run, namespace, name)
                except kopf.TemporaryError as error:
                    log.warning("resync of %s/%s failed: %s", namespace, name, error)
                except Exception:
                    log.exception("resync of %s/%s failed", namespace, name)

    @kopf.on.startup(registry=registry)
    async def start_resync(memo: Any, **kwargs: Any) -> None:
        index: kopf.Index[Any, None] = kwargs["model_deployments"]
        memo.resync = asyncio.create_task(resync_forever(index), name="resync")

    @kopf.on.cleanup(registry=registry)
    async def stop_resync(memo: Any, **_: Any) -> None:
        task = memo.get("resync")
        if task is not None:
            task.cancel()


def _register_owned_objects(registry: kopf.OperatorRegistry, run: Run) -> None:
    # Changes to what the operator owns (KServe reporting readiness, a retraining
    # Job finishing) reconcile the owner at once instead of at the next resync.
    @kopf.on.event(
        "serving.kserve.io",
        "v1beta1",
        "inferenceservices",
        labels={MANAGED_BY_LABEL: MANAGED_BY},
        registry=registry,
    )
    @kopf.on.event("batch", "v1", "jobs", labels={MANAGED_BY_LABEL: MANAGED_BY}, registry=registry)
    def on_owned_object(
        namespace: str | None, labels: Mapping[str, str], type: str, **_: Any
    ) -> None:
        if type is None:  # the initial listing: the resume handlers cover it
            return
        try:
            run(namespace, labels.get(OWNER_LABEL))
        except kopf.TemporaryError as error:
            log.info("owned object event for %s: %s", labels.get(OWNER_LABEL), error)
