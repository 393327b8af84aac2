"""Showing the JSON event stream of a Docker build, pull or push.

On a terminal: a rich progress display (the current build step, a bar per pushed layer) above
the build's output. Elsewhere (CI, a pipe): plain lines, one per output line or layer status
change, never a line per byte count. Either way the last lines are kept, so a failure can
show them.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from types import TracebackType
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
)

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class StreamDisplay:
    """Shows Docker's events; use as a context manager around one or more streams.

    ``console``: where to show them (default: stderr); ``quiet``: show nothing, keep the
    tail; ``log``: a file that gets every output line as well.
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        quiet: bool = False,
        log: IO[str] | None = None,
        tail: int = 25,
    ) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.log = log
        self.tail: deque[str] = deque(maxlen=tail)
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._layers: dict[str, TaskID] = {}
        self._layer_status: dict[str, str] = {}

    @property
    def live(self) -> bool:
        return not self.quiet and self.console.is_terminal

    def __enter__(self) -> StreamDisplay:
        if self.live:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        self._task = None
        self._layers.clear()

    def title(self, text: str) -> None:
        """A new phase (``building k8sco-app:1a2b...``): a spinner line or a plain line."""
        self.tail.clear()
        self._layers.clear()
        self._layer_status.clear()
        if self._progress is not None:
            if self._task is None:
                self._task = self._progress.add_task(text, total=None)
            else:
                self._progress.update(self._task, description=text)
        else:
            self.say(text)

    def say(self, text: str) -> None:
        """A line of k8sco's own (not the engine's output)."""
        if not self.quiet:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def feed(self, event: Mapping[str, Any]) -> None:
        """One decoded event of a build, pull or push stream."""
        if "stream" in event:
            for line in str(event["stream"]).splitlines():
                self._line(line)
        elif "error" in event:
            self._line(str(event["error"]))
        elif "status" in event:
            self._status(event)

    def _line(self, line: str) -> None:
        line = _ANSI.sub("", line).rstrip()
        if not line:
            return
        self.tail.append(line)
        if self.log is not None:
            self.log.write(line + "\n")
        if self.quiet:
            return
        if self._progress is not None and self._task is not None and line.startswith("Step "):
            self._progress.update(self._task, description=line)
        self.console.print(
            line, markup=False, highlight=False, soft_wrap=True, style="dim" if self.live else ""
        )

    def _status(self, event: Mapping[str, Any]) -> None:
        status, layer = str(event["status"]), str(event.get("id", ""))
        detail = event.get("progressDetail") or {}
        if not layer:
            self._line(status)
            return
        if self._progress is not None:
            task = self._layers.get(layer)
            if task is None:
                task = self._progress.add_task(f"{layer} {status}", total=None)
                self._layers[layer] = task
            total = detail.get("total")
            self._progress.update(
                task,
                description=f"{layer} {status}",
                completed=detail.get("current", 0),
                total=total if total else None,
            )
            self.tail.append(f"{layer}: {status}")
        elif self._layer_status.get(layer) != status:
            # Plain output: one line per change of a layer's status, not per byte count.
            self._layer_status[layer] = status
            self._line(f"{layer}: {status}")

    def tail_text(self) -> str:
        return "\n".join(self.tail)


__all__ = ["StreamDisplay"]
