"""The runner's plain lines and live tree, as pure functions of the states."""

from __future__ import annotations

import io
import time
from collections.abc import Mapping

import pytest
from rich.console import RenderableType

import k8sco as co
from k8sco.engine import Graph, NodeState, State, evaluate
from k8sco.incremental import Answers, Incremental
from k8sco.local import progress
from k8sco.local.progress import LiveProgress, counts_line, duration, event_line, tree_lines

T0 = time.mktime((2026, 11, 26, 12, 0, 1, 0, 0, -1))


def test_event_lines() -> None:
    running = NodeState(State.RUNNING, attempts=1, started=T0)
    assert event_line("/p/a", running, T0) == "[12:00:01] running /p/a"
    done = running.with_(state=State.DONE, finished=T0 + 1.2, exit_code=0)
    assert event_line("/p/a", done, T0 + 1.2) == "[12:00:02] done /p/a (1.2s)"
    failed = running.with_(state=State.ERROR, finished=T0 + 0.1, reason="exit code 1")
    assert event_line("/p/a", failed, T0 + 1) == "[12:00:02] error /p/a (0.1s): exit code 1"
    retry = running.with_(state=State.PENDING, reason="exit code 1; retry 1 of 2")
    assert event_line("/p/a", retry, T0) == "[12:00:01] retry /p/a: exit code 1; retry 1 of 2"
    again = running.with_(attempts=2)
    assert event_line("/p/a", again, T0) == "[12:00:01] running /p/a (attempt 2)"


def test_durations() -> None:
    assert [duration(s) for s in (0.04, 12, 185, 3725)] == ["0.0s", "12.0s", "3m05s", "1h02m"]


def test_a_wide_parallel_folds_into_counts_but_shows_what_runs_and_fails() -> None:
    root = co.Parallel()
    for i in range(20):
        root[f"n{i}"] = co.Exec("true")
    graph = Graph.from_tree(root)
    recorded = {f"/n{i}": NodeState(State.DONE, 1, T0, T0 + 1, 0) for i in range(10)}
    recorded["/n10"] = NodeState(State.RUNNING, 1, T0)
    recorded["/n11"] = NodeState(State.ERROR, 1, T0, T0 + 2, 1, "exit code 1")
    states = evaluate(graph, recorded, T0 + 3).states
    rows = tree_lines(graph, states, recorded, T0 + 3)
    assert rows == [
        (0, "/", State.RUNNING, ""),
        (1, "n10", State.RUNNING, "3.0s"),
        (1, "n11", State.ERROR, "2.0s  exit code 1"),
        (1, "… 18 more", State.PENDING, "10 done, 8 queued"),
    ]


def test_the_counts_line_heads_the_live_tree() -> None:
    counts = {s.value: 0 for s in State}
    counts.update(done=9000, running=2, error=1, pending=997)
    assert counts_line(counts) == "10000 nodes: 997 pending, 2 running, 9000 done, 1 error"


def test_the_live_tree_summarises_and_draws_less_often_when_drawing_is_slow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = co.Parallel()
    for i in range(20):
        root[f"n{i}"] = co.Exec("true")
    graph = Graph.from_tree(root)
    recorded = {f"/n{i}": NodeState(State.DONE, 1, T0, T0 + 1, 0) for i in range(10)}
    inc = Incremental(graph, recorded)
    out = io.StringIO()
    live = LiveProgress(graph, file=out)
    drawn: list[float] = []
    render = live._render

    def spy(evaluation: Answers, rec: Mapping[str, NodeState], now: float) -> RenderableType:
        drawn.append(now)
        return render(evaluation, rec, now)

    monkeypatch.setattr(live, "_render", spy)
    clock = iter([0.0, 1.0, 1.0, 1.0])  # the first draw takes a second (a huge tree)
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    live.tick(inc.evaluation(T0, 0), recorded, T0)
    # Drawing may take a tenth of the time: not again for ten seconds, whatever the ticks.
    for dt in (0.25, 1.0, 5.0, 9.9):
        live.tick(inc.evaluation(T0 + dt, 0), recorded, T0 + dt)
    live.tick(inc.evaluation(T0 + 10, 0), recorded, T0 + 10)
    live.close()
    assert drawn == [T0, T0 + 10]
    assert "20 nodes: 10 queued, 10 done" in out.getvalue()
