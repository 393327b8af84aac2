"""co.Lazy on the local runner: a Lazy node that generates a wide tree (10,000 nodes by
default: a Parallel of trivial shell nodes, ``max_concurrent`` 8), run in-process by the local
runner, as ``k8sco run`` does.

Prints: the whole run's wall time; the splice (from the Generate node's exit being reaped to
the first generated node started: reading its output, splicing, the new graph, rewriting
tree.json and run.json); and the per-node overhead of the generated part.

The Kubernetes half of the issue's benchmark (time from a Generate node's end to the first
generated Job's creation on the fake cluster) is not measured: the controller refuses
Lazy pipelines for now (k8sco.lazy.refuse_on_cluster), and this says so.

    python bench/lazy.py [--nodes 10000] [--concurrent 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import k8sco as co
from k8sco import tree
from k8sco.engine import Evaluation, NodeState, State
from k8sco.local import runner

HERE = Path(__file__).resolve().parent


def lazy_fan(n: int, concurrent: int) -> co.Parallel:
    """The generator: ``n`` trivial shell nodes in a Parallel."""
    with co.Parallel(max_concurrent=concurrent) as p:
        for i in range(n):
            co.Exec("true", name=f"n{i}")
    return p


class Timings:
    """A Progress that keeps when each node started and ended (perf_counter)."""

    refresh_interval: float | None = None

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.ended: dict[str, float] = {}

    def event(self, path: str, rec: NodeState, now: float) -> None:
        at = time.perf_counter()
        if rec.state is State.RUNNING:
            self.started.setdefault(path, at)
        elif rec.state.finished:
            self.ended[path] = at

    def tick(self, evaluation: Evaluation, recorded: Mapping[str, NodeState], now: float) -> None:
        pass

    def close(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also run the same tree without co.Lazy (the tree given to the runner whole)",
    )
    args = parser.parse_args()
    baseline = None
    if args.baseline:
        with tempfile.TemporaryDirectory() as tmp:
            whole = co.Serial(env={"STAGE": "bench"})
            whole["l"] = lazy_fan(args.nodes, args.concurrent)
            spec = runner.RunSpec(root=whole, code_root=str(HERE), meta={"file": "bench"})
            t0 = time.perf_counter()
            done = runner.run(spec, Timings(), runs_dir=Path(tmp) / "runs")
            baseline = time.perf_counter() - t0
            assert done.exit_code == 0
    with tempfile.TemporaryDirectory() as tmp:
        token = tree.set_code_root(str(HERE))
        try:
            root = co.Serial(env={"STAGE": "bench"})
            root["l"] = co.Lazy(lazy_fan, args.nodes, args.concurrent)
        finally:
            tree.reset_code_root(token)
        spec = runner.RunSpec(root=root, code_root=str(HERE), meta={"file": "bench/lazy.py"})
        timings = Timings()
        t0 = time.perf_counter()
        result = runner.run(spec, timings, runs_dir=Path(tmp) / "runs")
        total = time.perf_counter() - t0
    generated = [p for p in timings.started if p.startswith("/l/Execute/")]
    assert result.exit_code == 0, f"the run failed: {result.states['/']}"
    assert len(generated) == args.nodes, (len(generated), args.nodes)
    splice = min(timings.started[p] for p in generated) - timings.ended["/l/Generate"]
    gen_part = max(timings.ended[p] for p in generated) - min(timings.started[p] for p in generated)
    print(
        f"co.Lazy, local runner, {args.nodes:,} generated nodes (max_concurrent {args.concurrent})"
    )
    print(f"  whole run:                                  {total:8.2f} s")
    print(f"  Generate end -> first generated node start: {splice * 1000:8.1f} ms")
    print(
        f"  generated part:                             {gen_part:8.2f} s "
        f"({gen_part / args.nodes * 1000:.2f} ms per node)"
    )
    if baseline is not None:
        print(f"  the same tree without co.Lazy, whole run:   {baseline:8.2f} s")
    print("co.Lazy, fake cluster: not measured (the controller refuses Lazy pipelines for now)")


if __name__ == "__main__":
    main()
