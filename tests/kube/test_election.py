"""Two controllers at once against the fake cluster: every node runs exactly once.

Leader election does not fence (client-go's ``leaderelection/doc.go``): a leader that lost
its Lease may still be finishing a reconciliation while the next one starts. That window
must be harmless: one Job and one pod per node, whoever leads.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakecluster import FakeCluster

import k8sco as co
from k8sco.kube import pipelines
from k8sco.kube.client import Cluster
from k8sco.kube.controller import Controller
from k8sco.kube.lease import LeaderElector
from k8sco.render.constants import ANNOTATION_PATH, LABEL_PIPELINE
from k8sco.render.crd import crd
from k8sco.render.pipeline import render_pipeline

NS = "default"


def tree() -> co.Serial:
    with co.Serial() as root:
        with co.Parallel(name="first"):
            for i in range(4):
                co.Exec(f"echo first {i}", name=f"f{i}")
        co.Exec("sleep 1", name="middle")
        with co.Parallel(name="second"):
            for i in range(4):
                co.Exec(f"echo second {i}", name=f"s{i}")
    return root


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeCluster]:
    (tmp_path / "app").mkdir()
    with FakeCluster(
        log_dir=str(tmp_path / "logs"), path_map={"/app": str(tmp_path / "app")}
    ) as cluster:
        cluster.create(crd())
        yield cluster
    assert not cluster.internal_errors, "\n".join(cluster.internal_errors)


def client(fake: FakeCluster, tmp_path: Path, name: str) -> Cluster:
    return Cluster(str(fake.write_kubeconfig(tmp_path / f"{name}.kubeconfig")))


class Running:
    """A controller in a thread, as ``k8sco controller`` runs it."""

    def __init__(self, cluster: Cluster, elector: LeaderElector | None) -> None:
        self.controller = Controller(cluster, [NS])
        self.elector = elector
        self.thread = threading.Thread(
            target=self.controller.run, kwargs={"elector": elector}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.controller.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive()


def elector(cluster: Cluster, identity: str) -> LeaderElector:
    return LeaderElector(
        cluster, NS, "lead", identity, duration=2, renew_deadline=1, retry=0.2, namespaces=[NS]
    )


def submit(cluster: Cluster, name: str) -> None:
    pipelines.create(cluster, render_pipeline(tree(), name, NS, image="busybox:1.36"))


def finished(fake: FakeCluster, name: str) -> dict[str, Any]:
    def phase() -> dict[str, Any] | None:
        obj = fake.get("pipelines.k8sco.io", name, NS)
        done = obj and (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        return obj if done else None

    obj: dict[str, Any] = fake.wait_for(phase, timeout=120, interval=0.1)
    return obj


def assert_each_node_ran_once(fake: FakeCluster, name: str) -> None:
    paths = [n.path for n in tree().stream() if isinstance(n, co.Exec)]
    jobs = [
        j
        for j in fake.objects("jobs.batch", NS)
        if j["metadata"].get("labels", {}).get(LABEL_PIPELINE) == name
    ]
    assert Counter(j["metadata"]["annotations"][ANNOTATION_PATH] for j in jobs) == Counter(paths)
    pods = [
        p
        for p in fake.objects("pods", NS)
        if p["metadata"].get("labels", {}).get(LABEL_PIPELINE) == name
    ]
    per_job = Counter(p["metadata"]["labels"].get("job-name") for p in pods)
    assert per_job == Counter(j["metadata"]["name"] for j in jobs), per_job


def test_two_candidates_and_a_leader_that_stops_renewing(fake: FakeCluster, tmp_path: Path) -> None:
    """A leads; in the middle of the run its renewals stop getting through (a partition):
    it stops acting at its renew deadline and B takes over after the lease duration."""
    a_cluster, b_cluster = client(fake, tmp_path, "a"), client(fake, tmp_path, "b")
    a_elector = elector(a_cluster, "a")
    a = Running(a_cluster, a_elector)
    assert a_elector.leading.wait(10)
    b_elector = elector(b_cluster, "b")
    b = Running(b_cluster, b_elector)
    try:
        submit(a_cluster, "handover")
        fake.wait_for(lambda: len(fake.objects("jobs.batch", NS)) >= 4, timeout=60)
        assert not b_elector.leading.is_set()
        a_elector.try_acquire = lambda: a_elector.leading.is_set()  # type: ignore[method-assign]
        assert b_elector.leading.wait(20)
        assert not a_elector.leading.is_set()
        obj = finished(fake, "handover")
    finally:
        a.stop()
        b.stop()
        a_cluster.close()
        b_cluster.close()
    assert obj["status"]["phase"] == "Succeeded", obj["status"]
    assert_each_node_ran_once(fake, "handover")


def test_two_controllers_that_both_act_run_each_node_once(
    fake: FakeCluster, tmp_path: Path
) -> None:
    """The worst case of the no-fencing window: two controllers acting for the whole run."""
    a_cluster, b_cluster = client(fake, tmp_path, "a"), client(fake, tmp_path, "b")
    a, b = Running(a_cluster, None), Running(b_cluster, None)
    try:
        submit(a_cluster, "both")
        obj = finished(fake, "both")
    finally:
        a.stop()
        b.stop()
        a_cluster.close()
        b_cluster.close()
    assert obj["status"]["phase"] == "Succeeded", obj["status"]
    assert_each_node_ran_once(fake, "both")
