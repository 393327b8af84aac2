"""What the CLI prints, as pure functions of data (the commands read files and print)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from k8sco.cli.statusview import View, counts_phrase, tree_lines
from k8sco.engine import EXEC, Graph, NodeState, State
from k8sco.errors import K8scoError, LoadError
from k8sco.local.progress import duration
from k8sco.tree import Node

TAIL_LINES = 20
ALL_NODES = View(all_nodes=True)


def error_text(err: K8scoError, traceback_text: str | None = None) -> str:
    """``k8sco: <message>``, followed by the user's traceback when their code raised."""
    text = f"k8sco: {err}"
    if traceback_text and isinstance(err, LoadError):
        text += "\n" + traceback_text.rstrip("\n")
    return text


def tail(text: str, lines: int = TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of a log."""
    return text.splitlines()[-lines:]


def target_line(meta: Mapping[str, object]) -> str:
    """``primes.py:primes --n=30``: how the run's pipeline was named."""
    file = str(meta.get("file_arg") or meta.get("file") or "?")
    func = meta.get("func")
    args = meta.get("args") or []
    assert isinstance(args, list)
    text = f"{file}:{func}" if func else file
    return " ".join([text, *(shlex.quote(str(a)) for a in args)])


DOC_WIDTH = 60  # characters of a node's doc shown by `k8sco status`


def node_docs(root: Node) -> dict[str, str]:
    """Each node's ``doc`` (Conducto's markdown description), by path, for the nodes with one."""
    docs: dict[str, str] = {}
    for node in root.stream():
        doc = node.params.get("doc")
        if isinstance(doc, str) and doc.strip():
            docs[node.path] = doc
    return docs


def doc_note(doc: str | None) -> str:
    """``  -- First line of the doc``: a node's doc on its status row (a heading's ``#``
    dropped, cut to ``DOC_WIDTH`` characters); ``""`` when the node has none."""
    if not doc:
        return ""
    first = next((line for line in doc.splitlines() if line.strip()), "")
    text = " ".join(first.lstrip("#").split())
    if len(text) > DOC_WIDTH:
        text = text[: DOC_WIDTH - 3] + "..."
    return f"  -- {text}" if text else ""


def status_text(
    graph: Graph,
    states: Mapping[str, State],
    recorded: Mapping[str, NodeState],
    now: float,
    docs: Mapping[str, str] | None = None,
    view: View = ALL_NODES,
) -> str:
    """The tree with each node's state, duration, for failures the reason and, with
    ``docs``, the first line of each node's doc; every node, or what ``view`` lists
    (:mod:`k8sco.cli.statusview`)."""
    found = docs or {}

    def note(i: int) -> str:
        return doc_note(found.get(graph.paths[i]))

    return "\n".join(tree_lines(graph, states, recorded, now, view, note))


def counts_text(graph: Graph, states: Mapping[str, State]) -> str:
    """``3 done, 1 error, 2 pending`` over the Exec nodes, in a fixed order."""
    counts: dict[State, int] = {}
    for path, kind in zip(graph.paths, graph.kinds):
        if kind == EXEC:
            counts[states[path]] = counts.get(states[path], 0) + 1
    return counts_phrase(counts)


def suppressed(graph: Graph, path: str) -> bool:
    """True when the node or an ancestor has suppress_errors: its failure is tolerated."""
    i = graph.index[path]
    while i >= 0:
        if graph.suppress_errors[i]:
            return True
        i = graph.parents[i]
    return False


def summary_text(
    run_id: str,
    graph: Graph,
    states: Mapping[str, State],
    recorded: Mapping[str, NodeState],
    seconds: float,
    interrupted: bool,
    tails: Mapping[str, Sequence[str]],
) -> str:
    """The end of a run: the outcome, counts per state, total time, and each failed node
    with its reason and the tail of its log."""
    outcome = "interrupted" if interrupted else states["/"].value
    lines = [
        f"run {run_id}: {outcome} in {duration(seconds)} ({counts_text(graph, states)})",
    ]
    failed = [
        p
        for p, k in zip(graph.paths, graph.kinds)
        if k == EXEC and states[p] in (State.ERROR, State.KILLED)
    ]
    for path in failed:
        rec = recorded.get(path)
        reason = rec.reason if rec is not None and rec.reason else states[path].value
        lines.append("")
        note = " (suppressed)" if suppressed(graph, path) else ""
        lines.append(f"{states[path].value}{note} {path}: {reason}")
        body = tails.get(path) or []
        if body:
            last = "last line" if len(body) == 1 else f"last {len(body)} lines"
            lines.append(f"  {last} of its log (k8sco logs {shlex.quote(path)}):")
            lines.extend("  | " + line for line in body)
        else:
            lines.append("  (its log is empty)")
    return "\n".join(lines)


def unknown_node_text(path: str, run_id: str, known: Sequence[str], limit: int = 8) -> str:
    """The error for ``k8sco logs`` with a path that the run does not have."""
    shown = ", ".join(known[:limit])
    more = f" (and {len(known) - limit} more)" if len(known) > limit else ""
    return f"no node {path!r} in run {run_id}; nodes: {shown}{more}"
