"""One Pipeline's changes, as a watch delivers them (``k8sco apply --wait``, ``--controller
embedded``): a list for the current object, then a watch from its resourceVersion,
started again after the server ends it or the history expires (410 Gone)."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

from k8sco.errors import ClusterError, Gone, NotFound
from k8sco.kube.client import PIPELINES, Cluster
from k8sco.render.constants import PLURAL

log = logging.getLogger("k8sco.follow")

# Server-side end of one watch request (seconds); the next one starts from the last
# resourceVersion seen, so nothing is missed.
WATCH_SECONDS = 60


class PipelineWatch:
    """Delivers the newest state of Pipeline ``name`` in the cluster's namespace.

    A daemon thread keeps the watch; :meth:`next` returns the latest object once it changed,
    or None after ``timeout`` seconds without a change (callers refresh their display then).
    """

    def __init__(self, cluster: Cluster, name: str) -> None:
        self.cluster, self.name = cluster, name
        self.path = cluster.ns_path(PIPELINES, PLURAL, cluster.namespace)
        self.selector = {"fieldSelector": f"metadata.name={name}"}
        self.stop = threading.Event()
        self._updates: queue.Queue[dict[str, Any] | BaseException] = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"follow:{name}")
        self._thread.start()

    def _list(self) -> str:
        listing = self.cluster.request("GET", self.path, query=self.selector)
        items = listing.get("items") or []
        if not items:
            raise NotFound(f"pipeline {self.name} not found in namespace {self.cluster.namespace}")
        self._updates.put(items[0])
        return str((listing.get("metadata") or {}).get("resourceVersion", ""))

    def _run(self) -> None:
        failures = 0
        try:
            rv = self._list()
            while not self.stop.is_set():
                try:
                    for event in self.cluster.watch(
                        self.path,
                        resource_version=rv,
                        selector=self.selector,
                        timeout=WATCH_SECONDS,
                    ):
                        obj = event.get("object") or {}
                        rv = (obj.get("metadata") or {}).get("resourceVersion", rv)
                        if event.get("type") == "DELETED":
                            self._updates.put(
                                ClusterError(f"pipeline {self.name} was deleted while followed")
                            )
                            return
                        if event.get("type") in ("ADDED", "MODIFIED"):
                            self._updates.put(obj)
                        if self.stop.is_set():
                            return
                    failures = 0
                except Gone:
                    rv = self._list()
                except ClusterError as exc:
                    if (exc.status not in (0, 429) and exc.status < 500) or failures >= 5:
                        raise
                    failures += 1
                    log.debug("watch of pipeline %s broke (%s); watching again", self.name, exc)
                    self.stop.wait(min(0.2 * 2**failures, 5.0))
                    rv = self._list()
        except BaseException as exc:  # handed to the reader, who raises it
            self._updates.put(exc)

    def next(self, timeout: float) -> dict[str, Any] | None:
        """The newest state after waiting at most ``timeout`` seconds for a change; None
        when nothing changed. Raises what the watch failed with."""
        try:
            item = self._updates.get(timeout=timeout)
        except queue.Empty:
            return None
        while True:  # skip to the newest: the display needs only the last state
            if isinstance(item, BaseException):
                raise item
            latest = item
            try:
                item = self._updates.get_nowait()
            except queue.Empty:
                return latest

    def close(self) -> None:
        self.stop.set()


def updates(cluster: Cluster, name: str, *, tick: float = 1.0) -> Iterator[dict[str, Any] | None]:
    """The Pipeline each time it changes, and None every ``tick`` seconds without a change."""
    watch = PipelineWatch(cluster, name)
    try:
        while True:
            yield watch.next(tick)
    finally:
        watch.close()
