"""rung.election: the shard hash, lease observation, the shard plan (tables), and
Electors sharing an in-memory Lease store on a simulated clock."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from rung.election import (
    ElectionConfig,
    Elector,
    FencedApiClient,
    FencedEvents,
    LeaseObserver,
    LeaseRecord,
    Member,
    Moves,
    NotOwnedError,
    dns_label,
    plan_shards,
    quotas,
    shard_of,
)

# --- the shard of an object ------------------------------------------------------------------


def test_one_shard_holds_everything() -> None:
    assert {shard_of((f"ns{i}", f"m{i}"), 1) for i in range(50)} == {0}


def test_the_shard_is_stable_and_spread() -> None:
    keys = [("team-a", f"model-{i}") for i in range(3000)]
    shards = [shard_of(k, 6) for k in keys]

    assert shards == [shard_of(k, 6) for k in keys]  # no per-process salt
    assert shard_of(("team-a", "model-0"), 6) == 1  # fixed forever: SHA-256 of ns/name
    per_shard = Counter(shards)
    assert sorted(per_shard) == list(range(6))
    assert max(per_shard.values()) < 1.15 * 3000 / 6


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("rung-7d4b9c-x2x9z", "rung-7d4b9c-x2x9z"),
        ("Host.Example_1-42", "host-example-1-42"),
        ("a" * 60, "a" * 31 + "-" + "e8a4c4a4"),
    ],
)
def test_identity_in_a_lease_name(text: str, name: str) -> None:
    label = dns_label(text)
    assert label[:32] == name[:32]
    assert len(label) <= 40


def test_lease_names() -> None:
    ha = ElectionConfig("a", "rung-system")
    sharded = ElectionConfig("a", "rung-system", name="rung", shards=3)

    assert ha.shard_lease(0) == "rung-leader"
    assert [sharded.shard_lease(i) for i in range(3)] == [f"rung-shard-{i}" for i in range(3)]
    assert sharded.member_lease("Pod_1") == "rung-member-pod-1"
    assert sharded.shard_of_lease("rung-shard-2") == 2
    assert sharded.shard_of_lease("rung-leader") is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shards": 0},
        {"identity": ""},
        {"retry_period": 10.0},
        {"lease_duration": 12.0},  # not more than renew deadline + retry period
    ],
)
def test_bad_timings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        ElectionConfig(**{"identity": "a", "namespace": "ns", **kwargs})


# --- observing leases --------------------------------------------------------------------------


def rec(name: str, holder: str | None, rv: str, duration: float = 15.0, **kw: Any) -> LeaseRecord:
    return LeaseRecord(name, holder, duration, rv, **kw)


@pytest.mark.parametrize(
    ("polls", "expiry"),
    [
        # first sight: dated at the answer (it may have been renewed just before)
        ([(10.0, 10.5, "1")], 25.5),
        # unchanged since the first poll: still the first answer
        ([(10.0, 10.5, "1"), (12.0, 12.5, "1")], 25.5),
        # changed between polls: dated at the earlier poll's sending, but never more
        # than one retry period before the later answer
        ([(10.0, 10.1, "1"), (11.5, 11.6, "2")], 25.0),
        ([(10.0, 10.1, "1"), (12.0, 12.1, "2")], 25.1),
        # changed after a long gap (polls failed): one retry period before the answer
        ([(10.0, 10.5, "1"), (30.0, 30.5, "2")], 43.5),
        # changed again later: the latest change counts
        ([(10.0, 10.5, "1"), (12.0, 12.5, "2"), (14.0, 14.4, "3")], 27.4),
    ],
)
def test_a_lease_expires_a_lease_duration_after_it_was_seen_to_change(
    polls: list[tuple[float, float, str]], expiry: float
) -> None:
    observer = LeaseObserver(retry_period=2.0)
    for sent, received, rv in polls:
        observer.update([rec("l", "b", rv)], sent, received)
    record = rec("l", "b", polls[-1][2])

    assert observer.expires_at(record) == pytest.approx(expiry)
    assert observer.live_holder(record, expiry - 0.01) == "b"
    assert observer.live_holder(record, expiry) is None


def test_a_released_lease_is_free_at_once() -> None:
    observer = LeaseObserver(2.0)
    observer.update([rec("l", None, "7", duration=1)], 0.0, 0.1)
    assert observer.live_holder(rec("l", None, "7", duration=1), 0.2) is None


def test_own_writes_are_dated_when_sent() -> None:
    observer = LeaseObserver(2.0)
    observer.update([rec("l", "a", "1")], 0.0, 0.1)
    observer.wrote(rec("l", "a", "2"), sent=5.0)
    observer.update([rec("l", "a", "2")], 6.0, 6.1)
    assert observer.expires_at(rec("l", "a", "2")) == 20.0


# --- the plan --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shards", "counts", "expected"),
    [
        (1, {"a": 1, "b": 0}, {"a": 1, "b": 0}),  # the leader stays the leader
        (1, {"a": 0, "b": 1}, {"a": 0, "b": 1}),
        (1, {"a": 0, "b": 0}, {"a": 1, "b": 0}),  # nobody leads: the first by identity
        (6, {"a": 6, "b": 0, "c": 0}, {"a": 2, "b": 2, "c": 2}),
        (4, {"a": 2, "b": 2, "c": 0}, {"a": 2, "b": 1, "c": 1}),  # most-holding first
        (3, {"a": 3, "b": 0}, {"a": 2, "b": 1}),
    ],
)
def test_quotas_are_balanced_and_sticky(
    shards: int, counts: dict[str, int], expected: dict[str, int]
) -> None:
    assert quotas(shards, sorted(counts), counts) == expected


def m(identity: str, shards: int = 3, since: str = "2026-01-01T00:00:00.000000Z") -> Member:
    return Member(identity, shards, since)


EARLY, LATE = "2026-01-01T00:00:00.000000Z", "2026-01-01T00:05:00.000000Z"


@pytest.mark.parametrize(
    ("case", "me", "holders", "members", "held", "moves"),
    [
        (
            "HA: the standby waits while the leader holds the lease",
            m("b", 1),
            {0: "a"},
            [m("a", 1), m("b", 1)],
            [],
            Moves(target=0),
        ),
        (
            "HA: the leader keeps it, even when a replica sorting first joins",
            m("b", 1),
            {0: "b"},
            [m("a", 1), m("b", 1)],
            [0],
            Moves(target=1),
        ),
        (
            "HA: the lease expired and its holder's member lease too: take over",
            m("b", 1),
            {0: None},
            [m("b", 1)],
            [],
            Moves(acquire=(0,), target=1),
        ),
        (
            "alone: every shard",
            m("a"),
            {0: None, 1: None, 2: None},
            [m("a")],
            [],
            Moves(acquire=(0, 1, 2), target=3),
        ),
        (
            "a replica joins: the one above its quota releases one",
            m("a"),
            {0: "a", 1: "a", 2: "a"},
            [m("a"), m("b")],
            [0, 1, 2],
            Moves(release=(2,), target=2),
        ),
        (
            "the newcomer takes what was released",
            m("b"),
            {0: "a", 1: "a", 2: None},
            [m("a"), m("b")],
            [],
            Moves(acquire=(2,), target=1),
        ),
        (
            "the newcomer does not take what is still held",
            m("b"),
            {0: "a", 1: "a", 2: "a"},
            [m("a"), m("b")],
            [],
            Moves(target=1),
        ),
        (
            "a replica left: its expired shard goes to the one below its quota",
            m("a"),
            {0: "a", 1: "b", 2: None},
            [m("a"), m("b")],
            [0],
            Moves(acquire=(2,), target=2),
        ),
        (
            "... and not to the one at its quota",
            m("b"),
            {0: "a", 1: "b", 2: None},
            [m("a"), m("b")],
            [1],
            Moves(target=1),
        ),
        (
            "a shard still held by a replica whose member lease expired is not free",
            m("a"),
            {0: "a", 1: "c", 2: None},
            [m("a"), m("b")],
            [0],
            Moves(acquire=(2,), target=2),
        ),
        (
            "an older replica with another shard count: hold nothing",
            m("b", 6, since=LATE),
            {0: "b", 1: "a"},
            [m("a", 3, since=EARLY), m("b", 6, since=LATE)],
            [0],
            Moves(release=(0,), waiting_for="a"),
        ),
        (
            "a newer replica with another shard count waits for us, not we for it",
            m("a", 3, since=EARLY),
            {0: "a", 1: None, 2: None},
            [m("a", 3, since=EARLY), m("b", 6, since=LATE)],
            [0],
            Moves(acquire=(1, 2), target=3),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_plan(
    case: str,
    me: Member,
    holders: dict[int, str | None],
    members: list[Member],
    held: list[int],
    moves: Moves,
) -> None:
    assert plan_shards(me, holders, members, held) == moves


def test_other_free_shards_are_spares_when_another_replica_was_faster() -> None:
    members = [m("a"), m("b"), m("c")]
    moves = plan_shards(m("b"), {0: "a", 1: None, 2: None}, members, [])

    assert len(moves.acquire) == 1
    assert sorted(moves.acquire + moves.spare) == [1, 2]


def test_every_replica_computes_the_same_split() -> None:
    """Three replicas, six shards, any starting holdings: applying each replica's own
    plan converges to two shards each, and no shard is ever planned for two."""
    members = [m("a", 6), m("b", 6), m("c", 6)]
    holders: dict[int, str | None] = dict.fromkeys(range(6), "a")
    for _ in range(5):
        for me in members:
            held = [s for s, h in holders.items() if h == me.identity]
            moves = plan_shards(me, holders, members, held)
            for shard in moves.release:
                holders[shard] = None
            for shard in moves.acquire:
                assert holders[shard] is None
                holders[shard] = me.identity
    assert Counter(holders.values()) == {"a": 2, "b": 2, "c": 2}


# --- electors on an in-memory Lease store ----------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Store:
    """Leases in memory, with resourceVersions and conflicts like the API server's."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.rv = itertools.count(1)
        self.down: set[str] = set()
        """Identities cut off from the store (a partition)."""

    def check(self, who: str) -> None:
        if who in self.down:
            raise OSError("connection refused")

    def put(self, who: str, body: dict[str, Any], create: bool) -> LeaseRecord:
        self.check(who)
        name = body["metadata"]["name"]
        current = self.leases.get(name)
        if create and current is not None:
            raise ApiException(status=409, reason="AlreadyExists")
        if not create:
            if current is None:
                raise ApiException(status=404, reason="NotFound")
            if current["metadata"]["resourceVersion"] != body["metadata"]["resourceVersion"]:
                raise ApiException(status=409, reason="Conflict")
        stored = {**body, "metadata": {**body["metadata"], "resourceVersion": str(next(self.rv))}}
        self.leases[name] = stored
        return LeaseRecord.from_obj(stored)


class MemoryElector(Elector):
    def __init__(self, store: Store, identity: str, clock: Clock, shards: int = 1) -> None:
        config = ElectionConfig(identity, "rung-system", shards=shards)
        super().__init__(None, config, clock=clock, wall=clock)  # type: ignore[arg-type]
        self.store = store

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    def _list(self) -> list[LeaseRecord]:
        self.store.check(self.config.identity)
        return [LeaseRecord.from_obj(o) for o in self.store.leases.values()]

    def _create(self, name: str, role: str, spec: dict[str, Any]) -> LeaseRecord:
        body = {"metadata": self._metadata(name, role), "spec": spec}
        return self.store.put(self.config.identity, body, create=True)

    def _write(self, record: LeaseRecord, spec: dict[str, Any]) -> LeaseRecord:
        meta = self._metadata(record.name, record.role)
        meta["resourceVersion"] = record.resource_version
        return self.store.put(self.config.identity, {"metadata": meta, "spec": spec}, create=False)

    def _delete(self, record: LeaseRecord) -> None:
        self.store.check(self.config.identity)
        self.store.leases.pop(record.name, None)


class NoWork:
    def __init__(self) -> None:
        self.claimed = 0
        self.running = False

    def claim(self, owned: Callable[[tuple[str, str]], bool]) -> None:
        self.claimed += 1

    def busy(self, owned: Callable[[tuple[str, str]], bool]) -> bool:
        return self.running


def rounds(electors: list[MemoryElector], clock: Clock, seconds: float, step: float = 0.5) -> None:
    """Run every elector's rounds at its retry period for `seconds` of simulated time."""
    work = NoWork()
    due = dict.fromkeys(range(len(electors)), clock.now)
    end = clock.now + seconds
    while clock.now < end:
        for i, elector in enumerate(electors):
            if clock.now >= due[i]:
                asyncio.run(elector._round(work))
                due[i] = clock.now + elector._next_wait()
        clock.now += step


def holders_of(store: Store) -> dict[str, str | None]:
    return {
        name: lease["spec"]["holderIdentity"]
        for name, lease in store.leases.items()
        if "-member-" not in name
    }


def test_one_leader_and_a_standby() -> None:
    store, clock = Store(), Clock()
    a, b = MemoryElector(store, "a", clock), MemoryElector(store, "b", clock)
    rounds([a], clock, 1)
    rounds([a, b], clock, 10)

    assert holders_of(store) == {"rung-leader": "a"}
    assert a.owns(("ns", "x"))
    assert not b.owns(("ns", "x"))


def test_a_killed_leader_is_replaced_within_the_lease_duration() -> None:
    store, clock = Store(), Clock()
    a, b = MemoryElector(store, "a", clock), MemoryElector(store, "b", clock)
    rounds([a], clock, 1)
    rounds([a, b], clock, 9.3)
    killed = clock.now
    taken = None
    for _ in range(60):
        rounds([b], clock, 0.5, step=0.1)
        if b.holds(0):
            taken = clock.now - killed
            break

    assert taken is not None
    assert 10.0 < taken <= 15.5


def test_a_partitioned_leader_stops_writing_before_anyone_takes_over() -> None:
    store, clock = Store(), Clock()
    a, b = MemoryElector(store, "a", clock), MemoryElector(store, "b", clock)
    rounds([a], clock, 1)
    rounds([a, b], clock, 5)
    store.down.add("a")
    a_gave_up = b_took = None
    for _ in range(300):
        rounds([a, b], clock, 0.1, step=0.1)
        if a_gave_up is None and not a.holds(0):
            a_gave_up = clock.now
        if b_took is None and b.holds(0):
            b_took = clock.now
    assert a_gave_up is not None
    assert b_took is not None
    assert b_took - a_gave_up >= 3.0  # lease - renew deadline - retry period
    store.down.clear()
    rounds([a, b], clock, 6)

    assert holders_of(store) == {"rung-leader": "b"}
    assert not a.holds(0)
    assert [t["why"] for t in a.snapshot()["tenures"]] == ["not renewed within the renew deadline"]


def test_a_stopped_leader_hands_over_at_the_next_look() -> None:
    store, clock = Store(), Clock()
    a, b = MemoryElector(store, "a", clock), MemoryElector(store, "b", clock)
    rounds([a], clock, 1)
    rounds([a, b], clock, 4)
    asyncio.run(a.stop(NoWork()))
    stopped = clock.now
    while not b.holds(0):
        rounds([b], clock, 0.1, step=0.1)

    assert clock.now - stopped <= 2.1
    assert "rung-member-a" not in store.leases


def test_shards_are_spread_rebalanced_and_taken_over() -> None:
    store, clock = Store(), Clock()
    a, b, c = (MemoryElector(store, name, clock, shards=6) for name in "abc")
    rounds([a], clock, 3)
    assert sorted(a.snapshot()["owned"]) == list(range(6))
    rounds([a, b, c], clock, 10)
    owned = {e.config.identity: e.snapshot()["owned"] for e in (a, b, c)}
    assert sorted(len(o) for o in owned.values()) == [2, 2, 2]
    assert sorted(itertools.chain(*owned.values())) == list(range(6))

    # c dies: its two shards go to a and b once its leases expired
    rounds([a, b], clock, 20)
    assert sorted(len(e.snapshot()["owned"]) for e in (a, b)) == [3, 3]
    # d joins: two shards move to it, released first
    d = MemoryElector(store, "d", clock, shards=6)
    rounds([a, b, d], clock, 10)
    assert sorted(len(e.snapshot()["owned"]) for e in (a, b, d)) == [2, 2, 2]
    assert_no_overlap([a, b, c, d])


def test_the_holder_gauge_names_who_holds_which_shard() -> None:
    """rung_shard_holder{shard, identity}: the dashboard's "who holds which shard"."""
    from prometheus_client import REGISTRY

    def held(identity: str) -> list[int]:
        return [
            shard
            for shard in range(3)
            if REGISTRY.get_sample_value(
                "rung_shard_holder", {"shard": str(shard), "identity": identity}
            )
            == 1
        ]

    store, clock = Store(), Clock()
    electors = [MemoryElector(store, f"gauge-{n}", clock, shards=3) for n in "xyz"]
    rounds(electors, clock, 10)
    seen = {e.config.identity: held(e.config.identity) for e in electors}

    assert seen == {e.config.identity: e.snapshot()["owned"] for e in electors}
    assert sorted(itertools.chain(*seen.values())) == [0, 1, 2]


def assert_no_overlap(electors: list[MemoryElector]) -> None:
    tenures = [t for e in electors for t in e.snapshot()["tenures"]]
    for shard in {t["shard"] for t in tenures}:
        spans = sorted((t["start"], t["end"]) for t in tenures if t["shard"] == shard)
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, (shard, spans)


# --- the fence -------------------------------------------------------------------------------


def test_writes_need_an_owned_object_and_a_fresh_lease() -> None:
    store, clock = Store(), Clock()
    a = MemoryElector(store, "a", clock)
    rounds([a], clock, 1)
    client = FencedApiClient(a)
    client.rest_client.request = lambda *args, **kw: "sent"  # type: ignore[method-assign]

    assert client.call_api("GET", "https://k/apis/x") == "sent"  # reads are never fenced
    with pytest.raises(NotOwnedError, match="not part of a reconcile"):
        client.call_api("POST", "https://k/api/v1/namespaces/ns/events")
    with a.reconciling(("ns", "x")):
        assert client.call_api("PUT", "https://k/apis/x") == "sent"
        clock.now += 10.0  # no renewal for the renew deadline
        with pytest.raises(NotOwnedError, match="rung-leader is not held"):
            client.call_api("PUT", "https://k/apis/x")


def test_events_are_fenced_too() -> None:
    store, clock = Store(), Clock()
    a = MemoryElector(store, "a", clock, shards=2)
    posted: list[str] = []

    class Sink:
        def post(self, body: dict[str, Any], event: Any) -> bool:
            posted.append(event)
            return event != "Lost"  # False: not delivered, kept in the outbox

    events = FencedEvents(Sink(), a)
    with a.reconciling(("ns", "x")), pytest.raises(NotOwnedError):
        events.post({}, "Promoted")
    rounds([a], clock, 1)
    with a.reconciling(("ns", "x")):
        assert events.post({}, "Promoted") is True
        assert events.post({}, "Lost") is False
    assert posted == ["Promoted", "Lost"]
