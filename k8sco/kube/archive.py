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

The log is read once the container has ended: the kubelet serves only the current log
file, so a node that wrote more than its rotation size (``containerLogMaxSize``, 10 MiB by
default: kubernetes pkg/kubelet/kubeletconfig defaults) keeps only its last file in the
archive. With a ``pvc:`` store the controller cannot reach the volume (it is mounted in the
pipeline's namespace only): no archive and no finalizer; the data stays on the claim.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from k8sco.data.kube import (
    ANNOTATION_ARCHIVED,
    ANNOTATION_JOB_RETENTION,
    ANNOTATION_STORE,
    FINALIZER,
    DataConfig,
    log_key,
)
from k8sco.data.stores import open_store
from k8sco.errors import ClusterError, Conflict, DataNotFound, K8scoError, NotFound
from k8sco.kube.client import BACKGROUND, CORE, JOBS, MERGE_PATCH, PIPELINES
from k8sco.render.constants import CONTAINER_NAME, PLURAL

if TYPE_CHECKING:
    from k8sco.kube.controller import Api

log = logging.getLogger("k8sco.archive")


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
        self._queue: queue.Queue[_Task] = queue.Queue()
        self._lock = threading.Lock()
        self._pending: set[_Task] = set()
        self._archived: set[str] = set()  # Job uids, until the annotation is seen
        self._recorded_at: dict[str, float] = {}  # Job uid -> first seen finished+recorded
        self.archived_count = 0
        self.failures = 0  # tasks that failed (tried again when next observed)

    @property
    def archives(self) -> bool:
        return not self.config.is_pvc

    # --- called by the controller, on its thread: no I/O ------------------------------------

    def observe(
        self, pipeline: Mapping[str, Any], jobs: Mapping[str, Mapping[str, Any]], recorded: bool
    ) -> None:
        """Queue what this Pipeline needs. ``recorded``: the Pipeline's status now records
        the outcome of every finished Job in ``jobs`` (a status write succeeded)."""
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
            if has_finalizer:
                self._put(_Task("finalize", ns, name, uid, root, rv))
            return
        annotations = meta.get("annotations") or {}
        if not has_finalizer or annotations.get(ANNOTATION_STORE) != root:
            self._put(_Task("adopt", ns, name, uid, root, rv))
        retention = _seconds(annotations.get(ANNOTATION_JOB_RETENTION))
        now = self.clock()
        for job in jobs.values():
            jmeta = job.get("metadata") or {}
            juid = jmeta.get("uid", "")
            if not juid or not _owned_by(job, uid) or not finished(job):
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
            self._archive(_archive_task(job, root))
        except (K8scoError, OSError) as exc:
            self.failures += 1
            log.warning(
                "job %s deleted before its log could be archived: %s", meta.get("name"), exc
            )

    def _put(self, task: _Task) -> None:
        with self._lock:
            if task in self._pending:
                return
            self._pending.add(task)
        self._queue.put(task)

    # --- worker threads ----------------------------------------------------------------------

    def start(self, stop: threading.Event) -> list[threading.Thread]:
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

    def _archive(self, task: _Task) -> None:
        pods_path = self.cluster.ns_path(CORE, "pods", task.namespace)
        pods = (
            self.cluster.request("GET", pods_path, query={"labelSelector": f"job-name={task.name}"})
            or {}
        ).get("items") or []
        pods = [p for p in pods if _owned_by(p, task.uid)]
        pods.sort(key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))
        parts: list[bytes] = []
        for pod in pods:
            pod_name = pod["metadata"]["name"]
            if len(pods) > 1:
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
        if not pods:
            parts.append(b"[k8sco] the Job's pods were gone before its log was archived\n")
        store = open_store(task.root, self.environ)
        store.puts(log_key(task.name, task.created, task.uid), b"".join(parts))
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
    runs = store.list(log_key(job))
    if not runs:
        raise DataNotFound(f"no archived log of job/{job} in {root}")
    return store.gets(runs[-1])
