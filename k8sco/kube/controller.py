"""The controller: watches Pipelines and their Jobs, asks the engine, applies its answer.

Level-triggered and stateless (DESIGN.md §3). Two watch threads keep a cache of Pipelines
and of the Jobs k8sco manages; any change queues its Pipeline (kube/workqueue.py); a few
workers (``K8SCO_WORKERS``), each Pipeline with one of them at a time, first queued first
served, reconcile it with :func:`k8sco.reconcile.reconcile` (pure) and apply the result:
Jobs created (AlreadyExists counts as success) and deleted, one status patch, Events.
Nothing that decides an outcome lives only in memory: kill the process at any instant,
start it again, and it reads the same Pipelines and Jobs back and reaches the same
decisions. What memory holds is bookkeeping whose loss only restarts a clock: the backoff
of a refused Job create, since when a foreign Job has blocked a node
(``K8SCO_FOREIGN_JOB_TIMEOUT``) or a pod has failed to start (``K8SCO_START_TIMEOUT``),
measured on this process's clock, never against the API server's timestamps.

And a cache, so that one Job's change costs what it changes, not the tree: per Pipeline a
:class:`k8sco.reconcile.live.Live` (the status it last wrote, the records in the incremental
engine) told which nodes' Jobs changed since the last reconciliation (the watch events).
It gives :func:`reconcile`'s answers (tests/reconcile/test_live.py), is built from the
Pipeline's status (at start, after a relist), and is dropped whenever it may not hold the
Pipeline's status: the Pipeline at another resourceVersion than its last write made (another
writer), a new generation or working tree (a rerun, a control, a co.Lazy splice), a write
that did not land. What it does not handle (a stop, a new rerun or reset, callbacks, shared
containers, a co.Lazy step) is decided by :func:`reconcile` from scratch.

Only a Job with an ownerReference to the Pipeline's uid is a node's run; Jobs are cached
by their pipeline label and checked for ownership at each reconciliation. A refused Job
create never stops a reconciliation: the node records the API's message (waiting and
retried, or failed; reconcile/problems.py) and the status patch is written. The status
patch carries the resourceVersion it was computed from, so a second leader for a moment
(leader election does not fence) or a lagging cache gets 409 and decides again.
Jobs whose pods have not started are looked at (pods list, events list), throttled, to say
why; the RBAC this needs: pods list, events list and create, jobs get.

Writes are batched per reconciliation. A burst of Job events costs one reconciliation:
the work queue holds a Pipeline once however often it is added while it waits, and what
arrives during a reconciliation is seen by the next one (the usual controller shape:
kubernetes/sample-controller controller.go adds every event and rate-limits only failed
syncs). ``min_interval`` (5 ms) only keeps a Pipeline whose Jobs end continuously from
being reconciled back to back for each one; a longer pause was measured to cost latency
(bench/controller.py, bench/many_pipelines.py) and saved no writes. On the cached
path the status of a running Pipeline is written at most every ``status_interval`` seconds
while all it has to say is nodes queued, running or done (what their Jobs show anyway):
the Jobs those nodes unblock are created at once, one patch and one Event record many
nodes. A failure, a phase change, a deletion or a refused create is written at once.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from immutables import Map

from k8sco import lazy, notify
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
from k8sco.kube import jobcache, lazystore, secrets
from k8sco.kube.archive import Archiver
from k8sco.kube.client import BACKGROUND, CORE, JOBS, MERGE_PATCH, PIPELINES
from k8sco.kube.groups import GroupReports
from k8sco.kube.lease import LeaderElector
from k8sco.kube.overflow import StatusStore, load_tree
from k8sco.kube.recorder import EventRecorder
from k8sco.kube.retention import Retention, delete_finished
from k8sco.kube.workqueue import WorkQueue
from k8sco.lazy import refuse_on_cluster
from k8sco.reconcile import Event, Reconciliation, reconcile
from k8sco.reconcile import callbacks as cbs
from k8sco.reconcile.decide import problem_events
from k8sco.reconcile.live import Live
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
    POD_JOB_UID_LABEL,
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
from k8sco.render.podspec import ALLOW_DOCKER_ENV, docker_allowed
from k8sco.sequence import is_group_job
from k8sco.tree import Node

log = logging.getLogger("k8sco.controller")

Key = tuple[str, str]  # (namespace, pipeline name)
JobMap = Map[str, dict[str, Any]]  # a Pipeline's Jobs by node path
EMPTY_JOBS: JobMap = Map()

# At most this share of a worker's time goes to looking at queued Jobs' pods.
PROBE_SHARE = 0.1
# Seconds a read of the key names of a namespace's k8sco Secret serves the Jobs of its
# Pipelines: a key set while one runs reaches the Jobs created from then on, this much later
# at most.
SECRET_KEYS_TTL = 5.0
# Seconds a stopping controller gives its queued Events to be written (kube/recorder.py).
EVENTS_GRACE = 2.0
# Job creates one reconciliation has in flight at most (Controller._create's slow start),
# and the threads that send them, shared by every worker of the process.
CREATE_BATCH = 32
CREATE_THREADS = 16

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


_POSTERS: ThreadPoolExecutor | None = None
_POSTERS_LOCK = threading.Lock()


def _posters() -> ThreadPoolExecutor:
    """The process's threads for concurrent Job creates, started on first use."""
    global _POSTERS
    with _POSTERS_LOCK:
        if _POSTERS is None:
            _POSTERS = ThreadPoolExecutor(CREATE_THREADS, thread_name_prefix="k8sco-create")
        return _POSTERS


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
    callbacks: cbs.Table | None = None  # co.callback's, when the tree has any

    @classmethod
    def of(cls, root: Node, graph: Graph | None = None) -> _Compiled:
        graph = graph if graph is not None else Graph.from_tree(root)
        table = cbs.Table.of(root)
        return cls(root, graph, start_timeouts(root), tuple(lazy.lazy_paths(root)), table or None)


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
    # Workers bump these for different Pipelines at once: `+= 1` could lose a count. One
    # lock for every instance, so that an instance holds counters only.
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name`` (safe from any thread)."""
        if not isinstance(getattr(self, name, None), int) or name.startswith("_"):
            raise AttributeError(f"Stats has no counter {name!r}")
        with self._lock:
            setattr(self, name, getattr(self, name) + n)


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
        min_interval: float = 0.005,
        resync: float = 30.0,
        watch_timeout: int = 240,
        limits: Limits | None = None,
        # A pod normally starts within a few seconds, and the kubelet reports an image it
        # cannot pull only after trying (ErrImagePull, then ImagePullBackOff): a look at
        # 1 s mostly found ContainerCreating, and cost the worker two lists per Job
        # whenever the cluster was slow (bench/controller.py at 10,000 nodes). 5 s still
        # shows why within seconds.
        probe_after: float = 5.0,
        probe_every: float = 5.0,
        status_interval: float = 2.0,
        probes_per_second: float = 10.0,
        data: DataConfig | None = None,
        lazy_on_cluster: bool | None = None,
        retention: Retention | None = None,
        workers: int = 16,
        background_events: bool = False,
    ) -> None:
        self.cluster = cluster
        # co.Lazy expanded here (K8SCO_LAZY_CLUSTER=1) rather than refused (k8sco/lazy.py).
        self.lazy = lazy.cluster_enabled() if lazy_on_cluster is None else lazy_on_cluster
        self.data = data  # co.data's store: Jobs' env, log archives (kube/archive.py)
        self.archive = Archiver(cluster, data, os.environ, clock=clock) if data else None
        # How long a finished Pipeline is kept (kube/retention.py); None: for ever.
        self.retention = retention
        self.overflow = StatusStore(cluster)  # the status ConfigMaps (kube/overflow.py)
        self.groups = GroupReports(cluster)  # shared containers' Jobs (kube/groups.py)
        # Events by a thread of their own in the controller process (kube/recorder.py); at
        # once by the worker otherwise (tests that read them right after a sync).
        self.recorder = EventRecorder(
            cluster, background=background_events, written=lambda: self.stats.add("events")
        )
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
        # Status writes of a running Pipeline whose news can wait (nodes queued, running,
        # done: what their Jobs show too) at most this often; Jobs are not delayed by it.
        self.status_interval = status_interval
        self.probes_per_second = probes_per_second
        self.stats = Stats()
        self.pipelines: dict[Key, dict[str, Any]] = {}
        # Per Pipeline its Jobs by node path, as immutable maps (a HAMT: an update copies a
        # path of the trie, not the map), so that a reconciliation takes a consistent
        # snapshot in O(1) while the watch goes on; a copy of a 100,000-Job dict costs ms.
        self.jobs: dict[Key, JobMap] = {}
        self.finished: set[Key] = set()
        self._compiled: dict[tuple[str, Any, Any], _Compiled] = {}
        self._compiled_lock = threading.Lock()  # workers compile different Pipelines at once
        # Pipelines to reconcile, each by one of `workers` threads at a time, first dirty
        # first served (kube/workqueue.py); `_cond` guards the caches the watches fill.
        self.workers = workers
        self.queue: WorkQueue[Key] = WorkQueue(clock=clock)
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
        # The incremental path's cache (reconcile/live.py), dropped whenever it may not hold
        # the Pipeline's status: each Live with the resourceVersion its status is at. And
        # the node paths whose Job changed since the last reconciliation (None: all).
        self._live: dict[Key, tuple[Live, Any]] = {}
        self._changed: dict[Key, set[str] | None] = {}
        self._queued: dict[Key, set[str]] = {}  # paths of the Jobs waiting for a pod
        self._grouped: dict[Key, set[str]] = {}  # paths of shared containers' Jobs
        self._written: dict[Key, Any] = {}  # the resourceVersion a status write made
        self._status_at: dict[Key, float] = {}  # when its status was last written
        self._secrets: dict[Key, str] = {}  # the uid of each Pipeline that had a read
        # The last read of each namespace's Secret key names: when it began, and what it found.
        self._secret_reads: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._secret_lock = threading.Lock()
        self._probe_lock = threading.Lock()  # the token bucket is shared by every Pipeline
        self._probe_tokens = probes_per_second
        self._probe_refill = clock()
        self.notices = notify.Deliveries()  # co.callback's notifications (k8sco.notify)
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
                self.stats.add("errors")
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
                gone = set(self.pipelines) - set(kept)
                self.pipelines = kept
                for key in gone:
                    self._forget(key)
            else:
                listed: dict[Key, dict[str, dict[str, Any]]] = {}
                for job in map(jobcache.slim, items):
                    label = _label_key(job)
                    if label is not None:
                        by_path = listed.setdefault(label, {})
                        if cbs.newer(by_path.get(_node_path(job)), job):  # attempts' Jobs
                            by_path[_node_path(job)] = job
                jobs = {k: v for k, v in self.jobs.items() if other(k)}
                jobs.update((k, JobMap(v)) for k, v in listed.items())
                self.jobs = jobs
                for key in set(self.pipelines) | set(jobs):
                    if not other(key):
                        self._changed[key] = None  # anything may have changed: look at all
            self.queue.add_all(k for k in self.pipelines if not other(k))

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
                obj = jobcache.slim(obj)
                jobs = self.jobs.get(label, EMPTY_JOBS)
                path = _node_path(obj)
                if type_ == "DELETED":
                    if _uid(jobs.get(path)) == _uid(obj):
                        jobs = jobs.delete(path)
                    if is_group_job(obj):  # also cached under the member it was created for
                        for other in [p for p, j in jobs.items() if _uid(j) == _uid(obj)]:
                            jobs = jobs.delete(other)
                            self._note_change(label, other)
                elif cbs.newer(jobs.get(path), obj):  # not an earlier attempt's Job
                    jobs = jobs.set(path, obj)
                self.jobs[label] = jobs
                key = label
                self._note_change(key, path)
            self.queue.add(key)

    def _note_change(self, key: Key, path: str) -> None:
        """A node's Job changed (call with ``self._cond`` held)."""
        changed = self._changed.get(key, set())
        if changed is not None:
            changed.add(path)
            self._changed[key] = changed

    def _forget(self, key: Key) -> None:
        self._live.pop(key, None)
        self._changed.pop(key, None)
        self._queued.pop(key, None)
        self._grouped.pop(key, None)
        self._written.pop(key, None)
        self._status_at.pop(key, None)
        self._secrets.pop(key, None)
        self.finished.discard(key)
        self._last_sync.pop(key, None)
        self._problems.pop(key, None)
        self._probes.pop(key, None)
        self._failed.pop(key, None)
        self._timers.pop(key, None)
        self._invalid.pop(key, None)
        # Its compiled tree too: kept by uid, so drop every uid no cached Pipeline has
        # (call with ``self._cond`` held: self.pipelines is read).
        uids = {_uid(p) for p in self.pipelines.values()}
        with self._compiled_lock:
            self._compiled = {k: v for k, v in self._compiled.items() if k[0] in uids}

    # --- reconciling ------------------------------------------------------------------------

    def _remember(self, cache_key: tuple[str, Any, Any], found: _Compiled) -> None:
        with self._compiled_lock:
            kept = {k: v for k, v in self._compiled.items() if k[0] != cache_key[0]}
            kept[cache_key] = found
            self._compiled = kept

    def compiled(self, pipeline: Mapping[str, Any]) -> _Compiled:
        meta = pipeline["metadata"]
        # The working tree is the spec's with the expansions status.lazy records spliced in.
        cache_key = (
            meta.get("uid", ""),
            meta.get("generation"),
            lazy.signature(pipeline.get("status")),
        )
        with self._compiled_lock:
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
            jobs = self.jobs.get(key, EMPTY_JOBS)
            # What changed since the last reconciliation (None: anything), and what the
            # incremental path keeps (put back once this reconciliation's write landed).
            changed = self._changed.pop(key, set())
            cached = self._live.pop(key, None)
            queued = _tracked(self._queued, key, jobs, changed, waiting_for_pod)
            # Paths whose Job is a shared container's (kube/groups.py), kept the same way
            # so that a Pipeline with none pays nothing per reconciliation for them.
            grouped = _tracked(self._grouped, key, jobs, changed, is_group_job)
        try:
            return self._sync(key, pipeline, jobs, changed, cached, queued, bool(grouped))
        except BaseException:
            with self._cond:
                self._changed[key] = None  # decided again from everything
            raise

    def _sync(
        self,
        key: Key,
        pipeline: dict[str, Any] | None,
        jobs: JobMap,
        changed: set[str] | None,
        cached: tuple[Live, Any] | None,
        queued: set[str],
        grouped: bool,
    ) -> Reconciliation | None:
        if pipeline is None or pipeline.get("metadata", {}).get("deletionTimestamp"):
            if pipeline is not None and self.archive is not None:
                self.archive.observe(pipeline, jobs, recorded=False)  # its finalizer
            return None
        meta = pipeline["metadata"]
        mark = (meta.get("uid", ""), meta.get("generation"))
        live = cached[0] if cached is not None and changed is not None else None
        if live is not None and (
            cached is None  # (for mypy)
            or cached[1] != meta.get("resourceVersion")  # written since by someone else
            or live.generation != meta.get("generation")
        ):
            live = None
        try:
            compiled = self.compiled(pipeline)
            if live is not None and live.graph is not compiled.graph:
                live = None
            # The status with its ConfigMaps' records: the Live's copy while it holds it.
            view = (
                {**pipeline, "status": live.mirror}
                if live is not None
                else self.overflow.view(pipeline)
            )
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
        waiting, probe_wake = self._waiting(key, pipeline, jobs, now, queued, look=False)
        if (
            step is not None
            or compiled.callbacks is not None  # reconcile() decides callbacks' effects
            or not Live.handles(pipeline, view.get("status") or {})
            or grouped  # one Job, many nodes: kube/groups.py
        ):
            live = None  # co.Lazy changed the tree, or a stop, a rerun, a reset: reconcile()
        elif live is None:
            live = Live(compiled.graph, view.get("status") or {}, meta.get("generation"))
            changed = None
        failures = self._failures(
            key,
            compiled.graph,
            pipeline,
            view,
            jobs,
            paths=changed,
            recorded=live.engine.recorded if live is not None else None,
        )

        def decide(jobs: Mapping[str, Any], problems: Mapping[str, Problem]) -> Reconciliation:
            result = reconcile(
                compiled.graph,
                view,
                {**self.groups.expand(compiled.root, jobs), **held},  # kube/groups.py
                now,
                problems=problems,
                waiting=self.groups.rekey(compiled.root, waiting),  # kube/groups.py
                limits=self.limits,
                failures=failures,
                start_timeouts=compiled.start_timeouts,
                callbacks=compiled.callbacks,
            )
            return result if step is None else self._against(stored_view, step, result)

        if live is not None:
            # The same answer at the cost of what changed (reconcile/live.py).
            result = live.reconcile(
                pipeline,
                jobs,
                changed or (),
                now,
                problems=problems,
                waiting=waiting,
                limits=self.limits,
                failures=failures,
                start_timeouts=compiled.start_timeouts,
            )
        else:
            result = decide(jobs, problems)
        self.stats.add("reconciles")
        if step is not None and step.changed:
            # No Job before the status write that records the new tree (and re-keys
            # status.nodes to it) has landed: a Job is created only for a node that a
            # controller started at any later moment finds in the tree.
            result = dataclasses.replace(result, create=[])
            self._wake(key, now)
        outcome = self._create(
            pipeline, compiled, result.create, result.problems, now, result.attempts
        )
        seen = dict(result.problems)
        seen.update({p: v for p, v in outcome.items() if v is not None})
        if outcome:
            # Decide again with what the creates said, so that this reconciliation's one
            # status patch records it (a refused create must never stop the writes).
            after = {p: v for p, v in result.problems.items() if p not in outcome}
            after.update({p: v for p, v in outcome.items() if v is not None})
            with self._cond:
                jobs = self.jobs.get(key, EMPTY_JOBS)
            if live is not None:  # from scratch, on the status as stored; rebuilt next time
                live = None
                view = self.overflow.view(pipeline)
            result = decide(jobs, after)
            if set(result.create) - set(outcome):
                self._wake(key, now)
        if result.problems:
            self._problems[key] = (mark, result.problems)
        else:
            self._problems.pop(key, None)
        for event in problem_events(problems, seen):
            self._event(pipeline, event)
        members = {**jobs, **self.groups.expand(compiled.root, jobs)} if grouped else jobs
        self._delete(pipeline, result, members)
        written = True  # the Pipeline's status is the one decided
        at = meta.get("resourceVersion")  # the version whose status the Live holds
        events = result.events
        deferred = False
        last = self._status_at.get(key)
        if live is not None and not live.unwritten():
            events = []
        elif (
            live is not None
            and live.may_wait()
            and not (result.finished or result.delete or result.problems)
            and last is not None
            and now - last < self.status_interval
        ):
            # Written with what follows, status_interval after the last write: Jobs are
            # created at once, while one status patch and one Event record many nodes.
            written, deferred, events = False, True, []
            self._wake(key, last + self.status_interval)
        elif live is not None:  # at the cost of the records that changed
            if live.spec_bytes is None:
                live.spec_bytes = shards.json_size(pipeline.get("spec"))
            inline, live.layout = self.overflow.store_changes(
                pipeline, live.mirror, live.changed, live.layout, live.spec_bytes
            )
            if inline:
                written = self._patch_status(pipeline, inline)
                at = self._written.pop(key, None)
            if written:
                events = live.written()  # what changed since the last write
                self._status_at[key] = now
        elif result.status is not None:
            inline = self.overflow.store(pipeline, result.status)
            if inline:
                written = self._patch_status(pipeline, inline)
                at = self._written.pop(key, None)
                self._status_at[key] = now
        if live is not None and at is not None and (written or deferred):
            self._live[key] = (live, at)
        if written:
            for event in events:
                self._event(pipeline, event)
        if written and compiled.callbacks is not None:  # decided and recorded: now sent
            self.notices.deliver(
                meta["name"],
                key,
                view.get("status") or {},
                result.status,
                lambda patch: self._patch_status(self.pipelines.get(key) or pipeline, patch),
            )
        if self.archive is not None:  # queues log archives; does no I/O here
            self.archive.observe(pipeline, jobs, recorded=written, paths=changed)
        # The looks at queued Jobs' pods that are due, now that this reconciliation's Jobs
        # are created: what they find is decided on at once (a wake-up now).
        with self._cond:  # and the Jobs created just now, looked at from probe_after on
            current = self.jobs.get(key, EMPTY_JOBS)
            created = {p: current[p] for p in result.create if p in current}
        found, probe_wake = self._waiting(
            key, pipeline, jobs.update(created), now, queued | set(created)
        )
        if found != waiting:
            self._wake(key, now)
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
        self.stats.add("pipelines_deleted")
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
                if entry is None or not lazy.is_expanded(entry) or lazy_path not in graph.index:
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
            if lazy.is_expanded(entry):
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
                spliced = lazy.splice(root, lazy_path, generated)
                # In status.lazy, or in ConfigMaps written now, before the status write
                # that references them (kube/lazystore.py).
                entry = lazystore.place(
                    self.cluster, pipeline, lazy_path, str(_uid(job) or ""), generated, entries
                )
            except PipelineError as exc:
                reason = " ".join(str(exc).split())
                failed[generate] = state.with_(state=State.ERROR, exit_code=None, reason=reason)
                continue
            root = spliced
            entries[lazy_path] = entry
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
                "GET", pods_path, query={"labelSelector": f"{POD_JOB_UID_LABEL}={meta.get('uid')}"}
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
        """Reconcile ``key`` again at ``at`` (this process's clock), or earlier."""
        with self._cond:
            if key not in self._timers or at < self._timers[key]:
                self._timers[key] = at
        self.queue.add_at(key, at)

    def _create(
        self,
        pipeline: Mapping[str, Any],
        compiled: _Compiled,
        paths: list[str],
        problems: Mapping[str, Problem],
        now: float,
        attempts: Mapping[str, NodeState] | None = None,
    ) -> dict[str, Problem | None]:
        """Create the Jobs of ``paths``; what became of each one that had or has a problem
        (None: created, or found to be this Pipeline's). ``attempts``: the records of
        nodes on a later attempt (co.callback retries), whose Job is that attempt's.

        The POSTs go in slow-start batches, as Kubernetes' own controllers create pods
        (pkg/controller/replicaset/replica_set.go and pkg/controller/job/job_controller.go,
        slowStartBatch from controller.SlowStartInitialBatchSize = 1): one alone, then 2, 4,
        ... at once (at most :data:`CREATE_BATCH` in flight). After a batch with a transient
        refusal (429, 5xx) the rest are not sent into the same wall; a refusal of one Job
        (422, 403) stops nothing. One after another, a stage of 50 Jobs waited 50 round
        trips for its last Job."""
        meta = pipeline["metadata"]
        ns, uid = meta["namespace"], meta.get("uid")
        key = _key(pipeline)
        out: dict[str, Problem | None] = {}
        halted: ClusterError | None = None  # a transient refusal: the rest would get it too
        secret_keys: tuple[str, ...] = ()
        try:  # names only, so that secrets beat node env (k8sco/secrets.py); no values
            secret_keys = self._secret_keys(key, str(uid or ""), ns, now) if paths else ()
        except ClusterError as exc:
            halted = exc  # a Job made without them would run with the wrong environment
        # requires_docker=True: only where K8SCO_ALLOW_DOCKER allows (render/podspec.py).
        docker = docker_allowed(os.environ.get(ALLOW_DOCKER_ENV), ns)
        bodies: list[tuple[str, dict[str, Any]]] = []
        for path in paths:
            body = job_for(pipeline, compiled.root, path, secret_keys, allow_docker=docker)
            if self.data is not None and uid:
                body = decorate_job(body, self.data, ns, uid)
            if attempts and path in attempts:  # its own name, maybe twice the memory
                body = cbs.attempt_job(body, meta["name"], attempts[path])
            bodies.append((path, body))
        done, size = 0, 1
        while done < len(bodies) and halted is None:
            batch = bodies[done : done + size]
            done += len(batch)
            answers = self._post_all(ns, [body for _, body in batch])
            for (path, body), answer in zip(batch, answers, strict=True):
                refusal = self._created(pipeline, key, path, body, answer, problems, now, out)
                if refusal is not None:
                    halted = refusal
            size = min(2 * size, CREATE_BATCH)
        if halted is not None:
            for path, body in bodies[done:]:
                name = body["metadata"]["name"]
                out[path] = create_failed(halted.status, str(halted), name, problems.get(path), now)
        return out

    def _post_all(
        self, ns: str, bodies: list[dict[str, Any]]
    ) -> list[dict[str, Any] | ClusterError]:
        """POST each body (at once when there are several): the created Job, or the error."""

        def post(body: dict[str, Any]) -> dict[str, Any] | ClusterError:
            try:
                # No retries inside the request: a busy API server must not stall every
                # other Pipeline; the node retries with its own backoff (reconcile.problems).
                created: dict[str, Any] = self.cluster.request(
                    "POST", self.cluster.ns_path(JOBS, "jobs", ns), body=body, retry=False
                )
                return created
            except ClusterError as exc:
                return exc

        if len(bodies) == 1:
            return [post(bodies[0])]
        return list(_posters().map(post, bodies))

    def _created(
        self,
        pipeline: Mapping[str, Any],
        key: Key,
        path: str,
        body: Mapping[str, Any],
        answer: dict[str, Any] | ClusterError,
        problems: Mapping[str, Problem],
        now: float,
        out: dict[str, Problem | None],
    ) -> ClusterError | None:
        """Record what one POST of ``_create`` came to in ``out``; the error when it was a
        transient refusal (the remaining creates are not sent)."""
        meta = pipeline["metadata"]
        ns, uid = meta["namespace"], meta.get("uid")
        name = body["metadata"]["name"]
        prior = problems.get(path)
        if isinstance(answer, Conflict):
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
            return None
        if isinstance(answer, ClusterError):
            problem = create_failed(answer.status, str(answer), name, prior, now)
            out[path] = problem
            log.warning(
                "%s/%s %s: creating job %s failed (%s, HTTP %s): %s",
                ns,
                meta["name"],
                path,
                name,
                problem.kind,
                answer.status,
                answer,
            )
            return answer if problem.kind is Trouble.TRANSIENT else None
        self.stats.add("jobs_created")
        self._cache_job(key, path, answer)
        # Its pods are looked at probe_after seconds from now (our clock).
        self._probes.setdefault(key, {})[path] = _Probe(_uid(answer) or "", first=now)
        if prior is not None:
            out[path] = None
        return None

    def _secret_keys(self, key: Key, uid: str, ns: str, now: float) -> tuple[str, ...]:
        """The key names of the namespace's k8sco Secret. A Pipeline's first Jobs wait for
        a read begun after this Pipeline needed them (a key set just before ``k8sco
        apply`` reaches them); after that any read of the namespace's Secret begun at most
        :data:`SECRET_KEYS_TTL` seconds ago serves: the Secret is the namespace's, not the
        Pipeline's. A read for each Pipeline was a round trip ahead of each stage's Jobs:
        200 Pipelines in one namespace read it 800 times in a run of bench/many_pipelines.py,
        and the last Job of a stage waited behind four round trips instead of three."""
        if self._secrets.get(key) == uid:
            with self._secret_lock:
                last = self._secret_reads.get(ns)
            if last is not None and now - last[0] < SECRET_KEYS_TTL:
                return last[1]
        names = secrets.key_names(self.cluster, ns)  # begun after ``now``
        self._secrets[key] = uid
        with self._secret_lock:
            last = self._secret_reads.get(ns)
            if last is None or last[0] <= now:  # the newest read wins
                self._secret_reads[ns] = (now, names)
        return names

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
            jobs = self.jobs.get(key, EMPTY_JOBS)
            if _uid(jobs.get(path)) != _uid(job) and cbs.newer(jobs.get(path), job):
                self.jobs[key] = jobs.set(path, jobcache.slim(job))
                self._note_change(key, path)

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
            # With the Jobs of the node's earlier attempts (co.callback retries), so that
            # its first attempt's name is free for a rerun.
            pipeline_name = pipeline["metadata"]["name"]
            for name in [job["metadata"]["name"], *cbs.older_attempts(job, pipeline_name)]:
                try:
                    self.cluster.request(
                        "DELETE",
                        f"{self.cluster.ns_path(JOBS, 'jobs', ns)}/{name}",
                        body=BACKGROUND,
                    )
                    self.stats.add("jobs_deleted")
                except NotFound:
                    pass

    # --- pods that cannot start -------------------------------------------------------------

    def _waiting(
        self,
        key: Key,
        pipeline: Mapping[str, Any],
        jobs: Mapping[str, Mapping[str, Any]],
        now: float,
        paths: Iterable[str] | None = None,
        *,
        look: bool = True,
    ) -> tuple[dict[str, tuple[str, float]], float | None]:
        """Why the pods of this Pipeline's queued Jobs cannot start, by node path, and when
        to look again. Only Jobs with no running pod are looked at, each at most every
        ``probe_every`` seconds and all of them at most ``probes_per_second``: the cost does
        not grow with the Jobs that run normally (``paths``: those waiting for a pod, when
        the caller keeps them). With ``look`` False, what the last looks found, and none
        taken: the reconciliation decides on that, and looks once its writes are done, so
        that no look delays the Jobs it creates."""
        uid = pipeline["metadata"].get("uid")
        old = self._probes.get(key, {})
        fresh: dict[str, _Probe] = {}
        out: dict[str, tuple[str, float]] = {}
        wake: float | None = None
        for path in sorted(jobs if paths is None else paths):
            job = jobs.get(path)
            if job is None or not waiting_for_pod(job) or not owns(job, uid):
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
            if look and now >= due_at and self._take_probe_token(now):
                began = time.monotonic()
                trouble = self._probe(meta["namespace"], meta["name"], juid)
                self._charge_probe(time.monotonic() - began)
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
        *,
        paths: Iterable[str] | None = None,
        recorded: Mapping[str, NodeState] | None = None,
    ) -> dict[str, str]:
        """How the last pod of each newly failed Job ended (one pods list per failed node,
        once: a failure already recorded in the status is not looked at again). Only the
        Jobs of ``paths`` (those that changed) are looked at when given, and ``recorded``
        are the records of ``view``'s status when the caller has them."""
        uid = pipeline["metadata"].get("uid")
        seen = self._failed.setdefault(key, {})
        candidates = (
            jobs.items() if paths is None else [(p, jobs[p]) for p in sorted(paths) if p in jobs]
        )
        fresh = [
            (path, job)
            for path, job in candidates
            if _failed(job) and seen.get(path, ("", ""))[0] != _uid(job) and owns(job, uid)
        ]
        if fresh:
            if recorded is None:
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
                    query={"labelSelector": f"{POD_JOB_UID_LABEL}={job_uid}"},
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

    def _charge_probe(self, seconds: float) -> None:
        """A look that took ``seconds`` costs more than its token when the API is slow:
        the looks take at most :data:`PROBE_SHARE` of a worker's time, so that a slow API
        server (each look is two lists) slows what they say, never the Jobs' creation
        (bench/controller.py on a loaded machine: looks took over a third of it)."""
        extra = seconds * self.probes_per_second / PROBE_SHARE - 1.0
        if extra > 0:
            with self._probe_lock:
                self._probe_tokens -= extra

    def _take_probe_token(self, now: float) -> bool:
        with self._probe_lock:
            self._probe_tokens = min(
                self.probes_per_second,
                self._probe_tokens + max(now - self._probe_refill, 0.0) * self.probes_per_second,
            )
            # Workers read the clock before taking the lock: never move the refill back.
            self._probe_refill = max(now, self._probe_refill)
            if self._probe_tokens < 1.0:
                return False
            self._probe_tokens -= 1.0
            return True

    def _probe(self, ns: str, job: str, job_uid: str) -> str | None:
        """One look at a queued Job: its pods' waiting reasons, else its FailedCreate Events
        (RBAC: list pods, list events in the Pipeline's namespace)."""
        self.stats.add("probes")
        try:
            pods = (
                self.cluster.request(
                    "GET",
                    self.cluster.ns_path(CORE, "pods", ns),
                    query={"labelSelector": f"{POD_JOB_UID_LABEL}={job_uid}"},
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
            self.stats.add("status_conflicts")
            log.info("%s/%s changed since it was read; reading it again", *key)
            try:
                fresh = self.cluster.request("GET", path)
            except NotFound:
                return False
            self._store_pipeline(key, rv, fresh)
            self.queue.add(key)
            return False
        self.stats.add("status_patches")
        self._written[key] = _rv(updated)
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
        self.recorder.record(body)

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
            self.queue.shut_down()
            # What was decided is recorded in the status already; the Events saying so get
            # a moment, well within a pod's termination grace period.
            self.recorder.stop(EVENTS_GRACE)

    def _work(self, elector: LeaderElector | None, until_finished: bool) -> None:
        """``self.workers`` threads reconcile what the queue hands them until ``self.stop``;
        this thread queues every Pipeline not reconciled for ``resync`` seconds (what a lost
        event left undone is found then). A slow reconciliation holds one worker, never the
        others' Pipelines."""
        workers = [
            threading.Thread(
                target=self._worker,
                args=(elector, until_finished),
                daemon=True,
                name=f"worker:{i}",
            )
            for i in range(max(self.workers, 1))
        ]
        for worker in workers:
            worker.start()
        try:
            while not self.stop.wait(min(self.resync, 1.0)):
                if until_finished and self._all_finished():
                    break  # the last unfinished Pipeline was deleted: no turn says so
                now = self.clock()
                with self._cond:
                    keys = list(self.pipelines)
                # Only the Pipelines that nothing has reconciled for ``resync`` seconds: a
                # lost event is found as late as before, but 200 busy Pipelines are no longer
                # queued all at once, every 30 s, ahead of the Job events that are news (the
                # scheduling latency's p99 with many Pipelines). client-go's informers do
                # resync every object at once; kube-controller-manager does it every 12 to
                # 24 hours (--min-resync-period; cmd/kube-controller-manager/app, ResyncPeriod).
                due = resync_due(keys, self._last_sync, now, self.resync)
                if due:
                    self.queue.add_all(due)
        finally:
            self.stop.set()
            self.queue.shut_down()
            for worker in workers:
                worker.join()  # each ends once its current reconciliation has

    def _worker(self, elector: LeaderElector | None, until_finished: bool) -> None:
        while not self.stop.is_set():
            if elector is not None and not elector.leading.is_set():
                elector.leading.wait(0.5)
                continue
            key = self.queue.get()
            if key is None:
                return  # shut down
            try:
                self._turn(key, elector)
            finally:
                self.queue.done(key)
            if until_finished and self._all_finished():
                self.stop.set()

    def _turn(self, key: Key, elector: LeaderElector | None) -> None:
        """One worker's turn with ``key``: no other worker holds it meanwhile."""
        if self.stop.is_set() or (elector is not None and not elector.leading.is_set()):
            self.queue.add(key)  # queued again by done(), for when this replica leads
            return
        with self._cond:
            if key not in self.pipelines:
                self._timers.pop(key, None)
                return  # deleted: nothing to do (its Jobs go by garbage collection)
            at = self._timers.get(key)
            if at is not None and at <= self.clock():
                del self._timers[key]
        try:
            wait = self._due(key)
            if wait > 0:
                # At most one reconciliation per min_interval: what arrives meanwhile is
                # seen by the next one, and this worker takes another Pipeline.
                self.queue.add_after(key, wait)
                return
            try:
                self.sync(key)
            except Exception as exc:  # one pipeline's trouble must not stop the others
                self.stats.add("errors")
                if isinstance(exc, ClusterError):
                    log.warning("reconciling %s/%s failed (%s); will retry", *key, exc)
                else:
                    log.exception("reconciling %s/%s failed; will retry", *key)
                self.queue.add_after(key, 0.2)  # not at once: the same failure again
            self._last_sync[key] = self.clock()
        finally:
            # The queue keeps one time per key, the earliest (as client-go's delaying
            # queue): the wake-up that just brought this key, or the min_interval one above,
            # replaced a later one still in _timers, which must be armed again. It was lost
            # until the next resync (up to 30 s late: a retention deletion, a probe).
            with self._cond:
                pending = self._timers.get(key)
            if pending is not None:
                self.queue.add_at(key, pending)

    def _all_finished(self) -> bool:
        with self._cond:
            return bool(self.pipelines) and set(self.pipelines) <= self.finished

    def _due(self, key: Key) -> float:
        """Seconds before ``key`` may be reconciled again (0 or less: now)."""
        return self._last_sync.get(key, -math.inf) + self.min_interval - self.clock()


def resync_due(
    keys: Iterable[Key], last_sync: Mapping[Key, float], now: float, period: float
) -> list[Key]:
    """The Pipelines a resync queues at ``now``: those not reconciled for ``period``
    seconds (or never)."""
    return [k for k in keys if now - last_sync.get(k, -math.inf) >= period]


def _tracked(
    sets: dict[Key, set[str]],
    key: Key,
    jobs: Mapping[str, Mapping[str, Any]],
    changed: set[str] | None,
    belongs: Callable[[Mapping[str, Any]], bool],
) -> set[str]:
    """The paths of ``key`` whose Job ``belongs``, kept up to date from the changed paths
    only (all Jobs when ``changed`` is None, or nothing is kept yet), and stored back."""
    paths = sets.get(key)
    if paths is None or changed is None:
        paths = {p for p, j in jobs.items() if belongs(j)}
    else:
        for path in changed:
            job = jobs.get(path)
            if job is not None and belongs(job):
                paths.add(path)
            else:
                paths.discard(path)
    sets[key] = paths
    return paths


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
