"""The controller at scale, on the fake cluster: 1,000, 10,000 and 100,000 trivial nodes,
against a baseline controller measured in the same run on the same fake cluster.

A Serial of Parallels (width 100) with ``max_concurrent=50`` (at "100000", 990 stages:
99,000 Jobs, so that the tree stays within the 100,000-node cap). The fake kubelet "runs"
each container instantly (no process), so what is measured is k8sco's controller and the
API, not process start-up. Printed for each size, for the baseline and for this tree, with
the ratio this/baseline:

- API write requests per node (the floor is 1, the Job's create; target <= 1.2);
- controller CPU milliseconds per node (user + system of the controller process), and the
  ratio of the largest size's to the smallest's (target <= 1.5 from 1,000 to 100,000);
- scheduling latency: from a Job's completion (its first ``SuccessCriteriaMet`` or
  ``Complete`` condition, seen on a watch) to the creation of the Job it unblocked (see
  :func:`causal_latencies`), p50 and p99 (targets 50 ms and 500 ms), and the median of
  the 1st, 16th, 32nd and 50th Job of a stage's burst of 50 (:func:`burst_latencies`);
- the controller's peak RSS (target <= 1 GB at 100,000 nodes).

The baseline (``--baseline REF``, default 9be52dd: the controller before the real-cluster
and scale work) is that commit's k8sco — its controller, its CRD, its rendering of the same
tree — checked out with ``git archive`` into a temporary directory; the fake cluster is
always this tree's, with decimal resourceVersions as etcd makes them (9be52dd compares them
as numbers, a bug fixed since: with opaque ones it overwrites a Job seen completed with its
own create's older response, and stalls). ``--baseline ''`` measures this tree only.

The fake Job controller syncs a Job a second after its pods' events, as a real one does
(``syncJobBatchPeriod``): each Job lasts at least that long, so 100,000 nodes at 50 at once
take over half an hour; ``--job-sync-batch-period`` shortens it.

The fake cluster answers API requests before its simulated job controller and kubelet do
their work (``--api-first``, 2 ms by default as in bench/many_pipelines.py; 0 turns it off):
in a cluster they run beside kube-apiserver, not on its GIL. At 99,000 nodes (29468dd, one
run, ``--sizes 1000,100000 --baseline ''``): p50 41.9 ms and p99 111 ms with it, against p50 48.4
and 50.6 ms in two runs without it (session 7); CPU per node 2.06 ms (0.87x that at 1,000),
peak RSS 735 MB, 1.04 writes per node. The figures up to session 8 were taken without it.
With the fake's watches also writing a burst's events in one go (36508d7), at 10,000 nodes:
p50 39.5 ms, p99 120 ms, the 50th Job of a burst 70.4 ms after the completion (44.3 ms,
110 ms and 82.0 ms with the gate alone, 45.5, 125 and 82.7 ms without it; one run each).
All three sizes in one run (5c91640, ``--sizes 1000,10000,100000 --baseline ''``, 41 min):
p50 33.3 / 37.2 / 37.2 ms, p99 78.0 / 123 / 87.0 ms, CPU per node 1.94 / 1.86 / 1.75 ms
(0.90x from 1,000 to 99,000), peak RSS 67 / 142 / 729 MB, 1.04 / 1.03 / 1.04 writes per node.

    python bench/controller.py [--sizes 1000,10000] [--baseline 9be52dd]
        [--job-sync-batch-period 1.0] [--api-first 0.002]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
# The Job controller's syncJobBatchPeriod, as a real cluster's (the fake's default is
# shorter for the tests' sake): a finished pod is counted, and its Job completed, up to
# this much later, in one sync for all of the pod's events.
JOB_SYNC_BATCH_PERIOD = 1.0
DRAIN = 30.0  # seconds a stopped Job watcher may go on to see the last completions
# The fake's simulated job controller and kubelet wait for the API requests being answered,
# each work item at most this long (fakecluster ClusterConfig.api_first; module docstring).
API_FIRST = 0.002
sys.path.insert(0, str(REPO / "tests"))

from fakecluster import FakeCluster  # noqa: E402
from fakecluster.runners import InstantRunner  # noqa: E402

from k8sco.kube.client import Cluster  # noqa: E402
from k8sco.render.constants import ANNOTATION_PATH, LABEL_PIPELINE  # noqa: E402
from k8sco.render.limits import MAX_NODES  # noqa: E402

TREE = """
import k8sco as co

def tree(stages):
    with co.Serial() as root:
        for i in range(stages):
            with co.Parallel(name=f"stage{i}", max_concurrent=50):
                for j in range(100):
                    co.Exec("true", name=f"n{j}")
    return root
"""


def stages(nodes: int) -> int:
    """Stages of 100 for about ``nodes`` Exec nodes, within the cap on a tree's nodes (each
    stage is 101 nodes with its Parallel, plus the root)."""
    return max(1, min(nodes // 100, (MAX_NODES - 1) // 101))


def rendered(stage_count: int, k8sco_dir: Path | None) -> dict[str, Any]:
    """The Pipeline as ``k8sco_dir``'s k8sco renders it (None: this tree's), in a process of
    its own so that two versions of k8sco never share one."""
    code = (
        "import json, sys\n"
        + TREE
        + "from k8sco.render.pipeline import render_pipeline\n"
        + f"obj = render_pipeline(tree({stage_count}), 'bench', 'default', image='img:1')\n"
        + "json.dump({'k8sco': co.__file__, 'pipeline': obj}, sys.stdout)\n"
    )
    where = k8sco_dir or REPO
    out = json.loads(
        subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            capture_output=True,
            env=_env(k8sco_dir),
            cwd=where,  # `python -c` puts its directory first on sys.path
        ).stdout
    )
    if not Path(out["k8sco"]).resolve().is_relative_to(where.resolve()):
        raise SystemExit(f"rendered with {out['k8sco']}, not the k8sco of {where}")
    found: dict[str, Any] = out["pipeline"]
    return found


def _env(k8sco_dir: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if k8sco_dir is not None:  # first on sys.path, before an installed (editable) k8sco
        env["PYTHONPATH"] = os.pathsep.join([str(k8sco_dir), env.get("PYTHONPATH", "")])
    return env


def _complete(obj: Mapping[str, Any]) -> bool:
    """Finished successfully, as Kubernetes 1.31+ says it first (SuccessCriteriaMet, then
    Complete once the pods are gone) or as older versions do (Complete only)."""
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(
        c.get("type") in ("SuccessCriteriaMet", "Complete") and c.get("status") == "True"
        for c in conds
    )


def watch_jobs(kubeconfig: str, ns: str, stop: Any, conn: Any) -> None:
    """Record when each Job was created and completed, as a watcher sees it (and the node
    and the Pipeline it is for), until ``stop`` is set and every Job seen created has been
    seen complete (at most ``DRAIN`` seconds more: the watch may lag the bench, which stops
    on the Pipelines' status); then send what was seen on ``conn``. Run in a process of its
    own, as a watching client is: in the fake cluster's process, decoding every Job event
    took a tenth of the CPU of the API server, job controller and kubelet being measured
    (one GIL), and its own waits for that GIL were counted in the latencies."""
    cluster = Cluster(kubeconfig)
    seen: dict[str, dict[str, Any]] = {"created": {}, "completed": {}, "path": {}, "pipeline": {}}
    path = cluster.ns_path("/apis/batch/v1", "jobs", ns)
    rv = cluster.request("GET", path)["metadata"]["resourceVersion"]
    conn.send("watching")  # from rv: every later Job event reaches this watch
    drained_by: float | None = None

    def finished() -> bool:
        nonlocal drained_by
        if not stop.is_set():
            return False
        if drained_by is None:
            drained_by = time.monotonic() + DRAIN
        return len(seen["completed"]) >= len(seen["created"]) or time.monotonic() > drained_by

    try:
        while not finished():
            for event in cluster.watch(path, resource_version=rv, selector={}, timeout=1):
                obj = event["object"]
                rv = obj["metadata"]["resourceVersion"]
                name = obj["metadata"].get("name")
                now = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process
                if event["type"] == "ADDED":
                    seen["created"].setdefault(name, now)
                    annotations = obj["metadata"].get("annotations") or {}
                    seen["path"][name] = annotations.get(ANNOTATION_PATH, "")
                    labels = obj["metadata"].get("labels") or {}
                    seen["pipeline"][name] = labels.get(LABEL_PIPELINE, "")
                if _complete(obj):
                    seen["completed"].setdefault(name, now)
                if finished():
                    break
    finally:
        conn.send(seen)
        cluster.close()


class JobWatcher:
    """:func:`watch_jobs` in a process of its own, watching once constructed."""

    def __init__(self, kubeconfig: Path | str, ns: str = "default") -> None:
        spawn = multiprocessing.get_context("spawn")
        self._stop = spawn.Event()
        self._results, sender = spawn.Pipe(duplex=False)
        self.process = spawn.Process(
            target=watch_jobs, args=(str(kubeconfig), ns, self._stop, sender)
        )
        self.process.start()
        if not self._results.poll(60) or self._results.recv() != "watching":
            raise SystemExit("the Job watcher did not start")

    def seen(self) -> dict[str, dict[str, Any]]:
        """Stop it and take what it saw (once it has drained the last completions)."""
        self._stop.set()
        if not self._results.poll(DRAIN + 30):
            raise SystemExit("the Job watcher did not answer")
        found: dict[str, dict[str, Any]] = self._results.recv()
        self.process.join(10)
        return found

    def close(self) -> None:
        self._stop.set()
        self.process.join(DRAIN + 30)


def start_controller(
    kubeconfig: Path,
    log: IO[bytes],
    env: dict[str, str] | None = None,
    k8sco_dir: Path | None = None,
) -> subprocess.Popen[bytes]:
    """``k8sco controller`` as its own process (as installed: a Pod of its own), on the
    fake cluster's kubeconfig, logging warnings only to ``log``; ``k8sco_dir``'s k8sco
    (None: this tree's)."""
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
        env={**_env(k8sco_dir), "K8SCO_LOG_LEVEL": "WARNING", **(env or {})},
        cwd=k8sco_dir or REPO,  # `python -m` puts its directory first on sys.path
    )


@contextlib.contextmanager
def go_like_runtime(switch_interval: float | None = 0.001) -> Iterator[None]:
    """The fake cluster's process run more as the Go programs it stands for would run
    (``switch_interval`` None: Python's own, see bench/many_pipelines.py).

    - Python's cyclic garbage collector is off. The fake stands for kube-apiserver,
      kube-controller-manager and a kubelet, whose collector runs concurrently, pausing them
      well under a millisecond. Python's stopped this whole process (API server, job
      controller and kubelet) for 120-160 ms at a time at 1,000 Jobs, longer as its store
      grows, and the latency figures charged those pauses to the controller under test (p99
      at 1,000 nodes: 238-278 ms with them in five runs, 136-158 ms without in three). The
      fake's objects are JSON data without cycles: reference counting frees them.
    - The GIL's switch interval is 1 ms, not 5. In Go a request that arrives is served by an
      idle core at once; here its handler thread gives up the GIL at each socket call and
      then waits for the thread running the fake's kubelet or job controller to let go of
      it, up to the switch interval each time. At 2,000 nodes (one run each): p50 52.8 ms
      and p99 116 ms at 5 ms, 42.7 / 110 at 2 ms, 40.0 / 92.9 at 1 ms, 39.0 / 83.4 at
      0.5 ms; the wall time (43 s) and the controller's CPU per node (1.6-2.0 ms) did not
      grow. The controller's own process keeps Python's defaults."""
    gc.collect()
    gc.disable()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(switch_interval or interval)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        gc.enable()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run(
    nodes: int,
    k8sco_dir: Path | None = None,
    batch_period: float = JOB_SYNC_BATCH_PERIOD,
    api_first: float = API_FIRST,
) -> dict[str, Any]:
    """One run of about ``nodes`` nodes with ``k8sco_dir``'s controller (None: this tree's),
    the fake Job controller syncing a Job ``batch_period`` seconds after its pods' events,
    its loops waiting up to ``api_first`` seconds for requests in flight (0: not)."""
    stage_count = stages(nodes)
    pipeline = rendered(stage_count, k8sco_dir)
    crd = (k8sco_dir or REPO) / "manifests" / "10-crd.yaml"
    with (
        go_like_runtime(),
        # resourceVersions as etcd makes them (decimal): the baseline orders RVs it may only
        # compare for equality, which opaque ones (the fake's default) would break.
        FakeCluster(
            runner=InstantRunner(),
            bookmark_interval=5.0,
            opaque_resource_versions=False,
            job_sync_batch_period=batch_period,
            api_first=api_first,
        ) as fake,
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
                str(crd),
            ],
            check=True,
            capture_output=True,
        )
        client = Cluster(str(kubeconfig))
        watcher = JobWatcher(kubeconfig)
        log = open(Path(tmp) / "controller.log", "wb")  # noqa: SIM115
        controller = start_controller(kubeconfig, log, k8sco_dir=k8sco_dir)
        time.sleep(1.0)
        fake.requests.reset()
        start = time.monotonic()
        client.request(
            "POST", client.ns_path("/apis/k8sco.io/v1alpha1", "pipelines"), body=pipeline
        )
        peak = 0
        while True:
            # The stored object, not a copy (FakeCluster.get): copying a 100,000-node spec
            # twice a second cost the fake cluster's process as much as its API calls.
            obj = fake.store.get(("k8sco.io", "pipelines"), "default", "bench") or {}
            peak = max(peak, rss_kb(controller.pid))
            if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                break
            if controller.poll() is not None:
                raise SystemExit(f"the controller exited: see {tmp}/controller.log")
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
        seen = watcher.seen()
        client.close()
        phase = obj["status"]["phase"]
    latencies = causal_latencies(seen["created"], seen["completed"], seen["path"])
    burst = burst_latencies(seen["created"], seen["completed"], seen["path"])
    jobs = stage_count * 100
    return {
        "nodes": jobs,
        "phase_ok": phase == "Succeeded",
        "wall_s": wall,
        "writes_per_node": writes / jobs,
        "job_writes_per_node": by_resource["jobs"] / jobs,
        "status_writes_per_node": by_resource["pipelines/status"] / jobs,
        "event_writes_per_node": by_resource["events"] / jobs,
        "cpu_ms_per_node": cpu * 1000 / jobs,
        "latency_p50_ms": percentile(latencies, 0.50) * 1000,
        "latency_p99_ms": percentile(latencies, 0.99) * 1000,
        "peak_rss_mb": peak / 1024,
        **{f"burst_{k}th_p50_ms": burst[k] * 1000 for k in BURST_PLACES},
    }


def causal_latencies(
    created: Mapping[str, float], completed: Mapping[str, float], paths: Mapping[str, str]
) -> list[float]:
    """For each Job that had to wait, the time from the completion that let it start to
    its creation. In a stage (a Parallel of 100, at most 50 at once) the first 50 Jobs wait
    for the previous stage's last completion (the first stage's wait for nothing), and the
    (50 + k)-th for the stage's k-th completion, which freed its place. Not "the latest
    completion before it": a controller that creates many Jobs in one go would then be
    credited with completions that came while it was creating, not the ones it waited for.
    """
    stages: dict[int, tuple[list[float], list[float]]] = {}
    for name, path in paths.items():
        stage = int(path.split("/")[1].removeprefix("stage"))
        creates, completes = stages.setdefault(stage, ([], []))
        creates.append(created[name])
        if name in completed:
            completes.append(completed[name])
    out: list[float] = []
    for stage, (creates, completes) in sorted(stages.items()):
        creates.sort()
        completes.sort()
        before = stages.get(stage - 1)
        if before is not None and before[1]:
            out.extend(t - max(before[1]) for t in creates[:50])
        out.extend(t - freed for t, freed in zip(creates[50:], completes, strict=False))
    return out


BURST_PLACES = (1, 16, 32, 50)


def burst_latencies(
    created: Mapping[str, float], completed: Mapping[str, float], paths: Mapping[str, str]
) -> dict[int, float]:
    """The median latency of the k-th Job created of a stage's first 50 (k in
    :data:`BURST_PLACES`), all unblocked by the previous stage's last completion: how fast a
    burst of creates goes through, controller and API server together."""
    stages: dict[int, list[str]] = {}
    for name, path in paths.items():
        stages.setdefault(int(path.split("/")[1].removeprefix("stage")), []).append(name)
    by_place: dict[int, list[float]] = {k: [] for k in BURST_PLACES}
    for stage, names in stages.items():
        before = [completed[n] for n in stages.get(stage - 1, ()) if n in completed]
        if not before:
            continue
        creates = sorted(created[n] for n in names)
        for k in BURST_PLACES:
            if k <= len(creates):
                by_place[k].append(creates[k - 1] - max(before))
    return {k: percentile(v, 0.5) for k, v in by_place.items()}


def baseline_tree(ref: str, into: Path) -> Path:
    """``ref``'s files (``git archive``) under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True
    ).stdout
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


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


def add_api_first(parser: argparse.ArgumentParser, default: float) -> None:
    parser.add_argument(
        "--api-first",
        type=float,
        default=default,
        help="seconds each work item of the fake's job controller and kubelet waits for the "
        "API requests in flight (0: not; fakecluster ClusterConfig.api_first)",
    )


def seconds(parser: argparse.ArgumentParser, flag: str, value: float) -> float:
    """``value``, or a one-line usage error (exit 2) unless it is a finite time from 0."""
    if not 0 <= value < math.inf:  # also NaN
        parser.error(f"{flag} {value}: not a number of seconds from 0")
    return value


N = TypeVar("N", int, float)


def numbers(parser: argparse.ArgumentParser, flag: str, text: str, kind: type[N]) -> list[N]:
    """The comma-separated numbers of ``text``, or a one-line usage error (exit 2)."""
    try:
        return [kind(part) for part in text.split(",")]
    except ValueError:
        parser.error(f"{flag} {text}: not a comma-separated list of numbers")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument(
        "--baseline", default="9be52dd", help="a git ref or a directory of k8sco; '' for none"
    )
    parser.add_argument(
        "--job-sync-batch-period",
        type=float,
        default=JOB_SYNC_BATCH_PERIOD,
        help="seconds the fake Job controller lets a Job's pod events gather (real: 1)",
    )
    add_api_first(parser, API_FIRST)
    args = parser.parse_args()
    period = seconds(parser, "--job-sync-batch-period", args.job_sync_batch_period)
    api_first = seconds(parser, "--api-first", args.api_first)
    sizes = numbers(parser, "--sizes", args.sizes, int)
    if min(sizes) < 1:
        parser.error(f"--sizes {args.sizes}: not a list of node counts from 1, e.g. 1000,10000")
    columns: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        base: Path | None = None
        if args.baseline and Path(args.baseline).is_dir():  # a tree of files: an experiment
            base = Path(args.baseline).resolve()
        elif args.baseline:
            base = baseline_tree(args.baseline, Path(tmp) / "baseline")
        for n in sizes:  # each size: the baseline, then this tree, one after the other
            if base is not None:
                columns.append((Path(args.baseline).name[:9], run(n, base, period, api_first)))
            columns.append(("this", run(n, None, period, api_first)))
    keys = [k for k in columns[0][1] if k != "nodes"]
    header = "".join(f"{str(r['nodes']) + ' ' + who:>18}" for who, r in columns)
    print(f"{'':<24}{header}")
    for key in keys:
        cells = "".join(
            f"{r[key]!s:>18}" if isinstance(r[key], bool) else f"{r[key]:>18.3f}"
            for _, r in columns
        )
        print(f"{key:<24}{cells}")
    if base is not None:
        print("ratios this/baseline (lower is better):")
        for i in range(0, len(columns), 2):
            old, new = columns[i][1], columns[i + 1][1]
            ratios = ", ".join(
                f"{k} {new[k] / old[k]:.2f}"
                for k in (
                    "writes_per_node",
                    "cpu_ms_per_node",
                    "latency_p50_ms",
                    "latency_p99_ms",
                    "peak_rss_mb",
                )
                if old[k]
            )
            print(f"  {new['nodes']} nodes: {ratios}")
    mine = [r for who, r in columns if who == "this"]
    if len(mine) > 1:
        print(
            f"cpu_ms_per_node {mine[-1]['nodes']} / {mine[0]['nodes']} nodes: "
            f"{mine[-1]['cpu_ms_per_node'] / mine[0]['cpu_ms_per_node']:.2f} (target <= 1.5)"
        )
    print(
        "targets: writes_per_node <= 1.2; latency p50 <= 50 ms, p99 <= 500 ms; "
        "peak_rss_mb <= 1000 at 100,000 nodes"
    )
    print(json.dumps([{"controller": who, **r} for who, r in columns]))


if __name__ == "__main__":
    main()
