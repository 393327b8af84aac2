"""Build and serialise a 10,000-node tree: a Serial of 100 Parallels of 100 native Exec nodes.

Target: build + serialise in at most 1 s; memory per node reported. The baseline, measured
in the same run, builds the same shape as plain nested dicts and dumps it with json.

    python bench/tree_build.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_funcs next to this file

from bench_funcs import work  # a module-level function, as a pipeline file would have

import k8sco as co

WIDTH = DEPTH = 100


def build_tree() -> co.Serial:
    with co.Serial() as root:
        for i in range(DEPTH):
            with co.Parallel(name=f"stage {i}"):
                for j in range(WIDTH):
                    co.Exec(work, j, label=f"item-{i}-{j}").set(name=f"n{j}")
    return root


def build_dicts() -> dict[str, object]:
    return {
        "type": "Serial",
        "children": [
            [
                f"stage {i}",
                {
                    "type": "Parallel",
                    "children": [
                        [
                            f"n{j}",
                            {
                                "type": "Exec",
                                "command": [
                                    "k8sco",
                                    "call",
                                    "bench_funcs.py:work",
                                    f"--n={j}",
                                    f"--label=item-{i}-{j}",
                                ],
                            },
                        ]
                        for j in range(WIDTH)
                    ],
                },
            ]
            for i in range(DEPTH)
        ],
    }


def timed(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    nodes = 1 + DEPTH + DEPTH * WIDTH

    k8sco_s = timed(lambda: build_tree().serialize(), args.repeat)
    base_s = timed(lambda: json.dumps(build_dicts()), args.repeat)

    tracemalloc.start()
    tree = build_tree()
    mem = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    size = len(tree.serialize().encode())

    print(f"nodes:                      {nodes}")
    print(f"k8sco build + serialize:    {k8sco_s:.3f} s   (target <= 1 s)")
    print(f"plain dicts + json.dumps:   {base_s:.3f} s")
    print(f"ratio k8sco / baseline:     {k8sco_s / base_s:.2f}x")
    print(f"memory per node:            {mem / nodes:.0f} bytes ({mem / 2**20:.1f} MiB in all)")
    print(f"serialized size:            {size / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
