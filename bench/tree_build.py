"""Build, serialise and render the Pipeline of a Serial of 100 Parallels of native Exec nodes,
at 10,000 and 100,000 nodes (as many as fit: a pipeline has at most 100,000 nodes, control
nodes included).

Printed per size, in CPU seconds of this process (the best of ``--repeat`` runs): building
the tree (also with the cyclic garbage collector paused, as the ``k8sco`` commands call a
pipeline function: k8sco.bulk), serialising it (``Node.serialize``), rendering the Pipeline object
(``render_pipeline``: the tree checked against the limits and compressed), and the same shape
built as plain nested dicts and dumped with ``json.dumps`` (the baseline, measured in the
same run); then bytes per node: memory of the built tree (tracemalloc), its JSON, its gzip;
and the size of the Pipeline object (its tree goes into ConfigMaps past 256 KiB compressed).
Target: build + serialise at most 1 s at 10,000 nodes, and a per-node cost that stays flat.

    python bench/tree_build.py [--sizes 10000,100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_funcs next to this file

from bench_funcs import work  # a module-level function, as a pipeline file would have

import k8sco as co
from k8sco.bulk import collector_paused
from k8sco.render.pipeline import _packed, render_pipeline

STAGES = 100


def width_for(nodes: int) -> int:
    return (nodes - 1 - STAGES) // STAGES


def build_tree(width: int) -> co.Serial:
    with co.Serial() as root:
        for i in range(STAGES):
            with co.Parallel(name=f"stage {i}"):
                for j in range(width):
                    co.Exec(work, j, label=f"item-{i}-{j}").set(name=f"n{j}")
    return root


def build_dicts(width: int) -> dict[str, object]:
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
                        for j in range(width)
                    ],
                },
            ]
            for i in range(STAGES)
        ],
    }


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """Best CPU seconds of ``repeat`` runs (wall time would measure the neighbours too)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def paused(fn: Callable[[], Any]) -> Any:
    """As `k8sco run`, `render` and `apply` call a pipeline function (k8sco.loading)."""
    with collector_paused():
        return fn()


def fresh_pipeline(root: co.Node) -> dict[str, Any]:
    _packed.cache_clear()  # `k8sco apply` packs a tree once more for its ConfigMaps, cached
    return render_pipeline(root, "bench", "default", image="img:1")


def size(obj: Any) -> int:
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode())


def measure(nodes: int, repeat: int) -> dict[str, float]:
    width = width_for(nodes)
    tracemalloc.start()
    root = build_tree(width)
    mem = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    count = sum(1 for _ in root.stream())
    text = root.serialize()
    pipeline = render_pipeline(root, "bench", "default", image="img:1")
    spec = pipeline["spec"]
    packed = spec.get("treeGzip") or ""
    ref = spec.get("treeRef") or {}
    gzip_bytes = ref.get("bytes") or len(packed) * 3 // 4
    return {
        "nodes": count,
        "build": timed(lambda: build_tree(width), repeat),
        "build, collector paused": timed(lambda: paused(lambda: build_tree(width)), repeat),
        "serialize": timed(root.serialize, repeat),
        "render Pipeline": timed(lambda: fresh_pipeline(root), repeat),
        "baseline": timed(lambda: json.dumps(build_dicts(width)), repeat),
        "memory": mem / count,
        "json": len(text.encode()) / count,
        "gzip": gzip_bytes / count,
        "pipeline": size(pipeline) / 1024,
        "tree ConfigMaps": ref.get("parts", 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = {n: measure(n, args.repeat) for n in sizes}
    print("Serial of 100 Parallels of native Exec nodes; CPU seconds, best of", args.repeat)
    print(f"  {'':<34}" + "".join(f"{int(rows[n]['nodes']):>14,}" for n in sizes))
    for key in ("build", "build, collector paused", "serialize", "render Pipeline", "baseline"):
        label = "plain dicts + json.dumps" if key == "baseline" else key
        print(f"  {label + ' (s)':<34}" + "".join(f"{rows[n][key]:>14.3f}" for n in sizes))
    both = {n: rows[n]["build"] + rows[n]["serialize"] for n in sizes}
    print(f"  {'build + serialize (s)':<34}" + "".join(f"{both[n]:>14.3f}" for n in sizes))
    print(
        f"  {'ratio build+serialize / baseline':<34}"
        + "".join(f"{both[n] / rows[n]['baseline']:>13.2f}x" for n in sizes)
    )
    print(
        f"  {'µs per node, build+serialize':<34}"
        + "".join(f"{both[n] / rows[n]['nodes'] * 1e6:>14.1f}" for n in sizes)
    )
    for key, label in (
        ("memory", "bytes per node: tree in memory"),
        ("json", "bytes per node: JSON"),
        ("gzip", "bytes per node: gzip"),
        ("pipeline", "Pipeline object, KiB in all"),
    ):
        print(f"  {label:<34}" + "".join(f"{rows[n][key]:>14.1f}" for n in sizes))
    print(
        f"  {'tree ConfigMaps':<34}" + "".join(f"{rows[n]['tree ConfigMaps']:>14}" for n in sizes)
    )
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        flat = (both[large] / rows[large]["nodes"]) / (both[small] / rows[small]["nodes"])
        render = (rows[large]["render Pipeline"] / rows[large]["nodes"]) / (
            rows[small]["render Pipeline"] / rows[small]["nodes"]
        )
        print(f"ratio per-node build+serialize {large:,} / {small:,}: {flat:.2f}x (flat = 1)")
        print(f"ratio per-node render Pipeline {large:,} / {small:,}: {render:.2f}x (flat = 1)")


if __name__ == "__main__":
    main()
