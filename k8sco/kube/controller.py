"""The controller: watches Pipelines and their Jobs, asks the engine, applies its answer.

Level-triggered and stateless (DESIGN.md §3). Two watch threads keep a cache of Pipelines
and of the Jobs k8sco manages; any change marks its Pipeline dirty; one worker reconciles
dirty Pipelines with :func:`k8sco.reconcile.reconcile` (pure) and applies the result:
Jobs created (AlreadyExists counts as success) and deleted, one status patch, Events.
Nothing that decides an outcome lives only in memory: kill the process at any instant,
start it again, and it reads the same Pipelines and Jobs back and reaches the same
decisions. What memory holds is bookkeeping whose loss only restarts a clock: the backoff
of a refused Job create, since when a foreign Job has blocked a node
(``K8SCO_FOREIGN_JOB_TIMEOUT``) or a pod has failed to start (``K8SCO_START_TIMEOUT``),
measured on this process's clock, never against the API server's timestamps.

Only a Job with an ownerReference to the Pipeline's uid is a node's run; Jobs are cached
by their pipeline label and checked for ownership at each reconciliation. A refused Job
create never stops a reconciliation: the node records the API's message (waiting and
retried, or failed; reconcile/problems.py) and the status patch is written. The status
patch carries the resourceVersion it was computed from, so a second leader for a moment
(leader election does not fence) or a lagging cache gets 409 and decides again.
Jobs whose pods have not started are looked at (pods list, events list), throttled, to say
why; the RBAC this needs: pods list, events list and create, jobs get.

Writes are batched per reconciliation and a Pipeline is reconciled at most once per
``min_interval`` seconds, so a burst of Job events costs one status patch.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from k8sco import lazy
from k8sco.data.kube import FINALIZER, DataConfig, decorate_job
from k8sco.engine import EXEC, Graph, NodeState, State
from k8sco.errors import (
    ClusterError,
    Conflict,
    Gone,
    K8scoError,
    NotFound,
    PipelineError,
    UsageError,
)
from k8sco.kube import secrets
from k8sco.kube.archive import Archiver
from k8sco.kube.client import BACKGROUND, CORE, JOBS, MERGE_PATCH, PIPELINES
from k8sco.kube.lease import LeaderElector
from k8sco.kube.overflow import StatusStore, load_tree
from k8sco.kube.retention import Retention, delete_finished
from k8sco.lazy import refuse_on_cluster
from k8sco.reconcile import Event, Reconciliation, reconcile
from k8sco.reconcile.decide import problem_events
from k8sco.reconcile.observe import (
    events_trouble,
    job_state,
    pod_failure,
    pod_trouble,
    waiting_for_pod,
)
from k8sco.reconcile.problems import (
    Limits,
    Problem,
    Trouble,
    create_failed,
    not_owned,
    owns,
    start_timeouts,
)
from k8sco.render import overflow as shards
from k8sco.render.constants import (
    ANNOTATION_PATH,
    API_VERSION,
    CONTAINER_NAME,
    KIND,
    LABEL_MANAGED_BY,
    LABEL_PIPELINE,
    MANAGED_BY,
    PLURAL,
)
from k8sco.render.pipeline import (
    Phase,
    job_for,
    node_record,
    node_state,
    parse_timestamp,
    recorded_states,
    timestamp,
)
from k8sco.tree import Node

log = logging.getLogger("k8sco.controller")

Key = tuple[str, str]  # (namespace, pipeline name)

# Environment variables that set the controller's bounds (seconds); see Limits.
ENV_FOREIGN_TIMEOUT = "K8SCO_FOREIGN_JOB_TIMEOUT"
ENV_START_TIMEOUT = "K8SCO_START_TIMEOUT"


class Api(Protocol):
    """What the controller needs of the API: :class:`k8sco.kube.client.Cluster` is one; the
    unit tests pass an in-memory one."""

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
        retry: bool = True,
        raw: bool = False,
        accept: str = "application/json",
    ) -> Any: ...

    def watch(
        self, path: str, *, resource_version: str, selector: Mapping[str, str], timeout: int
    ) -> Iterator[dict[str, Any]]: ...

    def ns_path(self, group_path: str, plural: str, namespace: str | None = None) -> str: ...


def limits_from_env(environ: Mapping[str, str] | None = None) -> Limits:
    """:class:`Limits` with ``K8SCO_FOREIGN_JOB_TIMEOUT`` and ``K8SCO_START_TIMEOUT``
    (seconds) applied; a value that is not a positive number is an error naming it."""
    env = os.environ if environ is None else environ
    values: dict[str, float] = {}
    for var, field_name in (
        (ENV_FOREIGN_TIMEOUT, "foreign_timeout"),
        (ENV_START_TIMEOUT, "start_timeout"),
    ):
        text = env.get(var, "").strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not value > 0:
            raise UsageError(f"{var}={text!r} is not a number of seconds above 0")
        values[field_name] = value
    return Limits(**values)


@dataclass
class _Compiled:
    root: Node
    graph: Graph
    start_timeouts: dict[str, float]
    lazies: tuple[str, ...] = ()  # the paths of its Lazy nodes

    @classmethod
    def of(cls, root: Node, graph: Graph | None = None) -> _Compiled:
        graph = graph if graph is not None else Graph.from_tree(root)
        return cls(root, graph, start_timeouts(root), tuple(lazy.lazy_paths(root)))


@dataclass
class _LazyStep:
    """What co.Lazy changed before a reconciliation (Controller._expand)."""

    compiled: _Compiled  # the working tree: the spec's with status.lazy spliced in
    view: dict[str, Any]  # the status to decide on: expansions, records re-keyed
    held: dict[str, dict[str, Any]]  # Jobs of an earlier run, shown as being deleted
    delete: list[str]  # Jobs to delete, by path
    changed: bool  # the tree changed: create nothing until the status is written


@dataclass
class Stats:
    """What the controller did, for logs and benchmarks (counters only: nothing here grows
    with the number of Jobs ever created)."""

    reconciles: int = 0
    jobs_created: int = 0
    jobs_deleted: int = 0
    status_patches: int = 0
    status_conflicts: int = 0
    events: int = 0
    errors: int = 0
    probes: int = 0
    pipelines_deleted: int = 0


@dataclass(frozen=True)
class _Probe:
    """The looks at the pods and Events of one queued Job. Times are this process's clock
    (a Job's creationTimestamp is the API server's: never compared with ours)."""

    uid: str
    first: float  # when this controller first saw the Job queued
    trouble: str | None = None
    since: float | None = None  # when the trouble was first seen
    at: float | None = None  # the last look


class Controller:
    """Reconciles Pipelines in ``namespaces`` (None: every namespace), or only ``only``."""

    def __init__(
        self,
        cluster: Api,
        namespaces: str | list[str] | None,
        *,
        only: str | None = None,
        clock: Callable[[], float] = time.time,
        min_interval: float = 0.05,
        resync: float = 30.0,
        watch_timeout: int = 240,
        limits: Limits | None = None,
        probe_after: float = 1.0,
        probe_every: float = 5.0,
        probes_per_second: float = 10.0,
        data: DataConfig | None = None,
        lazy_on_cluster: bool | None = None,
        retention: Retention | None = None,
    ) -> None:
        self.cluster = cluster
        # co.Lazy expanded here (K8SCO_LAZY_CLUSTER=1) rather than refused (k8sco/lazy.py).
        self.lazy = lazy.cluster_enabled() if lazy_on_cluster is None else lazy_on_cluster
        self.data = data  # co.data's store: Jobs' env, log archives (kube/archive.py)
        self.archive = Archiver(cluster, data, os.environ, clock=clock) if data else None
        # How long a finished Pipeline is kept (kube/retention.py); None: for ever.
        self.retention = retention
        self.overflow = StatusStore(cluster)  # the status ConfigMaps (kube/overflow.py)
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
        self.limits = limits if limits is not None else limits_from_env()
        self.probe_after = probe_after
        self.probe_every = probe_every
        self.probes_per_second = probes_per_second
        self.stats = Stats()
        self.pipelines: dict[Key, dict[str, Any]] = {}
        self.jobs: dict[Key, dict[str, dict[str, Any]]] = {}
        self.finished: set[Key] = set()
        self._compiled: dict[tuple[str, Any, Any], _Compiled] = {}
        self._dirty: set[Key] = set()
        self._cond = threading.Condition()
        self._synced = {
            (kind, ns): threading.Event()
            for kind in ("pipelines", "jobs")
            for ns in self.namespaces
        }
        self._last_sync: dict[Key, float] = {}
        # Per Pipeline, forgotten with it: problems creating its Jobs (by the uid and
        # generation they belong to: a rerun or stop starts afresh), the last look at its
        # queued Jobs' pods, when to reconcile it again, the spec reported invalid.
        self._problems: dict[Key, tuple[tuple[str, Any], dict[str, Problem]]] = {}
        self._probes: dict[Key, dict[str, _Probe]] = {}
        self._failed: dict[Key, dict[str, tuple[str, str]]] = {}  # path: (Job uid, detail)
        self._timers: dict[Key, float] = {}
        self._invalid: dict[Key, tuple[str, Any]] = {}
        self._probe_tokens = probes_per_second
        self._probe_refill = clock()
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
                    # The client gives the stream a read timeout a little over the
                    # server's timeoutSeconds, so a silent connection ends here too.
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
                for key in set(self.pipelines) - set(kept):
                    self._forget(key)
                self.pipelines = kept
            else:
                jobs = {k: v for k, v in self.jobs.items() if other(k)}
                for job in items:
                    label = _label_key(job)
                    if label is not None:
                        jobs.setdefault(label, {})[_node_path(job)] = job
                self.jobs = jobs
            self._dirty.update(k for k in self.pipelines if not other(k))
            self._cond.notify()

    def _apply_event(self, kind: str, type_: str, obj: dict[str, Any]) -> None:
        """One watch event. Events of a watch arrive in order, so each one replaces what is
        cached: resourceVersions are opaque strings, never compared for order
        (kubernetes/kubernetes staging/src/k8s.io/client-go/tools/cache/reflector.go keeps
        the last one only to resume from)."""
        with self._cond:
            if kind == "pipelines":
                key = _key(obj)
                if type_ == "DELETED":
                    self.pipelines.pop(key, None)
                    self.jobs.pop(key, None)
                    self._forget(key)
                    return
                self.pipelines[key] = obj
            else:
                # Cached under the Pipeline its label names; whether that Pipeline owns it
                # is decided by ownerReference uid at each reconciliation.
                label = _label_key(obj)
                if label is None:
                    return
                jobs = self.jobs.setdefault(label, {})
                path = _node_path(obj)
                if type_ == "DELETED":
                    if _uid(jobs.get(path)) == _uid(obj):
                        jobs.pop(path, None)
                else:
                    jobs[path] = obj
                key = label
            self._dirty.add(key)
            self._cond.notify()

    def _forget(self, key: Key) -> None:
        self.finished.discard(key)
        self._last_sync.pop(key, None)
        self._problems.pop(key, None)
        self._probes.pop(key, None)
        self._failed.pop(key, None)
        self._timers.pop(key, None)
        self._invalid.pop(key, None)

    # --- reconciling ------------------------------------------------------------------------

    def _remember(self, cache_key: tuple[str, Any, Any], found: _Compiled) -> None:
        self._compiled = {k: v for k, v in self._compiled.items() if k[0] != cache_key[0]}
        self._compiled[cache_key] = found

    def compiled(self, pipeline: Mapping[str, Any]) -> _Compiled:
        meta = pipeline["metadata"]
        # The working tree is the spec's with the expansions status.lazy records spliced in.
        cache_key = (
            meta.get("uid", ""),
            meta.get("generation"),
            lazy.signature(pipeline.get("status")),
        )
        found = self._compiled.get(cache_key)
        if found is None:
            root = load_tree(self.cluster, pipeline, self.clock())
            # Expanded here, or (K8SCO_LAZY_CLUSTER=0) failed in a line.
            refuse_on_cluster(root, enabled=self.lazy)
            found = _Compiled.of(root)
            self._remember(cache_key, found)
        return found

    def sync(self, key: Key) -> Reconciliation | None:
        """Reconcile one Pipeline now and apply the result."""
        with self._cond:
            pipeline = self.pipelines.get(key)
            jobs = dict(self.jobs.get(key, {}))
        if pipeline is None or pipeline.get("metadata", {}).get("deletionTimestamp"):
            if pipeline is not None and self.archive is not None:
                self.archive.observe(pipeline, jobs, recorded=False)  # its finalizer
            return None
        meta = pipeline["metadata"]
        mark = (meta.get("uid", ""), meta.get("generation"))
        try:
            compiled = self.compiled(pipeline)
            view = self.overflow.view(pipeline)  # the status with its ConfigMaps' records
        except ClusterError as exc:  # tree ConfigMaps not written yet, or a failed read
            log.info("%s/%s: %s; trying again", *key, exc)
            self._wake(key, self.clock() + 1.0)
            return None
        except K8scoError as exc:
            # Once per generation: a resync must not repeat the Event every 30 s.
            if self._invalid.get(key) != mark and self._patch_status(
                pipeline, {"phase": Phase.FAILED, "message": str(exc)}
            ):
                self._event(pipeline, Event("Warning", "InvalidSpec", str(exc)))
                self._invalid[key] = mark
            self.finished.add(key)
            return None
        self._invalid.pop(key, None)
        now = self.clock()
        stored_view = view
        step: _LazyStep | None = None
        if self.lazy:
            try:
                step = self._expand(pipeline, compiled, view, jobs, now)
            except ClusterError as exc:  # a Generate pod's log could not be read (yet)
                log.info("%s/%s: %s; trying again", *key, exc)
                self._wake(key, now + 1.0)
                return None
            if step is not None:
                compiled, view = step.compiled, step.view
        held = step.held if step is not None else {}
        before = self._problems.get(key)
        problems = before[1] if before is not None and before[0] == mark else {}
        waiting, probe_wake = self._waiting(key, pipeline, jobs, now)
        failures = self._failures(key, compiled.graph, pipeline, view, jobs)

        def decide(jobs: Mapping[str, Any], problems: Mapping[str, Problem]) -> Reconciliation:
            result = reconcile(
                compiled.graph,
                view,
                {**jobs, **held},
                now,
                problems=problems,
                waiting=waiting,
                limits=self.limits,
                failures=failures,
                start_timeouts=compiled.start_timeouts,
            )
            return result if step is None else self._against(stored_view, step, result)

        result = decide(jobs, problems)
        self.stats.reconciles += 1
        if step is not None and step.changed:
            # No Job before the status write that records the new tree (and re-keys
            # status.nodes to it) has landed: a Job is created only for a node that a
            # controller started at any later moment finds in the tree.
            result = dataclasses.replace(result, create=[])
            self._wake(key, now)
        outcome = self._create(pipeline, compiled, result.create, result.problems, now)
        seen = dict(result.problems)
        seen.update({p: v for p, v in outcome.items() if v is not None})
        if outcome:
            # Decide again with what the creates said, so that this reconciliation's one
            # status patch records it (a refused create must never stop the writes).
            after = {p: v for p, v in result.problems.items() if p not in outcome}
            after.update({p: v for p, v in outcome.items() if v is not None})
            with self._cond:
                jobs = dict(self.jobs.get(key, {}))
            result = decide(jobs, after)
            if set(result.create) - set(outcome):
                self._wake(key, now)
        if result.problems:
            self._problems[key] = (mark, result.problems)
        else:
            self._problems.pop(key, None)
        for event in problem_events(problems, seen):
            self._event(pipeline, event)
        self._delete(pipeline, result, jobs)
        written = True
        if result.status is not None:
            inline = self.overflow.store(pipeline, result.status)
            written = self._patch_status(pipeline, inline) if inline else True
        if written:
            for event in result.events:
                self._event(pipeline, event)
        if self.archive is not None:  # queues log archives; does no I/O here
            self.archive.observe(pipeline, jobs, recorded=written)
        wakes = [t for t in (result.wake_at, probe_wake) if t is not None]
        if wakes:
            self._wake(key, min(wakes))
        if result.finished:
            self.finished.add(key)
            self._retire(key, pipeline, jobs, result, now)
        else:
            self.finished.discard(key)
        return result

    def _retire(
        self,
        key: Key,
        pipeline: Mapping[str, Any],
        jobs: Mapping[str, Mapping[str, Any]],
        result: Reconciliation,
        now: float,
    ) -> None:
        """Delete a finished Pipeline past its retention (kube/retention.py); its Jobs and
        pods follow by garbage collection of their owner."""
        at = self.retention.expiry(pipeline) if self.retention is not None else None
        if at is None:
            return
        if now < at:
            self._wake(key, at)
            return
        if result.status is not None:
            return  # judged on the version this status write makes (its watch event)
        archive = self.archive
        if (
            archive is not None
            and archive.archives
            and (
                FINALIZER not in (pipeline["metadata"].get("finalizers") or [])
                or any(not archive.is_archived(job) for job in jobs.values())
            )
        ):
            # Not before its store is known to be deleted with it (the finalizer) and every
            # log is in the store: each step's write is a watch event that brings this back.
            return
        if not delete_finished(self.cluster, pipeline):
            return  # gone, or changed since (a rerun): judged again on its next event
        self.stats.pipelines_deleted += 1
        log.info("%s/%s: deleted, finished more than its retention ago", *key)

    # --- co.Lazy ----------------------------------------------------------------------------

    def _expand(
        self,
        pipeline: Mapping[str, Any],
        compiled: _Compiled,
        view: dict[str, Any],
        jobs: Mapping[str, Mapping[str, Any]],
        now: float,
    ) -> _LazyStep | None:
        """What co.Lazy changes before this reconciliation, None when nothing.

        - A new rerun (``spec.rerun``) covering an expanded Lazy node with a failed or
          killed node under it drops the expansion (and those nested in it), forgets the
          records under the Lazy node and deletes their Jobs: its Generate runs again. The
          old Generate Job is *held* (``status.lazy[path] = {"held": its uid}``) and shown
          to :func:`reconcile` as being deleted until it is gone, so that a cache that
          still holds it never passes it for the new run.
        - Every Generate Job that succeeded is expanded: its tree read from its pod's log,
          kept in ``status.lazy`` and spliced in, once no Job of an earlier expansion is
          left under its Execute node. A generator that printed no usable tree, or whose
          tree would put the pipeline over its total cap, has its node failed, saying why.

        Either way ``status.nodes`` is re-keyed to the new tree's pre-order indices in the
        status that the same write records. ClusterError when a log cannot be read now."""
        meta, spec = pipeline["metadata"], pipeline.get("spec") or {}
        uid = meta.get("uid")
        raw = (view.get("status") or {}).get(lazy.STATUS_KEY)
        if not compiled.lazies and not raw:
            return None  # no Lazy node: nothing to do, at no cost per reconciliation
        status = dict(view.get("status") or {})
        entries: dict[str, dict[str, Any]] = (
            {p: dict(e) for p, e in raw.items() if isinstance(e, Mapping)}
            if isinstance(raw, Mapping)
            else {}
        )
        # All the records only when the tree changes (or for a rerun); otherwise the few
        # Generate nodes' (a reconciliation stays O(Jobs that changed), not O(nodes)).
        recorded: dict[str, NodeState] | None = None
        nodes_now = status.get("nodes") or {}
        t0 = parse_timestamp(status["startTime"]) if status.get("startTime") else 0.0

        def record_of(path: str) -> NodeState | None:
            if recorded is not None:
                return recorded.get(path)
            found = nodes_now.get(str(compiled.graph.index.get(path, -1)))
            try:
                return node_state(found, t0) if isinstance(found, Mapping) else None
            except (KeyError, ValueError, TypeError):
                return None

        root, graph = compiled.root, compiled.graph
        step = _LazyStep(compiled, view, {}, [], False)
        failed: dict[str, NodeState] = {}
        written = False  # status.lazy changes

        rerun = spec.get("rerun") or {}
        if rerun.get("token") and rerun["token"] != status.get("rerunToken"):
            target = str(rerun.get("path") or "/")
            recorded = recorded_states(compiled.graph, status)
            for lazy_path in sorted(entries, key=lambda p: (p.count("/"), p)):
                entry = entries.get(lazy_path)
                if entry is None or "tree" not in entry or lazy_path not in graph.index:
                    continue
                if not _under(lazy_path, target):
                    continue
                inside = [
                    graph.paths[i] for i in graph.subtree(lazy_path) if graph.kinds[i] == EXEC
                ]
                if not any(p in recorded and recorded[p].state.failed for p in inside):
                    continue  # done nodes stay done on a rerun, a whole Lazy node too
                root = lazy.unexpand(root, lazy_path)
                for p in list(entries):
                    if _under(p, lazy_path):
                        del entries[p]
                entries[lazy_path] = {"held": str(entry.get("job", ""))}
                for p in inside:
                    recorded.pop(p, None)
                    if p in jobs and owns(jobs[p], uid) and not _deleting(jobs[p]):
                        step.delete.append(p)
                written = True

        for lazy_path, entry in list(entries.items()):
            if "tree" in entry:
                continue
            generate = _join(lazy_path, lazy.GENERATE)
            job = jobs.get(generate)
            if job is not None and entry.get("held") and str(_uid(job)) == entry["held"]:
                step.held[generate] = _as_deleted(job)  # reconcile holds the node
                if not _deleting(job) and generate not in step.delete:
                    step.delete.append(generate)
            else:
                del entries[lazy_path]
                written = True

        lazies = compiled.lazies if root is compiled.root else tuple(lazy.lazy_paths(root))
        for lazy_path in lazies:
            generate = _join(lazy_path, lazy.GENERATE)
            job = jobs.get(generate)
            if lazy_path in entries:
                continue
            rec = record_of(generate)
            if rec is None and (job is None or not owns(job, uid) or _deleting(job)):
                continue
            if rec is not None and rec.state is State.DONE:
                # Done with no expansion recorded: status.lazy was lost (a CRD without it
                # in its schema prunes it). Never pass an empty Execute for done.
                failed[generate] = rec.with_(
                    state=State.ERROR,
                    exit_code=None,
                    reason="its generated tree is not in the Pipeline's status.lazy (pruned "
                    "by an older Pipeline CRD?): kubectl apply -f manifests/, then k8sco rerun",
                )
                continue
            if rec is not None and rec.state.finished:
                continue  # recorded already: why it had no expansion
            if job is None or not owns(job, uid) or _deleting(job):
                continue
            state = job_state(job, rec)
            if state.state is not State.DONE:
                continue
            execute = _join(lazy_path, lazy.EXECUTE)
            stale = [p for p, j in jobs.items() if _under(p, execute) and owns(j, uid)]
            if stale:  # an earlier expansion's: expanded once they are gone
                step.delete.extend(p for p in stale if not _deleting(jobs[p]))
                continue
            try:
                generated = lazy.read_tree(self._generate_log(job))
                packed = lazy.pack(generated)
                used = sum(len(str(e.get("tree", ""))) for e in entries.values()) + len(packed)
                if used > lazy.STATUS_MAX:
                    raise PipelineError(
                        f"the generated trees of this pipeline would take {used / 1024:.0f} "
                        f"KiB of its status, over the {lazy.STATUS_MAX // 1024} KiB cap for "
                        "generated trees on the cluster: generate less"
                    )
                root = lazy.splice(root, lazy_path, generated)
            except PipelineError as exc:
                reason = " ".join(str(exc).split())
                failed[generate] = state.with_(state=State.ERROR, exit_code=None, reason=reason)
                continue
            entries[lazy_path] = {"job": str(_uid(job) or ""), "tree": packed}
            written = True

        step.changed = root is not compiled.root
        if not (step.changed or failed or written or step.held or step.delete):
            return None
        if written:
            if entries:
                status[lazy.STATUS_KEY] = entries
            else:
                status.pop(lazy.STATUS_KEY, None)
        if step.changed or failed:
            if recorded is None:
                recorded = recorded_states(compiled.graph, status)
            if step.changed:
                graph = Graph.from_tree(root)
            if not status.get("startTime"):
                t0 = now
            nodes: dict[str, Any] = {}
            for path, rec in {**recorded, **failed}.items():
                record = node_record(rec, t0)
                if record is not None and path in graph.index:
                    nodes[str(graph.index[path])] = record
            status.setdefault("startTime", timestamp(t0))
            status["nodes"] = nodes
        if step.changed:
            step.compiled = _Compiled.of(root, graph)
            cache_key = (meta.get("uid", ""), meta.get("generation"), lazy.signature(status))
            self._remember(cache_key, step.compiled)
        step.view = {**view, "status": status}
        return step

    @staticmethod
    def _against(
        stored: Mapping[str, Any], step: _LazyStep, result: Reconciliation
    ) -> Reconciliation:
        """``result`` decided on ``step.view`` (the status with co.Lazy's changes) with its
        status patch made against ``stored`` (what the Pipeline holds), and co.Lazy's Job
        deletions added."""
        full = shards.apply_patch(step.view.get("status") or {}, result.status or {})
        patch = shards.merge_patch(stored.get("status") or {}, full)
        delete = sorted(set(result.delete) | set(step.delete))
        return dataclasses.replace(result, status=patch or None, delete=delete)

    def _generate_log(self, job: Mapping[str, Any]) -> bytes:
        """The tail of the output of a succeeded Generate Job's pod (RBAC: pods list,
        pods/log get). PipelineError when its pods are gone."""
        meta = job["metadata"]
        pods_path = self.cluster.ns_path(CORE, "pods", meta["namespace"])
        pods = (
            self.cluster.request(
                "GET", pods_path, query={"labelSelector": f"controller-uid={meta.get('uid')}"}
            )
            or {}
        ).get("items") or []
        pods.sort(
            key=lambda p: (
                (p.get("status") or {}).get("phase") == "Succeeded",
                p["metadata"].get("creationTimestamp", ""),
            ),
            reverse=True,
        )
        if not pods:
            raise PipelineError(
                "the Lazy generator's pod is gone, and with it the tree it printed: "
                "rerun the Lazy node"
            )
        text = self.cluster.request(
            "GET",
            f"{pods_path}/{pods[0]['metadata']['name']}/log",
            query={"container": CONTAINER_NAME},
            raw=True,
        )
        data = text.encode() if isinstance(text, str) else bytes(text or b"")
        return data[-lazy.TAIL_BYTES :]

    def _wake(self, key: Key, at: float) -> None:
        with self._cond:
            if key not in self._timers or at < self._timers[key]:
                self._timers[key] = at

    def _create(
        self,
        pipeline: Mapping[str, Any],
        compiled: _Compiled,
        paths: list[str],
        problems: Mapping[str, Problem],
        now: float,
    ) -> dict[str, Problem | None]:
        """Create the Jobs of ``paths``; what became of each one that had or has a problem
        (None: created, or found to be this Pipeline's)."""
        meta = pipeline["metadata"]
        ns, uid = meta["namespace"], meta.get("uid")
        key = _key(pipeline)
        out: dict[str, Problem | None] = {}
        halted: ClusterError | None = None  # a transient refusal: the rest would get it too
        secret_keys: tuple[str, ...] = ()
        try:  # names only, so that secrets beat node env (k8sco/secrets.py); no values
            secret_keys = secrets.key_names(self.cluster, ns) if paths else ()
        except ClusterError as exc:
            halted = exc  # a Job made without them would run with the wrong environment
        for path in paths:
            prior = problems.get(path)
            body = job_for(pipeline, compiled.root, path, secret_keys)
            if self.data is not None and uid:
                body = decorate_job(body, self.data, ns, uid)
            name = body["metadata"]["name"]
            if halted is not None:
                out[path] = create_failed(halted.status, str(halted), name, prior, now)
                continue
            try:
                # No retries inside the request: a busy API server must not stall every
                # other Pipeline; the node retries with its own backoff (reconcile.problems).
                created = self.cluster.request(
                    "POST", self.cluster.ns_path(JOBS, "jobs", ns), body=body, retry=False
                )
                self.stats.jobs_created += 1
                self._cache_job(key, path, created)
                # Its pods are looked at probe_after seconds from now (our clock).
                self._probes.setdefault(key, {})[path] = _Probe(_uid(created) or "", first=now)
                if prior is not None:
                    out[path] = None
            except Conflict:
                found = self._read_job(ns, name)
                if found is None:
                    out[path] = None  # gone meanwhile: try again at once
                    self._wake(key, now)
                elif owns(found, uid):
                    # Created by an earlier life of this controller (or another leader).
                    self._cache_job(key, path, found)
                    if prior is not None:
                        out[path] = None
                else:
                    foreign = not_owned(found, prior, now)
                    out[path] = foreign
                    log.warning("%s/%s %s: %s", ns, meta["name"], path, foreign.message)
            except ClusterError as exc:
                problem = create_failed(exc.status, str(exc), name, prior, now)
                out[path] = problem
                log.warning(
                    "%s/%s %s: creating job %s failed (%s, HTTP %s): %s",
                    ns,
                    meta["name"],
                    path,
                    name,
                    problem.kind,
                    exc.status,
                    exc,
                )
                if problem.kind is Trouble.TRANSIENT:
                    halted = exc
        return out

    def _read_job(self, ns: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.cluster.request(
                "GET", f"{self.cluster.ns_path(JOBS, 'jobs', ns)}/{name}"
            )
            return found
        except NotFound:
            return None

    def _cache_job(self, key: Key, path: str, job: dict[str, Any]) -> None:
        """A Job this controller wrote, unless the watch already brought it (a watch event
        of the same uid is as new or newer: keep it)."""
        with self._cond:
            jobs = self.jobs.setdefault(key, {})
            if _uid(jobs.get(path)) != _uid(job):
                jobs[path] = job

    def _delete(
        self,
        pipeline: Mapping[str, Any],
        result: Reconciliation,
        jobs: Mapping[str, Mapping[str, Any]],
    ) -> None:
        ns = pipeline["metadata"]["namespace"]
        for path in result.delete:
            job = jobs.get(path)
            if job is None:
                continue
            if self.archive is not None:
                self.archive.before_delete(job)  # its log first (kube/archive.py)
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

    # --- pods that cannot start -------------------------------------------------------------

    def _waiting(
        self,
        key: Key,
        pipeline: Mapping[str, Any],
        jobs: Mapping[str, Mapping[str, Any]],
        now: float,
    ) -> tuple[dict[str, tuple[str, float]], float | None]:
        """Why the pods of this Pipeline's queued Jobs cannot start, by node path, and when
        to look again. Only Jobs with no running pod are looked at, each at most every
        ``probe_every`` seconds and all of them at most ``probes_per_second``: the cost does
        not grow with the Jobs that run normally."""
        uid = pipeline["metadata"].get("uid")
        old = self._probes.get(key, {})
        fresh: dict[str, _Probe] = {}
        out: dict[str, tuple[str, float]] = {}
        wake: float | None = None
        for path, job in jobs.items():
            if not waiting_for_pod(job) or not owns(job, uid):
                continue
            meta = job["metadata"]
            juid = str(meta.get("uid", ""))
            probe = old.get(path)
            if probe is None or probe.uid != juid:
                probe = _Probe(juid, first=now)
            if probe.at is None:
                due_at = probe.first + self.probe_after
            else:
                due_at = probe.at + self.probe_every
            if now >= due_at and self._take_probe_token(now):
                trouble = self._probe(meta["namespace"], meta["name"], juid)
                since = (probe.since if probe.trouble else None) or now
                probe = dataclasses.replace(
                    probe, trouble=trouble, since=since if trouble else None, at=now
                )
                due_at = now + self.probe_every
            fresh[path] = probe
            if probe.trouble and probe.since is not None:
                out[path] = (probe.trouble, probe.since)
            next_look = max(due_at, now + 1.0 / self.probes_per_second)
            wake = next_look if wake is None else min(wake, next_look)
        if fresh:
            self._probes[key] = fresh
        else:
            self._probes.pop(key, None)
        return out, wake

    def _failures(
        self,
        key: Key,
        graph: Graph,
        pipeline: Mapping[str, Any],
        view: Mapping[str, Any],
        jobs: Mapping[str, Mapping[str, Any]],
    ) -> dict[str, str]:
        """How the last pod of each newly failed Job ended (one pods list per failed node,
        once: a failure already recorded in the status is not looked at again)."""
        uid = pipeline["metadata"].get("uid")
        seen = self._failed.setdefault(key, {})
        fresh = [
            (path, job)
            for path, job in jobs.items()
            if _failed(job) and seen.get(path, ("", ""))[0] != _uid(job) and owns(job, uid)
        ]
        if fresh:
            recorded = recorded_states(graph, view.get("status") or {})
            for path, job in fresh:
                meta = job["metadata"]
                detail = ""
                if not recorded.get(path, NodeState()).state.finished:
                    detail = self._last_failure(meta["namespace"], str(meta.get("uid", "")))
                seen[path] = (str(meta.get("uid", "")), detail)
        return {path: detail for path, (_, detail) in seen.items() if detail}

    def _last_failure(self, ns: str, job_uid: str) -> str:
        try:
            pods = (
                self.cluster.request(
                    "GET",
                    self.cluster.ns_path(CORE, "pods", ns),
                    query={"labelSelector": f"controller-uid={job_uid}"},
                ).get("items")
                or []
            )
        except ClusterError as exc:
            log.debug("cannot read the pods of job %s: %s", job_uid, exc)
            return ""
        pods.sort(key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
        for pod in pods:
            detail = pod_failure(pod)
            if detail:
                return detail
        return ""

    def _take_probe_token(self, now: float) -> bool:
        self._probe_tokens = min(
            self.probes_per_second,
            self._probe_tokens + (now - self._probe_refill) * self.probes_per_second,
        )
        self._probe_refill = now
        if self._probe_tokens < 1.0:
            return False
        self._probe_tokens -= 1.0
        return True

    def _probe(self, ns: str, job: str, job_uid: str) -> str | None:
        """One look at a queued Job: its pods' waiting reasons, else its FailedCreate Events
        (RBAC: list pods, list events in the Pipeline's namespace)."""
        self.stats.probes += 1
        try:
            pods = (
                self.cluster.request(
                    "GET",
                    self.cluster.ns_path(CORE, "pods", ns),
                    query={"labelSelector": f"controller-uid={job_uid}"},
                ).get("items")
                or []
            )
            pods.sort(key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
            for pod in pods:
                if (pod.get("status") or {}).get("phase") in ("Pending", None):
                    trouble = pod_trouble(pod)
                    if trouble:
                        return trouble
            if any((p.get("status") or {}).get("phase") in ("Pending", "Running") for p in pods):
                return None
            events = (
                self.cluster.request(
                    "GET",
                    self.cluster.ns_path(CORE, "events", ns),
                    query={
                        "fieldSelector": f"involvedObject.kind=Job,involvedObject.uid={job_uid}"
                    },
                ).get("items")
                or []
            )
            return events_trouble(events)
        except ClusterError as exc:
            log.debug("cannot read the pods or events of job %s/%s: %s", ns, job, exc)
            return None

    # --- writing ----------------------------------------------------------------------------

    def _patch_status(self, pipeline: Mapping[str, Any], patch: Mapping[str, Any]) -> bool:
        """Write the status, guarded by the resourceVersion it was computed from: a stale
        writer (a second leader for a moment, a cache behind) gets 409, reads the Pipeline
        again and decides again. True when written."""
        meta = pipeline["metadata"]
        key = _key(pipeline)
        path = f"{self.cluster.ns_path(PIPELINES, PLURAL, meta['namespace'])}/{meta['name']}"
        body: dict[str, Any] = {"status": patch}
        rv = meta.get("resourceVersion")
        if rv:
            body["metadata"] = {"resourceVersion": rv}
        try:
            updated = self.cluster.request(
                "PATCH", f"{path}/status", body=body, content_type=MERGE_PATCH
            )
        except NotFound:
            return False  # deleted meanwhile
        except Conflict:
            self.stats.status_conflicts += 1
            log.info("%s/%s changed since it was read; reading it again", *key)
            try:
                fresh = self.cluster.request("GET", path)
            except NotFound:
                return False
            self._store_pipeline(key, rv, fresh)
            with self._cond:
                self._dirty.add(key)
                self._cond.notify()
            return False
        self.stats.status_patches += 1
        self._store_pipeline(key, rv, updated)
        return True

    def _store_pipeline(self, key: Key, read_rv: Any, obj: dict[str, Any]) -> None:
        """Cache what a write or read answered, unless the watch has brought a later version
        meanwhile (the cached resourceVersion is no longer the one read: equality only)."""
        with self._cond:
            cached = self.pipelines.get(key)
            if cached is not None and _rv(cached) == read_rv and _uid(cached) == _uid(obj):
                self.pipelines[key] = obj

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
        if self.archive is not None:
            self.archive.start(self.stop)
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
                    self._cond.wait(timeout=self._idle_wait())
                now = self.clock()
                if now - last_resync >= self.resync:
                    self._dirty.update(self.pipelines)
                    last_resync = now
                for key, at in list(self._timers.items()):
                    if at <= now:
                        del self._timers[key]
                        if key in self.pipelines:
                            self._dirty.add(key)
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

    def _idle_wait(self) -> float:
        if not self._timers:
            return 1.0
        return min(max(min(self._timers.values()) - self.clock(), 0.01), 1.0)

    def _due(self, key: Key) -> bool:
        return self.clock() - self._last_sync.get(key, 0.0) >= self.min_interval


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace", ""), meta.get("name", ""))


def _label_key(job: Mapping[str, Any]) -> Key | None:
    """The Pipeline a Job's label names: where it is cached, not proof of ownership."""
    meta = job.get("metadata") or {}
    pipeline = (meta.get("labels") or {}).get(LABEL_PIPELINE)
    return (meta.get("namespace", ""), pipeline) if pipeline else None


def _node_path(job: Mapping[str, Any]) -> str:
    return str(((job.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_PATH, ""))


def _join(path: str, name: str) -> str:
    return path.rstrip("/") + "/" + name


def _under(path: str, ancestor: str) -> bool:
    return ancestor == "/" or path == ancestor or path.startswith(ancestor.rstrip("/") + "/")


def _deleting(job: Mapping[str, Any]) -> bool:
    return bool((job.get("metadata") or {}).get("deletionTimestamp"))


def _as_deleted(job: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``job`` marked as being deleted: what reconcile() waits out."""
    meta = dict(job.get("metadata") or {})
    meta.setdefault("deletionTimestamp", "1970-01-01T00:00:00Z")
    return {**job, "metadata": meta}


def _failed(job: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") in ("Failed", "FailureTarget") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or ()
    )


def _uid(obj: Mapping[str, Any] | None) -> Any:
    return None if obj is None else (obj.get("metadata") or {}).get("uid")


def _rv(obj: Mapping[str, Any]) -> Any:
    return (obj.get("metadata") or {}).get("resourceVersion")
