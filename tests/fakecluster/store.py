"""In-memory object storage: one lock, one global resourceVersion, a bounded event history.

Stored objects are never mutated in place: every write stores a new dict, so an event or a
reader may hold a reference without copying. Callers that want to change an object must
copy it first: :func:`clone` for a deep copy, or a shallow copy of just the parts they
replace (``new = {**obj, "status": status}``), since the parts left alone are never changed.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import expired
from .resources import Key

ObjKey = tuple[str, str]  # (namespace or "", name)
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Event:
    """One change: ``obj`` is the new state (the last state for DELETED), ``old`` the previous."""

    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    key: Key
    obj: dict[str, Any]
    old: dict[str, Any] | None


def clone(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars), several times faster than
    ``copy.deepcopy``; anything else goes through ``copy.deepcopy``."""
    cls = type(value)
    if cls is dict:
        return {k: v if type(v) in _ATOMS else clone(v) for k, v in value.items()}
    if cls is list:
        return [v if type(v) in _ATOMS else clone(v) for v in value]
    if cls in _ATOMS:
        return value
    return copy.deepcopy(value)


_ATOMS = frozenset({str, int, float, bool, type(None)})


def obj_key(obj: dict[str, Any]) -> ObjKey:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta["name"])


def owner_uids(obj: dict[str, Any] | None) -> set[str]:
    if not obj:
        return set()
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return {ref["uid"] for ref in refs if ref.get("uid")}


class Store:
    """Thread-safe object store. ``lock`` is re-entrant: the registry holds it across a
    read-check-write sequence, and controllers hold it across a whole sync."""

    def __init__(
        self, history_window: int = 10_000, first_rv: int = 1000, opaque_rvs: bool = False
    ) -> None:
        self.lock = threading.RLock()
        self.opaque_rvs = opaque_rvs
        self.changed = threading.Condition(self.lock)
        self._rv = first_rv
        self._objects: dict[Key, dict[ObjKey, dict[str, Any]]] = {}
        self._uids: dict[str, tuple[Key, ObjKey]] = {}
        self._dependents: dict[str, set[tuple[Key, ObjKey]]] = {}
        self._counts: dict[tuple[Key, str], int] = {}  # objects by (resource, namespace)
        # (resource, label, value) → the objects that have it, for lists by label selector.
        self._labeled: dict[tuple[Key, str, str], set[ObjKey]] = {}
        self._history: deque[Event] = deque(maxlen=max(1, history_window))
        self._subscribers: list[Callable[[Event], None]] = []
        # Per resource: the RV of its last event, and a condition its watchers wait on, so
        # that a change wakes only the watches of its own resource.
        self._last_rv: dict[Key, int] = {}
        self._key_changed: dict[Key, threading.Condition] = {}
        self.closed = False

    # -- reading -------------------------------------------------------------------------

    @property
    def rv(self) -> int:
        with self.lock:
            return self._rv

    def format_rv(self, rv: int) -> str:
        """The resourceVersion string clients see for the internal counter ``rv``.

        apimachinery's API conventions say resourceVersions are opaque to clients, who may
        only compare them for equality (api-conventions.md, "Concurrency Control and
        Consistency"); etcd3 happens to use decimal revisions, which tempts clients into
        ``int()``. Opaque ones are a letter followed by the base-36 digits reversed, so they
        neither parse as numbers nor sort in order.
        """
        if not self.opaque_rvs:
            return str(rv)
        digits = ""
        while True:
            rv, d = divmod(rv, 36)
            digits += _B36[d]
            if rv == 0:
                return "k" + digits

    def parse_rv(self, text: str) -> int:
        """The internal counter for a resourceVersion string; ValueError if malformed."""
        if not self.opaque_rvs:
            return int(text)
        if len(text) < 2 or text[0] != "k" or any(c not in _B36 for c in text[1:]):
            raise ValueError(text)
        return int(text[1:][::-1], 36)

    def get(self, key: Key, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            return self._objects.get(key, {}).get((namespace, name))

    def objects(self, key: Key, namespace: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            items = self._objects.get(key, {})
            keys = sorted(k for k in items if namespace is None or k[0] == namespace)
            return [items[k] for k in keys]

    def labeled(
        self, key: Key, namespace: str | None, label: str, values: Iterable[str]
    ) -> list[dict[str, Any]]:
        """The objects of ``key`` (in ``namespace``, None: all) whose ``label`` has one of
        ``values``, in the order of :meth:`objects`."""
        with self.lock:
            found: set[ObjKey] = set()
            for value in values:
                found |= self._labeled.get((key, label, value), set())
            items = self._objects.get(key, {})
            keys = sorted(k for k in found if namespace is None or k[0] == namespace)
            return [items[k] for k in keys]

    def count_labeled(self, key: Key, label: str, values: Iterable[str]) -> int:
        """An upper bound of what :meth:`labeled` returns (all namespaces)."""
        with self.lock:
            return sum(len(self._labeled.get((key, label, v), ())) for v in values)

    def count(self, key: Key, namespace: str) -> int:
        """How many objects of ``key`` live in ``namespace`` ("" for cluster-scoped ones)."""
        with self.lock:
            return self._counts.get((key, namespace), 0)

    def resource_keys(self) -> list[Key]:
        with self.lock:
            return [k for k, v in self._objects.items() if v]

    def by_uid(self, uid: str) -> tuple[Key, dict[str, Any]] | None:
        with self.lock:
            where = self._uids.get(uid)
            if where is None:
                return None
            return where[0], self._objects[where[0]][where[1]]

    def dependents(self, uid: str) -> list[tuple[Key, dict[str, Any]]]:
        """Objects whose ownerReferences name ``uid``."""
        with self.lock:
            found = sorted(self._dependents.get(uid, ()))
            return [(k, self._objects[k][ok]) for k, ok in found]

    # -- writing -------------------------------------------------------------------------

    def put(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` (not copied) with a new resourceVersion; emits ADDED or MODIFIED."""
        with self.lock:
            ok = obj_key(obj)
            bucket = self._objects.setdefault(key, {})
            old = bucket.get(ok)
            self._rv += 1
            obj["metadata"]["resourceVersion"] = self.format_rv(self._rv)
            bucket[ok] = obj
            if old is None:
                self._counts[(key, ok[0])] = self._counts.get((key, ok[0]), 0) + 1
            uid = obj["metadata"].get("uid")
            if uid:
                self._uids[uid] = (key, ok)
            self._index_owners(key, ok, old, obj)
            self._index_labels(key, ok, old, obj)
            self._emit(Event(self._rv, "MODIFIED" if old else "ADDED", key, obj, old))
            return obj

    def remove(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        """Remove the object; ``obj`` (not copied) is its last state, stamped with a new RV."""
        with self.lock:
            ok = obj_key(obj)
            old = self._objects.get(key, {}).pop(ok, None)
            if old is None:
                return obj
            self._rv += 1
            obj["metadata"]["resourceVersion"] = self.format_rv(self._rv)
            self._counts[(key, ok[0])] -= 1
            self._uids.pop(old["metadata"].get("uid", ""), None)
            self._index_owners(key, ok, old, None)
            self._index_labels(key, ok, old, None)
            self._emit(Event(self._rv, "DELETED", key, obj, old))
            return obj

    def _index_owners(
        self, key: Key, ok: ObjKey, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        refs = (old or {}).get("metadata", {}).get("ownerReferences")
        if refs is (new or {}).get("metadata", {}).get("ownerReferences"):
            return  # most writes keep them (the same list, as stored objects are shared)
        before, after = owner_uids(old), owner_uids(new)
        for uid in before - after:
            deps = self._dependents.get(uid)
            if deps is not None:
                deps.discard((key, ok))
                if not deps:
                    del self._dependents[uid]
        for uid in after - before:
            self._dependents.setdefault(uid, set()).add((key, ok))

    def _index_labels(
        self, key: Key, ok: ObjKey, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        before = (old or {}).get("metadata", {}).get("labels") or {}
        after = (new or {}).get("metadata", {}).get("labels") or {}
        if before is after:
            return
        for label, value in before.items():
            if after.get(label) != value:
                where = self._labeled.get((key, label, value))
                if where is not None:
                    where.discard(ok)
                    if not where:
                        del self._labeled[(key, label, value)]
        for label, value in after.items():
            if before.get(label) != value and isinstance(value, str):
                self._labeled.setdefault((key, label, value), set()).add(ok)

    def _emit(self, event: Event) -> None:
        self._history.append(event)
        self._last_rv[event.key] = event.rv
        for fn in self._subscribers:
            fn(event)
        self.changed.notify_all()
        waiting = self._key_changed.get(event.key)
        if waiting is not None:
            waiting.notify_all()

    # -- watching ------------------------------------------------------------------------

    def subscribe(self, fn: Callable[[Event], None]) -> None:
        """Call ``fn(event)`` for every change, under the lock: it must be quick and must not
        write to the store (reads are fine: the lock is re-entrant)."""
        with self.lock:
            self._subscribers.append(fn)

    def events_since(self, rv: int) -> list[Event]:
        """Events with a resourceVersion greater than ``rv``; 410 Expired when some of them
        have already left the bounded history."""
        with self.lock:
            self._check_kept(rv)
            if rv >= self._rv:
                return []
            # Every event bumps the RV by one, so the events after rv are the newest
            # ``self._rv - rv``: taken from the right end, not by walking the whole deque.
            newest = list(itertools.islice(reversed(self._history), self._rv - rv))
            newest.reverse()
            return newest

    def _check_kept(self, rv: int) -> None:
        oldest = self._history[0].rv if self._history else self._rv + 1
        if rv < min(oldest - 1, self._rv):
            raise expired(
                f"too old resource version: {self.format_rv(rv)} ({self.format_rv(oldest - 1)})"
            )

    def next_events(self, key: Key, rv: int, timeout: float) -> tuple[int, list[Event]]:
        """The events of resource ``key`` after ``rv``, waiting up to ``timeout`` seconds for
        one, and the RV the caller has then seen everything up to (events of other resources
        included, so that its next call starts there). 410 Expired as :meth:`events_since`."""
        with self.lock:
            self._check_kept(rv)
            if self._last_rv.get(key, 0) <= rv and not self.closed and timeout > 0:
                waiting = self._key_changed.get(key)
                if waiting is None:
                    waiting = self._key_changed[key] = threading.Condition(self.lock)
                waiting.wait(timeout)
            if self._last_rv.get(key, 0) <= rv:
                return self._rv, []  # nothing of this resource since rv: caught up
            return self._rv, [e for e in self.events_since(rv) if e.key == key]

    def wait(self, timeout: float) -> None:
        with self.lock:
            if not self.closed:
                self.changed.wait(timeout)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.changed.notify_all()
            for waiting in self._key_changed.values():
                waiting.notify_all()

    def __iter__(self) -> Iterator[tuple[Key, dict[str, Any]]]:
        with self.lock:
            snapshot = [(k, o) for k, bucket in self._objects.items() for o in bucket.values()]
        return iter(snapshot)
