"""rung.workqueue.WorkQueue: keyed, de-duplicated, delayed, one worker per key."""

from __future__ import annotations

import asyncio

import pytest

from rung.workqueue import WorkQueue


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_a_burst_of_adds_is_one_item() -> None:
    async def scenario() -> list[str]:
        q: WorkQueue[str] = WorkQueue()
        for _ in range(5):
            q.add("a")
        q.add("b")
        return [await q.get(), await q.get()]

    assert run(scenario()) == ["a", "b"]


def test_keys_come_out_when_due_earliest_first() -> None:
    clock = Clock()

    async def scenario() -> list[str | None]:
        q: WorkQueue[str] = WorkQueue(clock=clock)
        q.add("late", after=10)
        q.add("soon", after=5)
        q.add("late", after=20)  # a later request does not postpone it
        seen: list[str | None] = [q._pop_due()]  # nothing due yet
        clock.now += 5
        seen.append(await q.get())
        clock.now += 5
        seen.append(await q.get())
        return seen

    assert run(scenario()) == [None, "soon", "late"]


def test_an_earlier_add_moves_a_key_forward() -> None:
    clock = Clock()

    async def scenario() -> float | None:
        q: WorkQueue[str] = WorkQueue(clock=clock)
        q.add("a", after=60)
        q.add("a", after=1)
        return q.next_due_in()

    assert run(scenario()) == 1


def test_a_key_is_never_handed_to_two_workers() -> None:
    async def scenario() -> tuple[str, bool, str]:
        q: WorkQueue[str] = WorkQueue()
        q.add("a")
        first = await q.get()
        q.add("a")  # changed while being processed
        try:
            await asyncio.wait_for(q.get(), timeout=0.05)
            blocked = False
        except TimeoutError:
            blocked = True
        q.done("a")
        again = await asyncio.wait_for(q.get(), timeout=1)
        return first, blocked, again

    assert run(scenario()) == ("a", True, "a")


def test_other_keys_proceed_while_one_is_processed() -> None:
    async def scenario() -> str:
        q: WorkQueue[str] = WorkQueue()
        q.add("slow")
        await q.get()
        q.add("other")
        return await asyncio.wait_for(q.get(), timeout=1)

    assert run(scenario()) == "other"


def test_a_waiting_worker_wakes_when_a_key_is_added() -> None:
    async def scenario() -> str:
        q: WorkQueue[str] = WorkQueue()
        waiter = asyncio.create_task(q.get())
        await asyncio.sleep(0.01)
        q.add("a")
        return await asyncio.wait_for(waiter, timeout=1)

    assert run(scenario()) == "a"


def test_backoff_grows_and_forget_resets_it() -> None:
    q: WorkQueue[str] = WorkQueue(backoff_delays=(1, 2, 5))
    assert [q.backoff("a") for _ in range(5)] == [1, 2, 5, 5, 5]
    assert q.backoff("b") == 1
    q.forget("a")
    assert q.backoff("a") == 1


def test_shutdown_stops_waiting_workers() -> None:
    async def scenario() -> None:
        q: WorkQueue[str] = WorkQueue()
        waiter = asyncio.create_task(q.get())
        await asyncio.sleep(0.01)
        q.shutdown()
        await waiter

    with pytest.raises(asyncio.CancelledError):
        run(scenario())
