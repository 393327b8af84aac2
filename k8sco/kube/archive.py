"""Logs that outlive pods, and data deleted with its Pipeline (k8sco/data/kube.py).

The controller hands every Pipeline it reconciles to :meth:`Archiver.observe` (cheap: it
only queues work); worker threads do the slow part, off the reconcile path, so archiving
never delays the next node's Job:

- a Pipeline without the ``k8sco.io/data`` finalizer gets it, with the annotation
  ``k8sco.io/data`` naming its root in the store (``k8sco logs`` reads archives there);
- a finished Job's pods' logs are read through the API and written to
  ``<root>/logs/<job>.log``, then the Job is annotated ``k8sco.io/log-archived``; the
  a Job the controller deletes (a rerun, a stop) is archived first if the workers have not
  yet (:meth:`Archiver.before_delete`);
- with the Pipeline annotation ``k8sco.io/job-retention: SECONDS``, a finished Job whose
  outcome the Pipeline's status records and whose log is archived is deleted that long
  after the controller first saw both (our clock; a restart starts it again);
- a deleted Pipeline (``deletionTimestamp``) has its root deleted from the store, then the
  finalizer removed; until then the API server keeps the object.

Logs over the kubelet's rotation size. The kubelet rotates a container's log file at
``containerLogMaxSize`` (10 MiB by default: kubernetes pkg/kubelet/apis/config/v1beta1
defaults) and ``GET pods/log`` serves only the current file, so a log read once the container
has ended keeps only its last file. A follow stream (``follow=true``) does not lose the
rotated part: the kubelet reopens the new file when the old one is renamed
(pkg/kubelet/kuberuntime/logs/logs.go, ``waitLogs``/``recreated``). So a follower thread
per running Job (at most ``K8SCO_LOG_FOLLOW`` at once, default 100; 0: none) streams each
pod's log as it is written and puts it in the store in chunks,
``logs/<job>/<created>-<uid>.parts/<n>``: one when ``K8SCO_LOG_CHUNK_BYTES`` (default
1 MiB) have gathered, when a line arrives ``K8SCO_LOG_FLUSH_SECONDS`` (default 10) after the
last chunk, and when the stream ends. Once the Job has ended the archive task merges the
chunks into the one ``.log`` object and deletes them. What is then still kept whole:

- a log followed from its first line to its container's end, by one life of the controller;
- otherwise (the controller restarted while the node ran, the stream broke, more Jobs ran
  at once than followers), the chunks written so far, then a ``[k8sco]`` line saying so and
  the pod's log as the kubelet serves it at the end, which may repeat lines of the chunks
  and, past a rotation, has lost what was neither followed nor in the current file.

A stream yields lines: a final line without a newline gets one. With a ``pvc:`` store the
controller cannot reach the volume (it is mounted in the pipeline's namespace only): no
archive and no finalizer; the data stays on the claim.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from k8sco.data.kube import (
    ANNOTATION_ARCHIVED,
    ANNOTATION_JOB_RETENTION,
    ANNOTATION_STORE,
    FINALIZER,
    DataConfig,
    log_key,
    log_parts_prefix,
)
from k8sco.data.stores import Store, open_store
from k8sco.errors import (
    ClusterError,
    Conflict,
    DataNotFound,
    K8scoError,
    NotFound,
    UsageError,
)
from k8sco.kube.client import BACKGROUND, CORE, JOBS, MERGE_PATCH, PIPELINES
from k8sco.render.constants import CONTAINER_NAME, PLURAL

if TYPE_CHECKING:
    from k8sco.kube.controller import Api

log = logging.getLogger("k8sco.archive")

ENV_FOLLOW = "K8SCO_LOG_FOLLOW"  # how many running Jobs' logs are followed at once
ENV_CHUNK = "K8SCO_LOG_CHUNK_BYTES"
ENV_FLUSH = "K8SCO_LOG_FLUSH_SECONDS"
FOLLOW_WAIT = 60.0  # seconds the archive task waits for a follower to reach its stream's end
FULL_LOOK_EVERY = 30.0  # seconds between looks at every Job of a Pipeline (observe)
RECONNECTS = 5  # a stream that breaks while the container runs is opened again this often


@dataclass
class _Follow:
    """One running Job's follower thread and what it achieved."""

    root: str
    name: str
    namespace: str
    uid: str
    created: str
    ended: threading.Event = field(default_factory=threading.Event)  # the thread is done
    job_ended: bool = False  # it saw the Job finished (an archive task will come)
    complete: set[str] = field(default_factory=set)  # pod uids followed to their end


@dataclass(frozen=True)
class _Task:
    kind: str  # adopt, archive, expire, finalize
    namespace: str
    name: str  # the Pipeline's, or the Job's
    uid: str  # the Pipeline's uid, or the Job's
    root: str = ""  # the Pipeline's root in the store
    rv: str = ""
    created: str = ""  # the Job's creationTimestamp


def finished(job: Mapping[str, Any]) -> bool:
    """The Job has ended: a Complete or Failed condition (batch/v1 JobStatus)."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return True
    return False


class Archiver:
    def __init__(
        self,
        cluster: Api,
        config: DataConfig,
        environ: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.time,
        workers: int = 2,
    ) -> None:
        self.cluster, self.config, self.environ, self.clock = cluster, config, environ, clock
        self.workers = workers
        # Following needs a streaming client (kube/client.py's Cluster); the unit tests'
        # in-memory API has none, and then logs are read when each Job ends.
        can_stream = callable(getattr(cluster, "stream", None))
        self.follow_max = _setting(environ, ENV_FOLLOW, 100, int) if can_stream else 0
        self.chunk_bytes = _setting(environ, ENV_CHUNK, 1 << 20, int, minimum=1)
        self.flush_every = _setting(environ, ENV_FLUSH, 10.0, float)
        self._follows: dict[str, _Follow] = {}  # Job uid -> its follower, while it runs
        self._stop = threading.Event()
        self._queue: queue.Queue[_Task] = queue.Queue()
        self._lock = threading.Lock()
        self._pending: set[_Task] = set()
        self._archived: set[str] = set()  # Job uids, until the annotation is seen
        self._recorded_at: dict[str, float] = {}  # Job uid -> first seen finished+recorded
        self._looked_at: dict[str, float] = {}  # Pipeline uid -> when all its Jobs were
        self.archived_count = 0
        self.failures = 0  # tasks that failed (tried again when next observed)

    @property
    def archives(self) -> bool:
        return not self.config.is_pvc

    # --- called by the controller, on its thread: no I/O ------------------------------------

    def observe(
        self,
        pipeline: Mapping[str, Any],
        jobs: Mapping[str, Mapping[str, Any]],
        recorded: bool,
        paths: Iterable[str] | None = None,
    ) -> None:
        """Queue what this Pipeline needs. ``recorded``: the Pipeline's status now records
        the outcome of every finished Job in ``jobs`` (a status write succeeded).
        ``paths``: the node paths whose Job changed since the last call (None: any). Only
        their Jobs are looked at, and every Job at most :data:`FULL_LOOK_EVERY` seconds
        apart: what only time changes (a retention running out, a failed task to try
        again) waits for that, and a reconciliation of a 100,000-node Pipeline costs what
        changed, not the tree."""
        if not self.archives:
            return
        meta = pipeline.get("metadata") or {}
        ns, name, uid = meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", "")
        if not uid:
            return
        root = self.config.pipeline_root(ns, uid)
        rv = str(meta.get("resourceVersion", ""))
        has_finalizer = FINALIZER in (meta.get("finalizers") or [])
        if meta.get("deletionTimestamp"):
            with self._lock:
                self._looked_at.pop(uid, None)
            if has_finalizer:
                self._put(_Task("finalize", ns, name, uid, root, rv))
            return
        annotations = meta.get("annotations") or {}
        if not has_finalizer or annotations.get(ANNOTATION_STORE) != root:
            self._put(_Task("adopt", ns, name, uid, root, rv))
        retention = _seconds(annotations.get(ANNOTATION_JOB_RETENTION))
        now = self.clock()
        with self._lock:
            whole = paths is None or now - self._looked_at.get(uid, -math.inf) >= FULL_LOOK_EVERY
            if whole:
                self._looked_at[uid] = now
        if whole:
            looked: Iterable[Mapping[str, Any]] = jobs.values()
        else:
            looked = [j for j in map(jobs.get, paths or ()) if j is not None]
        for job in looked:
            jmeta = job.get("metadata") or {}
            juid = jmeta.get("uid", "")
            if not juid or not _owned_by(job, uid):
                continue
            if not finished(job):
                if (job.get("status") or {}).get("active") and not jmeta.get("deletionTimestamp"):
                    self._start_follow(job, root)
                continue
            if not self.is_archived(job):
                self._put(_archive_task(job, root))
                continue
            if retention is None or not recorded:
                continue
            with self._lock:
                since = self._recorded_at.setdefault(juid, now)
            if now - since >= retention:
                self._put(_Task("expire", ns, jmeta.get("name", ""), juid, root))

    def is_archived(self, job: Mapping[str, Any]) -> bool:
        meta = job.get("metadata") or {}
        if (meta.get("annotations") or {}).get(ANNOTATION_ARCHIVED):
            return True
        with self._lock:
            return meta.get("uid", "") in self._archived

    def before_delete(self, job: Mapping[str, Any]) -> None:
        """Called by the controller right before it deletes a Job (a rerun, a stop): a
        finished Job whose log the workers have not archived yet is archived now, on the
        caller's thread. Rare (the workers archive a Job as soon as it ends), and it cannot
        wait for a later reconciliation: the rerun that asked for the deletion is decided
        once. When the store fails the Job is deleted all the same, with a warning: a
        rerun must not be refused because the archive is down."""
        if not self.archives or not finished(job) or self.is_archived(job):
            return
        meta = job.get("metadata") or {}
        owner = next(
            (r.get("uid", "") for r in meta.get("ownerReferences") or [] if r.get("controller")),
            "",
        )
        if not owner:
            return
        root = self.config.pipeline_root(meta.get("namespace", ""), owner)
        try:
            self._archive(_archive_task(job, root), wait=5.0)
        except (K8scoError, OSError) as exc:
            self.failures += 1
            log.warning(
                "job %s deleted before its log could be archived: %s", meta.get("name"), exc
            )

    def _start_follow(self, job: Mapping[str, Any], root: str) -> None:
        """A follower thread for a running Job (a thread start, no I/O: the controller's
        thread calls this)."""
        meta = job.get("metadata") or {}
        uid = meta.get("uid", "")
        with self._lock:
            if uid in self._follows or len(self._follows) >= self.follow_max:
                return
            follow = _Follow(
                root,
                meta.get("name", ""),
                meta.get("namespace", ""),
                uid,
                str(meta.get("creationTimestamp", "")),
            )
            self._follows[uid] = follow
        threading.Thread(
            target=self._follow, args=(follow,), daemon=True, name=f"follow:{follow.name}"
        ).start()

    def _put(self, task: _Task) -> None:
        with self._lock:
            if task in self._pending:
                return
            self._pending.add(task)
        self._queue.put(task)

    # --- worker threads ----------------------------------------------------------------------

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        self._stop = stop
        threads = [
            threading.Thread(target=self._work, args=(stop,), daemon=True, name=f"archive:{i}")
            for i in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        return threads

    def _work(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                task = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                getattr(self, "_" + task.kind)(task)
            except (K8scoError, OSError) as exc:  # tried again when next observed
                log.warning("%s %s/%s failed: %s", task.kind, task.namespace, task.name, exc)
                self.failures += 1
                stop.wait(0.5)
            except Exception:
                log.exception("%s %s/%s failed", task.kind, task.namespace, task.name)
            finally:
                with self._lock:
                    self._pending.discard(task)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until nothing is queued or running (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    return True
            time.sleep(0.02)
        return False

    def _pipeline_path(self, ns: str, name: str) -> str:
        return f"{self.cluster.ns_path(PIPELINES, PLURAL, ns)}/{name}"

    def _adopt(self, task: _Task) -> None:
        current = self.cluster.request("GET", self._pipeline_path(task.namespace, task.name))
        meta = current.get("metadata") or {}
        if meta.get("uid") != task.uid or meta.get("deletionTimestamp"):
            return
        finalizers = list(meta.get("finalizers") or [])
        if FINALIZER not in finalizers:
            finalizers.append(FINALIZER)
        patch = {
            "metadata": {
                # The read's version: a concurrent change of the list gets 409, not lost.
                "resourceVersion": meta.get("resourceVersion"),
                "finalizers": finalizers,
                "annotations": {ANNOTATION_STORE: task.root},
            }
        }
        try:
            self.cluster.request(
                "PATCH",
                self._pipeline_path(task.namespace, task.name),
                body=patch,
                content_type=MERGE_PATCH,
            )
        except (Conflict, NotFound):
            return  # observed again on its next event

    def _pods(self, namespace: str, job: str, job_uid: str) -> list[dict[str, Any]]:
        """The Job's pods, oldest first."""
        pods_path = self.cluster.ns_path(CORE, "pods", namespace)
        pods = (
            self.cluster.request("GET", pods_path, query={"labelSelector": f"job-name={job}"}) or {}
        ).get("items") or []
        pods = [p for p in pods if _owned_by(p, job_uid)]
        pods.sort(key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))
        return pods

    def _archive(self, task: _Task, wait: float = FOLLOW_WAIT) -> None:
        pods_path = self.cluster.ns_path(CORE, "pods", task.namespace)
        with self._lock:
            follow = self._follows.get(task.uid)
        # The stream ends as the container does: the Job has ended, so that is soon.
        followed = follow is not None and follow.ended.wait(wait)
        store = open_store(task.root, self.environ)
        prefix = log_parts_prefix(task.name, task.created, task.uid)
        chunks = store.list(prefix)
        pods = self._pods(task.namespace, task.name, task.uid)
        complete = follow.complete if follow is not None and followed else set()
        parts: list[bytes] = [store.gets(key) for key in chunks]
        for pod in pods:
            pod_name = pod["metadata"]["name"]
            if pod["metadata"].get("uid") in complete:
                continue
            if chunks:
                parts.append(
                    f"[k8sco] the controller did not follow pod {pod_name}'s log to its end; "
                    "its log as the kubelet serves it now follows (it may repeat lines above, "
                    "and lacks what a log rotation took that was not followed)\n".encode()
                )
            elif len(pods) > 1:
                parts.append(f"[k8sco] pod {pod_name}\n".encode())
            try:
                text = self.cluster.request(
                    "GET",
                    f"{pods_path}/{pod_name}/log",
                    query={"container": CONTAINER_NAME},
                    raw=True,
                )
            except ClusterError as exc:
                parts.append(
                    f"[k8sco] the log of pod {pod_name} could not be read: {exc}\n".encode()
                )
                continue
            data = text.encode() if isinstance(text, str) else bytes(text or b"")
            parts.append(data)
        if not pods and not chunks:
            parts.append(b"[k8sco] the Job's pods were gone before its log was archived\n")
        store.puts(log_key(task.name, task.created, task.uid), b"".join(parts))
        if chunks and (follow is None or followed):  # else its follower may still write
            store.delete(prefix, recursive=True)
        with self._lock:
            if followed:
                self._follows.pop(task.uid, None)
        with self._lock:
            self._archived.add(task.uid)
        self.archived_count += 1
        patch = {"metadata": {"annotations": {ANNOTATION_ARCHIVED: "true"}}}
        with contextlib.suppress(NotFound):  # deleted meanwhile: nothing to mark
            self.cluster.request(
                "PATCH",
                f"{self.cluster.ns_path(JOBS, 'jobs', task.namespace)}/{task.name}",
                body=patch,
                content_type=MERGE_PATCH,
            )

    # --- followers: one thread per running Job --------------------------------------------

    def _follow(self, follow: _Follow) -> None:
        try:
            self._follow_pods(follow)
        except Exception as exc:  # the archive task reads what the kubelet still has
            log.warning("following the log of job %s stopped: %s", follow.name, exc)
        finally:
            follow.ended.set()
            with self._lock:
                # Its slot is freed by the archive task, which needs what it achieved; a
                # Job deleted while running (a stop) has none, nor has one archived already.
                if not follow.job_ended or follow.uid in self._archived:
                    self._follows.pop(follow.uid, None)

    def _follow_pods(self, follow: _Follow) -> None:
        store = open_store(follow.root, self.environ)
        prefix = log_parts_prefix(follow.name, follow.created, follow.uid)
        writer = _Chunks(store, prefix, len(store.list(prefix)), self)
        if writer.seq:
            # An earlier life of the controller followed this Job: it restarts from the top.
            writer.note("the controller started following this log again; it may repeat lines")
        jobs_path = f"{self.cluster.ns_path(JOBS, 'jobs', follow.namespace)}/{follow.name}"
        seen: set[str] = set()
        pause = 0.2
        while not self._stop.is_set():
            pods = self._pods(follow.namespace, follow.name, follow.uid)
            for pod in pods:
                pod_uid = pod["metadata"].get("uid", "")
                if pod_uid in seen or not _container_started(pod):
                    continue
                seen.add(pod_uid)
                if len(seen) > 1 or len(pods) > 1:
                    writer.note(f"pod {pod['metadata']['name']}")
                if self._follow_pod(follow, pod, writer):
                    follow.complete.add(pod_uid)
                pause = 0.2  # its Job ends soon after: look again promptly
            try:
                job = self.cluster.request("GET", jobs_path)
            except NotFound:
                return
            meta = job.get("metadata") or {}
            if meta.get("uid") != follow.uid or meta.get("deletionTimestamp"):
                return
            if follow.job_ended:
                return  # after a last look at its pods: one may have started meanwhile
            follow.job_ended = finished(job)
            if follow.job_ended:
                continue
            self._stop.wait(pause)
            pause = min(pause * 2, 5.0)

    def _follow_pod(self, follow: _Follow, pod: Mapping[str, Any], writer: _Chunks) -> bool:
        """Stream one pod's log into the store. Whether it was followed to the end of its
        container (a stream that ends while the container runs is opened again)."""
        name = pod["metadata"]["name"]
        pods_path = self.cluster.ns_path(CORE, "pods", follow.namespace)
        for attempt in range(RECONNECTS + 1):
            if attempt:
                writer.note(f"the log stream of pod {name} broke; it may repeat lines")
            try:
                for line in self.cluster.stream(  # type: ignore[attr-defined]
                    f"{pods_path}/{name}/log",
                    {"follow": "true", "container": CONTAINER_NAME},
                ):
                    writer.add(line + b"\n")
            except ClusterError as exc:
                log.info("log stream of pod %s: %s", name, exc)
            writer.flush()
            # Listed, not got: the controller's role lists pods and gets none (30-rbac.yaml).
            current = next(
                (
                    p
                    for p in self._pods(follow.namespace, follow.name, follow.uid)
                    if p["metadata"].get("uid") == pod["metadata"].get("uid")
                ),
                None,
            )
            if current is None:
                return False  # deleted (a stop): what it wrote before is in the store
            if _container_ended(current):
                return True
            if self._stop.wait(0.5):
                return False
        return False

    def _expire(self, task: _Task) -> None:
        body = {**BACKGROUND, "preconditions": {"uid": task.uid}}
        with contextlib.suppress(NotFound, Conflict):  # gone, or another Job by that name
            self.cluster.request(
                "DELETE",
                f"{self.cluster.ns_path(JOBS, 'jobs', task.namespace)}/{task.name}",
                body=body,
            )
        with self._lock:
            self._recorded_at.pop(task.uid, None)
            self._archived.discard(task.uid)

    def _finalize(self, task: _Task) -> None:
        open_store(task.root, self.environ).delete("", recursive=True)
        current = self.cluster.request("GET", self._pipeline_path(task.namespace, task.name))
        meta = current.get("metadata") or {}
        if meta.get("uid") != task.uid:
            return
        finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
        patch = {
            "metadata": {"resourceVersion": meta.get("resourceVersion"), "finalizers": finalizers}
        }
        try:
            self.cluster.request(
                "PATCH",
                self._pipeline_path(task.namespace, task.name),
                body=patch,
                content_type=MERGE_PATCH,
            )
        except (Conflict, NotFound):
            return


class _Chunks:
    """A follower's buffer: written to the store as numbered chunks."""

    def __init__(self, store: Store, prefix: str, seq: int, owner: Archiver) -> None:
        self.store, self.prefix, self.seq, self.owner = store, prefix, seq, owner
        self.buffer: list[bytes] = []
        self.size = 0
        self.last = owner.clock()

    def add(self, data: bytes) -> None:
        self.buffer.append(data)
        self.size += len(data)
        if (
            self.size >= self.owner.chunk_bytes
            or self.owner.clock() - self.last >= self.owner.flush_every
        ):
            self.flush()

    def note(self, text: str) -> None:
        self.add(f"[k8sco] {text}\n".encode())

    def flush(self) -> None:
        if not self.buffer:
            return
        self.store.puts(f"{self.prefix}{self.seq:08d}", b"".join(self.buffer))
        self.seq += 1
        self.buffer, self.size, self.last = [], 0, self.owner.clock()


def _container_started(pod: Mapping[str, Any]) -> bool:
    """The node's container is running or has run: its log can be streamed (a waiting one
    answers 400)."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or ():
        if cs.get("name") == CONTAINER_NAME:
            state = cs.get("state") or {}
            return bool(state.get("running") or state.get("terminated"))
    return False


def _container_ended(pod: Mapping[str, Any]) -> bool:
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return True
    for cs in (pod.get("status") or {}).get("containerStatuses") or ():
        if cs.get("name") == CONTAINER_NAME:
            return bool((cs.get("state") or {}).get("terminated"))
    return False


def _setting(
    environ: Mapping[str, str], name: str, default: Any, kind: type, minimum: int = 0
) -> Any:
    """A number from the environment; UsageError (one line, exit 2) for anything else,
    ``nan`` and ``inf`` included: a log that is never flushed is not a setting."""
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= minimum):
        raise UsageError(f"{name}={text!r}: give a number >= {minimum}")
    return value


def _archive_task(job: Mapping[str, Any], root: str) -> _Task:
    meta = job.get("metadata") or {}
    return _Task(
        "archive",
        meta.get("namespace", ""),
        meta.get("name", ""),
        meta.get("uid", ""),
        root,
        created=str(meta.get("creationTimestamp", "")),
    )


def _owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("uid") == uid for r in refs)


def _seconds(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None


def read_archived_log(pipeline: Mapping[str, Any], job: str, environ: Mapping[str, str]) -> bytes:
    """The archived log of the latest run of a Job, from the store the Pipeline's annotation
    names (the S3 settings and credentials from ``environ``). Raises DataNotFound when there
    is none, K8scoError saying why it cannot be read."""
    root = ((pipeline.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_STORE)
    if not root:
        # No store, no archive: nothing to read (DataNotFound), not a failure to read one.
        raise DataNotFound("the pipeline has no data store, so no log archive")
    store = open_store(root, environ)
    keys = store.list(log_key(job))
    # A run's log: its merged ``.log``, or while it runs (or if it was stopped) its chunks.
    runs = sorted(
        {k[: -len(".log")] if k.endswith(".log") else k.split(".parts/")[0] for k in keys}
    )
    if not runs:
        raise DataNotFound(f"no archived log of job/{job} in {root}")
    last = runs[-1]
    if f"{last}.log" in keys:
        return store.gets(f"{last}.log")
    return b"".join(
        store.gets(k) for k in sorted(k for k in keys if k.startswith(f"{last}.parts/"))
    )
