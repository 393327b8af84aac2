"""The controller's workers (kube/workqueue.py, K8SCO_WORKERS): a slow reconciliation of
one Pipeline holds up no other, and no Pipeline is ever reconciled by two workers at once.
On the fake cluster, with containers that have exited 0 before they start."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakecluster import FakeCluster
from fakecluster.runners import InstantRunner

import k8sco as co
from k8sco.errors import UsageError
from k8sco.kube import pipelines
from k8sco.kube.client import Cluster
from k8sco.kube.controller import Controller, Key, resync_due
from k8sco.kube.process import workers
from k8sco.reconcile import Reconciliation
from k8sco.render.crd import crd
from k8sco.render.pipeline import render_pipeline


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeCluster, Cluster]]:
    with FakeCluster(runner=InstantRunner()) as fake:
        fake.create(crd())
        fake.write_kubeconfig(tmp_path / "kubeconfig")
        cluster = Cluster(str(tmp_path / "kubeconfig"))
        yield fake, cluster
        cluster.close()


def chain(n: int) -> co.Serial:
    """n nodes one after another: n + 1 reconciliations at least."""
    with co.Serial() as root:
        for i in range(n):
            co.Exec("true", name=f"n{i}")
    return root


def phase(cluster: Cluster, name: str) -> str | None:
    return (pipelines.get(cluster, name).get("status") or {}).get("phase")


class Held:
    """Wraps ``ctl.sync``: every reconciliation of ``slow`` waits for ``release`` (a
    reconciliation that takes as long as the test wants), and any key found in two
    workers at once is noted."""

    def __init__(self, ctl: Controller, slow: str) -> None:
        self.sync = ctl.sync
        self.slow = slow
        self.release = threading.Event()
        self.entered = threading.Event()  # the slow Pipeline holds a worker
        self.clashes: list[Key] = []
        self.inside: dict[Key, int] = {}
        self.lock = threading.Lock()

    def __call__(self, key: Key) -> Reconciliation | None:
        with self.lock:
            self.inside[key] = self.inside.get(key, 0) + 1
            if self.inside[key] > 1:
                self.clashes.append(key)
        try:
            if key[1] == self.slow:
                self.entered.set()
                self.release.wait(timeout=300)
            return self.sync(key)
        finally:
            with self.lock:
                self.inside[key] -= 1


def test_a_slow_reconciliation_holds_up_no_other_pipeline(
    world: tuple[FakeCluster, Cluster],
) -> None:
    """With one worker this fails: the worker stuck in "slow" never gets to "fast"."""
    fake, cluster = world
    for name in ("slow", "fast"):
        pipelines.create(cluster, render_pipeline(chain(4), name, "default", image="img:1"))
    ctl = Controller(cluster, "default", workers=2)
    held = Held(ctl, "slow")
    ctl.sync = held  # type: ignore[method-assign]
    thread = threading.Thread(target=ctl.run, kwargs={"until_finished": True}, daemon=True)
    thread.start()
    try:
        fake.wait_for(held.entered.is_set, timeout=60)
        # "slow" holds a worker for as long as this test wants: "fast" runs to its end.
        fake.wait_for(lambda: phase(cluster, "fast") == "Succeeded", timeout=60)
        assert phase(cluster, "slow") != "Succeeded"
        held.release.set()
        fake.wait_for(lambda: phase(cluster, "slow") == "Succeeded", timeout=60)
        thread.join(timeout=60)
        assert not thread.is_alive()  # until_finished: every Pipeline has finished
    finally:
        held.release.set()
        ctl.stop.set()
        thread.join(timeout=30)
    assert held.clashes == []


def test_many_pipelines_on_many_workers_each_by_one_at_a_time(
    world: tuple[FakeCluster, Cluster],
) -> None:
    _, cluster = world
    names = [f"p{i}" for i in range(8)]
    for name in names:
        pipelines.create(cluster, render_pipeline(chain(3), name, "default", image="img:1"))
    ctl = Controller(cluster, "default", workers=4, min_interval=0.0)
    held = Held(ctl, "none")
    ctl.sync = held  # type: ignore[method-assign]
    thread = threading.Thread(target=ctl.run, kwargs={"until_finished": True}, daemon=True)
    thread.start()
    try:
        thread.join(timeout=120)
        assert not thread.is_alive()
    finally:
        ctl.stop.set()
        thread.join(timeout=30)
    assert [phase(cluster, name) for name in names] == ["Succeeded"] * len(names)
    assert held.clashes == []
    assert ctl.stats.jobs_created == 3 * len(names)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, 16),
        ({"K8SCO_WORKERS": ""}, 16),
        ({"K8SCO_WORKERS": " 1 "}, 1),
        ({"K8SCO_WORKERS": "64"}, 64),
    ],
)
def test_the_number_of_workers_comes_from_the_environment(
    env: dict[str, str], expected: int
) -> None:
    assert workers(env) == expected


@pytest.mark.parametrize("value", ["0", "-2", "65", "2.5", "many"])
def test_a_bad_number_of_workers_names_the_variable(value: str) -> None:
    with pytest.raises(UsageError, match=r"K8SCO_WORKERS=.* is not a number of workers from 1"):
        workers({"K8SCO_WORKERS": value})


def test_a_resync_queues_only_the_pipelines_nothing_reconciled_for_a_period() -> None:
    """A busy Pipeline is reconciled by its own events; the resync is for the quiet ones
    (a lost event), so 200 busy Pipelines are not queued at once ahead of real news."""
    busy, quiet, new = ("ns", "busy"), ("ns", "quiet"), ("ns", "new")
    last = {busy: 95.0, quiet: 60.0}
    assert resync_due([busy, quiet, new], last, now=100.0, period=30.0) == [quiet, new]
    assert resync_due([busy, quiet, new], last, now=125.0, period=30.0) == [busy, quiet, new]
