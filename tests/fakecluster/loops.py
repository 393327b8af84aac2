"""A worker thread with a de-duplicating work queue and delayed re-queues, the shape of a
Kubernetes controller's workqueue. The simulated controllers and the kubelet run on these.
And a pool of reused threads for blocking calls; and the gate that lets API requests go
first (ApiFirst)."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Hashable


class ApiFirst:
    """API requests before the simulated controllers and kubelet, as far as one process can.

    In a cluster kube-apiserver has cores of its own: the job controller and the kubelets
    run elsewhere and do not slow its answers. Here they share one GIL with the HTTP
    handlers, and a loop item that runs while a request is being answered delays it. With
    a gate, each loop item first waits until no request is being answered, for at most
    ``cap`` seconds (so the loops still make progress under a constant stream of requests).
    Streams (watches, followed logs) count until they start streaming."""

    def __init__(self, cap: float) -> None:
        self.cap = cap
        self._cond = threading.Condition()
        self._answering = 0

    def begin(self) -> None:
        with self._cond:
            self._answering += 1

    def end(self) -> None:
        with self._cond:
            self._answering -= 1
            if not self._answering:
                self._cond.notify_all()

    def wait(self) -> None:
        with self._cond:
            if self._answering:
                self._cond.wait_for(lambda: not self._answering, self.cap)


class Loop:
    def __init__(self, name: str, process: Callable[[Hashable], None], errors: list[str]) -> None:
        self.name = name
        self.gate: ApiFirst | None = None  # set by FakeCluster (ClusterConfig.api_first)
        self._process = process
        self._errors = errors
        self._cond = threading.Condition()
        self._ready: dict[Hashable, None] = {}  # insertion-ordered set
        self._timers: list[tuple[float, int, Hashable, bool]] = []
        # Coalesced timers' items and when they are due: see add_after.
        self._due: dict[Hashable, float] = {}
        self._seq = itertools.count()
        self._stopping = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name=name)

    def add(self, item: Hashable) -> None:
        with self._cond:
            self._ready[item] = None
            self._cond.notify()

    def add_after(self, item: Hashable, delay: float, coalesce: bool = False) -> None:
        """``item`` again in ``delay`` seconds. ``coalesce``: as client-go's delaying queue
        does (util/workqueue/delaying_queue.go, waitingEntryByData): an item already
        waiting keeps the sooner of its two times, and is processed once then."""
        if delay <= 0:
            return self.add(item)
        with self._cond:
            at = time.monotonic() + delay
            if coalesce:
                due = self._due.get(item)
                if due is not None and due <= at:
                    return None
                self._due[item] = at
            entry = (at, next(self._seq), item, coalesce)
            heapq.heappush(self._timers, entry)
            if self._timers[0] is entry:  # else the thread wakes up earlier anyway
                self._cond.notify()
        return None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join()

    def idle(self) -> bool:
        """Nothing queued and nothing running (timers may be pending)."""
        with self._cond:
            return not self._ready and not self._busy

    def _next(self) -> Hashable | None:
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    at, _, due_item, coalesced = heapq.heappop(self._timers)
                    if coalesced:
                        if self._due.get(due_item) != at:
                            continue  # replaced by a sooner time, already processed
                        del self._due[due_item]
                    self._ready[due_item] = None
                if self._ready:
                    item = next(iter(self._ready))
                    del self._ready[item]
                    self._busy = True
                    return item
                timeout = self._timers[0][0] - now if self._timers else None
                self._cond.wait(timeout)
            return None

    def _run(self) -> None:
        while True:
            item = self._next()
            if item is None:
                return
            if self.gate is not None:
                self.gate.wait()
            try:
                self._process(item)
            except Exception:
                self._errors.append(f"{self.name}: {item!r}\n{traceback.format_exc()}")
            finally:
                with self._cond:
                    self._busy = False


class Workers:
    """Threads that run blocking calls (a kubelet waiting for its containers to exit), one
    call per thread at a time; idle threads are reused, new ones started only when all are
    busy. Starting a thread costs more than a whole instant container."""

    def __init__(self, name: str, errors: list[str]) -> None:
        self.name = name
        self._errors = errors
        self._cond = threading.Condition()
        self._calls: deque[tuple[Callable[..., None], tuple[object, ...]]] = deque()
        self._idle = 0
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def submit(self, fn: Callable[..., None], *args: object) -> None:
        with self._cond:
            self._calls.append((fn, args))
            if self._idle >= len(self._calls):
                self._cond.notify()
                return
            thread = threading.Thread(target=self._run, name=f"{self.name}-{len(self._threads)}")
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Wait for the calls under way (and queued) to return, then end the threads."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._calls:
                    if self._stopping:
                        return
                    self._idle += 1
                    self._cond.wait()
                    self._idle -= 1
                fn, args = self._calls.popleft()
            try:
                fn(*args)
            except Exception:
                self._errors.append(f"{self.name}: {args!r}\n{traceback.format_exc()}")
