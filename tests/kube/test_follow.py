"""``k8sco apply --wait`` follows the Pipeline through a watch, not by polling it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakecluster import FakeCluster

import k8sco as co
from k8sco.cli.cluster import follow
from k8sco.errors import ClusterError
from k8sco.kube import pipelines
from k8sco.kube.client import Cluster
from k8sco.kube.controller import Controller
from k8sco.render.crd import crd
from k8sco.render.pipeline import render_pipeline

NS = "default"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeCluster]:
    (tmp_path / "app").mkdir()
    with FakeCluster(
        log_dir=str(tmp_path / "logs"), path_map={"/app": str(tmp_path / "app")}
    ) as cluster:
        cluster.create(crd())
        yield cluster
    assert not cluster.internal_errors, "\n".join(cluster.internal_errors)


@pytest.fixture
def cluster(fake: FakeCluster, tmp_path: Path) -> Iterator[Cluster]:
    client = Cluster(str(fake.write_kubeconfig(tmp_path / "kubeconfig")))
    yield client
    client.close()


def test_follow_reads_the_pipeline_through_one_watch(
    fake: FakeCluster, cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    root = co.Serial()
    root["a"] = co.Exec("sleep 2")
    root["b"] = co.Exec("echo b")
    pipelines.create(cluster, render_pipeline(root, "followed", NS, image="busybox:1.36"))
    controller = Controller(cluster, [NS])
    thread = threading.Thread(target=controller.run, daemon=True)
    thread.start()
    try:
        fake.wait_for(lambda: fake.requests.count("watch", "pipelines") >= 1, timeout=10)
        fake.requests.reset()
        assert follow(cluster, "followed") == 0
    finally:
        controller.stop.set()
        thread.join(10)
    # Polling would have read it every half second for the two seconds it ran.
    assert fake.requests.count("get", "pipelines") == 0
    assert fake.requests.count("watch", "pipelines") >= 1
    assert "pipeline/followed: Succeeded" in capsys.readouterr().out


def test_follow_says_when_the_pipeline_is_deleted(fake: FakeCluster, cluster: Cluster) -> None:
    root = co.Serial()
    root["a"] = co.Exec("sleep 30")
    pipelines.create(cluster, render_pipeline(root, "doomed", NS, image="busybox:1.36"))
    timer = threading.Timer(1.0, pipelines.delete, args=(cluster, "doomed"))
    timer.start()
    try:
        with pytest.raises(ClusterError, match="pipeline doomed was deleted"):
            follow(cluster, "doomed")
    finally:
        timer.join()
