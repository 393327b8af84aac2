"""The incremental engine against the from-scratch one (engine.evaluate, the oracle).

Random trees (every parameter the engine reads) go through random event orders: nodes
queued, started, exiting with success or failure (retries), killed, running out of time,
reruns of subtrees, arbitrary records written over others, and co.Lazy splices (a new
graph, the engine rebuilt from it and the records). After every event, every answer of
the incremental engine must equal evaluate's, and the Delta must be the difference
between the answers before and after.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import k8sco as co
from k8sco import engine
from k8sco.engine import Evaluation, Graph, NodeState, State
from k8sco.errors import PipelineError
from k8sco.incremental import Delta, Incremental

# A tree as data, so that a splice can grow it: ("E", params) or (kind, params, children).
Spec = tuple[Any, ...]

_flags = st.sampled_from([False, False, False, True])
_exec_params = st.fixed_dictionaries(
    {},
    optional={
        "retries": st.integers(0, 2),
        "max_time": st.sampled_from([3, 8]),
        "suppress_errors": _flags,
        "skip": _flags,
        "max_concurrent": st.integers(1, 2),
    },
)


def _control_params(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    optional: dict[str, st.SearchStrategy[Any]] = {
        "suppress_errors": _flags,
        "skip": _flags,
        "max_concurrent": st.integers(1, 3),
        "max_time": st.sampled_from([5, 20]),
        "retries": st.integers(0, 1),
    }
    if kind == "S":
        optional["stop_on_error"] = st.booleans()
    return st.fixed_dictionaries({}, optional=optional)


def _control(children: st.SearchStrategy[Spec]) -> st.SearchStrategy[Spec]:
    return st.sampled_from(["S", "P"]).flatmap(
        lambda kind: st.tuples(
            st.just(kind), _control_params(kind), st.lists(children, max_size=4).map(tuple)
        )
    )


_leaf = st.tuples(st.just("E"), _exec_params)
_subtree = st.recursive(_leaf, _control, max_leaves=10)
_trees = _control(_subtree)  # the root is a Serial or Parallel, as in every pipeline


def build(spec: Spec) -> co.Node:
    if spec[0] == "E":
        return co.Exec("true", **spec[1])
    node: co.Node = co.Serial(**spec[1]) if spec[0] == "S" else co.Parallel(**spec[1])
    for j, child in enumerate(spec[2]):
        node[f"n{j}"] = build(child)
    return node


def splice(spec: Spec, path: list[int], grown: Spec) -> Spec:
    """``spec`` with the (empty) control node at ``path`` replaced by ``grown``, as
    lazy.splice fills a Lazy node's Execute node (its kind, parameters and children):
    existing paths do not change."""
    if not path:
        return grown
    kids = list(spec[2])
    kids[path[0]] = splice(kids[path[0]], path[1:], grown)
    return (spec[0], spec[1], tuple(kids))


def empty_controls(spec: Spec, at: list[int] | None = None) -> list[list[int]]:
    at = at or []
    if spec[0] == "E":
        return []
    found = [at] if not spec[2] and at else []
    for j, child in enumerate(spec[2]):
        found += empty_controls(child, [*at, j])
    return found


def check(
    inc: Incremental,
    graph: Graph,
    recorded: dict[str, NodeState],
    now: float,
    before: Evaluation | None = None,
    delta: Delta | None = None,
) -> Evaluation:
    """Every answer of ``inc`` is evaluate's; ``delta`` is what changed since ``before``."""
    ev = engine.evaluate(graph, recorded, now)
    assert dict(inc.states) == ev.states
    assert inc.ready() == ev.ready
    assert inc.ready(limit=1) == ev.ready[:1]
    assert inc.finished == ev.finished
    assert inc.root is ev.root
    assert dict(inc.recorded) == recorded
    assert inc.snapshot(now) == ev
    view = inc.evaluation(now)
    assert view.ready == ev.ready
    assert view.expired == ev.expired
    assert view.next_deadline == ev.next_deadline
    assert view.counts(graph) == ev.counts(graph)
    assert all(inc.is_ready(p) == (p in ev.ready) for p in graph.exec_paths)
    if before is not None and delta is not None:
        assert delta.ready == [p for p in ev.ready if p not in before.ready]
        assert delta.unready == [p for p in before.ready if p not in ev.ready]
        assert delta.states == {p: s for p, s in ev.states.items() if before.states.get(p) is not s}
    return ev


EVENTS = ["queue", "start", "start", "exit", "exit", "kill", "tick", "rerun", "set", "splice"]


@settings(
    max_examples=300,
    derandomize=True,  # the same examples every run: a failure is never a fluke
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(spec=_trees, data=st.data())
def test_agrees_with_evaluate_through_random_events(spec: Spec, data: st.DataObject) -> None:
    graph = Graph.from_tree(build(spec))
    recorded: dict[str, NodeState] = {}
    now = 0.0
    inc = Incremental(graph, recorded)
    ev = check(inc, graph, recorded, now)
    for _ in range(data.draw(st.integers(1, 40), label="events")):
        holding = {p: r for p, r in recorded.items() if r.state in (State.QUEUED, State.RUNNING)}
        queued = sorted(p for p, r in holding.items() if r.state is State.QUEUED)
        possible = [
            e
            for e in EVENTS
            if (e != "queue" or ev.ready)
            and (e != "start" or ev.ready or queued)
            and (e not in ("exit", "kill") or holding)
            and (e != "set" or graph.exec_paths)
            and (e != "splice" or empty_controls(spec))
        ]
        event = data.draw(st.sampled_from(possible), label="event")
        changes: list[tuple[str, NodeState | None]] = []
        if event == "queue":  # as the controller records a Job it created
            path = data.draw(st.sampled_from(ev.ready))
            changes.append(
                (path, NodeState(State.QUEUED, recorded.get(path, NodeState()).attempts))
            )
        elif event == "start":  # a ready node's process, or a queued node's pod, starts
            path = data.draw(st.sampled_from(ev.ready + queued))
            changes.append((path, engine.started(recorded.get(path, NodeState()), now)))
        elif event == "exit":
            path = data.draw(st.sampled_from(sorted(holding)))
            code = data.draw(st.sampled_from([0, 0, 1, -9]))
            retries = graph.retries[graph.index[path]]
            rec = holding[path]
            if rec.state is State.QUEUED:
                rec = engine.started(rec, now)
            changes.append((path, engine.exited(rec, code, retries, now)))
        elif event == "kill":
            for path in data.draw(
                st.lists(st.sampled_from(sorted(holding)), min_size=1, unique=True)
            ):
                changes.append((path, engine.killed(holding[path], now)))
        elif event == "tick":
            now += data.draw(st.sampled_from([1.0, 4.0, 12.0]))
            ev = check(inc, graph, recorded, now)
            for path in ev.expired:  # the backend kills them: they fail, no retry
                rec = recorded[path]
                changes.append(
                    (path, engine.timed_out(rec, graph.max_time[graph.index[path]], now))
                )
        elif event == "rerun":
            target = data.draw(st.sampled_from(graph.paths))
            recorded = engine.reset(graph, recorded, target)
            delta = inc.reset(target)
            ev = check(inc, graph, recorded, now, ev, delta)
            continue
        elif event == "set":  # any record over any other: the engine holds no assumptions
            path = data.draw(st.sampled_from(graph.exec_paths))
            state = data.draw(st.sampled_from(list(State)))
            attempts = data.draw(st.integers(0, 2))
            started = now - data.draw(st.sampled_from([0.0, 5.0])) if attempts else None
            rec = NodeState(state, attempts, started)
            changes.append((path, None if state is State.PENDING and not attempts else rec))
        elif event == "splice":
            spot = data.draw(st.sampled_from(empty_controls(spec)))
            spec = splice(spec, spot, data.draw(_control(_subtree), label="generated"))
            graph = Graph.from_tree(build(spec))
            inc = Incremental(graph, inc.recorded)  # what a backend does after a splice
            ev = check(inc, graph, recorded, now)
            continue
        if not changes:
            continue
        for path, change in changes:
            if change is None:
                recorded.pop(path, None)
            else:
                recorded[path] = change
        delta = inc.update(*changes[0]) if len(changes) == 1 else inc.apply(changes)
        ev = check(inc, graph, recorded, now, ev, delta)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(spec=_trees, data=st.data())
def test_built_from_any_records_agrees(spec: Spec, data: st.DataObject) -> None:
    """The O(n) constructor (used after a splice) from arbitrary records."""
    graph = Graph.from_tree(build(spec))
    recorded: dict[str, NodeState] = {}
    for path in graph.exec_paths:
        state = data.draw(st.sampled_from(list(State)))
        attempts = data.draw(st.integers(0, 2))
        recorded[path] = NodeState(state, attempts, 0.0 if attempts else None)
    now = data.draw(st.sampled_from([0.0, 5.0, 20.0]))
    check(Incremental(graph, recorded), graph, recorded, now)


def _serial_of_parallels(parallels: int, width: int) -> co.Serial:
    with co.Serial() as root:
        for i in range(parallels):
            with co.Parallel(name=f"p{i}"):
                for j in range(width):
                    co.Exec("true", name=f"e{j}")
    return root


def _run_first(inc: Incremental, path: str) -> Delta:
    inc.update(path, engine.started(NodeState(), 0))
    return inc.update(path, engine.exited(engine.started(NodeState(), 0), 0, 0, 1))


def test_the_last_node_of_a_parallel_unblocks_the_next_one() -> None:
    graph = Graph.from_tree(_serial_of_parallels(3, 4))
    inc = Incremental(graph)
    assert inc.ready() == [f"/p0/e{j}" for j in range(4)]
    for j in range(3):
        assert _run_first(inc, f"/p0/e{j}").ready == []
    delta = _run_first(inc, "/p0/e3")
    assert delta.ready == [f"/p1/e{j}" for j in range(4)]
    assert delta.states["/p0"] is State.DONE
    assert delta.states["/p1"] is State.QUEUED
    assert "/" not in delta.states  # running before and after


def test_a_freed_slot_goes_to_the_next_node_in_tree_order() -> None:
    with co.Parallel(max_concurrent=2) as root:
        for j in range(6):
            co.Exec("true", name=f"e{j}")
    inc = Incremental(Graph.from_tree(root))
    assert inc.ready() == ["/e0", "/e1"]
    started = engine.started(NodeState(), 0)
    delta = inc.update("/e0", started)
    assert (delta.ready, delta.unready) == ([], ["/e0"])
    assert inc.update("/e1", started).unready == ["/e1"]
    assert inc.ready() == []
    delta = inc.update("/e1", engine.exited(started, 0, 0, 1))
    assert (delta.ready, delta.unready) == (["/e2"], [])
    assert delta.states == {"/e1": State.DONE, "/e2": State.QUEUED}


def test_a_rerun_ahead_takes_the_slot_of_a_ready_node() -> None:
    with co.Parallel(max_concurrent=1) as root:
        co.Exec("false", name="a")
        co.Exec("true", name="b")
    inc = Incremental(Graph.from_tree(root))
    failed = engine.exited(engine.started(NodeState(), 0), 1, 0, 1)
    assert inc.update("/a", failed).ready == ["/b"]
    delta = inc.reset("/")
    assert (delta.ready, delta.unready) == (["/a"], ["/b"])
    assert "/a" not in inc.recorded


def test_max_time_deadlines_follow_the_running_nodes() -> None:
    with co.Parallel() as root:
        co.Exec("sleep 9", name="a", max_time=10)
        co.Exec("sleep 9", name="b", max_time=30)
    inc = Incremental(Graph.from_tree(root))
    inc.update("/a", engine.started(NodeState(), 0))
    inc.update("/b", engine.started(NodeState(), 5))
    assert (inc.expired(9), inc.next_deadline(9)) == ([], 10)
    assert (inc.expired(10), inc.next_deadline(10)) == (["/a"], 35)
    inc.update("/a", engine.timed_out(inc.recorded["/a"], 10, 10))
    assert (inc.expired(40), inc.next_deadline(40)) == (["/b"], None)


def test_work_per_change_does_not_grow_with_the_tree() -> None:
    """Counted, not timed: the nodes re-derived and offered for one change are the same
    in a wide Parallel of 1,000 and of 20,000 under max_concurrent."""

    def work(width: int) -> list[int]:
        with co.Parallel(max_concurrent=5) as root:
            for j in range(width):
                co.Exec("true", name=f"e{j}")
        inc = Incremental(Graph.from_tree(root))
        calls = [0]
        walk = inc._walk

        def counting(i: int, lo: int, hi: int) -> Any:
            calls[0] += 1
            return walk(i, lo, hi)

        inc._walk = counting  # type: ignore[method-assign]
        out = []
        for j in range(20):  # each node started, then done: the next takes its slot
            path = inc.ready(limit=1)[0]
            assert path == f"/e{j}"
            calls[0] = 0
            inc.update(path, engine.started(NodeState(), 0))
            inc.update(path, engine.exited(engine.started(NodeState(), 0), 0, 0, 1))
            out.append(calls[0])
        return out

    assert work(1_000) == work(20_000)


def test_paths_that_carry_no_record_are_refused() -> None:
    with co.Serial() as root:
        co.Exec("true", name="a")
    inc = Incremental(Graph.from_tree(root))
    with pytest.raises(PipelineError, match="/nope: no such node"):
        inc.update("/nope", NodeState())
    with pytest.raises(PipelineError, match="/: a Serial or Parallel has no recorded state"):
        inc.update("/", NodeState())
