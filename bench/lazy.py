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

Last, one pipeline on the fake cluster run to its end: a Lazy node generating
``--full-nodes`` nodes (10,000 by default; ``--command-bytes 200`` gives each a 200-byte
command, which makes the tree too big for the Pipeline, so it is kept in ConfigMaps:
k8sco/kube/lazystore.py). Printed: where the tree was kept, the time to the first generated
Job and to the last one's completion, and the largest Pipeline version a watcher saw.

    python bench/lazy.py [--nodes 10000] [--concurrent 8] [--cluster-nodes 1000]
                         [--samples 20] [--full-nodes 10000] [--command-bytes 0]
                         [--full-concurrent 100] [--no-local] [--no-cluster]
"""

from __future__ import annotations

import argparse
import signal
import sys
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
    parser.add_argument(
        "--full-nodes",
        type=int,
        default=10_000,
        help="also run one pipeline generating this many nodes to its end on the fake "
        "cluster (0: skip)",
    )
    parser.add_argument(
        "--command-bytes",
        type=int,
        default=0,
        help="bytes of (incompressible-ish) command per node of that run: 200 makes a "
        "10,000-node tree too big for the Pipeline, kept in ConfigMaps",
    )
    parser.add_argument("--full-concurrent", type=int, default=100)
    parser.add_argument(
        "--no-local", dest="local", action="store_false", help="skip the local runner"
    )
    args = parser.parse_args()
    # A SIGTERM (`timeout`) unwinds, so that the controller process and the fake go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.local:
        local(args.nodes, args.concurrent, args.baseline)
    if args.cluster and args.samples:
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
    if args.cluster and args.full_nodes:
        full_run(args.full_nodes, args.command_bytes, args.full_concurrent)


def local(nodes: int, concurrent: int, with_baseline: bool) -> None:
    """The local runner's half: a Lazy node generating ``nodes`` nodes, run to its end."""
    baseline = None
    if with_baseline:
        with tempfile.TemporaryDirectory() as tmp:
            whole = co.Serial(env={"STAGE": "bench"})
            whole["l"] = lazy_fan(nodes, concurrent)
            spec = runner.RunSpec(root=whole, code_root=str(HERE), meta={"file": "bench"})
            t0 = time.perf_counter()
            done = runner.run(spec, Timings(), runs_dir=Path(tmp) / "runs")
            baseline = time.perf_counter() - t0
            assert done.exit_code == 0
    with tempfile.TemporaryDirectory() as tmp:
        token = tree.set_code_root(str(HERE))
        try:
            root = co.Serial(env={"STAGE": "bench"})
            root["l"] = co.Lazy(lazy_fan, nodes, concurrent)
        finally:
            tree.reset_code_root(token)
        spec = runner.RunSpec(root=root, code_root=str(HERE), meta={"file": "bench/lazy.py"})
        timings = Timings()
        t0 = time.perf_counter()
        result = runner.run(spec, timings, runs_dir=Path(tmp) / "runs")
        total = time.perf_counter() - t0
    generated = [p for p in timings.started if p.startswith("/l/Execute/")]
    assert result.exit_code == 0, f"the run failed: {result.states['/']}"
    assert len(generated) == nodes, (len(generated), nodes)
    splice = min(timings.started[p] for p in generated) - timings.ended["/l/Generate"]
    gen_part = max(timings.ended[p] for p in generated) - min(timings.started[p] for p in generated)
    print(f"co.Lazy, local runner, {nodes:,} generated nodes (max_concurrent {concurrent})")
    print(f"  whole run:                                  {total:8.2f} s")
    print(f"  Generate end -> first generated node start: {splice * 1000:8.1f} ms")
    print(
        f"  generated part:                             {gen_part:8.2f} s "
        f"({gen_part / nodes * 1000:.2f} ms per node)"
    )
    if baseline is not None:
        print(f"  the same tree without co.Lazy, whole run:   {baseline:8.2f} s")


# --- the fake cluster -------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def generated_tree(nodes: int, command_bytes: int, concurrent: int) -> co.Parallel:
    """``nodes`` nodes; with ``command_bytes``, each command carries that many bytes of hex
    (distinct per node: compresses to about half), which makes a big tree big once gzipped."""
    import hashlib

    out = co.Parallel(max_concurrent=concurrent)
    for i in range(nodes):
        noise = ""
        while len(noise) < command_bytes:
            noise += hashlib.sha256(f"{i}/{len(noise)}".encode()).hexdigest()
        out[f"n{i}"] = co.Exec(f": {noise[:command_bytes]}; true" if command_bytes else "true")
    return out


class FakeWorld:
    """The fake cluster with containers that exit 0 at once (a Generate container prints
    ``line`` first), ``k8sco controller`` as a separate process, and watchers that note when
    each Job is created and completes and how big each stored Pipeline version is."""

    def __init__(self, line: bytes) -> None:
        self.line = line
        self.created: dict[str, float] = {}
        self.completed: dict[str, float] = {}
        self.pipeline_sizes: dict[str, int] = {}  # the largest version of each Pipeline
        self.pipeline_writes: dict[str, int] = {}

    def __enter__(self) -> FakeWorld:
        import os
        import subprocess
        import sys
        import threading

        sys.path.insert(0, str(HERE.parent / "tests"))
        from fakecluster import FakeCluster
        from fakecluster.runners import ContainerLaunch, Exited

        from k8sco import lazy
        from k8sco.kube.client import Cluster

        line = self.line

        class InstantRunner:
            """Containers that exit 0 at once; a Generate container prints its tree first."""

            def start(self, launch: ContainerLaunch) -> Exited:
                if launch.env.get(lazy.ENV_FLAG) == "1":
                    launch.log_path.write_bytes(line)
                return Exited(0)

        self.fake = FakeCluster(runner=InstantRunner(), bookmark_interval=5.0).__enter__()
        self.tmp = tempfile.TemporaryDirectory()
        kubeconfig = Path(self.tmp.name) / "kubeconfig"
        self.fake.write_kubeconfig(kubeconfig)
        crd = HERE.parent / "manifests" / "10-crd.yaml"
        subprocess.run(
            [
                *("kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", f"{self.tmp.name}/c"),
                *("apply", "-f", str(crd)),
            ],
            check=True,
            capture_output=True,
        )
        self.client = Cluster(str(kubeconfig))
        self.pipes = self.client.ns_path("/apis/k8sco.io/v1alpha1", "pipelines", "default")
        self.stop = threading.Event()
        for target in (self._watch_jobs, self._watch_pipelines):
            threading.Thread(target=target, daemon=True).start()
        self.log = open(Path(self.tmp.name) / "controller.log", "wb")
        self.controller = subprocess.Popen(
            [
                *(sys.executable, "-m", "k8sco", "controller", "--kubeconfig", str(kubeconfig)),
                *("--lease-namespace", "default", "--identity", "bench"),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "K8SCO_LOG_LEVEL": "WARNING"},
        )
        return self

    def __exit__(self, *exc: object) -> None:
        import subprocess

        self.controller.terminate()
        try:
            self.controller.wait(10)
        except subprocess.TimeoutExpired:
            self.controller.kill()
            self.controller.wait(10)
        self.log.close()
        self.stop.set()
        self.fake.__exit__(None, None, None)
        self.tmp.cleanup()

    def _watch_jobs(self) -> None:
        path = self.client.ns_path("/apis/batch/v1", "jobs", "default")
        rv = self.client.request("GET", path)["metadata"]["resourceVersion"]
        while not self.stop.is_set():
            for event in self.client.watch(path, resource_version=rv, selector={}, timeout=30):
                obj = event["object"]
                rv = obj["metadata"]["resourceVersion"]
                at = time.monotonic()
                where = obj["metadata"].get("annotations", {}).get("k8sco.io/path", "")
                key = f"{obj['metadata'].get('labels', {}).get('k8sco.io/pipeline')}{where}"
                if event["type"] == "ADDED":
                    self.created.setdefault(key, at)
                conds = (obj.get("status") or {}).get("conditions") or []
                if any(c["type"] == "Complete" and c["status"] == "True" for c in conds):
                    self.completed.setdefault(key, at)
                if self.stop.is_set():
                    return

    def _watch_pipelines(self) -> None:
        import json

        rv = self.client.request("GET", self.pipes)["metadata"]["resourceVersion"]
        while not self.stop.is_set():
            for event in self.client.watch(
                self.pipes, resource_version=rv, selector={}, timeout=30
            ):
                obj = event["object"]
                rv = obj["metadata"]["resourceVersion"]
                if event["type"] not in ("ADDED", "MODIFIED"):
                    continue  # a BOOKMARK
                name = obj["metadata"]["name"]
                size = len(json.dumps(obj, separators=(",", ":")).encode())
                self.pipeline_sizes[name] = max(size, self.pipeline_sizes.get(name, 0))
                self.pipeline_writes[name] = self.pipeline_writes.get(name, 0) + 1
                if self.stop.is_set():
                    return

    def apply(self, name: str) -> None:
        from k8sco.render.pipeline import render_pipeline

        root = co.Serial()
        root["l"] = co.Lazy("echo generate")
        self.client.request(
            "POST", self.pipes, body=render_pipeline(root, name, "default", image="img:1")
        )

    def first_generated(self, name: str, timeout: float = 300) -> float:
        """Seconds from the Generate Job's completion to the first generated Job's creation."""
        first = f"{name}/l/Execute/n"
        deadline = time.monotonic() + timeout
        while not any(k.startswith(first) for k in list(self.created)):
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"{name}: no generated Job in {timeout:.0f} s; see {self.log.name}"
                )
            time.sleep(0.01)
        start = min(t for k, t in list(self.created.items()) if k.startswith(first))
        return start - self.completed[f"{name}/l/Generate"]

    def phase(self, name: str) -> str | None:
        status = (self.fake.get("pipelines.k8sco.io", name, "default") or {}).get("status") or {}
        return status.get("phase")


def on_cluster(nodes: int, samples: int) -> list[float]:
    """The latency of each of ``samples`` expansions of ``nodes`` generated nodes."""
    from k8sco import lazy

    line = f"{lazy.marker(generated_tree(nodes, 0, 50))}\n".encode()
    latencies: list[float] = []
    with FakeWorld(line) as world:
        for i in range(samples):
            name = f"lazy{i}"
            world.apply(name)
            latencies.append(world.first_generated(name))
            print(f"  {name}: {latencies[-1] * 1000:.1f} ms", flush=True)
            # Stopped and deleted rather than run to the end: only the expansion is
            # measured, and the next sample finds the controller nearly idle.
            world.client.request(
                "PATCH",
                f"{world.pipes}/{name}",
                body={"spec": {"stop": True}},
                content_type="application/merge-patch+json",
            )
            while world.phase(name) not in ("Killed", "Succeeded", "Failed"):
                time.sleep(0.1)
            world.client.request("DELETE", f"{world.pipes}/{name}")
    return latencies


def full_run(nodes: int, command_bytes: int, concurrent: int) -> None:
    """One pipeline whose Lazy node generates ``nodes`` nodes, run to its end."""
    import base64
    import json

    from k8sco import lazy
    from k8sco.render import overflow

    tree = generated_tree(nodes, command_bytes, concurrent)
    packed = lazy.compress(tree)
    line = f"{lazy.OPEN}{base64.b64encode(packed).decode()}{lazy.CLOSE}\n".encode()
    name = "full"
    with FakeWorld(line) as world:
        t0 = time.monotonic()
        world.apply(name)
        latency = world.first_generated(name, timeout=600)
        print(f"  Generate Job complete -> first generated Job created: {latency * 1000:.1f} ms")
        shown = time.monotonic()
        prefix = f"{name}/l/Execute/n"
        while world.phase(name) not in ("Succeeded", "Failed"):
            if time.monotonic() - t0 > 3600:
                raise SystemExit(f"{name}: not finished in an hour; see {world.log.name}")
            if time.monotonic() - shown > 60:  # a rate even from a run cut short
                shown = time.monotonic()
                done_now = sum(1 for k in list(world.completed) if k.startswith(prefix))
                print(
                    f"  ... {done_now:,} generated Jobs complete at {shown - t0:.0f} s", flush=True
                )
            time.sleep(0.2)
        whole = time.monotonic() - t0
        done = [t for k, t in world.completed.items() if k.startswith(f"{name}/l/Execute/n")]
        obj = world.fake.get("pipelines.k8sco.io", name, "default") or {}
        status = obj.get("status") or {}
        entry = (status.get("lazy") or {}).get("/l") or {}
        where = (
            f"{entry['ref']['parts']} ConfigMap(s)"
            if "ref" in entry
            else "status.lazy (inline)"
            if "tree" in entry
            else "nowhere"
        )
        gen_start = world.completed[f"{name}/l/Generate"]
        print(
            f"co.Lazy, fake cluster, one pipeline run to its end: {nodes:,} generated nodes"
            + (f" with {command_bytes:,}-byte commands" if command_bytes else "")
            + f" (max_concurrent {concurrent})"
        )
        print(f"  phase {status.get('phase')}, progress {status.get('progress')}")
        print(
            f"  generated tree: {len(json.dumps(tree.to_dict())) / 1024:,.0f} KiB of JSON, "
            f"{len(packed) / 1024:,.0f} KiB gzipped, kept in {where}"
        )
        print(f"  Generate Job complete -> first generated Job created: {latency * 1000:8.1f} ms")
        print(
            f"  Generate Job complete -> last generated Job complete:  "
            f"{(max(done) - gen_start) if done else float('nan'):8.2f} s "
            f"({len(done):,} Jobs complete, "
            f"{(max(done) - gen_start) / max(len(done), 1) * 1000:.2f} ms per node)"
        )
        print(f"  apply -> Succeeded:                                    {whole:8.2f} s")
        print(
            f"  Pipeline: {world.pipeline_writes.get(name, 0):,} versions seen, largest "
            f"{world.pipeline_sizes.get(name, 0) / 1024:,.0f} KiB (budget "
            f"{overflow.PIPELINE_BUDGET / 1024:,.0f} KiB)"
        )


if __name__ == "__main__":
    main()
