"""rung.handlers.Controller with an elector: only owned objects are queued and
reconciled; a refused write drops the object instead of retrying it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from rung.election import NotOwnedError
from rung.handlers import Controller
from rung.reconciler import ReconcileResult
from rung.settings import OperatorSettings

Key = tuple[str, str]


class FakeElector:
    def __init__(self, owned: set[Key]) -> None:
        self.owned = owned
        self.current: list[Key] = []

    def owns(self, key: Key) -> bool:
        return key in self.owned

    @contextlib.contextmanager
    def reconciling(self, key: Key) -> Iterator[None]:
        self.current.append(key)
        yield

    async def run(self, workers: Any) -> None:
        await asyncio.sleep(3600)

    async def stop(self, workers: Any) -> None:
        pass


class FakeReconciler:
    kube = None

    def __init__(self, refuse: set[Key] = frozenset()) -> None:  # type: ignore[assignment]
        self.calls: list[Key] = []
        self.refuse = refuse

    def reconcile(self, namespace: str, name: str) -> ReconcileResult:
        self.calls.append((namespace, name))
        if (namespace, name) in self.refuse:
            raise NotOwnedError("lease lost")
        return ReconcileResult()


def run(controller: Controller, seconds: float = 0.3) -> None:
    async def main() -> None:
        await controller.start()
        await asyncio.sleep(seconds)
        await controller.stop()

    asyncio.run(main())


def test_only_owned_objects_are_queued_and_reconciled() -> None:
    reconciler = FakeReconciler()
    elector = FakeElector({("ns", "mine")})
    controller = Controller(reconciler, OperatorSettings(workers=2), elector)  # type: ignore[arg-type]

    async def main() -> None:
        await controller.start()
        controller.enqueue("ns", "mine")
        controller.enqueue("ns", "theirs")
        await asyncio.sleep(0.2)
        await controller.stop()

    asyncio.run(main())
    assert reconciler.calls == [("ns", "mine")]
    assert elector.current == [("ns", "mine")]  # writes are fenced for that key


def test_a_key_whose_shard_was_lost_while_queued_is_dropped() -> None:
    reconciler = FakeReconciler()
    elector = FakeElector({("ns", "a")})
    controller = Controller(reconciler, OperatorSettings(workers=1), elector)  # type: ignore[arg-type]

    async def main() -> None:
        controller.enqueue("ns", "a", after=0.1)
        elector.owned.clear()  # lost before it was due
        await controller.start()
        await asyncio.sleep(0.3)
        await controller.stop()

    asyncio.run(main())
    assert reconciler.calls == []


def test_a_refused_write_is_not_retried() -> None:
    reconciler = FakeReconciler(refuse={("ns", "a")})
    controller = Controller(
        reconciler,  # type: ignore[arg-type]
        OperatorSettings(workers=1),
        FakeElector({("ns", "a")}),  # type: ignore[arg-type]
    )

    async def main() -> None:
        await controller.start()
        controller.enqueue("ns", "a")
        await asyncio.sleep(1.5)  # a retry would come after 1 s
        await controller.stop()

    asyncio.run(main())
    assert reconciler.calls == [("ns", "a")]
    assert len(controller.queue) == 0


def test_without_an_elector_everything_is_reconciled() -> None:
    reconciler = FakeReconciler()
    controller = Controller(reconciler, OperatorSettings(workers=2))  # type: ignore[arg-type]

    async def main() -> None:
        await controller.start()
        controller.enqueue("ns", "a")
        controller.enqueue("other", "b")
        await asyncio.sleep(0.2)
        await controller.stop()

    asyncio.run(main())
    assert sorted(reconciler.calls) == [("ns", "a"), ("other", "b")]


def test_namespaces_are_watched_only_to_forget_those_a_glob_pattern_loses() -> None:
    """With glob patterns kopf stops watching a terminating namespace (DELETED events of
    its objects never come), so the operator follows namespaces itself; with exact names
    or everything, it needs no watch on namespaces (nor the RBAC for one)."""
    from unittest import mock

    from rung.handlers import build_registry

    def watched(*namespaces: str) -> set[str]:
        registry = build_registry(mock.MagicMock(), OperatorSettings(namespaces=namespaces))
        return {
            str(h.selector.any_name) for h in registry._watching.get_all_handlers() if h.selector
        }

    assert "namespaces" in watched("t-*")
    assert "namespaces" in watched("team-a", "ml-?")
    assert "namespaces" not in watched("team-a", "team-b")
    assert "namespaces" not in watched()
