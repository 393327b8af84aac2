"""The engine's cost per event: incremental (k8sco.incremental) against from scratch
(k8sco.engine.evaluate), at 1,000 / 10,000 / 100,000 nodes, measured in the same run.

Two shapes, of trivial Exec nodes:

    serial-of-parallels   a Serial of Parallels of width 100
    wide-parallel         one Parallel of every node, max_concurrent 50

A simulated backend runs the whole pipeline on the incremental engine: it starts every
node the engine offers (one event each) and ends the oldest running one with success (one
event), learning what to start next from each change's Delta, as a backend would. The
incremental figure is the whole run's time divided by its events (everything but building
the engine). The from-scratch figure is one ``evaluate`` of the same graph and records,
what a backend calls after each event today, timed at a few moments spread over the run
(its median): running every event from scratch would take hours at 100,000 nodes.

Also printed: building the incremental engine from a graph and records (O(n): what a
backend pays once, and again after a co.Lazy splice), against one ``evaluate``.

    python bench/engine.py [--sizes 1000,10000,100000] [--samples 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import deque

import k8sco as co
from k8sco import engine
from k8sco.engine import Graph, NodeState, State
from k8sco.incremental import Incremental


def serial_of_parallels(nodes: int) -> co.Serial:
    root = co.Serial()
    for i in range(max(nodes // 100, 1)):
        par = co.Parallel()
        for j in range(100):
            par[f"e{j}"] = co.Exec("true")
        root[f"p{i}"] = par
    return root


def wide_parallel(nodes: int) -> co.Parallel:
    root = co.Parallel(max_concurrent=50)
    for j in range(nodes):
        root[f"e{j}"] = co.Exec("true")
    return root


SHAPES = {"serial-of-parallels": serial_of_parallels, "wide-parallel": wide_parallel}


def run(graph: Graph, samples: int) -> tuple[float, int, list[dict[str, NodeState]]]:
    """Run the pipeline to the end on the incremental engine: the seconds its events took,
    how many there were, and copies of the records at ``samples`` moments of the run."""
    inc = Incremental(graph)
    recorded: dict[str, NodeState] = {}
    running: deque[str] = deque()
    total_events = 2 * len(graph.exec_paths)
    every = max(total_events // samples, 1)
    kept: list[dict[str, NodeState]] = []
    events, now, spent = 0, 0.0, 0.0
    start = time.process_time()
    ready = deque(inc.ready())
    while ready or running:
        while ready:
            path = ready.popleft()
            rec = engine.started(recorded.get(path, engine.PENDING), now)
            recorded[path] = rec
            delta = inc.update(path, rec)
            ready.extend(delta.ready)
            running.append(path)
            events += 1
            if events % every == 0:
                spent += time.process_time() - start
                kept.append(dict(recorded))
                start = time.process_time()
        path = running.popleft()
        now += 0.001
        rec = engine.exited(recorded[path], 0, 0, now)
        recorded[path] = rec
        delta = inc.update(path, rec)
        ready.extend(delta.ready)
        events += 1
        if events % every == 0:
            spent += time.process_time() - start
            kept.append(dict(recorded))
            start = time.process_time()
    spent += time.process_time() - start
    assert inc.finished and inc.root is State.DONE, inc.root
    assert events == total_events
    return spent, events, kept


def from_scratch(graph: Graph, moments: list[dict[str, NodeState]]) -> float:
    """The median seconds of one evaluate over the records at those moments."""
    times = []
    for recorded in moments:
        start = time.process_time()
        engine.evaluate(graph, recorded, 0.0)
        times.append(time.process_time() - start)
    return statistics.median(times)


def build(graph: Graph, recorded: dict[str, NodeState]) -> float:
    start = time.process_time()
    Incremental(graph, recorded)
    return time.process_time() - start


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:,.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--samples", type=int, default=7, help="moments evaluate is timed at")
    opts = parser.parse_args()
    sizes = [int(s) for s in opts.sizes.split(",")]

    print(
        f"{'shape':<21} {'nodes':>8} {'events':>8} {'incremental':>13} {'from scratch':>13} "
        f"{'ratio':>8} {'build':>10} {'build/eval':>10}"
    )
    for shape, make in SHAPES.items():
        per_event = first = 0.0
        for size in sizes:
            graph = Graph.from_tree(make(size))
            spent, events, moments = run(graph, opts.samples)
            per_event = spent / events
            scratch = from_scratch(graph, moments)
            built = build(graph, moments[len(moments) // 2])
            first = first or per_event
            print(
                f"{shape:<21} {len(graph.exec_paths):>8,} {events:>8,} {_us(per_event):>13} "
                f"{_us(scratch):>13} {scratch / per_event:>7,.0f}× {_us(built):>10} "
                f"{built / scratch:>9.1f}×",
                flush=True,
            )
        print(
            f"{shape}: incremental per event at {sizes[-1]:,} / at {sizes[0]:,} nodes: "
            f"{per_event / first:.2f}×"
        )


if __name__ == "__main__":
    main()
