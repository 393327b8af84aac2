"""The CLI's text, as pure functions of states."""

from __future__ import annotations

import k8sco as co
from k8sco.cli import output
from k8sco.engine import Graph, NodeState, State, evaluate
from k8sco.errors import LoadError, UsageError

T0 = 1_800_000_000.0


def tree() -> tuple[Graph, dict[str, NodeState]]:
    root = co.Serial()
    root["build"] = co.Exec("make")
    root["tests"] = co.Parallel(suppress_errors=True)
    root["tests/a"] = co.Exec("pytest a")
    root["deploy"] = co.Exec("deploy")
    recorded = {
        "/build": NodeState(State.DONE, 1, T0, T0 + 2.5, 0),
        "/tests/a": NodeState(State.ERROR, 2, T0 + 2.5, T0 + 4, 1, "exit code 1"),
        "/deploy": NodeState(State.RUNNING, 1, T0 + 4),
    }
    return Graph.from_tree(root), recorded


def test_status_text() -> None:
    graph, recorded = tree()
    states = evaluate(graph, recorded, T0 + 10).states
    assert output.status_text(graph, states, recorded, T0 + 10).splitlines() == [
        "/         Serial    running    10.0s",
        "  build   Exec      done        2.5s",
        "  tests   Parallel  done        1.5s",
        "    a     Exec      error       1.5s  exit code 1; 2 attempts",
        "  deploy  Exec      running     6.0s",
    ]


def test_summary_names_failures_with_the_tail_of_their_logs() -> None:
    graph, recorded = tree()
    recorded["/deploy"] = NodeState(State.KILLED, 1, T0 + 4, T0 + 5, None, "interrupted")
    states = evaluate(graph, recorded, T0 + 5).states
    text = output.summary_text(
        "20261126-235000-1a2b", graph, states, recorded, 5.0, True, {"/tests/a": ["x", "y"]}
    )
    assert text.splitlines() == [
        "run 20261126-235000-1a2b: interrupted in 5.0s (1 done, 1 error, 1 killed)",
        "",
        "error (suppressed) /tests/a: exit code 1",
        "  last 2 lines of its log (k8sco logs /tests/a):",
        "  | x",
        "  | y",
        "",
        "killed /deploy: interrupted",
        "  (its log is empty)",
    ]


def test_error_text_adds_the_users_traceback_to_load_errors_only() -> None:
    trace = "Traceback (most recent call last):\n  ...\nRuntimeError: x\n"
    assert (
        output.error_text(LoadError("p.py: boom"), trace) == f"k8sco: p.py: boom\n{trace}".rstrip()
    )
    assert output.error_text(UsageError("bad"), trace) == "k8sco: bad"


def test_unknown_node_lists_a_few_paths() -> None:
    text = output.unknown_node_text("/x", "r1", [f"/n{i}" for i in range(10)], limit=3)
    assert text == "no node '/x' in run r1; nodes: /n0, /n1, /n2 (and 7 more)"
