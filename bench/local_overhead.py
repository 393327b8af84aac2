"""The local runner's overhead: 200 trivial native-function nodes in a Parallel with
max_concurrent=2, run by ``k8sco run`` (output not a terminal), against ``xargs -P2`` running
the same 200 dispatcher commands (taken from the nodes' ``command``).

Target: ``k8sco run`` takes at most 1.15x the time of xargs (median of the repetitions;
the whole process is timed, its start-up, loading the file and writing state included).

    python bench/local_overhead.py [--nodes 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_funcs next to this file

from bench_funcs import work  # a module-level function, as a pipeline file would have

import k8sco as co
from k8sco import tree

HERE = Path(__file__).resolve().parent
NODES = int(os.environ.get("K8SCO_BENCH_NODES", "200"))


def pipeline() -> co.Parallel:
    """The benchmark's tree (``k8sco run bench/local_overhead.py:pipeline``)."""
    with co.Parallel(max_concurrent=2) as root:
        for i in range(NODES):
            co.Exec(work, i, label=f"item-{i}").set(name=f"n{i}")
    return root


def commands(root: co.Node, script: str) -> list[list[str]]:
    """The nodes' commands as the runner starts them (``k8sco`` is the console script)."""
    out = []
    for node in root.stream():
        if isinstance(node, co.Exec):
            assert isinstance(node.command, list) and node.command[0] == "k8sco"
            out.append([script, *node.command[1:]])
    return out


def children_cpu() -> float:
    """CPU seconds used so far by waited-for child processes and their descendants."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_k8sco_run(script: str, workdir: str) -> tuple[float, float]:
    cpu = children_cpu()
    start = time.perf_counter()
    done = subprocess.run(
        [script, "run", str(HERE / "local_overhead.py") + ":pipeline"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "K8SCO_BENCH_NODES": str(NODES)},
        check=False,
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"k8sco run failed ({done.returncode}): {done.stderr.decode()}")
    return took, children_cpu() - cpu


def time_xargs(script: str, lines_file: str) -> tuple[float, float]:
    """xargs runs ``script`` with each line's arguments (every command starts with it)."""
    cpu = children_cpu()
    start = time.perf_counter()
    with open(lines_file, "rb") as lines:
        subprocess.run(
            ["xargs", "-P2", "-L1", script],
            stdin=lines,
            cwd=HERE,
            stdout=subprocess.DEVNULL,
            check=True,
        )
    return time.perf_counter() - start, children_cpu() - cpu


def main() -> None:
    global NODES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=NODES)
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args()
    NODES = opts.nodes
    script = str(Path(sys.executable).with_name("k8sco"))
    if not os.access(script, os.X_OK):
        raise SystemExit(f"{script}: not installed (pip install -e .)")
    token = tree.set_code_root(str(HERE))
    try:
        root = pipeline()
    finally:
        tree.reset_code_root(token)
    with tempfile.TemporaryDirectory() as tmp:
        lines_file = os.path.join(tmp, "commands.txt")
        with open(lines_file, "w") as f:
            f.writelines(shlex.join(argv[1:]) + "\n" for argv in commands(root, script))
        xargs, runner = [], []
        for _ in range(opts.repeat):  # interleaved, so drift in the machine hits both alike
            xargs.append(time_xargs(script, lines_file))
            runner.append(time_k8sco_run(script, tmp))
    print(f"{NODES} native nodes, max_concurrent=2, {opts.repeat} repetitions, load {_load()}")
    print("            wall median   wall min   CPU median (all processes)   wall times")
    for name, runs in (("xargs -P2", xargs), ("k8sco run", runner)):
        walls = [w for w, _ in runs]
        print(
            f"{name:<10}  {statistics.median(walls):9.3f} s  {min(walls):7.3f} s  "
            f"{statistics.median(c for _, c in runs):9.3f} s                  "
            + ", ".join(f"{w:.2f}" for w in walls)
        )
    ratio = statistics.median(w for w, _ in runner) / statistics.median(w for w, _ in xargs)
    best = min(w for w, _ in runner) / min(w for w, _ in xargs)
    print(f"ratio (k8sco run / xargs): median {ratio:.3f}, min {best:.3f}   (target <= 1.15)")


def _load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


if __name__ == "__main__":
    main()
