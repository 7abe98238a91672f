"""High availability and sharding on `coordination.k8s.io` Leases.

Every replica started with `--leader-elect` (or `--shards N`) runs an `Elector`. The
ModelDeployments are split into `shards` fixed shards by a stable hash of
`namespace/name` (`shard_of`); each shard is owned through its own Lease
(`<name>-leader` with one shard, `<name>-shard-<i>` with more). A replica reconciles
and writes only the objects of the shards it owns; with one shard (plain high
availability) that is everything on the leader and nothing on the standbys, whose
watches and caches stay warm.

Why not `kubernetes.leaderelection`: it holds one lock, never releases it (a rolling
update waits a whole lease duration), blocks a thread per lock, uses the wall clock and
the client's global configuration, and does not tell when the lease may have expired,
which is what a write guard needs. This module is a small lease manager on
CoordinationV1Api with client-go's rules (a lease is free when released or when its
record has not changed for `leaseDurationSeconds` as seen on the observer's own clock;
optimistic concurrency on every update) and what the operator needs besides:

- **A fence for writes.** A held lease may be used until `renew deadline` (10 s) after
  the last successful renewal was *sent*. `owns(key)` and `check_write()` read that
  deadline on the monotonic clock, so a replica that cannot renew (killed event loop,
  partition, stalled API server) stops writing by itself, before anyone else may take
  over: another replica needs the lease unchanged for the lease duration (15 s).
- **Prompt takeover.** A standby polls every retry period (2 s) and wakes exactly when
  a lease it watches would expire. A change seen between two polls is dated at the
  earlier poll, but never more than one retry period before the later poll's answer:
  the holder renewed after the earlier poll read the record, so the holder's fence
  (last renewal sent + 10 s) closes at least `lease - renew - retry` (3 s) before the
  standby acts. A killed leader is replaced 11-15 s after it died.
- **Many leases, balanced and sticky.** Each replica keeps a member Lease
  (`<name>-member-<identity>`, annotated with its shard count) renewed with its shard
  leases. From the live members every replica computes the same quota: `shards //
  members`, one more for the `shards % members` members holding most (then by
  identity), so a joining replica takes shards only from those above their quota and
  a leaving one's shards go to those below theirs. A replica releases a shard by
  closing its fence, waiting (bounded) for that shard's reconciles in flight, then
  clearing the Lease's holder.
- **Configuration changes are safe.** A replica that sees a live member with another
  shard count that started before it holds nothing until that member is gone, so two
  hash layouts never act at once (a rolling update from 3 to 6 shards, say).

The decisions are pure functions (`LeaseObserver`, `plan_shards`), table-tested; the
`Elector` does the API calls in one thread of its own and runs its loop on kopf's
event loop next to the work queue.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from rung import observability as metrics
from rung.kube import CountingApiClient

log = logging.getLogger(__name__)
Key = tuple[str, str]
"""(namespace, name) of a ModelDeployment"""

LEASE_DURATION = 15.0
"""Seconds a lease stays someone's after its last renewal (client-go's default)."""
RENEW_DEADLINE = 10.0
"""Seconds after the last renewal was sent that the holder may still act (and write)."""
RETRY_PERIOD = 2.0
"""Seconds between renewals, and between a standby's looks at the leases."""
RELEASE_WAIT = 5.0
"""How long a shard being released waits for its reconciles in flight (they cannot
write anyway: its fence is closed first)."""

GROUP_LABEL = "rung.dev/lease-group"
ROLE_LABEL = "rung.dev/lease-role"
SHARDS_ANNOTATION = "rung.dev/shards"
MANAGED_BY = {"app.kubernetes.io/managed-by": "rung"}
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ERRORS = (ApiException, OSError, ValueError, urllib3.exceptions.HTTPError)
"""What a Lease request may fail with: the API server's answer, the network, garbage."""


class NotOwnedError(RuntimeError):
    """A write was refused: this replica does not own the object's shard, or may no
    longer (its lease was lost, is being released, or was not renewed in time)."""


def shard_of(key: Key, shards: int) -> int:
    """The shard of a ModelDeployment: a stable hash of `namespace/name`, modulo
    `shards`. Stable across processes and versions (SHA-256, not Python's hash)."""
    if shards <= 1:
        return 0
    digest = hashlib.sha256(f"{key[0]}/{key[1]}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def default_identity() -> str:
    """hostname-pid: the Pod name in a cluster, unique per process on one machine."""
    return f"{socket.gethostname()}-{os.getpid()}"


def dns_label(text: str, limit: int = 40) -> str:
    """`text` as part of an object name: lower case, [a-z0-9-], at most `limit` long
    (a hash suffix keeps long names apart)."""
    clean = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "x"
    if len(clean) <= limit:
        return clean
    suffix = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{clean[: limit - 9].rstrip('-')}-{suffix}"


def _score(identity: str, shard: int) -> int:
    """Rendezvous preference of `identity` for `shard`: replicas prefer different
    free shards, so they rarely race for the same one."""
    digest = hashlib.sha256(f"{identity}/{shard}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class ElectionConfig:
    """Who this replica is, where the Leases live, and the lease timings."""

    identity: str
    namespace: str
    name: str = "rung"
    """Prefix of the Lease names; replicas with the same prefix share the work."""
    shards: int = 1
    lease_duration: float = LEASE_DURATION
    renew_deadline: float = RENEW_DEADLINE
    retry_period: float = RETRY_PERIOD

    def __post_init__(self) -> None:
        if self.shards < 1:
            raise ValueError(f"shards must be at least 1, not {self.shards}")
        if not self.identity:
            raise ValueError("the identity must not be empty")
        if not self.retry_period < self.renew_deadline:
            raise ValueError("the retry period must be shorter than the renew deadline")
        if not self.renew_deadline + self.retry_period < self.lease_duration:
            raise ValueError(
                "the lease duration must exceed the renew deadline plus the retry period"
            )

    def shard_lease(self, shard: int) -> str:
        return f"{self.name}-leader" if self.shards == 1 else f"{self.name}-shard-{shard}"

    def member_lease(self, identity: str | None = None) -> str:
        return f"{self.name}-member-{dns_label(identity or self.identity)}"

    def shard_of_lease(self, lease: str) -> int | None:
        for shard in range(self.shards):
            if lease == self.shard_lease(shard):
                return shard
        return None


# --- lease records and their observation ---------------------------------------------------


@dataclass(frozen=True)
class LeaseRecord:
    """The parts of a Lease the election reads."""

    name: str
    holder: str | None
    duration: float
    resource_version: str
    role: str = ""
    acquire_time: str | None = None
    transitions: int = 0
    shards: int | None = None
    """A member lease: the replica's shard count."""

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> LeaseRecord:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        annotations = meta.get("annotations") or {}
        shards = annotations.get(SHARDS_ANNOTATION)
        return cls(
            name=meta["name"],
            holder=spec.get("holderIdentity") or None,
            duration=float(spec.get("leaseDurationSeconds") or 0),
            resource_version=str(meta.get("resourceVersion") or ""),
            role=(meta.get("labels") or {}).get(ROLE_LABEL, ""),
            acquire_time=spec.get("acquireTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
            shards=int(shards) if shards and str(shards).isdigit() else None,
        )


class LeaseObserver:
    """When each Lease last changed, on this replica's monotonic clock.

    `update` takes every poll's answer with the time the poll was sent and the time its
    answer came. A record seen for the first time in the first poll is dated at that
    answer (the holder may have renewed just before). A record that changed since the
    previous poll is dated at that previous poll's sending, or one retry period before
    this answer, whichever is later: the change happened after the previous poll read
    the record and before this one did.
    """

    def __init__(self, retry_period: float) -> None:
        self.retry_period = retry_period
        self._seen: dict[str, tuple[str, float]] = {}
        self._last_sent: float | None = None

    def update(self, records: Iterable[LeaseRecord], sent: float, received: float) -> None:
        if self._last_sent is None:
            changed_at = received
        else:
            changed_at = max(self._last_sent, received - self.retry_period)
        seen = {}
        for record in records:
            before = self._seen.get(record.name)
            if before is not None and before[0] == record.resource_version:
                seen[record.name] = before
            else:
                seen[record.name] = (record.resource_version, changed_at)
        self._seen = seen
        self._last_sent = sent

    def wrote(self, record: LeaseRecord, sent: float) -> None:
        """This replica wrote `record` (a request sent at `sent`)."""
        self._seen[record.name] = (record.resource_version, sent)

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)

    def expires_at(self, record: LeaseRecord) -> float:
        seen = self._seen.get(record.name)
        if seen is None or seen[0] != record.resource_version:
            return float("inf")  # not observed yet: not expired
        return seen[1] + record.duration

    def live_holder(self, record: LeaseRecord | None, now: float) -> str | None:
        """The holder, while the record is held and not expired; None when free."""
        if record is None or not record.holder:
            return None
        return record.holder if now < self.expires_at(record) else None


# --- who should own which shard --------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """A live replica, from its member Lease."""

    identity: str
    shards: int | None
    since: str = ""
    """When its member lease was created (acquireTime): older configurations win."""


@dataclass(frozen=True)
class Moves:
    """What this replica should do next about its shards."""

    acquire: tuple[int, ...] = ()
    release: tuple[int, ...] = ()
    spare: tuple[int, ...] = ()
    """Other free shards, in order of preference: tried when another replica was
    faster to one of `acquire` (both wanted it), so nobody waits a retry period."""
    target: int = 0
    """How many shards this replica should own."""
    waiting_for: str | None = None
    """A live replica with another shard count, older than this one: hold nothing."""


def quotas(shards: int, peers: Sequence[str], counts: Mapping[str, int]) -> dict[str, int]:
    """Each peer's share of `shards`: `shards // n`, one more for the `shards % n` peers
    that hold most now (ties by identity), so that shards move as little as possible."""
    if not peers:
        return {}
    base, extra = divmod(shards, len(peers))
    order = sorted(peers, key=lambda p: (-counts.get(p, 0), p))
    return {p: base + (1 if i < extra else 0) for i, p in enumerate(order)}


def plan_shards(
    me: Member, holders: Mapping[int, str | None], members: Iterable[Member], held: Iterable[int]
) -> Moves:
    """The shards `me` should acquire or release.

    `holders`: every shard's live holder (None: free, released or expired), `members`:
    the live replicas (`me` among them or not), `held`: the shards whose fence `me`
    holds now.
    """
    shards = me.shards or 1
    held = sorted(set(held))
    others = [m for m in members if m.identity != me.identity]
    for other in sorted(others, key=lambda m: (m.since, m.identity)):
        if other.shards != me.shards and (other.since, other.identity) < (me.since, me.identity):
            return Moves(release=tuple(held), waiting_for=other.identity)
    peers = sorted({me.identity, *(m.identity for m in others if m.shards == me.shards)})
    counts = {p: 0 for p in peers}
    for shard in range(shards):
        holder = holders.get(shard)
        if holder in counts:
            counts[holder] += 1
    counts[me.identity] = len(held)
    target = quotas(shards, peers, counts)[me.identity]
    if len(held) > target:
        excess = sorted(held, key=lambda s: _score(me.identity, s))[: len(held) - target]
        return Moves(release=tuple(sorted(excess)), target=target)
    if len(held) < target:
        free = [s for s in range(shards) if holders.get(s) is None and s not in held]
        free.sort(key=lambda s: -_score(me.identity, s))
        wanted = target - len(held)
        return Moves(
            acquire=tuple(sorted(free[:wanted])), spare=tuple(free[wanted:]), target=target
        )
    return Moves(target=target)


# --- the elector -----------------------------------------------------------------------------


class Workers(Protocol):
    """What the election asks of the work queue (rung.handlers.Controller)."""

    def claim(self, owned: Callable[[Key], bool]) -> None:
        """Queue every known object for which `owned` holds (a shard was acquired)."""
        ...

    def busy(self, owned: Callable[[Key], bool]) -> bool:
        """Whether a reconcile of such an object is running."""
        ...


@dataclass
class Tenure:
    """One stretch of owning one shard."""

    shard: int
    deadline: float
    """Monotonic time the fence closes unless renewed."""
    start: float
    """Wall time it began (for /shards and tests)."""
    releasing_since: float | None = None
    end: float | None = None
    why: str = ""


@dataclass
class _State:
    tenures: dict[int, Tenure] = field(default_factory=dict)
    history: deque[Tenure] = field(default_factory=lambda: deque(maxlen=256))


_current = threading.local()


class Elector:
    """Holds this replica's Leases; tells which objects it owns; fences its writes."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        config: ElectionConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.api_client = api_client
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._state = _State()
        self._records: dict[str, LeaseRecord] = {}
        self._observer = LeaseObserver(config.retry_period)
        self._member_since = ""
        self._members: list[Member] = []
        self._moves = Moves()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rung-lease")
        self._round_lock: asyncio.Lock | None = None
        self._stopping = False
        self._last_error = ""
        self._timeout = (config.retry_period, 2 * config.retry_period)
        for shard in range(config.shards):
            metrics.SHARD_OWNED.labels(str(shard)).set(0)
            metrics.SHARD_HOLDER.labels(str(shard), config.identity).set(0)
        metrics.SHARDS_OWNED.set(0)

    # --- read from any thread -------------------------------------------------------------

    def holds(self, shard: int) -> bool:
        """Whether this replica owns `shard` now: held, not being released, renewed in time."""
        with self._lock:
            tenure = self._state.tenures.get(shard)
            return (
                tenure is not None
                and tenure.releasing_since is None
                and self._clock() < tenure.deadline
            )

    def owns(self, key: Key) -> bool:
        return self.holds(shard_of(key, self.config.shards))

    @contextlib.contextmanager
    def reconciling(self, key: Key) -> Iterator[None]:
        """Writes in this thread are about `key` until the block ends."""
        before = getattr(_current, "key", None)
        _current.key = key
        try:
            yield
        finally:
            _current.key = before

    def check_write(self, what: str = "write") -> None:
        """Raise NotOwnedError unless this thread reconciles an object this replica owns."""
        key: Key | None = getattr(_current, "key", None)
        if key is None:
            raise NotOwnedError(f"{what} refused: not part of a reconcile of an owned object")
        shard = shard_of(key, self.config.shards)
        if not self.holds(shard):
            raise NotOwnedError(
                f"{what} for {key[0]}/{key[1]} refused: lease {self.config.shard_lease(shard)}"
                " is not held (lost, being released, or not renewed within the renew deadline)"
            )

    def snapshot(self) -> dict[str, Any]:
        """What /shards shows: the shards owned now, recent tenures, the members."""
        now, wall = self._clock(), self._wall()
        with self._lock:
            tenures = list(self._state.history) + list(self._state.tenures.values())
            owned = sorted(
                s
                for s, t in self._state.tenures.items()
                if t.releasing_since is None and now < t.deadline
            )
        return {
            "identity": self.config.identity,
            "namespace": self.config.namespace,
            "leaseName": self.config.name,
            "shards": self.config.shards,
            "owned": owned,
            "target": self._moves.target,
            "waitingFor": self._moves.waiting_for,
            "members": sorted(m.identity for m in self._members),
            "tenures": [
                {
                    "shard": t.shard,
                    "lease": self.config.shard_lease(t.shard),
                    "start": t.start,
                    "end": t.end if t.end is not None else wall + (t.deadline - now),
                    "open": t.end is None,
                    "why": t.why,
                }
                for t in sorted(tenures, key=lambda t: t.start)
            ],
        }

    # --- the loop ---------------------------------------------------------------------------

    async def run(self, workers: Workers) -> None:
        """Renew, acquire and release, every retry period, until stop()."""
        self._round_lock = asyncio.Lock()
        log.info(
            "leader election: identity %s, %d shard(s), Leases %s* in namespace %s",
            self.config.identity,
            self.config.shards,
            self.config.name,
            self.config.namespace,
        )
        while not self._stopping:
            async with self._round_lock:
                if self._stopping:
                    return
                try:
                    await self._round(workers)
                except Exception:  # never let the election die silently
                    log.exception("leader election round failed")
            await asyncio.sleep(self._next_wait())

    async def stop(self, workers: Workers) -> None:
        """Close every fence, let reconciles in flight end (bounded), release the shard
        Leases and delete the member Lease, so that others take over at once."""
        self._stopping = True
        now = self._clock()
        with self._lock:
            held = list(self._state.tenures.values())
            for tenure in held:
                tenure.releasing_since = tenure.releasing_since or now
        lock = self._round_lock or asyncio.Lock()
        async with lock:
            deadline = self._clock() + RELEASE_WAIT
            while self._clock() < deadline and any(
                workers.busy(self._in_shard(t.shard)) for t in held
            ):
                await asyncio.sleep(0.05)
            for tenure in held:  # one that fails (no API server): the rest expire by themselves
                if not await self._release(tenure.shard, "stopping"):
                    break
            else:
                await self._call(self._delete_member)
        self._executor.shutdown(wait=False)

    def _next_wait(self) -> float:
        """A retry period, or less when a lease held by another is about to expire."""
        now = self._clock()
        wait = self.config.retry_period
        for record in self._records.values():
            if record.holder and record.holder != self.config.identity:
                at = self._observer.expires_at(record)
                if now < at < now + wait:
                    wait = at - now + 0.02
        return max(0.02, wait)

    def _in_shard(self, shard: int) -> Callable[[Key], bool]:
        return lambda key: shard_of(key, self.config.shards) == shard

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    async def _round(self, workers: Workers) -> None:
        self._close_expired()
        sent = self._clock()
        try:
            records = await self._call(self._list)
        except _ERRORS as error:
            self._failed("listing Leases", error)
            return
        self._observer.update(records, sent, self._clock())
        self._records = {r.name: r for r in records}
        self._lost_to_others()
        await self._renew_member()
        for shard in sorted(self._held()):
            await self._renew(shard)
        self._members = self._live_members()
        me = Member(self.config.identity, self.config.shards, self._member_since)
        moves = plan_shards(me, self._holders(), self._members, self._held())
        if moves.waiting_for and moves.waiting_for != self._moves.waiting_for:
            log.warning(
                "replica %s runs with another shard count and started first: owning nothing"
                " until it is gone",
                moves.waiting_for,
            )
        self._moves = moves
        for shard in moves.release:
            self._start_release(shard)
        for shard in self._releasing():
            tenure = self._state.tenures[shard]
            waited = self._clock() - (tenure.releasing_since or 0.0)
            if not workers.busy(self._in_shard(shard)) or waited > RELEASE_WAIT:
                await self._release(shard, "rebalanced")
        wanted = len(moves.acquire)
        for shard in (*moves.acquire, *moves.spare):
            if wanted and await self._acquire(shard):
                wanted -= 1
                workers.claim(self._in_shard(shard))
        await self._forget_stale_members()
        self._update_gauges()

    # --- state changes ------------------------------------------------------------------------

    def _held(self) -> list[int]:
        """Shards with a tenure that is not being released."""
        with self._lock:
            return [s for s, t in self._state.tenures.items() if t.releasing_since is None]

    def _releasing(self) -> list[int]:
        with self._lock:
            return [s for s, t in self._state.tenures.items() if t.releasing_since is not None]

    def _holders(self) -> dict[int, str | None]:
        now = self._clock()
        holders: dict[int, str | None] = {}
        held = set(self._held()) | set(self._releasing())
        for shard in range(self.config.shards):
            record = self._records.get(self.config.shard_lease(shard))
            holder = self._observer.live_holder(record, now)
            if holder == self.config.identity and shard not in held:
                holder = None  # ours on paper, but its fence closed: ours to take again
            holders[shard] = holder
        return holders

    def _live_members(self) -> list[Member]:
        now = self._clock()
        members = []
        for record in self._records.values():
            if record.role != "member" or not record.holder:
                continue
            if record.holder == self.config.identity or self._observer.live_holder(record, now):
                members.append(Member(record.holder, record.shards, record.acquire_time or ""))
        return members

    def _open(self, shard: int, sent: float) -> None:
        tenure = Tenure(shard, sent + self.config.renew_deadline, self._wall())
        with self._lock:
            self._state.tenures[shard] = tenure
        metrics.LEASE_TRANSITIONS.labels("acquired").inc()
        log.info(
            "acquired Lease %s/%s: this replica owns shard %d of %d",
            self.config.namespace,
            self.config.shard_lease(shard),
            shard,
            self.config.shards,
        )

    def _close(self, shard: int, why: str, at: float | None = None) -> None:
        """End the tenure; `at`: when its fence closed (monotonic), default now."""
        now = self._clock()
        with self._lock:
            tenure = self._state.tenures.pop(shard, None)
            if tenure is None:
                return
            closed = min(now, at if at is not None else now, tenure.deadline)
            if tenure.releasing_since is not None:
                closed = min(closed, tenure.releasing_since)
            tenure.end = self._wall() - (now - closed)
            tenure.why = why
            self._state.history.append(tenure)
        event = "released" if why in ("rebalanced", "stopping") else "lost"
        metrics.LEASE_TRANSITIONS.labels(event).inc()
        (log.info if event == "released" else log.warning)(
            "%s Lease %s/%s (shard %d): %s",
            event,
            self.config.namespace,
            self.config.shard_lease(shard),
            shard,
            why,
        )

    def _close_expired(self) -> None:
        now = self._clock()
        with self._lock:
            expired = [(s, t.deadline) for s, t in self._state.tenures.items() if now >= t.deadline]
        for shard, deadline in expired:
            self._close(shard, "not renewed within the renew deadline", at=deadline)

    def _lost_to_others(self) -> None:
        with self._lock:
            held = list(self._state.tenures)
        for shard in held:
            record = self._records.get(self.config.shard_lease(shard))
            if record is None or record.holder != self.config.identity:
                holder = record.holder if record else None
                self._close(shard, f"the Lease is now held by {holder or 'nobody'}")

    def _start_release(self, shard: int) -> None:
        with self._lock:
            tenure = self._state.tenures.get(shard)
            if tenure is not None and tenure.releasing_since is None:
                tenure.releasing_since = self._clock()
        log.info("releasing shard %d (rebalancing): no new reconciles of it", shard)

    def _failed(self, what: str, error: Exception) -> None:
        text = f"{what}: {type(error).__name__}: {getattr(error, 'reason', None) or error}"
        if text != self._last_error:
            log.warning("leader election: %s", text)
        self._last_error = text

    def _update_gauges(self) -> None:
        owned = [s for s in range(self.config.shards) if self.holds(s)]
        for shard in range(self.config.shards):
            metrics.SHARD_OWNED.labels(str(shard)).set(1 if shard in owned else 0)
            metrics.SHARD_HOLDER.labels(str(shard), self.config.identity).set(
                1 if shard in owned else 0
            )
        metrics.SHARDS_OWNED.set(len(owned))

    async def _renew(self, shard: int) -> None:
        name = self.config.shard_lease(shard)
        record = self._records.get(name)
        if record is None:
            return
        sent = self._clock()
        try:
            stored = await self._call(self._write, record, self._spec(record, renew=True))
        except _ERRORS as error:
            if isinstance(error, ApiException) and error.status in (404, 409):
                self._close(shard, f"renewal refused ({error.status}): someone else wrote it")
            else:
                self._failed(f"renewing {name}", error)
            return
        self._store(stored, sent)
        with self._lock:
            tenure = self._state.tenures.get(shard)
            if tenure is not None:
                tenure.deadline = sent + self.config.renew_deadline

    async def _acquire(self, shard: int) -> bool:
        name = self.config.shard_lease(shard)
        record = self._records.get(name)
        sent = self._clock()
        try:
            if record is None:
                stored = await self._call(self._create, name, "shard", self._spec(None))
            else:
                stored = await self._call(self._write, record, self._spec(record))
        except _ERRORS as error:
            if isinstance(error, ApiException) and error.status in (404, 409):
                log.debug("shard %d: another replica was faster", shard)
            else:
                self._failed(f"acquiring {name}", error)
            return False
        self._store(stored, sent)
        self._open(shard, sent)
        return True

    async def _release(self, shard: int, why: str) -> bool:
        """Close the tenure and clear the Lease's holder; False when that failed."""
        name = self.config.shard_lease(shard)
        record = self._records.get(name)
        self._close(shard, why)
        if record is None or record.holder != self.config.identity:
            return True
        spec = {
            "holderIdentity": None,
            "leaseDurationSeconds": 1,
            "acquireTime": None,
            "renewTime": _micro_time(),
            "leaseTransitions": record.transitions,
        }
        sent = self._clock()
        try:
            stored = await self._call(self._write, record, spec)
        except _ERRORS as error:
            self._failed(f"releasing {name}", error)  # it expires by itself
            return False
        self._store(stored, sent)
        return True

    async def _renew_member(self) -> None:
        name = self.config.member_lease()
        record = self._records.get(name)
        sent = self._clock()
        try:
            if record is None or record.holder != self.config.identity:
                if record is not None:
                    await self._call(self._delete, record)
                stored = await self._call(self._create, name, "member", self._spec(None))
            else:
                stored = await self._call(self._write, record, self._spec(record, renew=True))
        except _ERRORS as error:
            self._failed(f"renewing {name}", error)
            return
        self._store(stored, sent)
        self._member_since = stored.acquire_time or self._member_since

    async def _forget_stale_members(self) -> None:
        """Delete the member Leases of replicas gone (killed without stopping), as soon
        as they expire: a replica started later must not count them (it would wait a
        whole lease duration to see them expire, its quota too small meanwhile)."""
        now = self._clock()
        for record in list(self._records.values()):
            if record.role != "member" or record.holder == self.config.identity:
                continue
            if now >= self._observer.expires_at(record):
                with contextlib.suppress(*_ERRORS):
                    await self._call(self._delete, record)
                    log.info("deleted the member Lease %s of a replica gone", record.name)
                self._records.pop(record.name, None)
                self._observer.forget(record.name)

    def _store(self, record: LeaseRecord, sent: float) -> None:
        self._records[record.name] = record
        self._observer.wrote(record, sent)

    def _spec(self, record: LeaseRecord | None, renew: bool = False) -> dict[str, Any]:
        now = _micro_time()
        acquired, transitions = now, 0
        if record is not None:
            ours = record.holder == self.config.identity
            transitions = record.transitions if ours else record.transitions + 1
            if renew and ours and record.acquire_time:
                acquired = record.acquire_time
        return {
            "holderIdentity": self.config.identity,
            "leaseDurationSeconds": int(self.config.lease_duration),
            "acquireTime": acquired,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    # --- API calls (in the election's own thread) -------------------------------------------

    @property
    def _coordination(self) -> Any:
        """CoordinationV1Api (typed Any: it is called with dicts and raw responses)."""
        return k8s.CoordinationV1Api(self.api_client)

    def _metadata(self, name: str, role: str) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": name,
            "namespace": self.config.namespace,
            "labels": {
                **MANAGED_BY,
                GROUP_LABEL: dns_label(self.config.name, 63),
                ROLE_LABEL: role,
            },
        }
        if role == "member":
            meta["annotations"] = {SHARDS_ANNOTATION: str(self.config.shards)}
        return meta

    def _list(self) -> list[LeaseRecord]:
        response = self._coordination.list_namespaced_lease(
            self.config.namespace,
            label_selector=f"{GROUP_LABEL}={dns_label(self.config.name, 63)}",
            _preload_content=False,
            _request_timeout=self._timeout,
        )
        items = json.loads(response.data).get("items") or []
        return [LeaseRecord.from_obj(item) for item in items]

    def _create(self, name: str, role: str, spec: dict[str, Any]) -> LeaseRecord:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": self._metadata(name, role),
            "spec": spec,
        }
        response = self._coordination.create_namespaced_lease(
            self.config.namespace, body, _preload_content=False, _request_timeout=self._timeout
        )
        return LeaseRecord.from_obj(json.loads(response.data))

    def _write(self, record: LeaseRecord, spec: dict[str, Any]) -> LeaseRecord:
        """Replace the Lease, on the condition that it is still `record`."""
        meta = self._metadata(record.name, record.role or "shard")
        meta["resourceVersion"] = record.resource_version
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta}
        body["spec"] = spec
        response = self._coordination.replace_namespaced_lease(
            record.name,
            self.config.namespace,
            body,
            _preload_content=False,
            _request_timeout=self._timeout,
        )
        return LeaseRecord.from_obj(json.loads(response.data))

    def _delete(self, record: LeaseRecord) -> None:
        try:
            self._coordination.delete_namespaced_lease(
                record.name,
                self.config.namespace,
                body={"preconditions": {"resourceVersion": record.resource_version}},
                _request_timeout=self._timeout,
            )
        except ApiException as error:
            if error.status not in (404, 409):
                raise

    def _delete_member(self) -> None:
        record = self._records.get(self.config.member_lease())
        if record is not None:
            with contextlib.suppress(*_ERRORS):
                self._delete(record)


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- guards: every write of a reconcile goes through one of these ---------------------------


WRITE_TIMEOUT = (2.0, 60.0)
"""(connect, read) seconds of a fenced write. A write is checked against the fence, then
sent at most 2 s later (a new connection may take that long), so it reaches the API
server before anyone else may own the object: the fence closes at the renew deadline
(10 s), a standby acts 13 s after the renewal at the earliest."""


class FencedApiClient(CountingApiClient):
    """The reconciler's API client: every request other than a read must come from a
    reconcile of an object whose shard this replica owns (`Elector.check_write`).

    Writes go through a client of their own without urllib3's retries (a retry would
    send the write again after the check, perhaps after the fence closed) and with a
    bounded connect time (WRITE_TIMEOUT). Reads keep the client's retries.
    """

    def __init__(self, elector: Elector, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.elector = elector
        writes = copy.copy(self.configuration)
        writes.retries = False
        split: Any = _SplitRest(self.rest_client, k8s.rest.RESTClientObject(writes))
        self.rest_client = split

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if method.upper() not in READ_METHODS:
            self.elector.check_write(f"{method} {url.split('?')[0]}")
        return super().call_api(method, url, *args, **kwargs)


class _SplitRest:
    """Reads to one REST client, writes to another (without retries, with a timeout)."""

    def __init__(self, reads: Any, writes: Any) -> None:
        self.reads = reads
        self.writes = writes

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if method.upper() in READ_METHODS:
            return self.reads.request(method, url, *args, **kwargs)
        if not kwargs.get("_request_timeout"):
            kwargs["_request_timeout"] = WRITE_TIMEOUT
        return self.writes.request(method, url, *args, **kwargs)

    def close(self) -> None:
        self.reads.close()
        self.writes.close()

    def __getattr__(self, name: str) -> Any:  # pool_manager and the like: the reads'
        return getattr(self.reads, name)


class _EventSink(Protocol):
    def post(self, body: dict[str, Any], event: Any) -> Any: ...


class FencedEvents:
    """Decisions are announced (Events, the audit sink) only by the object's owner."""

    def __init__(self, inner: _EventSink, elector: Elector) -> None:
        self.inner = inner
        self.elector = elector

    def post(self, body: dict[str, Any], event: Any) -> Any:
        self.elector.check_write(f"Event {getattr(event, 'reason', '')}")
        return self.inner.post(body, event)  # False: not delivered yet (status.outbox)


class FencedLauncher:
    """A retraining launcher that starts runs (webhooks, Kubeflow Pipelines as well as
    Jobs) only for objects this replica owns."""

    def __init__(self, inner: Any, elector: Elector) -> None:
        self.inner = inner
        self.elector = elector
        self.name: str = inner.name

    def launch(self, request: Any) -> None:
        self.elector.check_write(f"retraining launch {getattr(request, 'run', '')}")
        self.inner.launch(request)

    def outcome(self, md: Any, run: str) -> Any:
        return self.inner.outcome(md, run)
