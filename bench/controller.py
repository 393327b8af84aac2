"""The controller at scale, on the fake cluster: 1,000 and 10,000 trivial nodes.

A Serial of Parallels (width 100) with ``max_concurrent=50``. The fake kubelet "runs" each
container instantly (no process), so what is measured is k8sco's controller and the API,
not process start-up. Printed side by side for each size:

- API write requests per node (target <= 3; the floor is 1, the Job's create);
- controller CPU seconds per node (user + system of the controller process);
- scheduling latency: from a Job's completion (seen on a watch) to the creation of the Job
  it unblocked, p50 and p99;
- the controller's peak RSS (target <= 300 MB at 10,000 nodes).

    python bench/controller.py [--sizes 1000,10000]
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
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fakecluster import FakeCluster  # noqa: E402
from fakecluster.runners import ContainerLaunch  # noqa: E402

import k8sco as co  # noqa: E402
from k8sco.kube.client import Cluster  # noqa: E402
from k8sco.render.pipeline import render_pipeline  # noqa: E402


class Instant:
    """A container that has already exited 0."""

    container_id = "instant://0"

    def wait(self) -> int:
        return 0

    def terminate(self) -> None:
        pass

    def kill(self) -> None:
        pass


class InstantRunner:
    def start(self, launch: ContainerLaunch) -> Instant:
        return Instant()


def tree(nodes: int) -> co.Serial:
    with co.Serial() as root:
        for i in range(nodes // 100):
            with co.Parallel(name=f"stage{i}", max_concurrent=50):
                for j in range(100):
                    co.Exec("true", name=f"n{j}")
    return root


def watch_jobs(cluster: Cluster, ns: str, stop: threading.Event, seen: dict[str, Any]) -> None:
    """Record when each Job was created and completed, as a watcher sees it."""
    path = cluster.ns_path("/apis/batch/v1", "jobs", ns)
    rv = cluster.request("GET", path)["metadata"]["resourceVersion"]
    while not stop.is_set():
        for event in cluster.watch(path, resource_version=rv, selector={}, timeout=30):
            obj = event["object"]
            rv = obj["metadata"]["resourceVersion"]
            name = obj["metadata"].get("name")
            now = time.monotonic()
            if event["type"] == "ADDED":
                seen["created"].setdefault(name, now)
            conds = (obj.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Complete" and c["status"] == "True" for c in conds):
                seen["completed"].setdefault(name, now)
            if stop.is_set():
                return


def start_controller(
    kubeconfig: Path, log: IO[bytes], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``k8sco controller`` as its own process (as installed: a Pod of its own), on the
    fake cluster's kubeconfig, logging warnings only to ``log``."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "k8sco",
            "controller",
            "--kubeconfig",
            str(kubeconfig),
            "--lease-namespace",
            "default",
            "--identity",
            "bench",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "K8SCO_LOG_LEVEL": "WARNING", **(env or {})},
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run(nodes: int) -> dict[str, float]:
    with (
        FakeCluster(runner=InstantRunner(), bookmark_interval=5.0) as fake,
        tempfile.TemporaryDirectory() as tmp,
    ):
        kubeconfig = Path(tmp) / "kubeconfig"
        fake.write_kubeconfig(kubeconfig)
        subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                str(kubeconfig),
                "--cache-dir",
                f"{tmp}/cache",
                "apply",
                "-f",
                str(REPO / "manifests" / "10-crd.yaml"),
            ],
            check=True,
            capture_output=True,
        )
        client = Cluster(str(kubeconfig))
        seen: dict[str, Any] = {"created": {}, "completed": {}}
        stop = threading.Event()
        watcher = threading.Thread(target=watch_jobs, args=(client, "default", stop, seen))
        watcher.start()
        pipeline = render_pipeline(tree(nodes), "bench", "default", image="img:1")
        log = open(Path(tmp) / "controller.log", "wb")  # noqa: SIM115
        controller = start_controller(kubeconfig, log)
        time.sleep(1.0)
        fake.requests.reset()
        start = time.monotonic()
        client.request(
            "POST", client.ns_path("/apis/k8sco.io/v1alpha1", "pipelines"), body=pipeline
        )
        peak = 0
        while True:
            obj = fake.get("pipelines.k8sco.io", "bench", "default")
            peak = max(peak, rss_kb(controller.pid))
            if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                break
            time.sleep(0.5)
        wall = time.monotonic() - start
        cpu = cpu_seconds(controller.pid)
        peak = max(peak, rss_kb(controller.pid))
        writes = fake.requests.writes() - 1  # less the Pipeline's own create
        by_resource = {
            r: fake.requests.writes(r) for r in ("jobs", "pipelines/status", "events", "leases")
        }
        controller.terminate()
        controller.wait(10)
        log.close()
        stop.set()
        watcher.join(35)
        phase = obj["status"]["phase"]
    created, completed = seen["created"], seen["completed"]
    completions = sorted(completed.values())
    latencies = []
    for when in sorted(created.values())[50:]:  # the first 50 wait for nothing
        before = [t for t in completions if t <= when]
        if before:
            latencies.append(when - before[-1])
    return {
        "nodes": nodes,
        "phase_ok": phase == "Succeeded",
        "wall_s": wall,
        "writes_per_node": writes / nodes,
        "job_writes_per_node": by_resource["jobs"] / nodes,
        "status_writes_per_node": by_resource["pipelines/status"] / nodes,
        "event_writes_per_node": by_resource["events"] / nodes,
        "cpu_ms_per_node": cpu * 1000 / nodes,
        "latency_p50_ms": percentile(latencies, 0.50) * 1000,
        "latency_p99_ms": percentile(latencies, 0.99) * 1000,
        "peak_rss_mb": peak / 1024,
    }


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    args = parser.parse_args()
    results = [run(int(n)) for n in args.sizes.split(",")]
    keys = [k for k in results[0] if k != "nodes"]
    print(f"{'nodes':<24}" + "".join(f"{r['nodes']:>12}" for r in results))
    for key in keys:
        cells = "".join(
            f"{r[key]!s:>12}" if isinstance(r[key], bool) else f"{r[key]:>12.3f}" for r in results
        )
        print(f"{key:<24}{cells}")
    print("targets: writes_per_node <= 3; peak_rss_mb <= 300 at 10,000 nodes")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
