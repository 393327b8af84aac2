"""Finished Pipelines' retention (kube/retention.py): the controller deletes a finished
Pipeline that long after its completionTime, its Jobs going with it by garbage collection,
and with a data store only once every one of its Jobs' logs is archived."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fakecluster import FakeCluster

import k8sco as co
from k8sco.data.kube import ANNOTATION_ARCHIVED, FINALIZER, DataConfig
from k8sco.data.stores import open_store
from k8sco.errors import NotFound, UsageError
from k8sco.kube import pipelines
from k8sco.kube.archive import _Task
from k8sco.kube.client import PIPELINES, Cluster
from k8sco.kube.controller import Controller
from k8sco.kube.retention import (
    ANNOTATION_PIPELINE_TTL,
    Retention,
    delete_finished,
    expiry,
    ttl_from_env,
)
from k8sco.render.constants import PLURAL
from k8sco.render.names import job_name
from k8sco.render.pipeline import parse_timestamp, render_pipeline

from .test_cluster import _phase, _run

Fake = tuple[FakeCluster, Cluster, Path]


def _finished(completed: str | None, annotation: str | None = None) -> dict[str, object]:
    meta: dict[str, object] = {"name": "p", "namespace": "default"}
    if annotation is not None:
        meta["annotations"] = {ANNOTATION_PIPELINE_TTL: annotation}
    status = {"phase": "Succeeded"}
    if completed is not None:
        status["completionTime"] = completed
    return {"metadata": meta, "status": status}


def test_expiry_is_the_completion_time_plus_the_ttl() -> None:
    done = "2026-11-30T05:00:00Z"
    at = parse_timestamp(done)
    assert expiry(_finished(done), 60) == at + 60
    assert expiry(_finished(done), None) is None  # no retention: kept
    assert expiry(_finished(None), 60) is None  # not finished
    assert expiry(_finished(done, "5"), None) == at + 5  # the annotation alone
    assert expiry(_finished(done, "5"), 60) == at + 5  # overrides the default
    assert expiry(_finished(done, "never"), 60) is None
    assert expiry(_finished(done, ""), 60) is None
    assert expiry(_finished(done, "soon"), 60) == at + 60  # a typo: the default
    assert expiry(_finished(done, "-1"), None) is None


def test_the_controller_setting() -> None:
    assert ttl_from_env({}) is None
    assert ttl_from_env({"K8SCO_PIPELINE_TTL": " 3600 "}) == 3600
    assert Retention.from_env({"K8SCO_PIPELINE_TTL": "0"}) == Retention(0)
    with pytest.raises(UsageError, match="K8SCO_PIPELINE_TTL='a day'"):
        ttl_from_env({"K8SCO_PIPELINE_TTL": "a day"})


def _one_node(name: str, command: str = "echo hi") -> dict[str, object]:
    root = co.Serial()
    root["a"] = co.Exec(command)
    return render_pipeline(root, name, "default", image="img:1")


def _exists(client: Cluster, name: str) -> bool:
    try:
        client.request("GET", f"{client.ns_path(PIPELINES, PLURAL, 'default')}/{name}")
    except NotFound:
        return False
    return True


def _stop(ctl: Controller, thread: threading.Thread) -> None:
    ctl.stop.set()
    thread.join(timeout=10)


def test_without_a_store_only_pipelines_with_a_retention_are_deleted(fake: Fake) -> None:
    cluster, client, _ = fake
    pipelines.create(client, _one_node("kept"))
    ctl = Controller(client, "default", retention=Retention(None))
    thread = _run(ctl)
    try:
        cluster.wait_for(lambda: _phase(client, "kept") == "Succeeded", timeout=60)
        gone = _one_node("gone")
        gone["metadata"]["annotations"] = {ANNOTATION_PIPELINE_TTL: "0"}  # type: ignore[index]
        pipelines.create(client, gone)
        cluster.wait_for(lambda: not _exists(client, "gone"), timeout=60)
        # Its Job goes with it (garbage collection of its owner), not the other's.
        cluster.wait_for(
            lambda: (
                [j["metadata"]["name"] for j in cluster.objects("jobs.batch", "default")]
                == [job_name("kept", "/a")]
            ),
            timeout=60,
        )
        assert _exists(client, "kept")
        assert ctl.stats.pipelines_deleted == 1
    finally:
        _stop(ctl, thread)


def test_the_controllers_default_ttl_applies_to_every_finished_pipeline(fake: Fake) -> None:
    cluster, client, _ = fake
    pipelines.create(client, _one_node("ok"))
    pipelines.create(client, _one_node("bad", "exit 3"))
    later = _one_node("later")
    later["metadata"]["annotations"] = {ANNOTATION_PIPELINE_TTL: "3600"}  # type: ignore[index]
    pipelines.create(client, later)
    ctl = Controller(client, "default", retention=Retention(0))
    thread = _run(ctl)
    try:
        cluster.wait_for(lambda: _phase(client, "later") == "Succeeded", timeout=60)
        cluster.wait_for(
            lambda: not _exists(client, "ok") and not _exists(client, "bad"), timeout=60
        )
        # Kept for an hour: the controller is woken then, by its own clock.
        done = pipelines.get(client, "later")["status"]["completionTime"]
        # (An earlier wake-up may come first, e.g. for a status write held back; the
        # retention one is what is left once the Pipeline has nothing else to do.)
        expected = parse_timestamp(done) + 3600
        cluster.wait_for(lambda: ctl._timers.get(("default", "later")) == expected, timeout=30)
        cluster.wait_for(
            lambda: (
                [j["metadata"]["name"] for j in cluster.objects("jobs.batch", "default")]
                == [job_name("later", "/a")]
            ),
            timeout=60,
        )
    finally:
        _stop(ctl, thread)


def test_the_embedded_controller_never_deletes_a_pipeline(fake: Fake) -> None:
    """No retention given (as ``k8sco apply --controller embedded`` builds it): an
    annotation alone does not make it delete (its user's role has no such right)."""
    _, client, _ = fake
    obj = _one_node("mine")
    obj["metadata"]["annotations"] = {ANNOTATION_PIPELINE_TTL: "0"}  # type: ignore[index]
    pipelines.create(client, obj)
    ctl = Controller(client, "default")
    ctl.run(until_finished=True)
    assert _phase(client, "mine") == "Succeeded"
    assert ctl.stats.pipelines_deleted == 0
    assert _exists(client, "mine")


def test_a_pipeline_changed_since_it_was_judged_is_not_deleted(fake: Fake) -> None:
    _, client, _ = fake
    pipelines.create(client, _one_node("rerun"))
    seen = pipelines.get(client, "rerun")
    pipelines.rerun(client, "rerun")  # a newer version: the judgement is stale
    assert not delete_finished(client, seen)
    assert _exists(client, "rerun")
    assert delete_finished(client, pipelines.get(client, "rerun"))
    assert not _exists(client, "rerun")


def test_with_a_store_the_pipeline_goes_only_once_every_log_is_archived(
    fake: Fake,
    s3_env: dict[str, str],
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster, client, _ = fake
    for k, v in s3_env.items():
        monkeypatch.setenv(k, v)
    config = DataConfig.from_env({"K8SCO_DATA_STORE": f"s3://{bucket}/k8sco"})
    assert config is not None
    obj = _one_node("archived")
    obj["metadata"]["annotations"] = {ANNOTATION_PIPELINE_TTL: "0"}  # type: ignore[index]
    pipelines.create(client, obj)
    uid = pipelines.get(client, "archived")["metadata"]["uid"]
    ctl = Controller(client, "default", data=config, retention=Retention(None))
    archive = ctl.archive
    assert archive is not None
    archive.workers = 0  # started below, once the deletion has been seen held back
    thread = _run(ctl)
    key = ("default", "archived")
    try:
        cluster.wait_for(lambda: _phase(client, "archived") == "Succeeded", timeout=60)
        # The finalizer as the workers would add it: only the missing archive is left.
        root = config.pipeline_root("default", uid)
        archive._adopt(_Task("adopt", "default", "archived", uid, root))

        def adopted_in_cache() -> bool:
            meta = ctl.pipelines.get(key, {}).get("metadata", {})
            return FINALIZER in (meta.get("finalizers") or [])

        cluster.wait_for(adopted_in_cache, timeout=30)
        before = ctl.stats.reconciles
        cluster.wait_for(lambda: ctl.stats.reconciles > before, timeout=60)  # the resync
        [job] = cluster.objects("jobs.batch", "default")
        assert ANNOTATION_ARCHIVED not in (job["metadata"].get("annotations") or {})
        assert _exists(client, "archived")
        assert ctl.stats.pipelines_deleted == 0
        # The workers archive the log; the Job's annotation brings the Pipeline back, it is
        # deleted, and the finalizer deletes its data and logs from the store.
        archive.workers = 2
        archive.start(ctl.stop)
        cluster.wait_for(lambda: not _exists(client, "archived"), timeout=60)
        assert ctl.stats.pipelines_deleted == 1
        assert archive.archived_count == 1
        cluster.wait_for(lambda: not cluster.objects("jobs.batch", "default"), timeout=60)
        assert open_store(root, s3_env).list("") == []
    finally:
        _stop(ctl, thread)
