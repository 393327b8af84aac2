"""pods/log: whole logs, ``tailLines`` / ``limitBytes``, and ``follow`` streams that end when
the container's process has exited and its output has been sent."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import errors


@dataclass(frozen=True)
class LogSource:
    path: Path
    finished: Callable[[], bool]  # True once the container instance has exited


class LogProvider(Protocol):
    def log_source(
        self, pod: dict[str, Any], container: str, previous: bool
    ) -> LogSource | None: ...


@dataclass(frozen=True)
class LogRequest:
    container: str | None = None
    follow: bool = False
    previous: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None


def pick_container(pod: dict[str, Any], requested: str | None) -> str:
    name = pod["metadata"]["name"]
    containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    if requested:
        init = [c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []]
        if requested not in containers + init:
            raise errors.bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    if len(containers) == 1:
        return str(containers[0])
    default = (pod["metadata"].get("annotations") or {}).get(
        "kubectl.kubernetes.io/default-container"
    )
    if default in containers:
        return str(default)
    raise errors.bad_request(
        f"a container name must be specified for pod {name}, choose one of: "
        f"[{' '.join(map(str, containers))}]"
    )


def resolve(provider: LogProvider | None, pod: dict[str, Any], req: LogRequest) -> LogSource:
    container = pick_container(pod, req.container)
    source = provider.log_source(pod, container, req.previous) if provider else None
    if source is None:
        name = pod["metadata"]["name"]
        if req.previous:
            raise errors.bad_request(
                f'previous terminated container "{container}" in pod "{name}" not found'
            )
        reason = "ContainerCreating"
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("name") == container:
                reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason") or reason
        raise errors.bad_request(
            f'container "{container}" in pod "{name}" is waiting to start: {reason}'
        )
    return source


def read_all(source: LogSource, req: LogRequest) -> bytes:
    data = source.path.read_bytes() if source.path.exists() else b""
    if req.tail_lines is not None:
        lines = data.splitlines(keepends=True)
        data = b"".join(lines[-req.tail_lines :] if req.tail_lines > 0 else [])
    if req.limit_bytes is not None:
        data = data[: req.limit_bytes]
    return data


def follow(
    source: LogSource,
    req: LogRequest,
    send: Callable[[bytes], None],
    closing: threading.Event,
    gone: Callable[[], bool],
    poll: float = 0.05,
) -> None:
    """Send the log, then whatever is appended, until the container exits (or the pod goes)."""
    first = read_all(source, LogRequest(tail_lines=req.tail_lines))
    budget = req.limit_bytes
    offset = source.path.stat().st_size if source.path.exists() else 0

    def out(chunk: bytes) -> bool:
        nonlocal budget
        if budget is not None:
            chunk = chunk[:budget]
            budget -= len(chunk)
        if chunk:
            send(chunk)
        return budget is None or budget > 0

    if not out(first):
        return
    while not closing.is_set():
        done = source.finished() or gone()  # read once more after the process has exited
        chunk = b""
        if source.path.exists():
            with source.path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            offset += len(chunk)
        if chunk and not out(chunk):
            return
        if done and not chunk:
            return
        if not chunk:
            time.sleep(poll)
