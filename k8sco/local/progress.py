"""What the local runner shows while it runs: plain lines, or a live tree on a terminal.

The runner reports each node transition (``event``) and, on every wake-up, the whole
picture (``tick``). The line and tree formats are pure functions of the states, so tests
compare them directly. The live tree folds wide nodes, heads the tree with the counts of
every state, and redraws less often as drawing costs more (a 100,000-node tree is drawn a
few times a second at most, never on every wake-up).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, Protocol

from k8sco.engine import EXEC, Graph, NodeState, State
from k8sco.incremental import Answers

if TYPE_CHECKING:
    from rich.console import RenderableType


class Progress(Protocol):
    """Where the runner reports what happens."""

    refresh_interval: float | None  # how often ``tick`` wants to be called; None: on events

    def event(self, path: str, rec: NodeState, now: float) -> None: ...

    def tick(self, evaluation: Answers, recorded: Mapping[str, NodeState], now: float) -> None:
        """Called on every wake-up; a live display redraws here (at its own pace)."""

    def close(self) -> None: ...


def clock(now: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(now))


def duration(seconds: float) -> str:
    """``0.3s``, ``12.0s``, ``3m05s``, ``1h02m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def event_line(path: str, rec: NodeState, now: float) -> str:
    """One plain line for a transition: ``[12:00:02] done /p/a (1.2s)``."""
    if rec.state is State.RUNNING:
        attempt = f" (attempt {rec.attempts})" if rec.attempts > 1 else ""
        return f"[{clock(now)}] running {path}{attempt}"
    if rec.state is State.PENDING and rec.attempts == 0:  # a live reset (k8sco.controls)
        return f"[{clock(now)}] reset {path}: pending"
    if rec.state is State.PENDING:  # a failed attempt that will be retried
        return f"[{clock(now)}] retry {path}: {rec.reason}"
    took = ""
    if rec.started is not None and rec.finished is not None:
        took = f" ({duration(rec.finished - rec.started)})"
    reason = f": {rec.reason}" if rec.reason and rec.state is not State.DONE else ""
    return f"[{clock(now)}] {rec.state.value} {path}{took}{reason}"


class PlainProgress:
    """Plain lines, one per transition (for logs, pipes and CI)."""

    refresh_interval: float | None = None

    def __init__(self, write: Callable[[str], object]) -> None:
        self._write = write

    def event(self, path: str, rec: NodeState, now: float) -> None:
        self._write(event_line(path, rec, now) + "\n")

    def note(self, text: str, now: float) -> None:
        """A line about the run itself (a request taken: k8sco.local.control)."""
        self._write(f"[{clock(now)}] {text}\n")

    def tick(self, evaluation: Answers, recorded: Mapping[str, NodeState], now: float) -> None:
        pass

    def close(self) -> None:
        pass


_STYLE = {
    State.PENDING: "dim",
    State.QUEUED: "cyan",
    State.RUNNING: "yellow",
    State.DONE: "green",
    State.ERROR: "bold red",
    State.KILLED: "red",
    State.SKIPPED: "dim",
}
_SHOWN_CHILDREN = 8  # a wide Parallel shows this many children and a count of the rest
_REDRAW = 0.2  # seconds: the live tree's shortest redraw interval
_REDRAW_SHARE = 0.1  # drawing takes at most this share of the time (a big tree: less often)
_ORDER = [s.value for s in State]


def counts_line(counts: Mapping[str, int]) -> str:
    """The Exec nodes' states in one line: ``10000 nodes: 9000 done, 2 running, ...``."""
    total = sum(counts.values())
    parts = [f"{counts[s]} {s}" for s in _ORDER if counts.get(s)]
    return f"{total} nodes: " + ", ".join(parts)


def tree_lines(
    graph: Graph,
    states: Mapping[str, State],
    recorded: Mapping[str, NodeState],
    now: float,
) -> list[tuple[int, str, State, str]]:
    """The live tree as ``(depth, label, state, detail)`` rows, wide nodes folded.

    Children of a node with many of them are folded into one row of counts, except those
    running or failed (up to a few), so a 10,000-node Parallel stays one screen.
    """
    rows: list[tuple[int, str, State, str]] = []

    def walk(i: int, depth: int) -> None:
        path = graph.paths[i]
        state = states[path]
        name = path if i == 0 else path.rsplit("/", 1)[1]
        detail = ""
        if graph.kinds[i] == EXEC:
            rec = recorded.get(path)
            if rec is not None and rec.started is not None:
                detail = duration((rec.finished or now) - rec.started)
            if rec is not None and rec.reason and state is not State.DONE:
                detail += f"  {rec.reason}"
        rows.append((depth, name, state, detail))
        kids = graph.children[i]
        if len(kids) <= _SHOWN_CHILDREN:
            for c in kids:
                walk(c, depth + 1)
            return
        interesting = [c for c in kids if states[graph.paths[c]] in _INTERESTING]
        shown = interesting[:_SHOWN_CHILDREN]
        for c in shown:
            walk(c, depth + 1)
        rest: dict[str, int] = {}
        for c in kids:
            if c not in shown:
                s = states[graph.paths[c]].value
                rest[s] = rest.get(s, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(rest.items()))
        rows.append((depth + 1, f"… {sum(rest.values())} more", State.PENDING, summary))

    walk(0, 0)
    return rows


_INTERESTING = frozenset({State.RUNNING, State.ERROR, State.KILLED})


class LiveProgress:
    """A live tree on a terminal (rich), redrawn a few times a second."""

    refresh_interval: float | None = 0.25

    def __init__(self, graph: Graph, file: IO[str] | None = None) -> None:
        from rich.console import Console  # rich loads only for a terminal
        from rich.live import Live

        self._graph = graph
        self._console = Console(file=file)
        self._live = Live(console=self._console, auto_refresh=False, transient=False)
        self._live.start()
        self._due = 0.0  # when the tree may be drawn again

    def event(self, path: str, rec: NodeState, now: float) -> None:
        pass  # the next tick shows it

    def regraph(self, graph: Graph) -> None:
        """A co.Lazy node has generated nodes: draw the tree with them."""
        self._graph = graph

    def tick(self, evaluation: Answers, recorded: Mapping[str, NodeState], now: float) -> None:
        if now < self._due and not evaluation.finished:
            return
        began = time.perf_counter()
        self._live.update(self._render(evaluation, recorded, now), refresh=True)
        took = time.perf_counter() - began
        self._due = now + max(_REDRAW, took / _REDRAW_SHARE)

    def _render(
        self, evaluation: Answers, recorded: Mapping[str, NodeState], now: float
    ) -> RenderableType:
        from rich.console import Group
        from rich.text import Text
        from rich.tree import Tree

        rows = tree_lines(self._graph, evaluation.states, recorded, now)
        stack: list[Tree] = []
        top = Tree("")
        for depth, name, state, detail in rows:
            label = Text(name + "  ")
            label.append(state.value, style=_STYLE[state])
            if detail:
                label.append("  " + detail, style="dim")
            del stack[depth:]
            node = stack[-1].add(label) if stack else Tree(label)
            if not stack:
                top = node
            stack.append(node)
        return Group(Text(counts_line(evaluation.counts(self._graph)), style="bold"), top)

    def close(self) -> None:
        self._live.stop()
