"""What the page reads, as plain JSON-ready data. Pure: the tree, the recorded states and the
clock come in as arguments.

A 10,000-node tree must reach the browser fast, so its shape is sent once in flat arrays
(pre-order, as :class:`~k8sco.engine.Graph` holds it) and each change of state as one
character per node (:data:`STATE_CHARS`) plus sparse lists for times, reasons and retries.
Everything about a single node (command, parameters, doc) is sent only when it is opened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from k8sco.engine import EXEC, Graph, NodeState, State, evaluate
from k8sco.params import SPECS, Inherit
from k8sco.secrets import SecretRef
from k8sco.tree import Exec, Node

# One character per state in the page's state string (app.js reads the same letters).
STATE_CHARS = {
    State.PENDING: "p",
    State.QUEUED: "q",
    State.RUNNING: "r",
    State.DONE: "d",
    State.ERROR: "e",
    State.KILLED: "k",
    State.SKIPPED: "s",
}
KIND_CHARS = "SPE"  # Serial, Parallel, Exec: the engine's SERIAL, PARALLEL, EXEC


def tree_view(graph: Graph, job_of: Callable[[str], str] | None = None) -> dict[str, Any]:
    """The tree's shape: paths, kinds and parents in pre-order, and each Exec node's Job
    when ``job_of`` names it (a cluster pipeline)."""
    view: dict[str, Any] = {
        "paths": list(graph.paths),
        "kinds": "".join(KIND_CHARS[k] for k in graph.kinds),
        "parents": list(graph.parents),
    }
    if job_of is not None:
        view["jobs"] = [job_of(p) if k == EXEC else None for p, k in zip(graph.paths, graph.kinds)]
    return view


def states_view(graph: Graph, recorded: Mapping[str, NodeState], now: float) -> dict[str, Any]:
    """Every node's state (derived for Serial and Parallel by the engine, as ``k8sco status``
    shows them) and, for the Exec nodes that have them, times, reasons and attempts."""
    ev = evaluate(graph, recorded, now)
    times: list[list[Any]] = []
    reasons: list[list[Any]] = []
    attempts: list[list[int]] = []
    for path, rec in recorded.items():
        i = graph.index.get(path)
        if i is None:
            continue
        if rec.started is not None:
            times.append([i, rec.started, rec.finished])
        if rec.reason and rec.state is not State.DONE:
            reasons.append([i, rec.reason])
        if rec.attempts > 1:
            attempts.append([i, rec.attempts])
    return {
        "states": "".join(STATE_CHARS[ev.states[p]] for p in graph.paths),
        "root": ev.root.value,
        "counts": ev.counts(graph),
        "times": times,
        "reasons": reasons,
        "attempts": attempts,
        "now": now,
    }


def node_view(
    root: Node,
    graph: Graph,
    path: str,
    recorded: Mapping[str, NodeState],
    now: float,
    job: str | None = None,
) -> dict[str, Any]:
    """One node's detail: command, parameters with where each comes from, doc, timing,
    retries and the failure reason."""
    node = root if path == "/" else root[path]
    i = graph.index[path]
    rec = recorded.get(path, NodeState())
    if isinstance(node, Exec) and not graph.skip[i]:
        state = rec.state  # an Exec node's state is its record: no need to evaluate the tree
    else:
        state = evaluate(graph, recorded, now).states[path]
    view: dict[str, Any] = {
        "path": path,
        "kind": node.kind,
        "state": state.value,
        "params": param_origins(node),
        "doc": node.params.get("doc") if isinstance(node.params.get("doc"), str) else None,
    }
    if isinstance(node, Exec):
        view.update(
            command=node.command_line,
            function=node.function,
            attempts=rec.attempts,
            retries=graph.retries[i],
            started=rec.started,
            finished=rec.finished,
            exit_code=rec.exit_code,
            reason=rec.reason,
            job=job,
        )
    return view


def param_origins(node: Node) -> list[dict[str, Any]]:
    """Each parameter in effect on ``node``: its value and the path of the node that set it
    (``"default"`` when none did). ``env`` is given key by key, since it merges down the
    tree; a Secret's value is never here, only which Secret and key it comes from."""
    lineage: list[Node] = []
    walk: Node | None = node
    while walk is not None:
        lineage.append(walk)
        walk = walk.parent
    out: list[dict[str, Any]] = []
    for name, spec in SPECS.items():
        if node.kind not in spec.kinds or name == "doc":
            continue
        if spec.inherit is Inherit.MERGE:
            merged: dict[str, tuple[Any, str]] = {}
            for anc in reversed(lineage):
                for key, value in (anc.params.get(name) or {}).items():
                    merged[key] = (value, anc.path)
            for key, (value, origin) in sorted(merged.items()):
                out.append({"name": f"{name}.{key}", "value": _shown(value), "from": origin})
            continue
        if spec.inherit is Inherit.NONE:
            setters = [node] if name in node.params else []
        elif spec.inherit is Inherit.ANY:
            setters = [n for n in lineage if n.params.get(name)]
        else:
            setters = [n for n in lineage if name in n.params]
        if setters:
            value = setters[0].params[name]
            out.append({"name": name, "value": _shown(value), "from": setters[0].path})
        elif spec.default not in (None, {}, [], ()):
            out.append({"name": name, "value": _shown(spec.default), "from": "default"})
    return out


def _shown(value: Any) -> Any:
    if isinstance(value, SecretRef):
        return {"secret": value.name, "key": value.key}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _shown(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_shown(v) for v in value]
    return str(value)  # a co.Image: its description
