"""Many pipelines at once, the usual CI load, on the fake cluster (issue 12, item 4).

200 pipelines of 20 nodes (a Serial of 4 Parallels of 5, instant containers) submitted
together, against the same pipeline run alone (10 times, one after another), with
``K8SCO_WORKERS=1`` and with the default (4). Printed for each:

- scheduling latency: from the last Job completion of a pipeline (as a watcher sees it) to
  the creation of a Job of that pipeline it unblocked, pooled over every pipeline, p50/p99;
- time to the first Job: from the Pipeline's create to its first Job's, p50/p99;
- per-pipeline wall time, submit to last Job completion, p50/p99;
- the ratios many/alone (the issue's goal: scheduling latency within 2x).

    python bench/many_pipelines.py [--pipelines 200] [--alone 10] [--workers 1,4]

The controller is a subprocess (``k8sco controller``), as in bench/controller.py; the fake
cluster, the submitter and the watcher share this process. Two shared cores: compare
within one run.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from controller import InstantRunner, cpu_seconds, percentile, start_controller  # noqa: E402
from fakecluster import FakeCluster  # noqa: E402

import k8sco as co  # noqa: E402
from k8sco.kube.client import Cluster  # noqa: E402
from k8sco.render.constants import LABEL_PIPELINE  # noqa: E402
from k8sco.render.pipeline import render_pipeline  # noqa: E402

PIPELINES = "/apis/k8sco.io/v1alpha1"
STAGES, WIDTH = 4, 5  # 20 nodes


def tree() -> co.Serial:
    with co.Serial() as root:
        for i in range(STAGES):
            with co.Parallel(name=f"stage{i}"):
                for j in range(WIDTH):
                    co.Exec("true", name=f"n{j}")
    return root


class Seen:
    """When each Job was created and completed, by pipeline, as a watcher sees it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.created: dict[str, dict[str, float]] = {}
        self.completed: dict[str, dict[str, float]] = {}

    def watch(self, cluster: Cluster, stop: threading.Event) -> None:
        path = cluster.ns_path("/apis/batch/v1", "jobs", "default")
        rv = cluster.request("GET", path)["metadata"]["resourceVersion"]
        while not stop.is_set():
            for event in cluster.watch(path, resource_version=rv, selector={}, timeout=30):
                obj = event["object"]
                rv = obj["metadata"]["resourceVersion"]
                now = time.monotonic()
                name = obj["metadata"].get("name", "")
                pipeline = (obj["metadata"].get("labels") or {}).get(LABEL_PIPELINE, "")
                conds = (obj.get("status") or {}).get("conditions") or []
                with self.lock:
                    if event["type"] == "ADDED":
                        self.created.setdefault(pipeline, {}).setdefault(name, now)
                    if any(c["type"] == "Complete" and c["status"] == "True" for c in conds):
                        self.completed.setdefault(pipeline, {}).setdefault(name, now)
                if stop.is_set():
                    return

    def done(self, names: list[str]) -> bool:
        with self.lock:
            return all(len(self.completed.get(n, {})) == STAGES * WIDTH for n in names)

    def figures(self, submitted: dict[str, float]) -> dict[str, list[float]]:
        latencies: list[float] = []
        first: list[float] = []
        wall: list[float] = []
        with self.lock:
            for name, at in submitted.items():
                created = sorted(self.created.get(name, {}).values())
                completions = sorted(self.completed.get(name, {}).values())
                if created:
                    first.append(created[0] - at)
                if completions:
                    wall.append(completions[-1] - at)
                for when in created[WIDTH:]:  # the first stage waits for nothing
                    before = [t for t in completions if t <= when]
                    if before:
                        latencies.append(when - before[-1])
        return {"latency": latencies, "first": first, "wall": wall}


def submit(client: Cluster, names: list[str], submitted: dict[str, float]) -> None:
    def one(name: str) -> None:
        body = render_pipeline(tree(), name, "default", image="img:1")
        submitted[name] = time.monotonic()
        client.request("POST", client.ns_path(PIPELINES, "pipelines"), body=body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, names))


def wait_done(seen: Seen, names: list[str], limit: float) -> None:
    deadline = time.monotonic() + limit
    while not seen.done(names):
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(names)} pipelines not finished within {limit:.0f}s")
        time.sleep(0.2)


def run(workers: int, pipelines: int, alone: int) -> dict[str, dict[str, Any]]:
    with (
        # A node as big as a CI cluster: 1,000 Jobs at once are never Unschedulable.
        FakeCluster(
            runner=InstantRunner(),
            bookmark_interval=5.0,
            node_capacity={"cpu": "100000", "memory": "1000Ti", "pods": "100000"},
        ) as fake,
        tempfile.TemporaryDirectory() as tmp,
    ):
        kubeconfig = Path(tmp) / "kubeconfig"
        fake.write_kubeconfig(kubeconfig)
        from k8sco.render.crd import crd

        fake.create(crd())
        client = Cluster(str(kubeconfig))
        seen = Seen()
        stop = threading.Event()
        watcher = threading.Thread(target=seen.watch, args=(client, stop), daemon=True)
        watcher.start()
        log = open(Path(tmp) / "controller.log", "wb")  # noqa: SIM115
        controller = start_controller(kubeconfig, log, {"K8SCO_WORKERS": str(workers)})
        try:
            time.sleep(1.0)
            out: dict[str, dict[str, Any]] = {}
            # One at a time: each pipeline alone on the controller.
            single: dict[str, float] = {}
            cpu0, own0 = cpu_seconds(controller.pid), own_cpu()
            for i in range(alone):
                name = f"alone{i}"
                submit(client, [name], single)
                wait_done(seen, [name], 120)
            out["alone"] = {
                **seen.figures(single),
                "count": alone,
                "cpu_s": cpu_seconds(controller.pid) - cpu0,
                "fake_cpu_s": own_cpu() - own0,
            }
            # All together.
            together: dict[str, float] = {}
            names = [f"ci{i}" for i in range(pipelines)]
            cpu0, own0 = cpu_seconds(controller.pid), own_cpu()
            start = time.monotonic()
            submit(client, names, together)
            wait_done(seen, names, 1800)
            out["many"] = {
                **seen.figures(together),
                "count": pipelines,
                "cpu_s": cpu_seconds(controller.pid) - cpu0,
                "fake_cpu_s": own_cpu() - own0,
                "wall_all_s": time.monotonic() - start,
            }
            return out
        finally:
            controller.terminate()
            controller.wait(10)
            log.close()
            stop.set()
            watcher.join(35)
            client.close()


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def summary(figures: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for what in ("latency", "first", "wall"):
        values = figures[what]
        out[f"{what}_p50_ms"] = percentile(values, 0.50) * 1000
        out[f"{what}_p99_ms"] = percentile(values, 0.99) * 1000
    out["samples"] = len(figures["latency"])
    out["controller_cpu_s"] = figures["cpu_s"]
    out["fake_cluster_cpu_s"] = figures["fake_cpu_s"]  # with the submitter and the watcher
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipelines", type=int, default=200)
    parser.add_argument("--alone", type=int, default=10)
    parser.add_argument("--workers", default="1,4")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    for workers in (int(w) for w in args.workers.split(",")):
        raw = run(workers, args.pipelines, args.alone)
        alone, many = summary(raw["alone"]), summary(raw["many"])
        results[f"workers={workers}"] = {
            "alone": alone,
            "many": many,
            "many_wall_all_s": raw["many"]["wall_all_s"],
        }
        print(
            f"\nK8SCO_WORKERS={workers}: {args.pipelines} pipelines of {STAGES * WIDTH} "
            f"nodes together (all done in {raw['many']['wall_all_s']:.1f}s) vs one alone "
            f"({args.alone} runs)"
        )
        print(f"{'':<22}{'alone':>12}{'together':>12}{'ratio':>10}")
        for key in alone:
            ratio = many[key] / alone[key] if alone[key] else float("nan")
            print(f"{key:<22}{alone[key]:>12.1f}{many[key]:>12.1f}{ratio:>10.2f}")
    print("\ngoal: scheduling latency (latency_p50/p99) together within 2x of alone")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
