"""The fake cluster alone (no k8sco controller): its CPU per Job, at 1,000 and 10,000 Jobs.

The fake runs in a child process with an instant container runner (every container exits 0
at once). This process plays a controller's part over HTTP: it creates the Pipeline (so
the Jobs have a live owner, as the controller's do), watches the Jobs, keeps ``--window``
Jobs (k8sco's ``max_concurrent``, 50) in flight, creating the next one each time a Job's
Complete condition arrives on the watch, until N Jobs are Complete. The Jobs are the ones
k8sco renders (k8sco.render.jobs.render_job) for a Serial of Parallels of trivial nodes.

Printed per size, for the fake of this tree and the fake of ``--baseline`` (a commit,
extracted with ``git archive``) side by side: wall seconds, the fake's CPU milliseconds per
Job (user + system of its process, from /proc), its peak RSS, and the ratios between the
two fakes and the per-Job CPU ratio between the largest and the smallest size.

    python bench/fake_cluster.py [--sizes 1000,10000] [--baseline 4fbed5c | --baseline '']
    python bench/fake_cluster.py --sizes 1000,100000 --baseline ''  # 99,000 Jobs: ~8 min
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import k8sco as co  # noqa: E402
from k8sco.errors import Gone  # noqa: E402
from k8sco.kube.client import Cluster  # noqa: E402
from k8sco.render.jobs import render_job  # noqa: E402
from k8sco.render.limits import MAX_NODES  # noqa: E402
from k8sco.render.pipeline import render_pipeline  # noqa: E402

# The child: a FakeCluster from the tree given in argv[1] (its tests/ directory), with the
# instant runner. It prints its URL and serves until its stdin closes.
SERVE = """
import sys
sys.path.insert(0, sys.argv[1] + "/tests")
from fakecluster import FakeCluster

# Written out, not imported: the baseline tree's fake may predate fakecluster.InstantRunner.
class Instant:
    container_id = "instant://0"
    def wait(self): return 0
    def terminate(self): pass
    def kill(self): pass

class InstantRunner:
    def start(self, launch): return Instant()

with FakeCluster(runner=InstantRunner(), bookmark_interval=5.0) as fake:
    print(fake.url, flush=True)
    sys.stdin.read()
"""


def tree(nodes: int) -> co.Serial:
    """Stages of 100 Exec nodes, within the cap on a tree's nodes (each stage is 101 nodes
    with its Parallel, plus the root): "100000" gives 990 stages, 99,000 Jobs."""
    stages = max(1, min(nodes // 100, (MAX_NODES - 1) // 101))
    with co.Serial() as root:
        for i in range(stages):
            with co.Parallel(name=f"stage{i}", max_concurrent=50):
                for j in range(min(100, nodes)):
                    co.Exec("true", name=f"n{j}")
    return root


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Driver:
    """Keeps ``window`` Jobs in flight until ``total`` are Complete, as a watch sees them."""

    def __init__(self, client: Cluster, ns: str, total: int, window: int) -> None:
        self.client = client
        self.ns = ns
        self.total = total
        self.window = window
        self.cond = threading.Condition()
        self.created = 0
        self.completed: set[str] = set()
        self.failed: list[str] = []
        self.stop = threading.Event()

    def watch(self, path: str, rv: str, record: bool) -> None:
        """Watch ``path`` from ``rv``, as an informer does: after 410 Gone, list again."""
        selector = {"labelSelector": "app.kubernetes.io/managed-by=k8sco"}
        while not self.stop.is_set():
            try:
                for event in self.client.watch(
                    path, resource_version=rv, selector=selector, timeout=60
                ):
                    obj = event["object"]
                    rv = obj["metadata"]["resourceVersion"]
                    if record and event["type"] != "BOOKMARK":
                        self._seen(obj)
                    if self.stop.is_set():
                        return
            except Gone:
                listing = self.client.request("GET", path, query=selector)
                rv = listing["metadata"]["resourceVersion"]
                if record:
                    for obj in listing["items"]:
                        self._seen(obj)

    def _seen(self, job: dict[str, Any]) -> None:
        for cond in (job.get("status") or {}).get("conditions") or []:
            if cond["status"] != "True" or cond["type"] not in ("Complete", "Failed"):
                continue
            with self.cond:
                name = job["metadata"]["name"]
                if cond["type"] == "Failed":
                    self.failed.append(name)
                self.completed.add(name)
                self.cond.notify_all()

    def run(self, jobs: Any) -> None:
        path = self.client.ns_path("/apis/batch/v1", "jobs", self.ns)
        while True:
            with self.cond:
                self.cond.wait_for(
                    lambda: (
                        self.created - len(self.completed) < self.window
                        or len(self.completed) >= self.total
                    )
                )
                if len(self.completed) >= self.total:
                    return
            if self.created < self.total:
                self.client.request("POST", path, body=next(jobs))
                self.created += 1


def measure(root: str, nodes: int, window: int) -> dict[str, Any]:
    child = subprocess.Popen(
        [sys.executable, "-c", SERVE, root],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        url = child.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = Path(tmp) / "kubeconfig"
            kubeconfig.write_text(
                yaml.safe_dump(
                    {
                        "apiVersion": "v1",
                        "kind": "Config",
                        "clusters": [{"name": "f", "cluster": {"server": url}}],
                        "users": [{"name": "f", "user": {}}],
                        "contexts": [{"name": "f", "context": {"cluster": "f", "user": "f"}}],
                        "current-context": "f",
                    }
                )
            )
            client = Cluster(str(kubeconfig))
            for crd in yaml.safe_load_all((REPO / "manifests" / "10-crd.yaml").read_text()):
                client.request(
                    "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body=crd
                )
            time.sleep(0.5)
            shape = tree(nodes)
            pipeline = render_pipeline(shape, "bench", "default", image="img:1")
            created = client.request(
                "POST", client.ns_path("/apis/k8sco.io/v1alpha1", "pipelines"), body=pipeline
            )
            uid = created["metadata"]["uid"]
            paths = [node.path for node in shape.stream() if isinstance(node, co.Exec)][:nodes]
            nodes = len(paths)
            jobs = (render_job(shape, p, "bench", "default", "img:1", uid) for p in paths)
            driver = Driver(client, "default", nodes, window)
            jobs_path = client.ns_path("/apis/batch/v1", "jobs", "default")
            pipes_path = client.ns_path("/apis/k8sco.io/v1alpha1", "pipelines", "default")
            rv = client.request("GET", jobs_path)["metadata"]["resourceVersion"]
            watchers = [
                threading.Thread(target=driver.watch, args=(jobs_path, rv, True), daemon=True),
                threading.Thread(target=driver.watch, args=(pipes_path, rv, False), daemon=True),
            ]
            for w in watchers:
                w.start()
            cpu0, start = cpu_seconds(child.pid), time.monotonic()
            driver.run(jobs)
            wall = time.monotonic() - start
            cpu = cpu_seconds(child.pid) - cpu0
            rss = peak_rss_mb(child.pid)
            driver.stop.set()
            client.close()
        return {
            "jobs": nodes,
            "wall_s": wall,
            "fake_cpu_ms_per_job": cpu * 1000 / nodes,
            "fake_peak_rss_mb": rss,
            "failed_jobs": len(driver.failed),
        }
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def extract(commit: str, into: Path) -> str:
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit, "tests/fakecluster"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return str(into)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--window", type=int, default=50, help="Jobs in flight (max_concurrent)")
    parser.add_argument(
        "--baseline", default="4fbed5c", help="the commit to compare with ('' for none)"
    )
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"new": str(REPO)}
        if args.baseline:
            trees[f"old {args.baseline}"] = extract(args.baseline, Path(tmp) / "old")
        results: dict[str, dict[int, dict[str, Any]]] = {label: {} for label in trees}
        for n in sizes:
            for label, root in trees.items():
                results[label][n] = measure(root, n, args.window)
                print(f"{label} {n}: {json.dumps(results[label][n])}", flush=True)
    print()
    header = f"{'':<24}" + "".join(f"{f'{lb} {n}':>22}" for n in sizes for lb in trees)
    print(header)
    for key in ("jobs", "wall_s", "fake_cpu_ms_per_job", "fake_peak_rss_mb", "failed_jobs"):
        cells = "".join(f"{results[lb][n][key]:>22.2f}" for n in sizes for lb in trees)
        print(f"{key:<24}{cells}")
    small, big = sizes[0], sizes[-1]
    for label in trees:
        per_job = results[label]
        if big != small:
            ratio = per_job[big]["fake_cpu_ms_per_job"] / per_job[small]["fake_cpu_ms_per_job"]
            print(f"{label}: cpu/job {big} / cpu/job {small} = {ratio:.2f}")
    if len(trees) == 2:
        old = next(lb for lb in trees if lb != "new")
        for n in sizes:
            speedup = (
                results[old][n]["fake_cpu_ms_per_job"] / results["new"][n]["fake_cpu_ms_per_job"]
            )
            print(f"{n}: fake cpu/job old / new = {speedup:.2f}x")


if __name__ == "__main__":
    main()
