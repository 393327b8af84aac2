"""k8sco.kube.workqueue: FIFO across keys, one worker per key, delayed adds, shutdown.

A manual clock moves time; ``get(timeout=0)`` looks without blocking. Threads only where
blocking is what is tested, and always joined."""

from __future__ import annotations

import threading
import time

import pytest

from k8sco.kube.workqueue import WorkQueue


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(clock: Clock) -> WorkQueue[str]:
    return WorkQueue(clock=clock)


def drain(queue: WorkQueue[str]) -> list[str]:
    """Every key ready now, in order, each marked done as it is taken."""
    out = []
    while (key := queue.get(timeout=0)) is not None:
        out.append(key)
        queue.done(key)
    return out


def test_keys_come_out_in_the_order_they_became_dirty_each_once(queue: WorkQueue[str]) -> None:
    for key in ["a", "b", "a", "c", "b", "a"]:
        queue.add(key)
    assert len(queue) == 3
    assert drain(queue) == ["a", "b", "c"]
    assert queue.get(timeout=0) is None


def test_a_busy_key_waits_its_turn_behind_the_others(queue: WorkQueue[str]) -> None:
    """A key that becomes dirty again while processing goes to the back: a Pipeline with a
    storm of events cannot starve the rest."""
    queue.add_all(["a", "b", "c"])
    assert queue.get(timeout=0) == "a"
    queue.add("a")
    queue.done("a")
    assert drain(queue) == ["b", "c", "a"]


def test_a_key_is_never_handed_to_two_workers_at_once(queue: WorkQueue[str]) -> None:
    queue.add("a")
    assert queue.get(timeout=0) == "a"
    queue.add("a")  # an event while it is being processed
    queue.add("a")
    assert queue.get(timeout=0) is None  # not while the first worker holds it
    assert queue.processing() == {"a"}
    queue.done("a")
    assert queue.get(timeout=0) == "a"  # then once, for both events
    queue.done("a")
    assert queue.get(timeout=0) is None


def test_done_without_a_new_add_does_not_queue_again(queue: WorkQueue[str]) -> None:
    queue.add("a")
    assert queue.get(timeout=0) == "a"
    queue.done("a")
    assert queue.get(timeout=0) is None
    assert queue.processing() == frozenset()


def test_a_delayed_add_comes_when_its_time_comes(queue: WorkQueue[str], clock: Clock) -> None:
    queue.add_after("a", 5.0)
    assert queue.delayed("a") == 105.0
    assert queue.get(timeout=0) is None
    clock.now = 104.9
    assert queue.get(timeout=0) is None
    clock.now = 105.0
    assert drain(queue) == ["a"]
    assert queue.delayed("a") is None


def test_the_earliest_of_two_delays_wins(queue: WorkQueue[str], clock: Clock) -> None:
    queue.add_at("a", 110.0)
    queue.add_at("a", 103.0)
    queue.add_at("a", 120.0)
    assert queue.delayed("a") == 103.0
    clock.now = 103.0
    assert drain(queue) == ["a"]
    clock.now = 130.0  # the superseded times add nothing more
    assert drain(queue) == []


def test_delayed_keys_come_in_the_order_of_their_times(queue: WorkQueue[str], clock: Clock) -> None:
    queue.add_at("late", 102.0)
    queue.add_at("early", 101.0)
    queue.add("now")
    clock.now = 102.0
    assert drain(queue) == ["now", "early", "late"]


def test_a_delay_in_the_past_adds_at_once(queue: WorkQueue[str]) -> None:
    queue.add_after("a", 0.0)
    queue.add_at("b", 50.0)
    assert drain(queue) == ["a", "b"]


def test_a_wake_up_asked_for_while_processing_is_kept(queue: WorkQueue[str], clock: Clock) -> None:
    """A reconciliation asks for its own next wake-up while it holds its key."""
    queue.add("a")
    assert queue.get(timeout=0) == "a"
    queue.add_after("a", 1.0)
    queue.done("a")
    assert queue.get(timeout=0) is None
    clock.now = 101.0
    assert drain(queue) == ["a"]


def test_a_delayed_key_that_comes_while_processing_is_queued_after_done(
    queue: WorkQueue[str], clock: Clock
) -> None:
    queue.add("a")
    assert queue.get(timeout=0) == "a"
    queue.add_after("a", 1.0)
    clock.now = 101.0
    queue.add("b")
    assert queue.get(timeout=0) == "b"  # "a" is still processing: not handed out
    queue.done("b")
    queue.done("a")
    assert drain(queue) == ["a"]


def test_shutdown_ignores_adds_and_releases_every_waiting_worker(clock: Clock) -> None:
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    got: list[str | None] = []
    waiting = threading.Barrier(4)

    def worker() -> None:
        waiting.wait()
        got.append(queue.get())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    waiting.wait()
    queue.shut_down()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert got == [None, None, None]
    queue.add("a")
    queue.add_after("b", 0.0)
    assert queue.get(timeout=0) is None
    assert queue.shutting_down


def test_a_blocked_get_returns_the_key_added_by_another_thread(clock: Clock) -> None:
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    got: list[str | None] = []
    thread = threading.Thread(target=lambda: got.append(queue.get()))
    thread.start()
    queue.add("a")
    thread.join(timeout=30)
    assert got == ["a"]


def test_a_blocked_get_wakes_for_a_delayed_key() -> None:
    """On the real clock: a worker blocked in get() with nothing queued takes a key whose
    delay passes (no other add wakes it)."""
    queue: WorkQueue[str] = WorkQueue()
    got: list[str | None] = []
    thread = threading.Thread(target=lambda: got.append(queue.get()))
    thread.start()
    queue.add_after("a", 0.05)
    thread.join(timeout=30)
    assert got == ["a"]


def test_many_workers_never_hold_one_key_together() -> None:
    """Four threads, a hundred keys each added many times: no key is ever processed by two
    threads at once, and every key is processed."""
    queue: WorkQueue[int] = WorkQueue()
    holders: dict[int, int] = {}
    clash: list[int] = []
    processed: dict[int, int] = {}
    lock = threading.Lock()

    def worker() -> None:
        while (key := queue.get()) is not None:
            with lock:
                holders[key] = holders.get(key, 0) + 1
                if holders[key] > 1:
                    clash.append(key)
            time.sleep(0)  # yield: another worker may try to take the same key meanwhile
            with lock:
                holders[key] -= 1
                processed[key] = processed.get(key, 0) + 1
            queue.done(key)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(20):
        queue.add_all(range(100))
    deadline = time.monotonic() + 60  # a queue that loses a key shows as a failure, not a hang
    while len(queue) or queue.processing():
        assert time.monotonic() < deadline, (len(queue), queue.processing())
        threading.Event().wait(0.01)
    queue.shut_down()
    for thread in threads:
        thread.join(timeout=30)
    assert clash == []
    assert sorted(processed) == list(range(100))
