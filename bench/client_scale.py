"""The client side at 1,000 / 10,000 / 100,000 nodes: building the tree, ``k8sco render
--pipeline-only``, ``k8sco apply`` and ``k8sco status``, each the real command.

The pipeline is a Serial of 100 Parallels of native-function nodes (``work(n, label)``), as
many as fit in the size (a pipeline has at most 100,000 nodes, control nodes included).
Building it is timed in this process, the way every command loads a pipeline file
(``k8sco.loading.load``). The commands run as subprocesses of the installed ``k8sco``
console script against the fake cluster (tests/fakecluster) started in this process;
``apply`` uses ``--controller cluster`` and no controller runs, so what is timed is the
client. Past 256 KiB of compressed tree, ``apply`` writes the tree into ConfigMaps (100,000
nodes: 2 of them), and ``status`` reads them back.

``status`` is timed twice: on the fresh Pipeline (every node pending), and after a status
written the controller's way (through its StatusStore, status ConfigMaps included) that
shows a run half-way: the first half of the stages done, one failed node, the next stage
running.

Printed per size: CPU seconds of each step (user + system of the command's process; wall time
on a machine shared with other work measures the neighbours too), microseconds per node, and
two ratios measured in the same run: the marginal cost of a node between two sizes, last
against first (start-up and imports drop out; flat is 1.0, a super-linear step grows), and each
command's CPU against the bare start-up of the CLI (``k8sco --help``).

    .venv/bin/python bench/client_scale.py [--sizes 1000,10000,100000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fakecluster import FakeCluster  # noqa: E402

from k8sco.engine import EXEC, Graph, NodeState, State, evaluate  # noqa: E402
from k8sco.kube.client import Cluster  # noqa: E402
from k8sco.kube.overflow import StatusStore  # noqa: E402
from k8sco.render.pipeline import render_status  # noqa: E402

STAGES = 100
PIPELINE = f'''\
import k8sco as co


def work(n: int, label: str = "") -> None:
    """A trivial node."""


def big(nodes: int = 1000) -> co.Serial:
    width = (nodes - 1 - {STAGES}) // {STAGES}
    with co.Serial() as root:
        for i in range({STAGES}):
            with co.Parallel(name=f"stage {{i}}"):
                for j in range(width):
                    co.Exec(work, j, label=f"item-{{i}}-{{j}}").set(name=f"n{{j}}")
    return root
'''


def cpu() -> float:
    """CPU seconds (user + system) of this process and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """Median CPU seconds of ``fn`` (a command's, or this process's for in-process work):
    on a machine shared with other work, wall time would measure the neighbours too."""
    times = []
    for _ in range(repeat):
        start = cpu()
        fn()
        times.append(cpu() - start)
    return statistics.median(times)


def command(k8sco: str, cwd: Path, env: dict[str, str]) -> Callable[..., Callable[[], None]]:
    def make(*args: str) -> Callable[[], None]:
        def run() -> None:
            done = subprocess.run(
                [k8sco, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            if done.returncode != 0:
                raise SystemExit(f"k8sco {' '.join(args)}: {done.stderr.decode()[-2000:]}")

        return run

    return make


def midway_status(cluster: Cluster, name: str, root: Any) -> None:
    """Write the status of a run half-way through, as the controller would."""
    from k8sco.kube import pipelines

    graph = Graph.from_tree(root)
    t0 = time.time() - 3600
    recorded: dict[str, NodeState] = {}
    stages = [i for i in graph.children[0]]
    half = len(stages) // 2
    for s, stage in enumerate(stages[: half + 1]):
        for k, c in enumerate(graph.children[stage]):
            path = graph.paths[c]
            if s < half:
                failed = s == 1 and k == 3
                recorded[path] = NodeState(
                    state=State.ERROR if failed else State.DONE,
                    attempts=1,
                    started=t0 + s * 10,
                    finished=t0 + s * 10 + 5,
                    exit_code=1 if failed else 0,
                    reason="exit code 1" if failed else None,
                )
            elif k < 50:
                recorded[path] = NodeState(state=State.RUNNING, attempts=1, started=t0 + s * 10)
    assert all(graph.kinds[graph.index[p]] == EXEC for p in recorded)
    ev = evaluate(graph, recorded, time.time())
    full = render_status(graph, recorded, ev.states, t0)
    obj = pipelines.get(cluster, name)
    patch = StatusStore(cluster).store(obj, full)
    cluster.request(
        "PATCH",
        f"{cluster.ns_path('/apis/k8sco.io/v1alpha1', 'pipelines', 'default')}/{name}/status",
        body={"status": patch},
        content_type="application/merge-patch+json",
    )


def measure(
    n: int,
    repeat: int,
    code: Path,
    k8sco: Callable[..., Callable[[], None]],
    fake: FakeCluster,
    cluster: Cluster,
) -> dict[str, float]:
    """Each step's CPU seconds for a pipeline of at most ``n`` nodes."""
    from k8sco import loading

    def load() -> Any:  # what the commands do first: import the file, call the function
        return loading.load(str(code / "big.py") + ":big", [f"--nodes={n}"]).root

    build = timed(load, repeat)
    root = load()
    row = {"nodes": float(sum(1 for _ in root.stream())), "build (load the file)": build}
    target = ("big.py:big", f"--nodes={n}")
    row["render --pipeline-only"] = timed(
        k8sco("render", *target, "--pipeline-only", "--image", "img:1"), repeat
    )
    names = iter(f"big-{n}-{i}" for i in range(repeat))
    row["apply"] = timed(
        lambda: k8sco(
            "apply", *target, "--controller", "cluster", "--image", "img:1", "--name", next(names)
        )(),
        repeat,
    )
    name = f"big-{n}-0"
    tree_maps = [
        m
        for m in fake.objects("configmaps", "default")
        if m["metadata"]["name"].startswith(f"{name}-tree-")
    ]
    row["tree ConfigMaps"] = float(len(tree_maps))
    row["status (pending)"] = timed(k8sco("status", name), repeat)
    midway_status(cluster, name, root)
    row["status (half-way)"] = timed(k8sco("status", name), repeat)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each step (median)")
    parser.add_argument(
        "--k8sco", default=str(Path(sys.executable).with_name("k8sco")), help="console script"
    )
    opts = parser.parse_args()
    sizes = [int(s) for s in opts.sizes.split(",")]
    results: dict[int, dict[str, float]] = {}
    with FakeCluster() as fake, tempfile.TemporaryDirectory(prefix="k8sco-bench-") as tmp:
        code = Path(tmp)
        (code / "big.py").write_text(PIPELINE)
        kubeconfig = fake.write_kubeconfig(code / "kubeconfig")
        import yaml

        for doc in yaml.safe_load_all((REPO / "manifests" / "10-crd.yaml").read_text()):
            if doc:
                fake.create(doc)
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        k8sco = command(opts.k8sco, code, env)
        cluster = Cluster(str(kubeconfig))
        startup = timed(k8sco("--help"), max(opts.repeat, 3))
        for n in sizes:
            results[n] = measure(n, opts.repeat, code, k8sco, fake, cluster)
            print(f"{n}: {results[n]}", file=sys.stderr)

    steps = [
        "build (load the file)",
        "render --pipeline-only",
        "apply",
        "status (pending)",
        "status (half-way)",
    ]
    print(f"client side, Serial of {STAGES} Parallels of native-function nodes; CPU seconds")
    print(f"CLI start-up (k8sco --help), same run: {startup:.3f} s")
    header = f"  {'step':<24}" + "".join(f"{int(results[n]['nodes']):>12,} nodes" for n in sizes)
    print(header)
    for step in steps:
        print(f"  {step:<24}" + "".join(f"{results[n][step]:>16.2f} s" for n in sizes))
    print("  µs per node")
    for step in steps:
        print(
            f"  {step:<24}"
            + "".join(f"{results[n][step] / results[n]['nodes'] * 1e6:>16.1f}  " for n in sizes)
        )
    last = sizes[-1]
    if len(sizes) >= 3:
        # The marginal cost of a node between two sizes: start-up and imports (a second at
        # 1,000 nodes) drop out. A step that is linear has the same slope at every size.
        print("marginal µs per node between sizes, and the ratio last / first (flat = 1)")
        for step in steps:
            slopes = [
                (results[b][step] - results[a][step])
                / (results[b]["nodes"] - results[a]["nodes"])
                * 1e6
                for a, b in itertools.pairwise(sizes)
            ]
            shown = "".join(f"{s:>10.1f}" for s in slopes)
            print(f"  {step:<24}{shown}   {slopes[-1] / slopes[0]:6.2f} x")
    print(f"ratios: command CPU / CLI start-up at {last:,} nodes")
    for step in steps[1:]:
        print(f"  {step:<24} {results[last][step] / startup:8.2f} x")
    print(f"tree ConfigMaps at {last:,} nodes: {int(results[last]['tree ConfigMaps'])}")


if __name__ == "__main__":
    main()
