"""The controller's Events, written by a thread of their own.

An Event is a record for people (``kubectl describe pipeline``, ``kubectl get events``),
never state: losing one loses no decision. client-go's recorder is built on that
(staging/src/k8s.io/client-go/tools/record/event.go): ``recorder.Event`` puts the Event in
a queue of at most ``maxQueuedEvents`` (1,000) and returns, dropping it when the queue is
full (``watch.DropIfChannelFull``); one goroutine (``StartRecordingToSink``) writes them
one after another, retrying a transport error and giving up on an Event the server
refuses. The Job controller's syncs never wait for an Event's POST.

k8sco's controller wrote each Event from the worker that decided it: a round trip (and up
to the client's retries, seconds, when the API server is busy or throttles Events) inside
the reconciliation, before the worker could take the next Pipeline. :class:`EventRecorder`
does what client-go does, without its correlator (k8sco already records one Event per
status write, not one per node).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from k8sco.errors import ClusterError
from k8sco.kube.client import CORE

if TYPE_CHECKING:
    from k8sco.kube.controller import Api

log = logging.getLogger("k8sco.controller")

# client-go's maxQueuedEvents: past this many unwritten Events, new ones are dropped.
MAX_QUEUED = 1000


class EventRecorder:
    """Writes Event objects to the API. With ``background`` (the controller process), each
    :meth:`record` queues the Event for a writer thread and returns at once; without it, it
    writes the Event before returning (unit tests, which read the Events after a sync).
    ``written`` is called after each Event the server took."""

    def __init__(
        self,
        cluster: Api,
        *,
        background: bool = False,
        max_queued: int = MAX_QUEUED,
        written: Callable[[], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self.background = background
        self.max_queued = max_queued
        self.dropped = 0
        self._written = written or (lambda: None)
        self._queue: deque[dict[str, Any]] = deque()
        self._cond = threading.Condition()
        self._busy = False  # an Event taken from the queue and not written yet
        self._stopping = False
        self._thread: threading.Thread | None = None

    def record(self, body: dict[str, Any]) -> None:
        """Write the Event ``body`` (its ``metadata.namespace`` says where), or queue it;
        nothing once stopped."""
        if not self.background:
            if not self._stopping:
                self._write(body)
            return
        with self._cond:
            if self._stopping:
                return
            if len(self._queue) >= self.max_queued:
                self.dropped += 1
                log.debug("event dropped, %d unwritten: %s", len(self._queue), body["reason"])
                return
            self._queue.append(body)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="events")
                self._thread.start()
            self._cond.notify()

    def flush(self, timeout: float) -> bool:
        """Wait until every queued Event is written (or given up on); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def stop(self, timeout: float) -> None:
        """Write what is queued for at most ``timeout`` seconds, then record nothing more."""
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._queue.clear()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._stopping)
                if self._stopping:
                    return
                body = self._queue.popleft()
                self._busy = True
            try:
                self._write(body)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _write(self, body: dict[str, Any]) -> None:
        try:
            # The client retries what is worth retrying (a 429, a 5xx, a reset) with backoff;
            # anything else it raises is the server refusing this Event: given up on.
            self.cluster.request(
                "POST",
                self.cluster.ns_path(CORE, "events", body["metadata"]["namespace"]),
                body=body,
            )
        except ClusterError as exc:  # an Event is worth a try, never a failure
            log.debug("event not recorded: %s", exc)
            return
        except Exception:  # the writer thread must outlive any one Event
            log.exception("event not recorded")
            return
        self._written()


__all__ = ["MAX_QUEUED", "EventRecorder"]
