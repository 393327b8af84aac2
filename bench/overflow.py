"""The size rule end to end at 10,000 nodes (issue 8, item 5), on the fake cluster.

The worst case of the issue: a Parallel of 10,000 nodes whose shell commands are 2 KB of
hash-like text, each failing after 3 retries (4 attempts, so 40,000 pods). The fake kubelet
"runs" each container instantly with exit code 1 (no process), so what is measured is
``k8sco apply``'s code, the controller and the API server. Printed:

- the largest version of the Pipeline the server stored (every version, seen on a watch),
  against the 1 MiB rule;
- the tree ConfigMaps and status ConfigMaps: how many, the largest;
- the status level reached, the status patches and ConfigMap writes of the controller;
- bytes per node in the Pipeline and in its ConfigMaps at the end.

    python bench/overflow.py [--nodes 10000] [--retries 3] [--max-concurrent 1000]

Measured (2 shared cores, 2026-11-30), 1,000 nodes: 757 s; the Pipeline at most 76,879 B
(76 B of status per node, level 0), 2 tree ConfigMaps of at most 1,032,877 B, 1,165 status
patches. 10,000 nodes did not finish within the hour: the controller's time goes to
reading pods for waiting reasons and to the reconciliation itself (cProfile at 1,000
nodes: 43% and 26%); the status ConfigMaps' code (view + store) takes 2.6 ms per
reconciliation at 1,000 nodes and 39 ms at 10,000. tests/render/test_overflow.py checks the
size rule at 10,000 nodes without a cluster (the Pipeline at most 791,553 B, 16 tree
ConfigMaps).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fakecluster import FakeCluster  # noqa: E402
from fakecluster.runners import ContainerLaunch, Exited  # noqa: E402

import k8sco as co  # noqa: E402
from k8sco.cli.cluster import apply_tree  # noqa: E402
from k8sco.kube.client import PIPELINES, Cluster  # noqa: E402
from k8sco.kube.controller import Controller  # noqa: E402
from k8sco.render import overflow  # noqa: E402
from k8sco.render.constants import PLURAL  # noqa: E402
from k8sco.render.crd import crd  # noqa: E402


class FailingRunner:
    """Every container exits 1 the moment it starts."""

    def start(self, launch: ContainerLaunch) -> Exited:
        return Exited(1)


def size(obj: Any) -> int:
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode())


def tree(nodes: int, retries: int, max_concurrent: int) -> co.Parallel:
    root = co.Parallel(max_concurrent=max_concurrent)
    for i in range(nodes):
        text = "".join(hashlib.sha256(f"{i}/{j}".encode()).hexdigest() for j in range(32))
        root[f"node {i}"] = co.Exec(f": {text}; exit 1", retries=retries)
    return root


def run(nodes: int, retries: int, max_concurrent: int) -> dict[str, Any]:
    with FakeCluster(runner=FailingRunner(), bookmark_interval=5.0) as fake:
        fake.create(crd())
        kubeconfig = fake.write_kubeconfig(Path(fake.log_dir) / "kubeconfig")
        cluster = Cluster(str(kubeconfig))
        watcher = Cluster(str(kubeconfig))
        sizes: list[int] = []
        stop = threading.Event()
        t0 = time.monotonic()

        def watch() -> None:
            path = watcher.ns_path(PIPELINES, PLURAL, "default")
            while not stop.is_set():
                for event in watcher.watch(path, resource_version="0", selector={}, timeout=2):
                    sizes.append(size(event["object"]))

        watching = threading.Thread(target=watch, daemon=True)
        watching.start()

        def report() -> None:  # progress on stderr, for long runs
            while not stop.wait(30):
                obj = fake.get("pipelines.k8sco.io", "worst", "default") or {}
                done = (obj.get("status") or {}).get("progress")
                print(
                    f"{time.monotonic() - t0:.0f}s: {done}, max {max(sizes or [0])} B",
                    file=sys.stderr,
                    flush=True,
                )

        threading.Thread(target=report, daemon=True).start()
        root = tree(nodes, retries, max_concurrent)
        apply_tree(cluster, root, "worst", "worst", "busybox:1.36", False, "cluster")
        applied = time.monotonic() - t0
        controller = Controller(cluster, "default", only="worst")
        controller.run(until_finished=True)
        elapsed = time.monotonic() - t0
        time.sleep(2.5)
        stop.set()
        obj = fake.get("pipelines.k8sco.io", "worst", "default") or {}
        maps = fake.objects("configmaps", "default")
        trees = [m for m in maps if m["metadata"]["labels"].get(overflow.LABEL_OVERFLOW) == "tree"]
        shards = [
            m for m in maps if m["metadata"]["labels"].get(overflow.LABEL_OVERFLOW) == "status"
        ]
        status = obj.get("status") or {}
        return {
            "nodes": nodes,
            "phase": status.get("phase"),
            "counts": status.get("counts"),
            "apply_seconds": round(applied, 1),
            "run_seconds": round(elapsed, 1),
            "pipeline_versions": len(sizes),
            "pipeline_max_bytes": max(sizes or [0]),
            "pipeline_final_bytes": size(obj),
            "level": overflow.level_of(status),
            "tree_configmaps": len(trees),
            "tree_configmap_max_bytes": max((size(m) for m in trees), default=0),
            "status_configmaps": len(shards),
            "status_configmap_max_bytes": max((size(m) for m in shards), default=0),
            "status_bytes_per_node_in_pipeline": round(size(status) / nodes, 1),
            "status_bytes_per_node_in_configmaps": round(
                sum(len(m["data"][overflow.NODES_KEY]) for m in shards) / nodes, 1
            ),
            "status_patches": controller.stats.status_patches,
            "configmap_writes": controller.overflow.writes,
            "rule_1_mib_held": max(sizes or [0]) <= overflow.OBJECT_MAX
            and all(size(m) <= overflow.OBJECT_MAX for m in trees + shards),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("--max-concurrent", type=int, default=1000)
    args = parser.parse_args()
    print(json.dumps(run(args.nodes, args.retries, args.max_concurrent), indent=1))


if __name__ == "__main__":
    main()
