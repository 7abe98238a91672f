"""Watch-fed caches of ModelDeployments and the objects Rung owns (client-go's informer
stores, for kopf).

kopf's watch events keep an `ObjectCache` current; `CachedKube` answers the
reconciler's reads from it, so a reconcile with nothing to do makes no API request,
and writes through it, so the next reconcile sees Rung's own writes before their
watch events arrive. A kind whose cache could not be primed (no list permission
cluster-wide, say) is read from the API server as before.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
from collections.abc import Iterable
from typing import Any, NamedTuple

from kubernetes.client.exceptions import ApiException

from rung.api.resource import OWNER_LABEL
from rung.kube import MODEL_DEPLOYMENT, Kind, Kube, ObjectGoneError

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Key = tuple[str, str]
"""(namespace, name)"""


def _resource_version(obj: Obj) -> int | None:
    text = (obj.get("metadata") or {}).get("resourceVersion")
    try:
        return int(text) if text is not None else None
    except ValueError:  # opaque in principle; etcd revisions in practice
        return None


class Stored(NamedTuple):
    """One cached object, kept as its compact JSON text.

    Decoded JSON costs 5-8 times its text in Python objects (every dict, list and
    string a separate allocation): 1,000 level-0 ModelDeployments with their
    InferenceServices, Deployments and Services held 50 MiB as dicts, 9 MiB as text.
    A read decodes a fresh copy, which it needed anyway (reads never share state with
    the cache), and decoding is faster than the deep copy it replaces.
    """

    resource_version: int | None
    owner: str | None
    """The owner label's value: the index by owner needs no decoding."""
    text: bytes

    @classmethod
    def of(cls, obj: Obj) -> Stored:
        meta = obj.get("metadata") or {}
        return cls(
            _resource_version(obj),
            (meta.get("labels") or {}).get(OWNER_LABEL),
            json.dumps(slim(obj), separators=(",", ":")).encode(),
        )

    def decoded(self) -> Obj:
        found: Obj = json.loads(self.text)
        return found


class ObjectCache:
    """The last known state of every watched object, by kind and (namespace, name).

    Thread-safe: kopf's event handlers write from the event loop, reconciles read
    from worker threads. A write never replaces a newer resourceVersion with an older
    one, so a late watch event cannot undo a write-through. Objects are kept as JSON
    text (`Stored`), and every read returns a copy of its own.
    """

    def __init__(self, namespaces: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._objects: dict[Kind, dict[Key, Stored]] = {}
        self._by_owner: dict[Kind, dict[Key, set[str]]] = {}
        """Names of each kind by (namespace, owner label): a reconcile looks up its own
        objects without scanning every object of the kind."""
        self._synced: set[Kind] = set()
        self._patterns = tuple(namespaces)

    def watches(self, namespace: str) -> bool:
        """Whether `namespace` is among the operator's (glob patterns; none: all)."""
        return not self._patterns or any(fnmatch.fnmatch(namespace, p) for p in self._patterns)

    def put(self, kind: Kind, obj: Obj) -> None:
        stored = Stored.of(obj)
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        with self._lock:
            objects = self._objects.setdefault(kind, {})
            old = objects.get(key)
            new_rv = stored.resource_version
            old_rv = old.resource_version if old is not None else None
            if old is not None and new_rv is not None and old_rv is not None and new_rv < old_rv:
                return
            self._unindex(kind, key, old)
            objects[key] = stored
            self._index(kind, key, stored)

    def remove(self, kind: Kind, namespace: str, name: str) -> None:
        with self._lock:
            key = (namespace, name)
            self._unindex(kind, key, self._objects.get(kind, {}).pop(key, None))

    def forget(self, namespace: str, name: str) -> None:
        """Drop a ModelDeployment found gone, and every object labelled as its (their
        DELETED events may never come: kopf stops watching a terminating namespace)."""
        with self._lock:
            self._objects.get(MODEL_DEPLOYMENT, {}).pop((namespace, name), None)
            for kind, objects in self._objects.items():
                for owned in self._by_owner.get(kind, {}).pop((namespace, name), set()):
                    objects.pop((namespace, owned), None)

    def forget_namespace(self, namespace: str) -> None:
        """Drop every object of a namespace that is going away (kopf stops watching it
        while it terminates, so the DELETED events of what it holds never come)."""
        with self._lock:
            for kind, objects in self._objects.items():
                for key in [k for k in objects if k[0] == namespace]:
                    del objects[key]
                owners = self._by_owner.get(kind, {})
                for key in [k for k in owners if k[0] == namespace]:
                    del owners[key]

    def replace_all(self, kind: Kind, objects: Iterable[Obj]) -> None:
        """The complete set of `kind` (a priming list); the kind counts as synced."""
        fresh: dict[Key, Stored] = {}
        for obj in objects:
            meta = obj["metadata"]
            if self.watches(meta["namespace"]):
                fresh[(meta["namespace"], meta["name"])] = Stored.of(obj)
        with self._lock:
            current = self._objects.get(kind, {})
            for key, stored in current.items():  # watch events newer than the list win
                if key in fresh and (stored.resource_version or 0) > (
                    fresh[key].resource_version or 0
                ):
                    fresh[key] = stored
            self._objects[kind] = fresh
            self._by_owner[kind] = {}
            for key, stored in fresh.items():
                self._index(kind, key, stored)
            self._synced.add(kind)

    def _index(self, kind: Kind, key: Key, stored: Stored) -> None:
        if stored.owner is not None:
            owners = self._by_owner.setdefault(kind, {})
            owners.setdefault((key[0], stored.owner), set()).add(key[1])

    def _unindex(self, kind: Kind, key: Key, stored: Stored | None) -> None:
        if stored is None:
            return
        names = self._by_owner.get(kind, {}).get((key[0], stored.owner or ""))
        if names is not None:
            names.discard(key[1])

    def synced(self, kind: Kind) -> bool:
        with self._lock:
            return kind in self._synced

    def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        with self._lock:
            found = self._objects.get(kind, {}).get((namespace, name))
        return found.decoded() if found is not None else None

    def owned(self, kind: Kind, namespace: str, owner: str, uid: str) -> list[Obj]:
        """Objects labelled as `owner`'s and owned by the object with `uid`."""
        return [
            obj
            for obj in self.labelled(kind, namespace, owner)
            if any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or [])
        ]

    def labelled(self, kind: Kind, namespace: str, owner: str) -> list[Obj]:
        """Objects labelled as `owner`'s, whoever owns them (KServe's Deployments)."""
        with self._lock:
            objects = self._objects.get(kind, {})
            names = self._by_owner.get(kind, {}).get((namespace, owner), set())
            found = [objects[(namespace, n)] for n in sorted(names)]
        return [stored.decoded() for stored in found]

    def keys(self, kind: Kind) -> list[Key]:
        with self._lock:
            return list(self._objects.get(kind, {}))


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def slim(obj: Obj) -> Obj:
    """`obj` without what Rung never reads and the API server repeats on every object:
    `metadata.managedFields` (40-50 % of an InferenceService, Deployment or
    ModelDeployment as stored) and kubectl's last-applied annotation (a copy of the
    spec). Controller-runtime's caches strip managedFields the same way. Shallow: the
    result shares everything below `metadata` with `obj`."""
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    trimmed_meta = {k: v for k, v in meta.items() if k != "managedFields"}
    if LAST_APPLIED in annotations:
        trimmed_meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return {**obj, "metadata": trimmed_meta} if meta else dict(obj)


class CachedKube(Kube):
    """`Kube` whose reads come from an `ObjectCache` and whose writes update it."""

    def __init__(self, kube: Kube, cache: ObjectCache) -> None:
        super().__init__(kube.api_client)
        self.cache = cache

    def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        if self.cache.synced(kind):
            return self.cache.get(kind, namespace, name)
        return super().get(kind, namespace, name)

    def get_fresh(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        """Read from the API server (after a conflict: the cache may be behind)."""
        obj = super().get(kind, namespace, name)
        if obj is not None:
            self.cache.put(kind, obj)
        return obj

    def list_owned(self, kind: Kind, namespace: str, owner: str, uid: str) -> list[Obj]:
        if self.cache.synced(kind):
            return self.cache.owned(kind, namespace, owner, uid)
        return super().list_owned(kind, namespace, owner, uid)

    def list_labelled(self, kind: Kind, namespace: str, owner: str) -> list[Obj]:
        if self.cache.synced(kind):
            return self.cache.labelled(kind, namespace, owner)
        return super().list_labelled(kind, namespace, owner)

    def apply(self, manifest: Obj) -> Obj:
        from rung.kube import kind_of

        stored = super().apply(manifest)
        self.cache.put(kind_of(manifest), stored)
        return stored

    def patch(self, kind: Kind, namespace: str, name: str, patch: Obj) -> Obj:
        stored = super().patch(kind, namespace, name, patch)
        self.cache.put(kind, stored)
        return stored

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        super().delete(kind, namespace, name)
        self.cache.remove(kind, namespace, name)

    def replace_status(self, body: Obj, status: Obj) -> Obj:
        try:
            stored = super().replace_status(body, status)
        except ObjectGoneError as gone:
            self.cache.forget(gone.namespace, gone.name)
            raise
        self.cache.put(MODEL_DEPLOYMENT, stored)
        return stored

    def prime(self, kinds: Iterable[Kind], namespaces: Iterable[str] = ()) -> list[Kind]:
        """List each kind once (cluster-wide, else in each plainly named namespace) to
        fill the cache before the watches take over; return the kinds primed."""
        primed = []
        names = list(namespaces)
        for kind in kinds:
            try:
                if names and all(not any(c in n for c in "*?[") for n in names):
                    items = [obj for n in names for obj in self.list_all(kind, n)]
                else:
                    items = self.list_all(kind)
            except ApiException as error:
                log.info(
                    "not caching %s (reading it from the API server): %s %s",
                    kind.plural,
                    error.status,
                    error.reason,
                )
                continue
            self.cache.replace_all(kind, items)
            primed.append(kind)
        return primed
