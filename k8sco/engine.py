"""The engine: from a tree and the state of its Exec nodes, what runs next.

Pure: no clock, no environment, no I/O; time is an argument. Every backend (the local
runner, the Kubernetes controller, the tests) asks the same questions here, so the
semantics are written once:

- a Serial runs its children in order; a failed child stops it when ``stop_on_error``
  (the rest stay pending and the Serial fails), otherwise the rest run and it ends failed;
- a Parallel runs all its children, and fails after they finish if any failed;
- ``max_concurrent`` caps the Exec nodes running at once below a node;
- ``suppress_errors`` makes a node count as done for its parent despite failures;
- ``skip`` marks a subtree skipped without running it;
- ``retries`` reruns a failed Exec; ``max_time`` kills it and fails it;
- ``container_reuse_context=NEW`` runs the Exec nodes below one at a time, in tree order
  (they share a container: :mod:`k8sco.sequence`).

Only Exec nodes have recorded state (:class:`NodeState`); the state of a Serial or Parallel
is derived from its children on every evaluation. The tree is compiled once into a
:class:`Graph` of flat arrays and walked in O(nodes) per evaluation: the hierarchy is kept,
so a Serial of wide Parallels never becomes O(n²) dependency edges.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from k8sco.params import cpu_cores
from k8sco.tree import Node


class State(str, Enum):
    PENDING = "pending"  # not yet allowed to run
    QUEUED = "queued"  # allowed to run, waiting for a slot (or a pod)
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"  # failed: non-zero exit, max_time exceeded
    KILLED = "killed"  # stopped from outside: Ctrl-C, `k8sco stop`, a lost pod
    SKIPPED = "skipped"

    @property
    def finished(self) -> bool:
        return self in _FINISHED

    @property
    def failed(self) -> bool:
        return self in (State.ERROR, State.KILLED)

    def __str__(self) -> str:
        return self.value


_FINISHED = frozenset({State.DONE, State.ERROR, State.KILLED, State.SKIPPED})


@dataclass(frozen=True)
class NodeState:
    """What is recorded about one Exec node. Times are seconds since the epoch."""

    state: State = State.PENDING
    attempts: int = 0  # times started
    started: float | None = None  # first start; max_time counts from here, across retries
    finished: float | None = None
    exit_code: int | None = None
    reason: str | None = None  # why it failed, or why it is being retried
    # Attempts by callback (co.callback.retry...: k8sco.reconcile.callbacks): how many so far,
    # the memory of the current one in bytes when a callback changed it, and a summary of
    # each earlier one.
    retried: int = 0
    mem: int | None = None
    history: tuple[Mapping[str, object], ...] = ()

    def with_(self, **changes: object) -> NodeState:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"state": self.state.value}
        for key in ("attempts", "started", "finished", "exit_code", "reason", "retried", "mem"):
            value = getattr(self, key)
            # Leave out defaults only: an exit code of 0 is not "no exit code".
            if value != self.__dataclass_fields__[key].default:
                data[key] = value
        if self.history:
            data["history"] = [dict(h) for h in self.history]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> NodeState:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["state"] = State(str(fields.get("state", "pending")))
        history = fields.get("history")
        if history is not None:
            fields["history"] = tuple(h for h in history if isinstance(h, Mapping))  # type: ignore[attr-defined]
        return cls(**fields)  # type: ignore[arg-type]


PENDING = NodeState()

SERIAL, PARALLEL, EXEC = 0, 1, 2
_KIND = {"Serial": SERIAL, "Parallel": PARALLEL, "Exec": EXEC}


@dataclass(frozen=True)
class Graph:
    """A tree compiled into flat arrays, indexed in pre-order (index 0 is the root)."""

    paths: tuple[str, ...]
    kinds: tuple[int, ...]
    parents: tuple[int, ...]  # -1 for the root
    children: tuple[tuple[int, ...], ...]
    skip: tuple[bool, ...]  # effective: the node or an ancestor is skipped
    stop_on_error: tuple[bool, ...]
    suppress_errors: tuple[bool, ...]
    max_concurrent: tuple[int | None, ...]
    max_time: tuple[float, ...]  # effective, seconds (Exec nodes)
    retries: tuple[int, ...]  # effective (Exec nodes)
    cpu: tuple[float, ...]  # effective, cores (Exec nodes)
    index: Mapping[str, int]

    @classmethod
    def from_tree(cls, root: Node) -> Graph:
        paths: list[str] = []
        kinds: list[int] = []
        parents: list[int] = []
        children: list[list[int]] = []
        skip: list[bool] = []
        stop: list[bool] = []
        suppress: list[bool] = []
        max_conc: list[int | None] = []
        max_time: list[float] = []
        retries: list[int] = []
        cpu: list[float] = []
        # Inherited values are carried down the walk instead of looked up per node.
        stack: list[tuple[Node, int, str, bool, float, int, float]] = [
            (
                root,
                -1,
                "/",
                root.get("skip"),
                root.get("max_time"),
                root.get("retries"),
                cpu_cores(root.get("cpu")),
            )
        ]
        while stack:
            node, parent, path, skipped, mtime, retry, cores = stack.pop()
            i = len(paths)
            own = node.params
            skipped = skipped or bool(own.get("skip", False))
            mtime = own.get("max_time", mtime)
            retry = own.get("retries", retry)
            cores = cpu_cores(own["cpu"]) if "cpu" in own else cores
            paths.append(path)
            kinds.append(_KIND[node.kind])
            parents.append(parent)
            children.append([])
            if parent >= 0:
                children[parent].append(i)
            skip.append(skipped)
            stop.append(bool(own.get("stop_on_error", True)))
            suppress.append(bool(own.get("suppress_errors", False)))
            # The Execs of a shared container (k8sco.sequence) run one at a time, in order.
            reuse = own.get("container_reuse_context") == "new"
            max_conc.append(1 if reuse else own.get("max_concurrent"))
            max_time.append(float(mtime))
            retries.append(int(retry))
            cpu.append(cores)
            prefix = path.rstrip("/") + "/"
            stack.extend(
                (child, i, prefix + name, skipped, mtime, retry, cores)
                for name, child in reversed(list(node.children.items()))
            )
        return cls(
            paths=tuple(paths),
            kinds=tuple(kinds),
            parents=tuple(parents),
            children=tuple(tuple(c) for c in children),
            skip=tuple(skip),
            stop_on_error=tuple(stop),
            suppress_errors=tuple(suppress),
            max_concurrent=tuple(max_conc),
            max_time=tuple(max_time),
            retries=tuple(retries),
            cpu=tuple(cpu),
            index={p: i for i, p in enumerate(paths)},
        )

    @property
    def exec_paths(self) -> list[str]:
        return [p for p, k in zip(self.paths, self.kinds) if k == EXEC]

    def subtree(self, path: str) -> range:
        """Indexes of the node at ``path`` and its descendants (contiguous in pre-order)."""
        start = self.index[path]
        end = start + 1
        while end < len(self.paths) and _is_below(self, end, start):
            end += 1
        return range(start, end)


def _is_below(graph: Graph, i: int, ancestor: int) -> bool:
    while i > ancestor:
        i = graph.parents[i]
    return i == ancestor


@dataclass(frozen=True)
class Evaluation:
    """The engine's answer for one moment."""

    states: dict[str, State]  # every node, control nodes derived
    ready: list[str]  # Exec nodes that may start now, in tree order
    expired: list[str]  # running Exec nodes past their max_time: kill them
    next_deadline: float | None  # the earliest moment a running node's max_time runs out

    @property
    def root(self) -> State:
        return self.states["/"]

    @property
    def finished(self) -> bool:
        return self.root.finished

    def counts(self, graph: Graph) -> dict[str, int]:
        """How many Exec nodes are in each state."""
        out = {s.value: 0 for s in State}
        for path, kind in zip(graph.paths, graph.kinds):
            if kind == EXEC:
                out[self.states[path].value] += 1
        return out


def evaluate(graph: Graph, recorded: Mapping[str, NodeState], now: float) -> Evaluation:
    """What the tree looks like and what may start, given the recorded Exec states."""
    n = len(graph.paths)
    state: list[State] = [State.PENDING] * n
    ok: list[bool] = [False] * n  # finished in a way that lets the parent go on
    active: list[int] = [0] * n  # Exec nodes below that hold a slot (queued or running)
    touched: list[bool] = [False] * n  # something below has started or finished
    expired: list[str] = []
    deadline: float | None = None

    for i in range(n - 1, -1, -1):  # children before parents
        kind = graph.kinds[i]
        if graph.skip[i]:
            state[i], ok[i] = State.SKIPPED, True
            continue
        if kind == EXEC:
            rec = recorded.get(graph.paths[i], PENDING)
            s = rec.state
            state[i] = s
            ok[i] = s in (State.DONE, State.SKIPPED) or (s.failed and graph.suppress_errors[i])
            if s in (State.RUNNING, State.QUEUED):
                active[i] = 1
            touched[i] = s not in (State.PENDING, State.QUEUED) or rec.attempts > 0
            if s is State.RUNNING and rec.started is not None:
                end = rec.started + graph.max_time[i]
                if now >= end:
                    expired.append(graph.paths[i])
                elif deadline is None or end < deadline:
                    deadline = end
            continue
        kids = graph.children[i]
        active[i] = sum(active[c] for c in kids)
        touched[i] = any(touched[c] for c in kids)
        s = _control_state(graph, kind, i, kids, state, ok)
        state[i] = s
        ok[i] = s in (State.DONE, State.SKIPPED)

    ready: list[str] = []
    _collect(graph, 0, state, ok, active, ready, budget=None)
    # Queued and running show on the ancestors of the nodes that hold them.
    for path in ready:
        i = graph.index[path]
        state[i] = State.QUEUED
    for i in range(n - 1, -1, -1):
        if graph.kinds[i] != EXEC and not state[i].finished:
            kids = graph.children[i]
            if any(state[c] is State.RUNNING for c in kids) or touched[i]:
                state[i] = State.RUNNING
            elif any(state[c] is State.QUEUED for c in kids):
                state[i] = State.QUEUED
    return Evaluation(
        states=dict(zip(graph.paths, state)),
        ready=ready,
        expired=expired,
        next_deadline=deadline,
    )


def _control_state(
    graph: Graph, kind: int, i: int, kids: tuple[int, ...], state: list[State], ok: list[bool]
) -> State:
    """A Serial's or Parallel's state from its children's; PENDING while it is still open."""
    failure: State | None = None
    still_open = False
    for c in kids:
        if ok[c]:
            continue
        s = state[c]
        if s.failed:
            failure = State.ERROR if State.ERROR in (failure, s) else State.KILLED
            if kind == SERIAL and graph.stop_on_error[i]:
                break
            continue
        if kind == SERIAL:
            return State.PENDING  # this child runs (or waits) before the rest
        still_open = True
    if still_open:
        return State.PENDING
    if failure is None or graph.suppress_errors[i]:
        return State.DONE
    return failure


def _collect(
    graph: Graph,
    i: int,
    state: list[State],
    ok: list[bool],
    active: list[int],
    ready: list[str],
    budget: int | None,
) -> int:
    """Append the Exec nodes under ``i`` that may start; return how many were appended."""
    if state[i].finished:
        return 0
    limit = graph.max_concurrent[i]
    if limit is not None:
        room = max(limit - active[i], 0)
        budget = room if budget is None else min(budget, room)
    if budget == 0:
        return 0
    kind = graph.kinds[i]
    if kind == EXEC:
        if state[i] is State.PENDING:
            ready.append(graph.paths[i])
            return 1
        return 0
    taken = 0
    for c in graph.children[i]:
        if kind == SERIAL:
            if ok[c] or (state[c].failed and not graph.stop_on_error[i]):
                continue
            if state[c].failed:
                break
        left = None if budget is None else budget - taken
        if left == 0:
            break
        taken += _collect(graph, c, state, ok, active, ready, left)
        if kind == SERIAL:
            break
    return taken


# --- transitions: pure functions from one recorded state to the next ------------------------


def started(rec: NodeState, now: float) -> NodeState:
    """The node's process or pod started."""
    return rec.with_(
        state=State.RUNNING,
        attempts=rec.attempts + 1,
        started=rec.started if rec.started is not None else now,
        finished=None,
        exit_code=None,
    )


def exited(rec: NodeState, exit_code: int, retries: int, now: float) -> NodeState:
    """The node's command exited: done, failed, or back to pending for another try."""
    if exit_code == 0:
        return rec.with_(state=State.DONE, finished=now, exit_code=0, reason=None)
    reason = f"exit code {exit_code}" if exit_code > 0 else f"killed by signal {-exit_code}"
    if rec.attempts <= retries:
        return rec.with_(
            state=State.PENDING,
            exit_code=exit_code,
            reason=f"{reason}; retry {rec.attempts} of {retries}",
        )
    return rec.with_(state=State.ERROR, finished=now, exit_code=exit_code, reason=reason)


def timed_out(rec: NodeState, max_time: float, now: float) -> NodeState:
    """The node ran past its max_time and was killed: it fails and is not retried."""
    return rec.with_(
        state=State.ERROR, finished=now, reason=f"max time exceeded ({_seconds(max_time)})"
    )


def killed(rec: NodeState, now: float, reason: str = "killed") -> NodeState:
    return rec.with_(state=State.KILLED, finished=now, reason=reason)


def reset(graph: Graph, recorded: Mapping[str, NodeState], path: str = "/") -> dict[str, NodeState]:
    """Failed and killed Exec nodes under ``path`` back to pending; done nodes stay done."""
    out = dict(recorded)
    for i in graph.subtree(path):
        p = graph.paths[i]
        if graph.kinds[i] == EXEC and p in out and out[p].state.failed:
            del out[p]
    return out


def running(graph: Graph, recorded: Mapping[str, NodeState]) -> list[str]:
    """Exec nodes holding a slot (queued or running), in tree order."""
    return [
        p for p in graph.paths if recorded.get(p, PENDING).state in (State.RUNNING, State.QUEUED)
    ]


def _seconds(value: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{int(value // size)}{unit}"
    return f"{value:g}s"


def paths_in(graph: Graph, kinds: Iterable[int] = (EXEC,)) -> list[str]:
    wanted = set(kinds)
    return [p for p, k in zip(graph.paths, graph.kinds) if k in wanted]
