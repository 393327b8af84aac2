"""The engine's semantics, driven by a tiny simulated backend (no processes, no clock)."""

from __future__ import annotations

import pytest

import k8sco as co
from k8sco import engine
from k8sco.engine import Graph, NodeState, State, evaluate


def simulate(
    root: co.Node,
    exit_codes: dict[str, list[int]] | None = None,
    durations: dict[str, float] | None = None,
) -> tuple[dict[str, State], dict[str, NodeState], list[str], int]:
    """Run the tree on a simulated backend.

    ``exit_codes[path]`` gives each attempt's exit code (default: 0); ``durations[path]`` how
    long each attempt runs (default 1s). Returns the final states, the recorded Exec states,
    the order in which nodes started, and the most Exec nodes running at once.
    """
    exit_codes = exit_codes or {}
    durations = durations or {}
    graph = Graph.from_tree(root)
    recorded: dict[str, NodeState] = {}
    ends: dict[str, float] = {}  # running node -> when it exits
    order: list[str] = []
    peak, now = 0, 0.0
    for _ in range(10_000):
        ev = evaluate(graph, recorded, now)
        for path in ev.expired:
            i = graph.index[path]
            recorded[path] = engine.timed_out(recorded[path], graph.max_time[i], now)
            ends.pop(path)
        for path in ev.ready:
            recorded[path] = engine.started(recorded.get(path, NodeState()), now)
            ends[path] = now + durations.get(path, 1.0)
            order.append(path)
        peak = max(peak, len(ends))
        if ev.expired or ev.ready:
            continue
        if not ends:
            return ev.states, recorded, order, peak
        # Advance to the next exit or deadline, whichever comes first.
        path = min(ends, key=ends.__getitem__)
        if ev.next_deadline is not None and ev.next_deadline < ends[path]:
            now = ev.next_deadline
            continue
        now = ends.pop(path)
        rec = recorded[path]
        codes = exit_codes.get(path, [0])
        code = codes[min(rec.attempts - 1, len(codes) - 1)]
        recorded[path] = engine.exited(rec, code, graph.retries[graph.index[path]], now)
    raise AssertionError("simulation did not finish")


def test_serial_runs_children_in_order() -> None:
    root = co.Serial()
    for name in "cab":
        root[name] = co.Exec(f"echo {name}")
    states, _, order, peak = simulate(root)
    assert order == ["/c", "/a", "/b"]
    assert peak == 1
    assert states["/"] is State.DONE


def test_failing_child_stops_serial_and_leaves_rest_pending() -> None:
    with co.Serial() as root:
        co.Exec("true", name="a")
        co.Exec("false", name="b")
        co.Exec("true", name="c")
    states, recorded, order, _ = simulate(root, {"/b": [1]})
    assert order == ["/a", "/b"]
    assert states["/b"] is State.ERROR
    assert states["/c"] is State.PENDING
    assert states["/"] is State.ERROR
    assert recorded["/b"].reason == "exit code 1"


def test_stop_on_error_false_runs_the_rest_and_still_fails() -> None:
    with co.Serial(stop_on_error=False) as root:
        co.Exec("false", name="a")
        co.Exec("true", name="b")
    states, _, order, _ = simulate(root, {"/a": [3]})
    assert order == ["/a", "/b"]
    assert states["/b"] is State.DONE
    assert states["/"] is State.ERROR


def test_parallel_runs_all_children_at_once_and_fails_after_all_finish() -> None:
    with co.Parallel() as root:
        for name in ("a", "b", "c"):
            co.Exec("x", name=name)
    states, _, order, peak = simulate(root, {"/a": [1]}, {"/c": 5.0})
    assert sorted(order) == ["/a", "/b", "/c"]
    assert peak == 3
    assert states["/c"] is State.DONE  # a failed sibling does not stop it
    assert states["/"] is State.ERROR


def test_failure_in_a_parallel_stops_the_enclosing_serial() -> None:
    with co.Serial() as root:
        with co.Parallel(name="p"):
            co.Exec("false", name="bad")
            co.Exec("true", name="good")
        co.Exec("true", name="after")
    states, _, order, _ = simulate(root, {"/p/bad": [1]})
    assert "/after" not in order
    assert states["/p/good"] is State.DONE
    assert states["/p"] is State.ERROR
    assert states["/after"] is State.PENDING


def test_max_concurrent_caps_running_exec_nodes() -> None:
    with co.Parallel(max_concurrent=2) as root:
        for i in range(7):
            with co.Serial(name=f"s{i}"):
                co.Exec("x", name="a")
                co.Exec("x", name="b")
    states, _, order, peak = simulate(root)
    assert peak == 2
    assert len(order) == 14
    assert states["/"] is State.DONE


def test_max_concurrent_on_an_inner_node_leaves_siblings_free() -> None:
    with co.Parallel() as root:
        with co.Parallel(name="capped", max_concurrent=1):
            for i in range(3):
                co.Exec("x", name=str(i))
        co.Exec("x", name="free")
    _, _, order, peak = simulate(root)
    assert peak == 2
    assert order[:2] == ["/capped/0", "/free"]


def test_suppress_errors_makes_the_parent_done() -> None:
    with co.Serial() as root:
        with co.Parallel(name="p", suppress_errors=True):
            co.Exec("false", name="bad")
        co.Exec("true", name="after")
    states, _, order, _ = simulate(root, {"/p/bad": [1]})
    assert states["/p/bad"] is State.ERROR
    assert states["/p"] is State.DONE
    assert "/after" in order
    assert states["/"] is State.DONE


def test_skip_marks_a_subtree_skipped_and_the_serial_goes_on() -> None:
    with co.Serial() as root:
        with co.Serial(name="s", skip=True):
            co.Exec("x", name="a")
        co.Exec("x", name="b")
    states, _, order, _ = simulate(root)
    assert order == ["/b"]
    assert states["/s"] is State.SKIPPED
    assert states["/s/a"] is State.SKIPPED
    assert states["/"] is State.DONE


def test_retries_rerun_a_failed_exec() -> None:
    root = co.Serial()
    root["flaky"] = co.Exec("x", retries=2)
    states, recorded, order, _ = simulate(root, {"/flaky": [1, 1, 0]})
    assert order == ["/flaky"] * 3
    assert recorded["/flaky"].attempts == 3
    assert states["/"] is State.DONE


def test_retries_run_out() -> None:
    root = co.Serial(retries=1)  # inherited by the Exec
    root["flaky"] = co.Exec("x")
    states, _, order, _ = simulate(root, {"/flaky": [1]})
    assert order == ["/flaky"] * 2
    assert states["/flaky"] is State.ERROR


def test_max_time_kills_and_fails_without_retry() -> None:
    root = co.Serial()
    root["slow"] = co.Exec("sleep 100", max_time="30s", retries=3)
    root["next"] = co.Exec("true")
    states, recorded, order, _ = simulate(root, durations={"/slow": 100})
    assert order == ["/slow"]
    assert states["/slow"] is State.ERROR
    assert recorded["/slow"].finished == 30
    assert "max time" in (recorded["/slow"].reason or "")


def test_killed_child_makes_parent_killed() -> None:
    root = co.Serial()
    root["a"] = co.Exec("x")
    graph = Graph.from_tree(root)
    rec = {"/a": engine.killed(engine.started(NodeState(), 0), 1)}
    assert evaluate(graph, rec, 2).states["/"] is State.KILLED


def test_states_while_running() -> None:
    with co.Serial() as root:
        co.Exec("x", name="a")
        with co.Parallel(name="p"):
            co.Exec("x", name="b")
    graph = Graph.from_tree(root)
    ev = evaluate(graph, {}, 0)
    assert ev.states == {
        "/": State.QUEUED,
        "/a": State.QUEUED,
        "/p": State.PENDING,
        "/p/b": State.PENDING,
    }
    ev = evaluate(graph, {"/a": engine.started(NodeState(), 0)}, 1)
    assert ev.ready == []
    assert ev.states["/"] is State.RUNNING
    ev = evaluate(graph, {"/a": NodeState(State.DONE, 1, 0, 1, 0)}, 2)
    assert ev.ready == ["/p/b"]
    assert ev.states["/p"] is State.QUEUED
    assert ev.states["/"] is State.RUNNING


def test_empty_containers_are_done() -> None:
    root = co.Serial()
    root["p"] = co.Parallel()
    states, _, order, _ = simulate(root)
    assert order == []
    assert states["/p"] is State.DONE


def test_reset_reruns_failed_nodes_only() -> None:
    with co.Parallel() as root:
        co.Exec("x", name="ok")
        co.Exec("x", name="bad")
    graph = Graph.from_tree(root)
    done = NodeState(State.DONE, 1, 0, 1, 0)
    failed = NodeState(State.ERROR, 1, 0, 1, 1, "exit code 1")
    recorded = engine.reset(graph, {"/ok": done, "/bad": failed})
    assert recorded == {"/ok": done}
    assert evaluate(graph, recorded, 5).ready == ["/bad"]


def test_node_state_round_trips_through_a_dict() -> None:
    rec = NodeState(State.ERROR, 2, 1.5, 3.0, 1, "exit code 1")
    assert NodeState.from_dict(rec.to_dict()) == rec


def test_graph_keeps_the_hierarchy_of_a_serial_of_parallels() -> None:
    """100 Parallels of 100 in a Serial: 10,101 nodes, 10,100 parent links, no n² edges."""
    with co.Serial() as root:
        for i in range(100):
            with co.Parallel(name=f"p{i}"):
                for j in range(100):
                    co.Exec("true", name=f"e{j}")
    graph = Graph.from_tree(root)
    assert len(graph.paths) == 10_101
    assert sum(len(c) for c in graph.children) == 10_100
    ev = evaluate(graph, {}, 0)
    assert len(ev.ready) == 100
    assert all(p.startswith("/p0/") for p in ev.ready)


@pytest.mark.parametrize("code", [0, 1])
def test_exited_records_the_exit_code(code: int) -> None:
    rec = engine.exited(engine.started(NodeState(), 0), code, 0, 2)
    assert rec.exit_code == code
    assert rec.state is (State.DONE if code == 0 else State.ERROR)


def test_a_shared_container_runs_its_execs_one_at_a_time_in_tree_order() -> None:
    # container_reuse_context=NEW (k8sco/sequence.py): even below a Parallel, one at a time;
    # a failure stops the rest as the group's Serials would, and a Parallel still goes on.
    with co.Serial(same_container=co.SameContainer.NEW) as root:
        co.Exec("a", name="a")
        with co.Parallel(name="p"):
            co.Exec("b", name="b")
            co.Exec("c", name="c")
            co.Exec("d", name="d")
        co.Exec("e", name="e")
    states, _, order, peak = simulate(root, exit_codes={"/p/c": [1]})
    assert order == ["/a", "/p/b", "/p/c", "/p/d"]
    assert peak == 1
    assert states["/p"] is State.ERROR and states["/e"] is State.PENDING
    with co.Parallel() as free:  # the same tree without the context: all at once
        co.Exec("b", name="b")
        co.Exec("c", name="c")
    assert simulate(free)[3] == 2
