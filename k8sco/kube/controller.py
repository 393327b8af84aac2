"""The controller: watches Pipelines and their Jobs, asks the engine, applies its answer.

Level-triggered and stateless (DESIGN.md §3). Two watch threads keep a cache of Pipelines
and of the Jobs k8sco manages; any change marks its Pipeline dirty; one worker reconciles
dirty Pipelines with :func:`k8sco.reconcile.reconcile` (pure) and applies the result:
Jobs created (AlreadyExists counts as success) and deleted, one status patch, Events.
Nothing lives only in memory: kill the process at any instant, start it again, and it
reads the same Pipelines and Jobs back and reaches the same decisions.

Writes are batched per reconciliation and a Pipeline is reconciled at most once per
``min_interval`` seconds, so a burst of Job events costs one status patch.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from k8sco.engine import Graph
from k8sco.errors import ClusterError, Conflict, Gone, K8scoError, NotFound
from k8sco.kube.client import BACKGROUND, CORE, JOBS, MERGE_PATCH, PIPELINES, Cluster
from k8sco.kube.lease import LeaderElector
from k8sco.reconcile import Event, Reconciliation, reconcile
from k8sco.render.constants import (
    ANNOTATION_PATH,
    API_VERSION,
    KIND,
    LABEL_MANAGED_BY,
    LABEL_PIPELINE,
    MANAGED_BY,
    PLURAL,
)
from k8sco.render.pipeline import decode_tree, job_for, timestamp
from k8sco.tree import Node

log = logging.getLogger("k8sco.controller")

Key = tuple[str, str]  # (namespace, pipeline name)


@dataclass
class _Compiled:
    root: Node
    graph: Graph


@dataclass
class Stats:
    """What the controller did, for logs and benchmarks."""

    reconciles: int = 0
    jobs_created: int = 0
    jobs_deleted: int = 0
    status_patches: int = 0
    events: int = 0
    errors: int = 0
    created_at: dict[str, float] = field(default_factory=dict)  # job name -> when created


class Controller:
    """Reconciles Pipelines in ``namespaces`` (None: every namespace), or only ``only``."""

    def __init__(
        self,
        cluster: Cluster,
        namespaces: str | list[str] | None,
        *,
        only: str | None = None,
        clock: Callable[[], float] = time.time,
        min_interval: float = 0.05,
        resync: float = 30.0,
        watch_timeout: int = 240,
    ) -> None:
        self.cluster = cluster
        self.namespaces: list[str | None] = (
            [None]
            if namespaces is None
            else [namespaces]
            if isinstance(namespaces, str)
            else list(namespaces)
        )
        self.only = only
        self.clock = clock
        self.min_interval = min_interval
        self.resync = resync
        self.watch_timeout = watch_timeout
        self.stats = Stats()
        self.pipelines: dict[Key, dict[str, Any]] = {}
        self.jobs: dict[Key, dict[str, dict[str, Any]]] = {}
        self.finished: set[Key] = set()
        self._compiled: dict[tuple[str, Any], _Compiled] = {}
        self._dirty: set[Key] = set()
        self._cond = threading.Condition()
        self._synced = {
            (kind, ns): threading.Event()
            for kind in ("pipelines", "jobs")
            for ns in self.namespaces
        }
        self._last_sync: dict[Key, float] = {}
        self.stop = threading.Event()

    # --- watching ---------------------------------------------------------------------------

    def _path(self, group: str, plural: str, namespace: str | None) -> str:
        if namespace is None:
            return f"{group}/{plural}"
        return self.cluster.ns_path(group, plural, namespace)

    def _selector(self, kind: str) -> dict[str, str]:
        if kind == "pipelines":
            return {"fieldSelector": f"metadata.name={self.only}"} if self.only else {}
        label = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
        if self.only:
            label += f",{LABEL_PIPELINE}={self.only}"
        return {"labelSelector": label}

    def _watch_forever(self, kind: str, namespace: str | None) -> None:
        if kind == "pipelines":
            path = self._path(PIPELINES, PLURAL, namespace)
        else:
            path = self._path(JOBS, "jobs", namespace)
        selector = self._selector(kind)
        backoff = 0.1
        while not self.stop.is_set():
            try:
                listing = self.cluster.request("GET", path, query=selector)
                self._replace(kind, namespace, listing.get("items") or [])
                self._synced[(kind, namespace)].set()
                rv = (listing.get("metadata") or {}).get("resourceVersion", "")
                while not self.stop.is_set():
                    for event in self.cluster.watch(
                        path, resource_version=rv, selector=selector, timeout=self.watch_timeout
                    ):
                        obj = event.get("object") or {}
                        rv = (obj.get("metadata") or {}).get("resourceVersion", rv)
                        if event.get("type") != "BOOKMARK":
                            self._apply_event(kind, event.get("type", ""), obj)
                        if self.stop.is_set():
                            return
                    backoff = 0.1
            except Gone:
                log.info("%s watch expired; listing again", kind)
            except Exception as exc:  # a watch must outlive any one failure
                self.stats.errors += 1
                log.warning("%s watch failed (%s); retrying in %.1fs", kind, exc, backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _replace(self, kind: str, namespace: str | None, items: list[dict[str, Any]]) -> None:
        """A fresh listing of one kind in one namespace (None: all) replaces what was cached."""

        def other(key: Key) -> bool:
            return namespace is not None and key[0] != namespace

        with self._cond:
            if kind == "pipelines":
                kept = {k: v for k, v in self.pipelines.items() if other(k)}
                kept.update({_key(p): p for p in items})
                self.pipelines = kept
            else:
                jobs = {k: v for k, v in self.jobs.items() if other(k)}
                for job in items:
                    owner = _owner(job)
                    if owner is not None:
                        jobs.setdefault(owner, {})[_node_path(job)] = job
                self.jobs = jobs
            self._dirty.update(k for k in self.pipelines if not other(k))
            self._cond.notify()

    def _apply_event(self, kind: str, type_: str, obj: dict[str, Any]) -> None:
        with self._cond:
            if kind == "pipelines":
                key = _key(obj)
                if type_ == "DELETED":
                    self.pipelines.pop(key, None)
                    self.jobs.pop(key, None)
                    self._forget(key)
                    return
                if _newer(obj, self.pipelines.get(key)):
                    self.pipelines[key] = obj
            else:
                owner = _owner(obj)
                if owner is None:
                    return
                jobs = self.jobs.setdefault(owner, {})
                path = _node_path(obj)
                if type_ == "DELETED":
                    if jobs.get(path, {}).get("metadata", {}).get("uid") == obj["metadata"].get(
                        "uid"
                    ):
                        jobs.pop(path, None)
                elif _newer(obj, jobs.get(path)):
                    jobs[path] = obj
                key = owner
            self._dirty.add(key)
            self._cond.notify()

    def _forget(self, key: Key) -> None:
        self.finished.discard(key)
        self._last_sync.pop(key, None)

    # --- reconciling ------------------------------------------------------------------------

    def compiled(self, pipeline: Mapping[str, Any]) -> _Compiled:
        meta = pipeline["metadata"]
        cache_key = (meta.get("uid", ""), meta.get("generation"))
        found = self._compiled.get(cache_key)
        if found is None:
            root = decode_tree(pipeline["spec"])
            found = _Compiled(root, Graph.from_tree(root))
            self._compiled = {k: v for k, v in self._compiled.items() if k[0] != cache_key[0]}
            self._compiled[cache_key] = found
        return found

    def sync(self, key: Key) -> Reconciliation | None:
        """Reconcile one Pipeline now and apply the result."""
        with self._cond:
            pipeline = self.pipelines.get(key)
            jobs = dict(self.jobs.get(key, {}))
        if pipeline is None or pipeline.get("metadata", {}).get("deletionTimestamp"):
            return None
        try:
            compiled = self.compiled(pipeline)
        except K8scoError as exc:
            self._event(pipeline, Event("Warning", "InvalidSpec", str(exc)))
            self._patch_status(pipeline, {"phase": "Failed", "message": str(exc)})
            self.finished.add(key)
            return None
        now = self.clock()
        result = reconcile(compiled.graph, pipeline, jobs, now)
        self.stats.reconciles += 1
        self._apply(pipeline, compiled, result, jobs)
        if result.finished:
            self.finished.add(key)
        else:
            self.finished.discard(key)
        return result

    def _apply(
        self,
        pipeline: dict[str, Any],
        compiled: _Compiled,
        result: Reconciliation,
        jobs: Mapping[str, Mapping[str, Any]],
    ) -> None:
        ns = pipeline["metadata"]["namespace"]
        key = _key(pipeline)
        for path in result.create:
            body = job_for(pipeline, compiled.root, path)
            name = body["metadata"]["name"]
            try:
                created = self.cluster.request(
                    "POST", self.cluster.ns_path(JOBS, "jobs", ns), body=body
                )
                self.stats.jobs_created += 1
                self.stats.created_at[name] = self.clock()
                with self._cond:
                    if _newer(created, self.jobs.get(key, {}).get(path)):
                        self.jobs.setdefault(key, {})[path] = created
            except Conflict:
                pass  # AlreadyExists: created by an earlier life of this controller
        for path in result.delete:
            job = jobs.get(path)
            if job is None:
                continue
            name = job["metadata"]["name"]
            try:
                self.cluster.request(
                    "DELETE",
                    f"{self.cluster.ns_path(JOBS, 'jobs', ns)}/{name}",
                    body=BACKGROUND,
                )
                self.stats.jobs_deleted += 1
            except NotFound:
                pass
        if result.status is not None:
            self._patch_status(pipeline, result.status)
        for event in result.events:
            self._event(pipeline, event)

    def _patch_status(self, pipeline: Mapping[str, Any], patch: Mapping[str, Any]) -> None:
        meta = pipeline["metadata"]
        path = f"{self.cluster.ns_path(PIPELINES, PLURAL, meta['namespace'])}/{meta['name']}/status"
        try:
            updated = self.cluster.request(
                "PATCH", path, body={"status": patch}, content_type=MERGE_PATCH
            )
        except NotFound:
            return  # deleted meanwhile
        self.stats.status_patches += 1
        with self._cond:
            key = _key(updated)
            if key in self.pipelines and _newer(updated, self.pipelines[key]):
                self.pipelines[key] = updated

    def _event(self, pipeline: Mapping[str, Any], event: Event) -> None:
        meta = pipeline["metadata"]
        now = timestamp(self.clock())
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid", ""),
            },
            "type": event.type,
            "reason": event.reason,
            "message": event.message[:1024],
            "source": {"component": "k8sco-controller"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": "k8sco-controller",
        }
        try:
            self.cluster.request(
                "POST", self.cluster.ns_path(CORE, "events", meta["namespace"]), body=body
            )
            self.stats.events += 1
        except ClusterError as exc:  # an Event is worth a try, never a failure
            log.debug("event not recorded: %s", exc)

    # --- running ----------------------------------------------------------------------------

    def run(
        self,
        *,
        elector: LeaderElector | None = None,
        until_finished: bool = False,
    ) -> None:
        """Watch and reconcile until ``self.stop`` is set (or, with ``until_finished``, until
        every watched Pipeline has finished)."""
        threads = [
            threading.Thread(
                target=self._watch_forever, args=(kind, ns), daemon=True, name=f"{kind}:{ns}"
            )
            for kind in ("pipelines", "jobs")
            for ns in self.namespaces
        ]
        if elector is not None:
            threads.append(
                threading.Thread(target=elector.run, args=(self.stop,), daemon=True, name="lease")
            )
        for thread in threads:
            thread.start()
        try:
            for synced in self._synced.values():
                while not synced.wait(0.2):
                    if self.stop.is_set():
                        return
            self._work(elector, until_finished)
        finally:
            self.stop.set()

    def _work(self, elector: LeaderElector | None, until_finished: bool) -> None:
        last_resync = self.clock()
        while not self.stop.is_set():
            if elector is not None and not elector.leading.is_set():
                elector.leading.wait(0.5)
                continue
            with self._cond:
                if not self._dirty:
                    self._cond.wait(timeout=1.0)
                if self.clock() - last_resync >= self.resync:
                    self._dirty.update(self.pipelines)
                    last_resync = self.clock()
                due = [k for k in self._dirty if self._due(k)]
                self._dirty.difference_update(due)
            for key in due:
                if self.stop.is_set() or (elector is not None and not elector.leading.is_set()):
                    break
                try:
                    self.sync(key)
                except Exception as exc:  # one pipeline's trouble must not stop the others
                    self.stats.errors += 1
                    if isinstance(exc, ClusterError):
                        log.warning("reconciling %s/%s failed (%s); will retry", *key, exc)
                    else:
                        log.exception("reconciling %s/%s failed; will retry", *key)
                    with self._cond:
                        self._dirty.add(key)
                    self.stop.wait(0.2)
                self._last_sync[key] = self.clock()
            if until_finished and self.pipelines and set(self.pipelines) <= self.finished:
                return
            if due == [] and self._dirty:
                self.stop.wait(self.min_interval)

    def _due(self, key: Key) -> bool:
        return self.clock() - self._last_sync.get(key, 0.0) >= self.min_interval


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace", ""), meta.get("name", ""))


def _owner(job: Mapping[str, Any]) -> Key | None:
    meta = job.get("metadata") or {}
    pipeline = (meta.get("labels") or {}).get(LABEL_PIPELINE)
    return (meta.get("namespace", ""), pipeline) if pipeline else None


def _node_path(job: Mapping[str, Any]) -> str:
    return str(((job.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_PATH, ""))


def _newer(obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    """True unless ``old`` is the same object at a later resourceVersion (RVs of one object
    only grow; they are compared as numbers where they are numbers)."""
    if old is None:
        return True
    a = (obj.get("metadata") or {}).get("resourceVersion", "")
    b = (old.get("metadata") or {}).get("resourceVersion", "")
    if (obj.get("metadata") or {}).get("uid") != (old.get("metadata") or {}).get("uid"):
        return True
    if a.isdigit() and b.isdigit():
        return int(a) >= int(b)
    return True
