"""Fault injection (errors on writes and reads, dropped watch streams) and request counters.

Both are changed and read at runtime from the test process (``cluster.faults``,
``cluster.requests``) or over HTTP (``/_fake/faults``, ``/_fake/requests``).
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
READ_VERBS = ("get", "list", "watch")


@dataclass(frozen=True)
class FaultConfig:
    """What to inject. Rates are probabilities in [0, 1] per request (per event for drops)."""

    write_error_rate: float = 0.0
    # Which errors a faulty write gets, chosen uniformly: 500 InternalError, 429 TooManyRequests.
    write_error_codes: tuple[int, ...] = (500, 429)
    # Share of injected write errors that are answered *after* the write was applied (the
    # client cannot know whether it happened: the next create gets AlreadyExists).
    error_after_commit_rate: float = 0.0
    read_error_rate: float = 0.0  # get and list (not watch)
    retry_after_seconds: int = 1  # Retry-After of 429 answers
    watch_drop_after_events: int | None = None  # end every watch stream after N events
    watch_drop_rate: float = 0.0
    watch_drop_mode: str = "eof"  # "eof": clean end of stream; "reset": connection cut mid-stream
    # A half-open connection (kubernetes-client/python #1148): after N events, or with this
    # per-event probability, the stream sends nothing more (no events, no bookmarks) but stays
    # open until the watch's timeout or the server stops.
    watch_silent_after_events: int | None = None
    watch_silent_rate: float = 0.0
    resources: tuple[str, ...] = ()  # only these ("jobs", "pipelines/status"); empty: all
    seed: int | None = None


@dataclass(frozen=True)
class Injected:
    code: int
    after_commit: bool


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config = FaultConfig()
        self._rng = random.Random()
        self.injected: Counter[tuple[str, str, int]] = Counter()  # (verb, resource, code)
        self.dropped_watches = 0
        self.silenced_watches = 0

    @property
    def config(self) -> FaultConfig:
        with self._lock:
            return self._config

    def configure(self, **changes: Any) -> FaultConfig:
        """Change some settings, e.g. ``configure(write_error_rate=0.2, seed=1)``."""
        with self._lock:
            if "write_error_codes" in changes:
                changes["write_error_codes"] = tuple(changes["write_error_codes"])
            if "resources" in changes:
                changes["resources"] = tuple(changes["resources"])
            self._config = dataclasses.replace(self._config, **changes)
            if "seed" in changes:
                self._rng = random.Random(changes["seed"])
            return self._config

    def reset(self) -> None:
        with self._lock:
            self._config = FaultConfig()
            self.injected.clear()
            self.dropped_watches = 0
            self.silenced_watches = 0

    def _applies(self, resource: str) -> bool:
        return not self._config.resources or resource in self._config.resources

    def for_request(self, verb: str, resource: str) -> Injected | None:
        with self._lock:
            cfg = self._config
            if not self._applies(resource):
                return None
            if verb in WRITE_VERBS and self._rng.random() < cfg.write_error_rate:
                code = self._rng.choice(cfg.write_error_codes)
                after = self._rng.random() < cfg.error_after_commit_rate
            elif verb in ("get", "list") and self._rng.random() < cfg.read_error_rate:
                code, after = self._rng.choice(cfg.write_error_codes), False
            else:
                return None
            self.injected[(verb, resource, code)] += 1
            return Injected(code, after)

    def drop_watch(self, resource: str, sent: int) -> str | None:
        """After ``sent`` events on a stream: None to go on, or the drop mode."""
        with self._lock:
            cfg = self._config
            if not self._applies(resource):
                return None
            limit = cfg.watch_drop_after_events
            if (limit is not None and sent >= limit) or (
                cfg.watch_drop_rate and self._rng.random() < cfg.watch_drop_rate
            ):
                self.dropped_watches += 1
                return cfg.watch_drop_mode
            return None

    def silence_watch(self, resource: str, sent: int) -> bool:
        """After ``sent`` events on a stream: whether it goes silent from now on."""
        with self._lock:
            cfg = self._config
            if not self._applies(resource):
                return False
            limit = cfg.watch_silent_after_events
            if (limit is not None and sent >= limit) or (
                cfg.watch_silent_rate and self._rng.random() < cfg.watch_silent_rate
            ):
                self.silenced_watches += 1
                return True
            return False

    def injected_total(self, code: int | None = None) -> int:
        with self._lock:
            return sum(n for (_, _, c), n in self.injected.items() if code is None or c == code)


class RequestCounter:
    """Counts API requests by (verb, resource), e.g. ("patch", "pipelines/status")."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def record(self, verb: str, resource: str) -> None:
        with self._lock:
            self._counts[(verb, resource)] += 1

    def count(self, verb: str | None = None, resource: str | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (v, r), n in self._counts.items()
                if (verb is None or v == verb) and (resource is None or r == resource)
            )

    def writes(self, resource: str | None = None) -> int:
        return sum(self.count(v, resource) for v in WRITE_VERBS)

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
