"""A running node's log is archived as it is written (kube/archive.py's followers), so a log
longer than the kubelet's rotation size is kept whole; merged into one object at the end.

The fake kubelet does not rotate logs; what is tested is that the log reaches the store
while the node runs, in chunks, merged exactly once at the end, and that chunks an earlier
life of the controller wrote are kept and completed from the pod's log with a note."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fakecluster import FakeCluster

import k8sco as co
from k8sco.data.kube import ANNOTATION_ARCHIVED, DataConfig, log_key, log_parts_prefix
from k8sco.data.stores import open_store
from k8sco.kube import pipelines
from k8sco.kube.archive import read_archived_log
from k8sco.kube.client import Cluster
from k8sco.kube.controller import Controller
from k8sco.render.names import job_name
from k8sco.render.pipeline import render_pipeline

from .test_cluster import _phase, _run

Fake = tuple[FakeCluster, Cluster, Path]


def _waiting_node(name: str, mark: Path) -> dict[str, Any]:
    """One node that prints a line, waits for ``mark``, then prints another."""
    root = co.Serial()
    root["w"] = co.Exec(f"echo early; while [ ! -e {mark} ]; do sleep 0.05; done; echo late")
    return render_pipeline(root, name, "default", image="img:1")


def _store_settings(
    monkeypatch: pytest.MonkeyPatch, s3_env: dict[str, str], bucket: str, **extra: str
) -> DataConfig:
    for k, v in {**s3_env, **extra}.items():
        monkeypatch.setenv(k, v)
    config = DataConfig.from_env({"K8SCO_DATA_STORE": f"s3://{bucket}/k8sco"})
    assert config is not None
    return config


def _stop(ctl: Controller, thread: threading.Thread) -> None:
    ctl.stop.set()
    thread.join(timeout=10)


def test_a_running_nodes_log_is_in_the_store_before_it_ends(
    fake: Fake,
    s3_env: dict[str, str],
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    cluster, client, _ = fake
    # Every line is a chunk of its own: no waiting for 1 MiB or 10 s.
    config = _store_settings(monkeypatch, s3_env, bucket, K8SCO_LOG_FLUSH_SECONDS="0")
    mark = tmp_path / "go-on"
    pipelines.create(client, _waiting_node("live", mark))
    ctl = Controller(client, "default", data=config)
    thread = _run(ctl)
    job = job_name("live", "/w")
    try:
        pipeline = cluster.wait_for(
            lambda: (
                (p := pipelines.get(client, "live"))["metadata"]
                .get("annotations", {})
                .get("k8sco.io/data")
                and p
            ),
            timeout=60,
        )

        def archived_so_far() -> bytes:
            try:
                return read_archived_log(pipeline, job, s3_env)
            except FileNotFoundError:
                return b""

        # The node cannot end before the mark exists: its first line is archived while
        # it runs.
        cluster.wait_for(lambda: archived_so_far() == b"early\n", timeout=60)
        assert not mark.exists()
        assert _phase(client, "live") == "Running"
        mark.touch()
        cluster.wait_for(lambda: _phase(client, "live") == "Succeeded", timeout=60)
        cluster.wait_for(
            lambda: (
                ANNOTATION_ARCHIVED
                in (cluster.get("jobs.batch", job, "default")["metadata"].get("annotations") or {})
            ),
            timeout=60,
        )
        uid = pipeline["metadata"]["uid"]
        store = open_store(f"s3://{bucket}/k8sco/default/pipelines/{uid}", s3_env)
        jmeta = cluster.get("jobs.batch", job, "default")["metadata"]
        # Merged once, each line once; the chunks are gone.
        final = log_key(job, jmeta["creationTimestamp"], jmeta["uid"])
        assert store.list(f"logs/{job}/") == [final]
        assert store.gets(final) == b"early\nlate\n"
        assert read_archived_log(pipelines.get(client, "live"), job, s3_env) == b"early\nlate\n"
    finally:
        mark.touch()
        _stop(ctl, thread)


def test_chunks_of_an_earlier_life_are_kept_and_completed_from_the_pod(
    fake: Fake,
    s3_env: dict[str, str],
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A controller that follows nothing (K8SCO_LOG_FOLLOW=0, as one restarted after the
    node's start with every follower slot taken) finds chunks a former life wrote: they
    stay first in the archive, then a note, then the pod's log as the kubelet serves it."""
    cluster, client, _ = fake
    config = _store_settings(monkeypatch, s3_env, bucket, K8SCO_LOG_FOLLOW="0")
    mark = tmp_path / "go-on"
    pipelines.create(client, _waiting_node("again", mark))
    ctl = Controller(client, "default", data=config)
    assert ctl.archive is not None and ctl.archive.follow_max == 0
    thread = _run(ctl)
    job = job_name("again", "/w")
    try:
        jmeta = cluster.wait_for(
            lambda: (j := cluster.get("jobs.batch", job, "default")) and j["metadata"], timeout=60
        )
        uid = pipelines.get(client, "again")["metadata"]["uid"]
        store = open_store(f"s3://{bucket}/k8sco/default/pipelines/{uid}", s3_env)
        prefix = log_parts_prefix(job, jmeta["creationTimestamp"], jmeta["uid"])
        store.puts(prefix + "00000000", b"rotated-away\n")  # only the chunk has it now
        mark.touch()
        cluster.wait_for(
            lambda: (
                ANNOTATION_ARCHIVED
                in (cluster.get("jobs.batch", job, "default")["metadata"].get("annotations") or {})
            ),
            timeout=60,
        )
        text = read_archived_log(pipelines.get(client, "again"), job, s3_env)
        first, note, *rest = text.decode().splitlines()
        assert first == "rotated-away"
        assert note.startswith("[k8sco] the controller did not follow pod ")
        assert rest == ["early", "late"]
        assert store.list(prefix) == []
    finally:
        mark.touch()
        _stop(ctl, thread)
