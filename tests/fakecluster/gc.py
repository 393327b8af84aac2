"""The garbage collector and the namespace / CRD cleanup controllers.

Dependents whose owners are all gone are deleted (background) ``delay`` seconds later;
``orphan`` and
``foregroundDeletion`` finalizers are processed; a deleted namespace is emptied before it
goes; a deleted CRD takes its custom resources with it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable
from typing import Any

from .errors import ApiError
from .kinds import CRDHooks
from .loops import Loop
from .registry import DeleteOptions, Registry, WriteContext
from .resources import Key
from .store import Event, clone, owner_uids

NAMESPACES = ("", "namespaces")
CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")
_RECHECK = 0.05  # seconds between checks of a namespace / CRD that is being emptied


class GarbageCollector:
    """``delay``: how late dependents of a deleted owner go (Background propagation).

    The real garbage collector (pkg/controller/garbagecollector/garbagecollector.go) learns
    of the owner's deletion from its informers, puts the dependents on its attemptToDelete
    queue, looks each owner up again through the API and only then deletes the dependent:
    clients see the owner gone while its dependents still exist, for seconds under load.
    """

    def __init__(self, registry: Registry, errors: list[str], delay: float = 0.0) -> None:
        self.registry = registry
        self.store = registry.store
        self.delay = delay
        self.loop = Loop("fakecluster-gc", self._process, errors)

    def on_event(self, ev: Event) -> None:
        meta = ev.obj["metadata"]
        if ev.type == "DELETED":
            self.loop.add_after(("owner-gone", meta.get("uid", "")), self.delay)
            for uid in owner_uids(ev.obj):
                self.loop.add(("owner", uid))
            return
        if ev.type == "ADDED" and meta.get("ownerReferences"):
            item = ("dependent", ev.key, meta.get("namespace", ""), meta["name"])
            self.loop.add_after(item, self.delay)
        if meta.get("deletionTimestamp"):
            finalizers = meta.get("finalizers") or []
            if "orphan" in finalizers or "foregroundDeletion" in finalizers:
                self.loop.add(("owner", meta.get("uid", "")))
            if ev.key in (NAMESPACES, CRDS):
                self.loop.add(("cleanup", ev.key, meta["name"]))

    def _process(self, item: Hashable) -> None:
        assert isinstance(item, tuple)
        handlers: dict[str, Callable[..., None]] = {
            "owner-gone": self._owner_gone,
            "dependent": self._dependent,
            "owner": self._owner,
            "cleanup": self._cleanup,
        }
        with self.store.lock:
            handlers[item[0]](*item[1:])

    # -- owners and dependents -------------------------------------------------------------

    def _owner_alive(self, ref: dict[str, Any], dependent: dict[str, Any]) -> bool:
        found = self.store.by_uid(ref.get("uid", ""))
        if found is None:
            return False
        owner_ns = found[1]["metadata"].get("namespace") or ""
        # A namespaced dependent may only have owners in its namespace (or cluster-scoped).
        return owner_ns in ("", dependent["metadata"].get("namespace") or "")

    def _owner_gone(self, uid: str) -> None:
        for key, dep in self.store.dependents(uid):
            self._check(key, dep)

    def _dependent(self, key: Key, namespace: str, name: str) -> None:
        dep = self.store.get(key, namespace, name)
        if dep is not None:
            self._check(key, dep)

    def _check(self, key: Key, dep: dict[str, Any]) -> None:
        refs = dep["metadata"].get("ownerReferences") or []
        alive = [r for r in refs if self._owner_alive(r, dep)]
        if len(alive) == len(refs):
            return
        if not alive:
            if not dep["metadata"].get("deletionTimestamp"):
                self._delete(key, dep, "Background")
            return
        new = clone(dep)
        new["metadata"]["ownerReferences"] = alive
        self._write(key, new)

    def _owner(self, uid: str) -> None:
        found = self.store.by_uid(uid)
        if found is None:
            return
        key, owner = found
        meta = owner["metadata"]
        finalizers = meta.get("finalizers") or []
        if not meta.get("deletionTimestamp"):
            return
        if "orphan" in finalizers:
            for dep_key, dep in self.store.dependents(uid):
                new = clone(dep)
                refs = [
                    r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
                ]
                if refs:
                    new["metadata"]["ownerReferences"] = refs
                else:
                    new["metadata"].pop("ownerReferences", None)
                self._write(dep_key, new)
            self._drop_finalizer(key, uid, "orphan")
        elif "foregroundDeletion" in finalizers:
            blocking = 0
            for dep_key, dep in self.store.dependents(uid):
                refs = [
                    r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") == uid
                ]
                if any(r.get("blockOwnerDeletion") for r in refs):
                    blocking += 1
                if not dep["metadata"].get("deletionTimestamp"):
                    self._delete(dep_key, dep, "Background")
            if blocking == 0:
                self._drop_finalizer(key, uid, "foregroundDeletion")

    # -- namespaces and CRDs --------------------------------------------------------------

    def _cleanup(self, key: Key, name: str) -> None:
        obj = self.store.get(key, "", name)
        if obj is None or not obj["metadata"].get("deletionTimestamp"):
            return
        if key == NAMESPACES:
            remaining = self._empty_namespace(name)
            if remaining:
                self.loop.add_after(("cleanup", key, name), _RECHECK)
            else:
                self.registry.remove_now(self.registry.rt(NAMESPACES), "", name)
            return
        spec = obj.get("spec") or {}
        cr_key = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        for cr in self.store.objects(cr_key):
            if not cr["metadata"].get("deletionTimestamp"):
                self._delete(cr_key, cr, "Background")
        if self.store.objects(cr_key):
            self.loop.add_after(("cleanup", key, name), _RECHECK)
        else:
            self._drop_finalizer(key, obj["metadata"]["uid"], CRDHooks.CLEANUP)

    def _empty_namespace(self, namespace: str) -> int:
        remaining = 0
        for key in self.store.resource_keys():
            rt = self.registry.resources.preferred(key)
            if rt is None or not rt.namespaced:
                continue
            for obj in self.store.objects(key, namespace):
                remaining += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    self._delete(key, obj, "Background")
        return remaining

    # -- writes ---------------------------------------------------------------------------

    def _delete(self, key: Key, obj: dict[str, Any], policy: str) -> None:
        rt = self.registry.resources.preferred(key)
        if rt is None:
            return
        meta = obj["metadata"]
        # ApiError: already gone, or replaced by a new object of the same name
        with contextlib.suppress(ApiError):
            self.registry.delete(
                rt,
                meta.get("namespace", ""),
                meta["name"],
                DeleteOptions(propagation_policy=policy, precondition_uid=meta.get("uid")),
                WriteContext(internal=True),
            )

    def _write(self, key: Key, new: dict[str, Any]) -> None:
        rt = self.registry.resources.preferred(key)
        if rt is None:
            return
        meta = new["metadata"]
        self.registry.update(
            rt, meta.get("namespace", ""), meta["name"], new, "", WriteContext(internal=True)
        )

    def _drop_finalizer(self, key: Key, uid: str, finalizer: str) -> None:
        found = self.store.by_uid(uid)
        if found is None:
            return
        new = clone(found[1])
        new["metadata"]["finalizers"] = [
            f for f in new["metadata"].get("finalizers") or [] if f != finalizer
        ]
        if not new["metadata"]["finalizers"]:
            del new["metadata"]["finalizers"]
        self._write(key, new)
