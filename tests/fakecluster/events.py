"""core/v1 Events from the simulated controllers, aggregated like client-go's recorder
(same object, reason and message within ten minutes: ``count`` goes up)."""

from __future__ import annotations

import itertools
import time
from typing import Any

from .errors import ApiError
from .meta import format_time
from .registry import Registry, WriteContext

EVENTS = ("", "events")


class EventRecorder:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        # key → (ns, name, when), oldest first: what may still be aggregated (see _remember).
        self._recent: dict[tuple[str, ...], tuple[str, str, float]] = {}

    def record(
        self, obj: dict[str, Any], type_: str, reason: str, message: str, component: str
    ) -> None:
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        key = (meta.get("uid", ""), type_, reason, message, component)
        now = time.time()
        stamp = format_time(now)
        rt = self.registry.rt(EVENTS)
        ctx = WriteContext(internal=True)
        with self.registry.store.lock:
            seen = self._recent.get(key)
            if seen is not None and now - seen[2] < 600:
                current = self.registry.store.get(EVENTS, seen[0], seen[1])
                if current is not None:
                    count = int(current.get("count", 1)) + 1
                    new = {**current, "count": count, "lastTimestamp": stamp}
                    self.registry.update(rt, seen[0], seen[1], new, "", ctx)
                    self._remember(key, seen[0], seen[1], now)
                    return
            name = f"{meta['name']}.{time.time_ns():x}"
            event = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": {
                    "kind": obj.get("kind"),
                    "namespace": meta.get("namespace"),
                    "name": meta["name"],
                    "uid": meta.get("uid"),
                    "apiVersion": obj.get("apiVersion"),
                    "resourceVersion": meta.get("resourceVersion"),
                },
                "reason": reason,
                "message": message,
                "source": {"component": component},
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
                "type": type_,
                "eventTime": None,
                "reportingComponent": component,
                "reportingInstance": "",
            }
            try:
                self.registry.create(rt, namespace, event, ctx)
            except ApiError:
                return  # e.g. the namespace is going away; events are best effort
            self._remember(key, namespace, name, now)

    def _remember(self, key: tuple[str, ...], namespace: str, name: str, now: float) -> None:
        """Keep ``key`` for aggregation, and forget the keys past the ten minutes (most are
        never seen again: the messages name pods), so the table does not grow for ever."""
        self._recent.pop(key, None)
        self._recent[key] = (namespace, name, now)
        for old in list(itertools.islice(self._recent, 16)):
            if now - self._recent[old][2] < 600:
                break
            del self._recent[old]
