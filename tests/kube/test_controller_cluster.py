"""The controller on the fake cluster, in this process: a pod that cannot pull its image
shows why in the Pipeline's status and in ``k8sco logs``, then fails after the start
timeout instead of waiting for max_time."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fakecluster import FakeCluster

import k8sco as co
from k8sco.engine import Graph, NodeState, State
from k8sco.kube import pipelines
from k8sco.kube.client import Cluster
from k8sco.kube.controller import Controller
from k8sco.reconcile.problems import Limits
from k8sco.render.crd import crd
from k8sco.render.pipeline import recorded_states, render_pipeline

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeCluster, Cluster, Path]]:
    # No image on the node and no registry: every pull fails (ErrImagePull, then BackOff).
    with FakeCluster(node_images=frozenset(), registry_images=frozenset()) as fake:
        fake.create(crd())
        kubeconfig = tmp_path / "kubeconfig"
        fake.write_kubeconfig(kubeconfig)
        cluster = Cluster(str(kubeconfig))
        yield fake, cluster, kubeconfig
        cluster.close()


def node(cluster: Cluster, graph: Graph, path: str) -> NodeState:
    obj = pipelines.get(cluster, "pull")
    return recorded_states(graph, obj.get("status") or {}).get(path, NodeState())


def wait(fake: FakeCluster, predicate: Callable[[], object]) -> None:
    fake.wait_for(predicate, timeout=60)


def test_an_image_that_cannot_be_pulled_shows_then_fails_the_node(
    world: tuple[FakeCluster, Cluster, Path],
) -> None:
    fake, cluster, kubeconfig = world
    root = co.Serial()
    root["a"] = co.Exec("echo hi")
    graph = Graph.from_tree(root)
    pipelines.create(
        cluster, render_pipeline(root, "pull", "default", image="registry.invalid/none:1")
    )
    ctl = Controller(
        cluster, "default", limits=Limits(start_timeout=600), probe_after=0.2, probe_every=0.5
    )
    thread = threading.Thread(target=ctl.run, kwargs={"until_finished": True}, daemon=True)
    thread.start()
    try:
        wait(fake, lambda: "ImagePull" in (node(cluster, graph, "/a").reason or ""))
        rec = node(cluster, graph, "/a")
        assert rec.state is State.QUEUED
        assert rec.reason is not None and rec.reason.startswith("waiting: ")
        status = subprocess.run(
            [sys.executable, "-m", "k8sco", "status", "pull", "--kubeconfig", str(kubeconfig)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
        assert "ImagePull" in status.stdout
        logs = subprocess.run(
            [sys.executable, "-m", "k8sco", "logs", "pull", "/a", "--kubeconfig", str(kubeconfig)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
        assert "Traceback" not in logs.stderr
        assert logs.returncode == 1
        assert "/a has no log: its container has not started (" in logs.stderr
        assert "ImagePull" in logs.stderr
        ctl.limits = Limits(start_timeout=1)  # the timeout runs out
        wait(fake, lambda: node(cluster, graph, "/a").state is State.ERROR)
        rec = node(cluster, graph, "/a")
        assert rec.reason is not None and rec.reason.startswith("could not start in 1s: ")
        assert "ImagePull" in rec.reason
        thread.join(timeout=60)
        assert pipelines.get(cluster, "pull")["status"]["phase"] == "Failed"
    finally:
        ctl.stop.set()
        thread.join(timeout=10)


def test_two_controllers_at_once_are_harmless(tmp_path: Path) -> None:
    """Leader election does not fence: for a moment two leaders may act. Job creates meet
    AlreadyExists, and status writes guarded by resourceVersion make the stale one re-read."""
    with FakeCluster(path_map={"/app": str(tmp_path)}) as fake:
        fake.create(crd())
        fake.write_kubeconfig(tmp_path / "kubeconfig")
        clients = [Cluster(str(tmp_path / "kubeconfig")) for _ in range(2)]
        with co.Serial() as root:
            for stage in range(3):
                with co.Parallel(name=f"s{stage}"):
                    for i in range(4):
                        co.Exec(f"echo {stage}-{i}", name=f"n{i}")
        pipelines.create(clients[0], render_pipeline(root, "twice", "default", image="img:1"))
        controllers = [Controller(c, "default", min_interval=0.0) for c in clients]
        threads = [
            threading.Thread(target=c.run, kwargs={"until_finished": True}, daemon=True)
            for c in controllers
        ]
        for thread in threads:
            thread.start()
        try:
            fake.wait_for(
                lambda: (
                    (pipelines.get(clients[0], "twice").get("status") or {}).get("phase")
                    in ("Succeeded", "Failed")
                ),
                timeout=120,
            )
        finally:
            for c in controllers:
                c.stop.set()
            for thread in threads:
                thread.join(timeout=10)
            for c in clients:
                c.close()
        status = fake.get("pipelines.k8sco.io", "twice", "default")
        assert status is not None
        assert status["status"]["phase"] == "Succeeded", status["status"].get("message")
        assert status["status"]["progress"] == "12/12"
        jobs = fake.objects("jobs.batch", "default")
        assert len(jobs) == 12
        pods = fake.objects("pods", "default")
        assert len(pods) == 12, "a node ran twice"
        assert not fake.internal_errors


def test_a_job_quota_makes_nodes_wait_and_they_run_when_it_frees_up(tmp_path: Path) -> None:
    """count/jobs.batch counts finished Jobs too: the second node waits (403 exceeded
    quota, transient) until the first node's Job is deleted, then runs."""
    with FakeCluster(path_map={"/app": str(tmp_path)}) as fake:
        fake.create(crd())
        fake.create(
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": "jobs", "namespace": "default"},
                "spec": {"hard": {"count/jobs.batch": "1"}},
            }
        )
        fake.write_kubeconfig(tmp_path / "kubeconfig")
        cluster = Cluster(str(tmp_path / "kubeconfig"))
        with co.Serial() as root:
            co.Exec("echo a", name="a")
            co.Exec("echo b", name="b")
        graph = Graph.from_tree(root)
        pipelines.create(cluster, render_pipeline(root, "quota", "default", image="img:1"))
        ctl = Controller(cluster, "default")
        thread = threading.Thread(target=ctl.run, kwargs={"until_finished": True}, daemon=True)
        thread.start()
        try:
            fake.wait_for(
                lambda: "exceeded quota" in (node_of(cluster, graph, "quota", "/b").reason or ""),
                timeout=60,
            )
            rec = node_of(cluster, graph, "quota", "/b")
            assert rec.state is State.QUEUED and rec.reason is not None
            assert rec.reason.startswith("waiting: jobs.batch ")
            (job,) = fake.objects("jobs.batch", "default")
            cluster.request(
                "DELETE",
                f"{cluster.ns_path('/apis/batch/v1', 'jobs')}/{job['metadata']['name']}",
                body={"propagationPolicy": "Background"},
            )
            thread.join(timeout=60)
            obj = pipelines.get(cluster, "quota")
            assert obj["status"]["phase"] == "Succeeded", obj["status"].get("message")
            assert node_of(cluster, graph, "quota", "/a").state is State.DONE
        finally:
            ctl.stop.set()
            thread.join(timeout=10)
            cluster.close()


def node_of(cluster: Cluster, graph: Graph, name: str, path: str) -> NodeState:
    obj = pipelines.get(cluster, name)
    return recorded_states(graph, obj.get("status") or {}).get(path, NodeState())
