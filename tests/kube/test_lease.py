"""Leader election on a real Lease object (the fake API server), as client-go's
``tools/leaderelection`` does it: one leader at a time, decisions on locally observed
times only, a leader that cannot renew stops acting; and how ``k8sco apply`` finds a live
controller."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakecluster import FakeCluster

from k8sco.errors import UsageError
from k8sco.kube.client import LEASES, Cluster
from k8sco.kube.lease import (
    ANNOTATION_NAMESPACES,
    LeaderElector,
    find_controller,
    read,
    served_namespaces,
)

TEN_MINUTES = 600.0


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeCluster]:
    with FakeCluster(kubelet=False) as cluster:
        yield cluster


@pytest.fixture
def cluster(fake: FakeCluster, tmp_path: Path) -> Iterator[Cluster]:
    fake.write_kubeconfig(tmp_path / "kubeconfig")
    client = Cluster(str(tmp_path / "kubeconfig"))
    yield client
    client.close()


def elector(cluster: Cluster, identity: str, clock: Clock, **kw: object) -> LeaderElector:
    return LeaderElector(cluster, "default", "lead", identity, clock=clock, **kw)  # type: ignore[arg-type]


def test_one_leader_at_a_time_and_a_takeover_after_expiry(cluster: Cluster) -> None:
    clock = Clock()
    a = elector(cluster, "a", clock, duration=15, renew_deadline=10)
    b = elector(cluster, "b", clock, duration=15, renew_deadline=10)
    assert a.try_acquire()
    assert not b.try_acquire()  # b first sees a's record now
    clock.now += 8
    assert a.try_acquire()  # renewed
    assert not b.try_acquire()  # b sees the change: a fresh 15 s from now
    clock.now += 14
    assert not b.try_acquire()
    assert not a.leading.is_set()  # 14 s without renewing: past a's renew deadline
    clock.now += 2
    assert b.try_acquire()  # 16 s since b last saw the record change
    assert b.leading.is_set()
    assert not a.try_acquire()
    lease = read(cluster, "default", "lead")
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] == 1


def test_the_remote_clock_is_never_compared_with_the_local_one(cluster: Cluster) -> None:
    """The holder's wall clock is 10 minutes behind: its renewTime looks long expired, yet a
    standby waits a full lease duration from when it saw the record before taking over."""
    clock = Clock()
    a = elector(cluster, "a", clock, wall=lambda: time.time() - TEN_MINUTES)
    b = elector(cluster, "b", clock)
    assert a.try_acquire()
    assert not b.try_acquire()
    clock.now += 14
    assert not b.try_acquire()
    clock.now += 2
    assert b.try_acquire()


def test_a_leader_that_cannot_renew_stops_acting_before_anyone_may_take_over(
    fake: FakeCluster, cluster: Cluster
) -> None:
    clock = Clock()
    a = elector(cluster, "a", clock, duration=15, renew_deadline=10)
    b = elector(cluster, "b", clock, duration=15, renew_deadline=10)
    assert a.try_acquire()
    assert not b.try_acquire()
    fake.faults.configure(write_error_rate=1.0, write_error_codes=(500,), resources=["leases"])
    clock.now += 5
    assert a.try_acquire()  # the renewal failed, but the deadline has not passed
    assert a.leading.is_set()
    clock.now += 5
    assert not a.leading.is_set()  # 10 s without a renewal: a stops acting by itself
    assert not a.leading.wait(0.01)
    fake.faults.reset()
    clock.now += 4
    assert not b.try_acquire()  # b may take over only at 15 s: no overlap
    clock.now += 1
    assert b.try_acquire()


def test_renew_deadline_must_be_shorter_than_the_duration(cluster: Cluster) -> None:
    with pytest.raises(UsageError, match="renew deadline"):
        elector(cluster, "a", Clock(), duration=10, renew_deadline=10)
    with pytest.raises(UsageError, match="retry period"):
        elector(cluster, "a", Clock(), duration=10, renew_deadline=2, retry=2)


def test_release_hands_over_at_once(cluster: Cluster) -> None:
    clock = Clock()
    a = elector(cluster, "a", clock)
    b = elector(cluster, "b", clock)
    assert a.try_acquire()
    assert not b.try_acquire()
    a.release()
    assert not a.leading.is_set()
    assert b.try_acquire()


def test_a_stale_write_loses_the_race(cluster: Cluster) -> None:
    """Two candidates read the same Lease; the second write gets 409 and loses."""
    clock = Clock()
    a = elector(cluster, "a", clock)
    assert a.try_acquire()
    lease = read(cluster, "default", "lead")
    assert lease is not None
    assert a.try_acquire()  # a renews: the resourceVersion read above is stale now
    lease["spec"]["holderIdentity"] = "b"
    path = f"{cluster.ns_path(LEASES, 'leases', 'default')}/lead"
    with pytest.raises(Exception, match="modified"):
        cluster.request("PUT", path, body=lease, retry=False)
    assert read(cluster, "default", "lead")["spec"]["holderIdentity"] == "a"  # type: ignore[index]


def test_the_holder_publishes_the_namespaces_it_serves(cluster: Cluster) -> None:
    clock = Clock()
    assert elector(cluster, "a", clock, namespaces=["team-a", "team-b"]).try_acquire()
    lease = read(cluster, "default", "lead")
    assert lease is not None
    assert lease["metadata"]["annotations"][ANNOTATION_NAMESPACES] == "team-a,team-b"
    assert served_namespaces(lease) == ["team-a", "team-b"]
    assert elector(cluster, "a", clock, namespaces=None).try_acquire()
    assert served_namespaces(read(cluster, "default", "lead") or {}) is None
    # A holder that publishes nothing (an older k8sco) served only its own namespace.
    assert served_namespaces({"metadata": {"namespace": "k8sco-system"}}) == ["k8sco-system"]


# --- find_controller: how `k8sco apply --controller auto` decides ---------------------------


class Running:
    """An elector renewing in a thread, as the controller's is (short periods)."""

    def __init__(self, cluster: Cluster, **kw: object) -> None:
        self.elector = LeaderElector(
            cluster,
            "default",
            "lead",
            "ctl",
            duration=2,
            renew_deadline=1,
            retry=0.2,
            **kw,  # type: ignore[arg-type]
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.elector.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> LeaderElector:
        self.thread.start()
        assert self.elector.leading.wait(5)
        return self.elector

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def skewed(offset: float) -> Clock:
    """A client clock ``offset`` seconds off that still advances (monotonic underneath)."""

    class Skewed(Clock):
        def __call__(self) -> float:
            return time.monotonic() + offset

    return Skewed()


def test_no_lease_means_embedded_at_once(cluster: Cluster) -> None:
    def never(_: float) -> None:
        raise AssertionError("find_controller waited although there is no Lease")

    verdict = find_controller(cluster, "default", "default", "lead", sleep=never)
    assert not verdict.alive
    assert "no controller Lease default/lead" in verdict.reason


@pytest.mark.parametrize("offset", [TEN_MINUTES, -TEN_MINUTES])
def test_a_live_controller_is_found_whatever_the_clocks(cluster: Cluster, offset: float) -> None:
    """The controller's wall clock and the client's are 10 minutes apart, either way."""
    with Running(cluster, wall=lambda: time.time() + offset, namespaces=None):
        verdict = find_controller(cluster, "team-x", "default", "lead", clock=skewed(-offset))
    assert verdict.alive, verdict.reason


def test_a_dead_controller_whose_renew_time_looks_fresh_is_not_used(cluster: Cluster) -> None:
    """It died with its clock 10 minutes ahead: renewTime is in the client's future."""
    dead = LeaderElector(
        cluster,
        "default",
        "lead",
        "dead",
        duration=1,
        renew_deadline=0.5,
        retry=0.2,
        namespaces=None,
        wall=lambda: time.time() + TEN_MINUTES,
    )
    assert dead.try_acquire()
    verdict = find_controller(cluster, "default", "default", "lead", poll=0.2)
    assert not verdict.alive
    assert "not renewed" in verdict.reason


def test_a_controller_of_other_namespaces_is_not_used(cluster: Cluster) -> None:
    with Running(cluster, namespaces=["team-a"]):
        served = find_controller(cluster, "team-a", "default", "lead")
        other = find_controller(cluster, "team-b", "default", "lead")
    assert served.alive, served.reason
    assert not other.alive
    assert "serves only namespaces team-a, not team-b" in other.reason


def test_the_election_thread_outlives_an_unexpected_failure(cluster: Cluster) -> None:
    """A renewal that fails in a way nobody foresaw (here: not a ClusterError) is one failed
    attempt: the thread goes on and leads at the next one, instead of dying and leaving a
    controller that never leads again."""
    a = LeaderElector(cluster, "default", "lead", "a", retry=0.05)
    real = cluster.request
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("connection pool exploded")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    cluster.request = flaky  # type: ignore[method-assign]
    stop = threading.Event()
    thread = threading.Thread(target=a.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert a.leading.wait(timeout=30), "never led after the first failure"
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=30)
    assert calls["n"] >= 2
