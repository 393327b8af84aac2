"""What a reconciliation hands the log archive costs what changed, not the tree: only the
changed nodes' Jobs are looked at, and every Job now and then (a retention running out)."""

from __future__ import annotations

from typing import Any

from k8sco.data.kube import (
    ANNOTATION_ARCHIVED,
    ANNOTATION_JOB_RETENTION,
    ANNOTATION_STORE,
    FINALIZER,
    DataConfig,
)
from k8sco.kube.archive import FULL_LOOK_EVERY, Archiver

CONFIG = DataConfig.from_env({"K8SCO_DATA_STORE": "s3://bucket/k8sco"})
UID = "pipeline-uid"


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def pipeline(retention: str | None = None) -> dict[str, Any]:
    assert CONFIG is not None
    annotations = {ANNOTATION_STORE: CONFIG.pipeline_root("default", UID)}
    if retention is not None:
        annotations[ANNOTATION_JOB_RETENTION] = retention
    return {
        "metadata": {
            "name": "demo",
            "namespace": "default",
            "uid": UID,
            "finalizers": [FINALIZER],
            "annotations": annotations,
        }
    }


def job(path: str, *, archived: bool = False) -> dict[str, Any]:
    annotations = {"k8sco.io/path": path}
    if archived:
        annotations[ANNOTATION_ARCHIVED] = "true"
    return {
        "metadata": {
            "name": f"demo{path.replace('/', '-')}",
            "namespace": "default",
            "uid": f"job{path.replace('/', '-')}",
            "annotations": annotations,
            "ownerReferences": [{"uid": UID, "controller": True}],
        },
        "status": {"conditions": [{"type": "Complete", "status": "True"}]},
    }


def queued(archiver: Archiver) -> list[tuple[str, str]]:
    """The tasks queued so far, taken off the queue."""
    out = []
    while not archiver._queue.empty():
        task = archiver._queue.get_nowait()
        archiver._pending.discard(task)
        out.append((task.kind, task.name))
    return sorted(out)


def test_only_the_changed_nodes_jobs_are_looked_at_between_full_looks() -> None:
    assert CONFIG is not None
    clock = Clock()
    archiver = Archiver(object(), CONFIG, {}, clock=clock)  # type: ignore[arg-type]
    jobs = {p: job(p) for p in ("/a", "/b", "/c")}
    archiver.observe(pipeline(), jobs, recorded=True, paths=None)  # a relist: every Job
    assert queued(archiver) == [("archive", "demo-a"), ("archive", "demo-b"), ("archive", "demo-c")]
    clock.now += 1
    archiver.observe(pipeline(), jobs, recorded=True, paths={"/b"})
    assert queued(archiver) == [("archive", "demo-b")]
    clock.now += FULL_LOOK_EVERY  # a failed archive task is tried again at the next full look
    archiver.observe(pipeline(), jobs, recorded=True, paths=set())
    assert len(queued(archiver)) == 3


def test_a_retention_running_out_is_seen_without_a_change() -> None:
    assert CONFIG is not None
    clock = Clock()
    archiver = Archiver(object(), CONFIG, {}, clock=clock)  # type: ignore[arg-type]
    jobs = {"/a": job("/a", archived=True)}
    archiver.observe(pipeline(retention="10"), jobs, recorded=True, paths=None)
    assert queued(archiver) == []  # recorded and archived: its 10 s start now
    clock.now += FULL_LOOK_EVERY
    archiver.observe(pipeline(retention="10"), jobs, recorded=True, paths=set())
    assert queued(archiver) == [("expire", "demo-a")]
