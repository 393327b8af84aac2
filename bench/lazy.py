"""co.Lazy on the local runner: a Lazy node that generates a wide tree (10,000 nodes by
default: a Parallel of trivial shell nodes, ``max_concurrent`` 8), run in-process by the local
runner, as ``k8sco run`` does.

Prints: the whole run's wall time; the splice (from the Generate node's exit being reaped to
the first generated node started: reading its output, splicing, the new graph, rewriting
tree.json and run.json); and the per-node overhead of the generated part.

Then the Kubernetes half, on the fake cluster with containers that exit at once (the
Generate container prints its tree first): ``--samples`` pipelines one after another, each a
Lazy node generating ``--cluster-nodes`` nodes (1,000 by default), run by ``k8sco
controller`` as a separate process; for each, the time from its Generate Job's completion to
the first generated Job's creation, both as a Job watcher sees them; p50 and p99. That time
is two reconciliations: the one that reads the Generate pod's log and writes the expansion
(re-keying status.nodes), and the next, which creates the Jobs.

    python bench/lazy.py [--nodes 10000] [--concurrent 8] [--cluster-nodes 1000]
                         [--samples 20] [--no-cluster]
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
    parser.add_argument("--cluster-nodes", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument(
        "--no-cluster", dest="cluster", action="store_false", help="skip the fake cluster"
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
    if args.cluster:
        latencies = on_cluster(args.cluster_nodes, args.samples)
        print(
            f"co.Lazy, fake cluster, {args.cluster_nodes:,} generated nodes, "
            f"{len(latencies)} pipelines"
        )
        print(
            "  Generate Job complete -> first generated Job created: "
            f"p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
        )


# --- the fake cluster -------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def on_cluster(nodes: int, samples: int) -> list[float]:
    """The latency of each of ``samples`` expansions of ``nodes`` generated nodes."""
    import os
    import subprocess
    import sys
    import threading

    sys.path.insert(0, str(HERE.parent / "tests"))
    from fakecluster import FakeCluster
    from fakecluster.runners import ContainerLaunch

    from k8sco import lazy
    from k8sco.kube.client import Cluster
    from k8sco.render.pipeline import render_pipeline

    generated = co.Parallel(max_concurrent=50)
    for i in range(nodes):
        generated[f"n{i}"] = co.Exec("true")
    line = f"{lazy.marker(generated)}\n".encode()

    class Instant:
        container_id = "instant://0"

        def wait(self) -> int:
            return 0

        def terminate(self) -> None:
            pass

        def kill(self) -> None:
            pass

    class InstantRunner:
        """Containers that exit 0 at once; a Generate container prints its tree first."""

        def start(self, launch: ContainerLaunch) -> Instant:
            if launch.env.get(lazy.ENV_FLAG) == "1":
                launch.log_path.write_bytes(line)
            return Instant()

    created: dict[str, float] = {}
    completed: dict[str, float] = {}

    def watch(client: Cluster, stop: threading.Event) -> None:
        path = client.ns_path("/apis/batch/v1", "jobs", "default")
        rv = client.request("GET", path)["metadata"]["resourceVersion"]
        while not stop.is_set():
            for event in client.watch(path, resource_version=rv, selector={}, timeout=30):
                obj = event["object"]
                rv = obj["metadata"]["resourceVersion"]
                at = time.monotonic()
                where = obj["metadata"].get("annotations", {}).get("k8sco.io/path", "")
                key = f"{obj['metadata'].get('labels', {}).get('k8sco.io/pipeline')}{where}"
                if event["type"] == "ADDED":
                    created.setdefault(key, at)
                conds = (obj.get("status") or {}).get("conditions") or []
                if any(c["type"] == "Complete" and c["status"] == "True" for c in conds):
                    completed.setdefault(key, at)
                if stop.is_set():
                    return

    latencies: list[float] = []
    with (
        FakeCluster(runner=InstantRunner(), bookmark_interval=5.0) as fake,
        tempfile.TemporaryDirectory() as tmp,
    ):
        kubeconfig = Path(tmp) / "kubeconfig"
        fake.write_kubeconfig(kubeconfig)
        crd = HERE.parent / "manifests" / "10-crd.yaml"
        subprocess.run(
            [
                *("kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", f"{tmp}/cache"),
                *("apply", "-f", str(crd)),
            ],
            check=True,
            capture_output=True,
        )
        client = Cluster(str(kubeconfig))
        stop = threading.Event()
        watcher = threading.Thread(target=watch, args=(client, stop), daemon=True)
        watcher.start()
        log = open(Path(tmp) / "controller.log", "wb")  # noqa: SIM115
        controller = subprocess.Popen(
            [
                *(sys.executable, "-m", "k8sco", "controller", "--kubeconfig", str(kubeconfig)),
                *("--lease-namespace", "default", "--identity", "bench"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "K8SCO_LOG_LEVEL": "WARNING"},
        )
        pipes = client.ns_path("/apis/k8sco.io/v1alpha1", "pipelines", "default")
        try:
            for i in range(samples):
                name = f"lazy{i}"
                root = co.Serial()
                root["l"] = co.Lazy("echo generate")
                client.request(
                    "POST", pipes, body=render_pipeline(root, name, "default", image="img:1")
                )
                first = f"{name}/l/Execute/n"
                deadline = time.monotonic() + 120
                while not any(k.startswith(first) for k in list(created)):
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{name}: no generated Job in 120 s; see {log.name}")
                    time.sleep(0.01)
                start = min(t for k, t in list(created.items()) if k.startswith(first))
                latencies.append(start - completed[f"{name}/l/Generate"])
                print(f"  {name}: {latencies[-1] * 1000:.1f} ms", flush=True)
                # Stopped and deleted rather than run to the end: only the expansion is
                # measured, and the next sample finds the controller nearly idle.
                client.request(
                    "PATCH",
                    f"{pipes}/{name}",
                    body={"spec": {"stop": True}},
                    content_type="application/merge-patch+json",
                )
                while (fake.get("pipelines.k8sco.io", name, "default").get("status") or {}).get(
                    "phase"
                ) not in ("Killed", "Succeeded", "Failed"):
                    time.sleep(0.1)
                client.request("DELETE", f"{pipes}/{name}")
        finally:
            controller.terminate()
            controller.wait(10)
            log.close()
            stop.set()
    return latencies


if __name__ == "__main__":
    main()
