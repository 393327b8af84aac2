"""What ``k8sco status`` shows of a tree: every node of a small one; of a large one a
summary and the branches worth reading.

Pure (the commands read the run or the Pipeline and print). A tree of at most
:data:`FULL_TREE_NODES` nodes is listed whole, one row per node, as it always was. A larger
one would be 100,000 rows, so by default it gets:

- a summary: the Exec nodes' counts per state, and when the run started and how long it
  has run or took;
- the tree folded: the root's children, and below them only the branches with a running,
  failed or killed node (up to :data:`SHOWN_CHILDREN` such children per node); the other
  children of a listed node are one row ``… 97 more: 95 done, 2 pending``, and a Serial or
  Parallel that is not opened shows its subtree's counts on its own row;
- a last line saying how to see more.

``--all`` lists every node; ``--depth N`` every node down to N levels below the root;
``--expand PATH`` every child of PATH (repeatable). The failing and running branches show
in every view. Each option also applies to a small tree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from k8sco.engine import EXEC, Graph, NodeState, State
from k8sco.errors import UsageError
from k8sco.local.progress import duration

FULL_TREE_NODES = 100  # a tree with at most this many nodes is listed whole by default
SHOWN_CHILDREN = 10  # children listed per node: all when at most this many, else the
# running and failed ones up to this many, the rest folded into one row

_KINDS = {0: "Serial", 1: "Parallel", 2: "Exec"}
_COUNT_ORDER = (
    State.DONE,
    State.ERROR,
    State.KILLED,
    State.SKIPPED,
    State.RUNNING,
    State.QUEUED,
    State.PENDING,
)
_ALERT = frozenset({State.RUNNING, State.ERROR, State.KILLED})


@dataclass(frozen=True)
class View:
    """The status options: ``all_nodes`` (``--all``), ``depth`` (``--depth N``: levels
    below the root listed whole) and ``expand`` (``--expand PATH``: nodes whose children
    are all listed)."""

    all_nodes: bool = False
    depth: int | None = None
    expand: tuple[str, ...] = ()

    @property
    def default(self) -> bool:
        return not self.all_nodes and self.depth is None and not self.expand


@dataclass(frozen=True)
class Fold:
    """A row standing for the children of a node that are not listed."""

    depth: int
    counts: Mapping[State, int]  # the folded children's own states


Row = int | Fold  # a node's pre-order index, or a fold


def counts_phrase(counts: Mapping[State, int]) -> str:
    """``95 done, 1 error, 2 pending``, in a fixed order."""
    return ", ".join(f"{counts[s]} {s.value}" for s in _COUNT_ORDER if counts.get(s))


def exec_counts(graph: Graph, states: Mapping[str, State]) -> list[dict[State, int]]:
    """For every node, the states of the Exec nodes in its subtree, counted (one pass)."""
    counts: list[dict[State, int]] = [{} for _ in graph.paths]
    for i in range(len(graph.paths) - 1, -1, -1):  # pre-order: children after parents
        mine = counts[i]
        if graph.kinds[i] == EXEC:
            mine[states[graph.paths[i]]] = 1
        parent = graph.parents[i]
        if parent >= 0:
            into = counts[parent]
            for state, n in mine.items():
                into[state] = into.get(state, 0) + n
    return counts


def resolve(graph: Graph, paths: Sequence[str]) -> list[int]:
    """The indexes of ``--expand`` paths; UsageError naming a path the tree lacks."""
    found = []
    for given in paths:
        path = "/" + given.strip("/")
        if path not in graph.index:
            raise UsageError(f"--expand {given}: no such node (paths start at /, e.g. /a/b)")
        found.append(graph.index[path])
    return found


def rows(
    graph: Graph, states: Mapping[str, State], view: View, counts: Sequence[Mapping[State, int]]
) -> list[Row]:
    """The rows to print, in tree order: node indexes and folds."""
    if view.all_nodes or (view.default and len(graph.paths) <= FULL_TREE_NODES):
        return list(range(len(graph.paths)))
    expanded = set(resolve(graph, view.expand))
    on_way: set[int] = set()  # the expanded nodes and their ancestors are always listed
    for i in expanded:
        while i >= 0 and i not in on_way:
            on_way.add(i)
            i = graph.parents[i]

    def alert(i: int) -> bool:
        mine = counts[i]
        return any(mine.get(s) for s in _ALERT)

    out: list[Row] = []
    stack: list[Fold | tuple[int, int]] = [(0, 0)]  # (index, depth) of a node, or a fold
    while stack:
        item = stack.pop()
        if isinstance(item, Fold):
            out.append(item)
            continue
        i, depth = item
        out.append(i)
        kids = graph.children[i]
        if not kids:
            continue
        whole = i in expanded or (view.depth is not None and depth < view.depth)
        if whole or (len(kids) <= SHOWN_CHILDREN and (depth == 0 or alert(i))):
            listed = list(kids)
        elif depth == 0 or alert(i) or i in on_way:
            way = [c for c in kids if c in on_way]
            chosen = set(way) | set(
                [c for c in kids if c not in on_way and alert(c)][:SHOWN_CHILDREN]
            )
            listed = [c for c in kids if c in chosen]
        else:
            continue  # not opened: its row shows its subtree's counts
        if len(listed) < len(kids):
            shown = set(listed)
            rest: dict[State, int] = {}
            for c in kids:
                if c not in shown:
                    s = states[graph.paths[c]]
                    rest[s] = rest.get(s, 0) + 1
            stack.append(Fold(depth + 1, rest))  # after the listed children
        stack.extend((c, depth + 1) for c in reversed(listed))
    return out


def spans(graph: Graph, recorded: Mapping[str, NodeState]) -> list[tuple[float, float] | None]:
    """For every node, the first start and the last finish of the Exec nodes in its subtree
    that started (the first start again when none has finished); None where none started.
    One pass, children before parents."""
    inf = float("inf")
    first = [inf] * len(graph.paths)
    last = [-inf] * len(graph.paths)
    for i in range(len(graph.paths) - 1, -1, -1):
        if graph.kinds[i] == EXEC:
            rec = recorded.get(graph.paths[i])
            if rec is not None and rec.started is not None:
                first[i] = rec.started
                if rec.finished is not None:
                    last[i] = rec.finished
        parent = graph.parents[i]
        if parent >= 0 and first[i] != inf:
            first[parent] = min(first[parent], first[i])
            last[parent] = max(last[parent], last[i])
    return [None if s == inf else (s, e if e != -inf else s) for s, e in zip(first, last)]


@dataclass(frozen=True)
class Shown:
    """A node's row as ``status`` prints it: label, kind, state, duration and reason."""

    label: str
    kind: str
    state: str
    took: str
    reason: str


def node_row(
    graph: Graph,
    i: int,
    states: Mapping[str, State],
    recorded: Mapping[str, NodeState],
    window: tuple[float, float] | None,
    now: float,
    counts: Mapping[State, int] | None = None,
) -> Shown:
    """Node ``i``'s row; ``counts`` (its subtree's, for a Serial or Parallel) go where an
    Exec node's reason goes."""
    path = graph.paths[i]
    depth = 0 if i == 0 else path.count("/")
    name = "/" if i == 0 else path.rsplit("/", 1)[1]
    state = states[path]
    rec = recorded.get(path)
    took = ""
    if graph.kinds[i] == EXEC:
        if rec is not None and rec.started is not None:
            end = rec.finished if rec.finished is not None else now
            took = duration(end - rec.started)
    elif window is not None:
        end = window[1] if state.finished else now
        took = duration(end - window[0])
    reason = ""
    if rec is not None and rec.reason and state is not State.DONE:
        reason = rec.reason
    if rec is not None and rec.attempts > 1:
        reason = (reason + "; " if reason else "") + f"{rec.attempts} attempts"
    if counts is not None and graph.kinds[i] != EXEC:
        reason = counts_phrase(counts)
    return Shown("  " * depth + name, _KINDS[graph.kinds[i]], state.value, took, reason)


def tree_lines(
    graph: Graph,
    states: Mapping[str, State],
    recorded: Mapping[str, NodeState],
    now: float,
    view: View = View(all_nodes=True),
    suffix: Callable[[int], str] | None = None,
) -> list[str]:
    """The rows of the tree that ``view`` lists, as text; ``suffix(i)`` is text to add to
    node ``i``'s row (its Job, its doc), asked for the listed nodes only. A listing of part
    of the tree is headed by a summary and followed by how to see more (see the module
    docstring)."""
    counts = exec_counts(graph, states)
    chosen = rows(graph, states, view, counts)
    whole = len(chosen) == len(graph.paths)
    windows = spans(graph, recorded)
    shown: list[Shown] = []
    for row in chosen:
        if isinstance(row, Fold):
            total = sum(row.counts.values())
            shown.append(
                Shown("  " * row.depth + f"… {total} more", "", "", "", counts_phrase(row.counts))
            )
        else:
            shown.append(
                node_row(
                    graph, row, states, recorded, windows[row], now, None if whole else counts[row]
                )
            )
    width = max(len(r.label) for r in shown)
    lines = [
        f"{r.label:<{width}}  {r.kind:<8}  {r.state:<7}  {r.took:>7}  {r.reason}".rstrip()
        + (suffix(row) if suffix is not None and isinstance(row, int) else "")
        for r, row in zip(shown, chosen)
    ]
    if whole:
        return lines
    listed = sum(1 for row in chosen if isinstance(row, int))
    head = summary_lines(graph, states, counts[0], windows[0], now)
    tail = (
        f"{listed} of {len(graph.paths)} nodes listed (--all: every node; --depth N: N levels; "
        "--expand PATH: its children)"
    )
    return [*head, *lines, tail]


def summary_lines(
    graph: Graph,
    states: Mapping[str, State],
    counts: Mapping[State, int],
    window: tuple[float, float] | None,
    now: float,
) -> list[str]:
    """``99,800 Exec nodes: 49,900 done, 1 error, 50 running, 49,849 pending`` and when the
    run started and how long it has run (or took)."""
    total = sum(counts.values())
    lines = [f"{total} Exec nodes: {counts_phrase(counts)}"]
    if window is None:
        lines.append("not started")
    elif states["/"].finished:
        lines.append(f"started {_utc(window[0])}, took {duration(window[1] - window[0])}")
    else:
        lines.append(f"started {_utc(window[0])}, running for {duration(now - window[0])}")
    return lines


def _utc(seconds: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))
