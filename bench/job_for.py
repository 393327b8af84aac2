"""What the controller pays to render one node's Job, against the size of the tree.

The controller renders each Job from the decoded tree when it creates it
(``k8sco.render.pipeline.job_for``); its cost must not grow with the tree. For a Serial of
Parallels of 100 at about 1,000, 10,000 and 100,000 nodes (within the 100,000-node cap),
this times ``job_for`` for 1,000 nodes spread over the tree and prints the CPU time per
Job and its ratio to the smallest tree's (target: flat, <= 1.2).

    python bench/job_for.py [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from controller import TREE, stages  # the tree bench/controller.py runs

from k8sco.render.pipeline import decode_tree, job_for, render_pipeline

_tree: dict[str, Any] = {}
exec(TREE, _tree)  # defines tree(stages), as bench/controller.py's subprocess does
tree = _tree["tree"]


def per_job_ms(nodes: int, samples: int = 1000) -> tuple[int, float]:
    count = stages(nodes)
    # As the controller has it: the Pipeline read back from the API, its tree decoded once.
    pipeline = json.loads(json.dumps(render_pipeline(tree(count), "bench", "default", "img:1")))
    pipeline["metadata"]["uid"] = "0f6d1c9e-1111-2222-3333-444455556666"
    root = decode_tree(pipeline["spec"])
    step = max(1, count * 100 // samples)
    paths = [f"/stage{k // 100}/n{k % 100}" for k in range(0, count * 100, step)][:samples]
    start = time.process_time()
    for path in paths:
        job_for(pipeline, root, path, ("API_TOKEN", "PASSWORD"))
    return count * 100, (time.process_time() - start) * 1000 / len(paths)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    results = [per_job_ms(int(n)) for n in args.sizes.split(",")]
    base = results[0][1]
    print(f"{'Exec nodes':>12}{'ms per Job':>12}{'ratio':>8}")
    for nodes, ms in results:
        print(f"{nodes:>12}{ms:>12.4f}{ms / base:>8.2f}")
    print("target: the ratio flat (<= 1.2): rendering a Job costs the same in any tree")


if __name__ == "__main__":
    main()
