"""In-memory object storage: one lock, one global resourceVersion, a bounded event history.

Stored objects are never mutated in place: every write stores a new dict, so an event or a
reader may hold a reference without copying. Callers that want to change an object must
``copy.deepcopy`` it first.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterator
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
        self._history: deque[Event] = deque(maxlen=max(1, history_window))
        self._subscribers: list[Callable[[Event], None]] = []
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
            uid = obj["metadata"].get("uid")
            if uid:
                self._uids[uid] = (key, ok)
            self._index_owners(key, ok, old, obj)
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
            self._uids.pop(old["metadata"].get("uid", ""), None)
            self._index_owners(key, ok, old, None)
            self._emit(Event(self._rv, "DELETED", key, obj, old))
            return obj

    def _index_owners(
        self, key: Key, ok: ObjKey, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        before, after = owner_uids(old), owner_uids(new)
        for uid in before - after:
            deps = self._dependents.get(uid)
            if deps is not None:
                deps.discard((key, ok))
                if not deps:
                    del self._dependents[uid]
        for uid in after - before:
            self._dependents.setdefault(uid, set()).add((key, ok))

    def _emit(self, event: Event) -> None:
        self._history.append(event)
        for fn in self._subscribers:
            fn(event)
        self.changed.notify_all()

    # -- watching ------------------------------------------------------------------------

    def subscribe(self, fn: Callable[[Event], None]) -> None:
        """Call ``fn(event)`` for every change, under the lock: it must be quick and must not
        call back into the store."""
        with self.lock:
            self._subscribers.append(fn)

    def events_since(self, rv: int) -> list[Event]:
        """Events with a resourceVersion greater than ``rv``; 410 Expired when some of them
        have already left the bounded history."""
        with self.lock:
            if rv >= self._rv:
                return []
            oldest = self._history[0].rv if self._history else self._rv + 1
            if rv < oldest - 1:
                raise expired(
                    f"too old resource version: {self.format_rv(rv)} ({self.format_rv(oldest - 1)})"
                )
            return list(itertools.islice(self._history, rv - oldest + 1, None))

    def next_events(self, rv: int, timeout: float) -> list[Event]:
        """Like :meth:`events_since`, but waits up to ``timeout`` seconds when there are none."""
        with self.lock:
            events = self.events_since(rv)
            if not events and not self.closed and timeout > 0:
                self.changed.wait(timeout)
                events = self.events_since(rv)
            return events

    def wait(self, timeout: float) -> None:
        with self.lock:
            if not self.closed:
                self.changed.wait(timeout)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.changed.notify_all()

    def __iter__(self) -> Iterator[tuple[Key, dict[str, Any]]]:
        with self.lock:
            snapshot = [(k, o) for k, bucket in self._objects.items() for o in bucket.values()]
        return iter(snapshot)
