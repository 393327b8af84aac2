"""A work queue for the controller's workers, after client-go's ``util/workqueue``
(kubernetes/client-go util/workqueue/queue.go and delaying_queue.go).

What it guarantees, as client-go's does:

- **FIFO fairness across keys.** Keys are handed out in the order they became dirty; a key
  marked dirty many times while it waits is queued once, so a Pipeline with a storm of Job
  events takes one turn like any other (queue.go ``Add``: ``dirty`` is the set of keys
  needing work, ``queue`` their order).
- **One worker per key.** A key handed out by :meth:`WorkQueue.get` is *processing* until
  :meth:`WorkQueue.done`; an :meth:`WorkQueue.add` meanwhile only marks it dirty, and
  ``done`` queues it again at the back (queue.go ``Done``). So per-key state needs no lock,
  and nothing seen during a reconciliation is lost: it is reconciled once more after.
- **Delayed adds** (:meth:`WorkQueue.add_at`, :meth:`WorkQueue.add_after`): the key is added
  when its time comes, the earliest time winning when a key is delayed twice
  (delaying_queue.go ``insert``). Unlike client-go today, a delayed add of a key that is
  queued or processing is kept rather than dropped (client-go's ``insert`` returns early on
  ``Find``): the controller's reconciliation asks for its own next wake-up while it holds
  the key, and that wake-up must not be lost. No goroutine of its own either: the time of
  the first delayed key bounds the waits in :meth:`WorkQueue.get`.
- **Shutdown** (:meth:`WorkQueue.shut_down`): adds are ignored and every :meth:`get`
  returns None at once (client-go's ``ShutDown`` instructs workers to exit; what is left
  queued is a level-triggered controller's to find again on its next start).

Times are on the ``clock`` passed in (the controller's: seconds), so a test moves them.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    """Keys to process, each by one worker at a time, fairly (first dirty, first served)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._cond = threading.Condition()
        self._queue: deque[K] = deque()  # every key in it is dirty and not processing
        self._dirty: set[K] = set()  # keys needing work (queued, or processing and re-added)
        self._processing: set[K] = set()
        self._delayed: dict[K, float] = {}  # key: when it is to be added
        self._heap: list[tuple[float, int, K]] = []  # (when, tie-break, key); stale entries
        self._seq = itertools.count()  # skipped where _delayed says otherwise
        self._shutting_down = False

    # --- adding ----------------------------------------------------------------------------

    def add(self, key: K) -> None:
        """Mark ``key`` as needing work (once, however often it is added before a worker
        takes it)."""
        with self._cond:
            self._add(key)

    def add_all(self, keys: Iterable[K]) -> None:
        with self._cond:
            for key in keys:
                self._add(key)

    def add_at(self, key: K, at: float) -> None:
        """Add ``key`` when the clock reaches ``at`` (at once if it has)."""
        with self._cond:
            if self._shutting_down:
                return
            if at <= self.clock():
                self._add(key)
                return
            known = self._delayed.get(key)
            if known is not None and known <= at:
                return  # an earlier wake-up is due already
            self._delayed[key] = at
            heapq.heappush(self._heap, (at, next(self._seq), key))
            if self._heap[0][2] == key:
                self._cond.notify()  # a waiting worker's wait is now too long

    def add_after(self, key: K, delay: float) -> None:
        """Add ``key`` ``delay`` seconds from now."""
        self.add_at(key, self.clock() + delay)

    def _add(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # queued again by done()
        self._queue.append(key)
        self._cond.notify()

    # --- working ---------------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> K | None:
        """The next key, now the caller's until it calls :meth:`done`. Blocks until there
        is one; None once the queue is shut down, or after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._shutting_down:
                    return None
                self._promote()
                if self._queue:
                    key = self._queue.popleft()
                    self._processing.add(key)
                    self._dirty.discard(key)
                    return key
                waits: list[float] = []
                if self._heap:
                    waits.append(max(self._heap[0][0] - self.clock(), 0.0))
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    waits.append(left)
                self._cond.wait(min(waits) if waits else None)

    def done(self, key: K) -> None:
        """The caller has finished with ``key``: queued again at the back if it was added
        meanwhile."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty and not self._shutting_down:
                self._queue.append(key)
                self._cond.notify()

    def _promote(self) -> None:
        """Queue the delayed keys whose time has come (call with the lock held)."""
        now = self.clock()
        while self._heap and self._heap[0][0] <= now:
            at, _, key = heapq.heappop(self._heap)
            if self._delayed.get(key) == at:
                del self._delayed[key]
                self._add(key)

    # --- stopping and looking --------------------------------------------------------------

    def shut_down(self) -> None:
        """Ignore adds from now on, and make every :meth:`get` return None."""
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    @property
    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down

    def __len__(self) -> int:
        """Keys waiting for a worker (not those processing, nor delayed)."""
        with self._cond:
            return len(self._queue)

    def delayed(self, key: K) -> float | None:
        """When ``key`` is to be added, if it is delayed."""
        with self._cond:
            return self._delayed.get(key)

    def processing(self) -> frozenset[K]:
        with self._cond:
            return frozenset(self._processing)


__all__ = ["WorkQueue"]
