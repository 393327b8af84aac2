"""Watch streams: initial state, then the changes after a resourceVersion, filtered by
selectors (objects moving out of a selector become DELETED), with bookmarks, timeouts,
410 Expired and injected drops. Independent of HTTP: events are handed to ``send``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import errors
from .errors import ApiError
from .faults import Faults
from .registry import Registry
from .resources import ResourceType
from .selectors import Filter
from .store import Event, Store
from .tables import to_table


class DropStream(Exception):
    """Raised to end a stream abruptly (fault injection, mode "reset")."""


class _EndStream(Exception):
    """Ends a stream cleanly (fault injection, mode "eof")."""


class _Silence(Exception):
    """The stream goes quiet but stays open (fault injection: a half-open connection)."""


@dataclass
class WatchRequest:
    flt: Filter
    resource_version: str | None = None
    bookmarks: bool = False
    timeout: float = 1800.0
    send_initial_events: bool | None = None
    table: bool = False
    include_object: str = "Metadata"


# Pending event lines are written out once they reach this many bytes, even in a burst.
FLUSH_BYTES = 64 * 1024


def _line(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"


class Watch:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        faults: Faults,
        closing: threading.Event,
        bookmark_interval: float,
    ) -> None:
        self.store = store
        self.registry = registry
        self.faults = faults
        self.closing = closing
        self.bookmark_interval = bookmark_interval
        # Recent event lines by (rv, type, version): every watch of a resource sends the
        # same line for an event, so it is encoded once.
        self._lines: dict[tuple[int, str, str], bytes] = {}
        self._lines_lock = threading.Lock()

    def start(self, req: WatchRequest) -> tuple[int, list[dict[str, Any]]]:
        """Pick the starting point: (rv to follow from, initial objects). Raises ApiError 400
        for a malformed RV; an expired RV is reported in the stream (see :meth:`run`)."""
        rv = req.resource_version
        with self.store.lock:
            if req.send_initial_events or rv in (None, "", "0"):
                initial = [o for o in self.registry.candidates(req.flt) if req.flt.matches(o)]
                return self.store.rv, initial
        try:
            return self.store.parse_rv(str(rv)), []
        except ValueError as e:
            raise errors.bad_request(f"invalid resource version: {rv!r}") from e

    def run(
        self,
        req: WatchRequest,
        start: tuple[int, list[dict[str, Any]]],
        send: Callable[[Sequence[bytes]], None],
    ) -> None:
        """Stream events (``start`` comes from :meth:`start`) until the timeout, the server
        stops, or an injected drop; raises DropStream for a drop in "reset" mode.

        ``send`` writes event lines out, one chunk each. The lines of events that are already
        there go out together, as kube-apiserver's watch handler flushes only once no other
        event is waiting in its channel (``if len(ch) == 0 { flusher.Flush() }`` in
        staging/src/k8s.io/apiserver/pkg/endpoints/handlers/watch.go): in a burst, one write
        (and one wake-up of the client) for many events instead of one each."""
        rt = req.flt.rt
        start_rv, initial = start
        sent = 0
        deadline = time.monotonic() + req.timeout
        pending: list[bytes] = []
        size = 0

        def put(line: bytes) -> None:
            nonlocal size
            pending.append(line)
            size += len(line)
            if size >= FLUSH_BYTES:
                flush()

        def flush() -> None:
            nonlocal size
            if pending:
                send(pending[:])
                pending.clear()
                size = 0

        def emit(kind: str, obj: dict[str, Any], line: bytes | None = None) -> None:
            nonlocal sent
            if req.table and kind != "BOOKMARK" and kind != "ERROR":
                obj = to_table(rt, [obj], include_object=req.include_object, with_columns=sent == 0)
                line = None
            put(line or _line(kind, obj))
            sent += 1
            mode = self.faults.drop_watch(rt.plural, sent)
            silent = mode is None and self.faults.silence_watch(rt.plural, sent)
            if mode is not None or silent:
                flush()  # the client gets every event up to the fault, this one included
            if mode == "reset":
                raise DropStream
            if mode is not None:
                raise _EndStream
            if silent:
                raise _Silence

        def bookmark(rv: int, initial_end: bool = False) -> None:
            meta: dict[str, Any] = {"resourceVersion": self.store.format_rv(rv)}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            put(
                _line(
                    "BOOKMARK", {"kind": rt.kind, "apiVersion": rt.group_version, "metadata": meta}
                )
            )
            flush()

        try:
            for obj in initial:
                emit("ADDED", self.registry.present(rt, obj))
            if req.send_initial_events and req.bookmarks:
                bookmark(start_rv, initial_end=True)
            flush()
            self._follow(req, start_rv, emit, bookmark, flush, deadline)
        except _EndStream:
            return
        except _Silence:
            while not self.closing.is_set() and time.monotonic() < deadline:
                self.closing.wait(min(1.0, max(deadline - time.monotonic(), 0.0)))
        except ApiError as e:  # 410 Expired, reported in-stream as the apiserver does
            flush()
            send([_line("ERROR", e.status())])

    def _follow(
        self,
        req: WatchRequest,
        rv: int,
        emit: Callable[[str, dict[str, Any], bytes | None], None],
        bookmark: Callable[[int], None],
        flush: Callable[[], None],
        deadline: float,
    ) -> None:
        rt = req.flt.rt
        now = time.monotonic()
        next_bookmark = now + self.bookmark_interval
        while not self.closing.is_set():
            now = time.monotonic()
            if now >= deadline:
                return
            if req.bookmarks and now >= next_bookmark:
                bookmark(rv)
                next_bookmark = now + self.bookmark_interval
            wait = min(deadline, next_bookmark if req.bookmarks else deadline, now + 1.0) - now
            rv, events = self.store.next_events(rt.key, rv, max(wait, 0.0))
            for event in events:
                kind = self._kind(req.flt, event)
                if kind is not None:
                    obj = self.registry.present(rt, event.obj)
                    emit(kind, obj, None if req.table else self._line(rt, kind, event, obj))
            flush()  # the events that were waiting, in one write

    def _line(self, rt: ResourceType, kind: str, event: Event, obj: dict[str, Any]) -> bytes:
        key = (event.rv, kind, rt.group_version)
        with self._lines_lock:
            line = self._lines.get(key)
        if line is None:
            line = _line(kind, obj)
            with self._lines_lock:
                self._lines[key] = line
                if len(self._lines) > 1024:
                    del self._lines[next(iter(self._lines))]
        return line

    @staticmethod
    def _kind(flt: Filter, event: Event) -> str | None:
        if event.type == "ADDED":
            return "ADDED" if flt.matches(event.obj) else None
        if event.type == "DELETED":
            return "DELETED" if flt.matches(event.old or event.obj) else None
        was, now = flt.matches(event.old), flt.matches(event.obj)
        if was and now:
            return "MODIFIED"
        if now:
            return "ADDED"
        if was:
            return "DELETED"
        return None
