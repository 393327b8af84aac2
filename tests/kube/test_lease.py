"""Leader election on a real Lease object (the fake API server): one leader at a time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakecluster import FakeCluster

from k8sco.kube.client import Cluster
from k8sco.kube.lease import LeaderElector, is_fresh, read


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with FakeCluster(kubelet=False) as fake:
        fake.write_kubeconfig(tmp_path / "kubeconfig")
        client = Cluster(str(tmp_path / "kubeconfig"))
        yield client
        client.close()


def test_one_leader_at_a_time_and_a_takeover_after_expiry(cluster: Cluster) -> None:
    clock = Clock()
    a = LeaderElector(cluster, "default", "lead", "a", duration=15, clock=clock)
    b = LeaderElector(cluster, "default", "lead", "b", duration=15, clock=clock)
    assert a.try_acquire()
    assert not b.try_acquire()  # a holds a fresh Lease
    clock.now += 10
    assert a.try_acquire()  # renewed
    clock.now += 10
    assert not b.try_acquire()  # 10 s after the renewal: still a's
    clock.now += 6
    assert b.try_acquire()  # 16 s after a's last renewal: b takes it
    assert b.leading.is_set()
    assert not a.try_acquire()
    assert not a.leading.is_set()
    lease = read(cluster, "default", "lead")
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] == 1


def test_release_hands_over_at_once(cluster: Cluster) -> None:
    clock = Clock()
    a = LeaderElector(cluster, "default", "lead", "a", clock=clock)
    b = LeaderElector(cluster, "default", "lead", "b", clock=clock)
    assert a.try_acquire()
    a.release()
    assert b.try_acquire()


def test_a_stale_write_loses_the_race(cluster: Cluster) -> None:
    """Two candidates read the same expired Lease; the second write gets 409 and loses."""
    clock = Clock()
    old = LeaderElector(cluster, "default", "lead", "old", duration=5, clock=clock)
    assert old.try_acquire()
    clock.now += 60
    lease = read(cluster, "default", "lead")
    assert lease is not None and not is_fresh(lease, clock.now)
    a = LeaderElector(cluster, "default", "lead", "a", clock=clock)
    assert a.try_acquire()
    # b writes with the resourceVersion it read before a's write: rejected.
    lease["spec"]["holderIdentity"] = "b"
    path = f"{cluster.ns_path('/apis/coordination.k8s.io/v1', 'leases', 'default')}/lead"
    with pytest.raises(Exception, match="modified"):
        cluster.request("PUT", path, body=lease, retry=False)
    assert read(cluster, "default", "lead")["spec"]["holderIdentity"] == "a"  # type: ignore[index]
