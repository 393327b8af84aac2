"""Many pipelines at once, the usual CI load, on the fake cluster (issue 12, item 4).

200 pipelines of 20 nodes (a Serial of 4 Parallels of 5) submitted together, against the
same pipeline run alone (one after another), for each number of controller workers
(``K8SCO_WORKERS``) and each container duration asked for. Printed for each:

- scheduling latency: from the completion of a stage's last Job (as a watcher sees it, a
  process of its own as kubectl is: ``SuccessCriteriaMet`` or ``Complete``, whichever comes
  first, as the controller reads it)
  to the creation of each Job of the next stage, which it unblocked, pooled over every
  pipeline, p50/p99. (Not from the pipeline's last completion before the create: instant
  Jobs complete while the controller is still creating their siblings, and a sibling's
  completion would then pass for the cause of the next sibling's create.); and the worst
  served pipeline's own p50 (fairness: no pipeline is starved behind the others);
- time to the first Job: from the Pipeline's create to its first Job's, p50/p99;
- per-pipeline wall time, submit to last Job completion, p50/p99;
- CPU of the controller process, and of this process (fake cluster, submitter);
- the ratios together/alone (the issue's goal: scheduling latency within 2x).

Container durations (``--durations``, seconds): 0 is a container that has exited 0 the
moment it starts. Then 200 x 5 parallel Jobs are a closed loop with no think time: the
machine (API server, simulated Job controller and kubelet, k8sco's controller) is
saturated and the latency measures its capacity, not the controller's fairness. A
duration D > 0 is a container that exits 0 after D seconds (each one drawn uniformly
within ``--jitter`` of D, so the stages of 200 pipelines do not stay in lockstep), without
a process: the load of a CI cluster, whose Jobs run for seconds to minutes. The default
30 s is ~33 Job completions a second for 200 pipelines, which this 2-core machine (fake
cluster and controller) handles at well under its capacity; at 5-10 s (100-200 a second)
it is saturated again. The default run takes about 13 minutes: the timed pipeline runs
alone ``--alone-timed`` times (each 4 stages of D +-jitter), 3 by default, as the p99 alone
is the largest of its samples below 100 (15 a run): from one run it was 9.7 to 20.6 ms in
six runs of the same controller.

    python bench/many_pipelines.py [--pipelines 200] [--alone 5] [--alone-timed 3]
        [--workers 16] [--durations 0,30] [--jitter 0.5] [--api-first 0.002]
        [--compare DIR ...] [--dump FILE]

The fake cluster answers API requests before its simulated job controller and kubelet do
their work (``--api-first``: each of their work items waits for the requests in flight, at
most 2 ms). In a cluster kube-apiserver has cores of its own and the job controller and
kubelets run elsewhere; here they share one GIL with the fake's HTTP handlers, and their
work, about 40% of the fake's CPU, delayed the answers to k8sco's Job creates. One run
each with 30 s containers (without it: the three runs before the gate existed):
p99 together 28.3 ms with the gate, against 36.9, 37.9 and 42.6 ms without; p50 9.4
against 10.6-11.6 ms. Two default runs with it: p99 together/alone 1.97x (32.4 / 16.4
ms), p50 1.36x; then 6.50x (104.1 / 16.0 ms), p50 1.80x, with the CPU per Job of both the
controller and the fake 23% higher than in the first (a slower machine that hour?). At 0 s:
p99 24x and 25x, p50 12x and 14x (session 8's last run: p99 70x, p50 29x). With the fake's
watches writing a burst's events in one go (36508d7), two default runs: p99 2.38x (38.7 /
16.3 ms) and 1.90x (33.7 / 17.7 ms), p50 1.21x and 1.03x; at 0 s p99 19x and 23x. The tail
together is the first stages' ends, 100-130 Job creates a second for about 3 s (a stage ends
with the last of its 5 Jobs, drawn within 15-45 s, so most end near 45 s). The controller
and the fake then need 11-13.5 ms of CPU a Job between them: 1.4-1.7 of these 2 cores.
With the namespace's Secret read shared by its Pipelines (5c91640) and Events written by a
thread of their own (ef4d993), one default run: p99 together 26.2 ms, the lowest yet, but
2.57x the 10.2 ms alone; p50 1.35x (7.7 / 5.7 ms); 3.69 API requests a Job instead of 3.83,
controller 5.32 and fake 5.30 ms of CPU a Job; at 0 s p50 10.6x, p99 20.2x.

``--compare DIR`` runs every configuration a second time, side by side, with the
controller of another tree (e.g. ``git archive`` of a commit, or a copy with a change to
try): its k8sco, this tree's fake cluster. The controller is a subprocess
(``k8sco controller``), as in bench/controller.py, and so is the Job watcher; the fake
cluster and the submitter share this process. Two shared cores: compare within one run.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from controller import (  # noqa: E402
    API_FIRST,
    JOB_SYNC_BATCH_PERIOD,
    InstantRunner,
    JobWatcher,
    add_api_first,
    cpu_seconds,
    go_like_runtime,
    numbers,
    percentile,
    seconds,
    start_controller,
)
from fakecluster import FakeCluster  # noqa: E402
from fakecluster.faults import WRITE_VERBS  # noqa: E402
from fakecluster.runners import ContainerLaunch  # noqa: E402

import k8sco as co  # noqa: E402
from k8sco.kube.client import Cluster  # noqa: E402
from k8sco.kube.process import DEFAULT_WORKERS  # noqa: E402
from k8sco.render.pipeline import render_pipeline  # noqa: E402

PIPELINES = "/apis/k8sco.io/v1alpha1"
PIPELINE_KEY = ("k8sco.io", "pipelines")  # the fake's store key
STAGES, WIDTH = 4, 5  # 20 nodes


def tree() -> co.Serial:
    with co.Serial() as root:
        for i in range(STAGES):
            with co.Parallel(name=f"stage{i}"):
                for j in range(WIDTH):
                    co.Exec("true", name=f"n{j}")
    return root


class Sleeping:
    """A container that exits 0 ``seconds`` after it started (143 or 137 if terminated or
    killed first), without a process."""

    def __init__(self, seconds: float) -> None:
        self.container_id = f"sleep://{id(self)}"
        self._end = time.monotonic() + seconds
        self._stopped = threading.Event()
        self._code = 0

    def wait(self) -> int:
        if self._stopped.wait(max(self._end - time.monotonic(), 0.0)):
            return self._code
        return 0

    def terminate(self) -> None:
        self._stop(143)

    def kill(self) -> None:
        self._stop(137)

    def _stop(self, code: int) -> None:
        if not self._stopped.is_set():
            self._code = code
            self._stopped.set()


class SleepRunner:
    """Containers of ``seconds`` each, uniformly within ``jitter`` (a fraction) of it,
    drawn from the pod's name so that a run can be repeated."""

    def __init__(self, seconds: float, jitter: float) -> None:
        self.seconds = seconds
        self.jitter = jitter

    def start(self, launch: ContainerLaunch) -> Sleeping:
        spread = random.Random(launch.pod).uniform(-self.jitter, self.jitter)
        return Sleeping(self.seconds * (1 + spread))


class Seen:
    """When each Job was created and completed, by pipeline, as a watcher in a process of
    its own saw it (bench/controller.py ``watch_jobs``)."""

    def __init__(self, seen: Mapping[str, Mapping[str, Any]]) -> None:
        self.created: dict[str, dict[str, float]] = {}
        self.completed: dict[str, dict[str, float]] = {}
        self.stage: dict[str, int] = {}  # a Job's stage, by its name
        for job, pipeline in seen["pipeline"].items():
            node = seen["path"].get(job, "")
            if node.startswith("/stage"):  # /stage<i>/n<j>
                self.stage[job] = int(node.split("/")[1].removeprefix("stage"))
            self.created.setdefault(pipeline, {})[job] = seen["created"][job]
            if job in seen["completed"]:
                self.completed.setdefault(pipeline, {})[job] = seen["completed"][job]

    def figures(self, submitted: dict[str, float]) -> dict[str, list[float]]:
        latencies: list[float] = []
        first: list[float] = []
        wall: list[float] = []
        medians: list[float] = []  # each pipeline's own p50
        for name, at in submitted.items():
            created = self.created.get(name, {})
            completed = self.completed.get(name, {})
            if created:
                first.append(min(created.values()) - at)
            if completed:
                wall.append(max(completed.values()) - at)
            # Each stage's Jobs wait for the previous stage's last completion.
            ends: dict[int, float] = {}
            for job, when in completed.items():
                stage = self.stage[job]
                ends[stage] = max(ends.get(stage, when), when)
            own = [
                when - ends[self.stage[job] - 1]
                for job, when in created.items()
                if self.stage[job] > 0  # the first stage waits for nothing
            ]
            latencies += own
            if own:
                medians.append(percentile(own, 0.50))
        return {"latency": latencies, "first": first, "wall": wall, "median": medians}

    def raw(self, submitted: dict[str, float]) -> dict[str, Any]:
        return {
            name: {
                "submitted": at,
                "created": dict(self.created.get(name, {})),
                "completed": dict(self.completed.get(name, {})),
                "stage": {job: self.stage[job] for job in self.created.get(name, {})},
            }
            for name, at in submitted.items()
        }


def submit(client: Cluster, names: list[str], submitted: dict[str, float]) -> None:
    def one(name: str) -> None:
        body = render_pipeline(tree(), name, "default", image="img:1")
        submitted[name] = time.monotonic()
        client.request("POST", client.ns_path(PIPELINES, "pipelines"), body=body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, names))


def wait_done(fake: FakeCluster, watcher: Any, names: list[str], limit: float) -> None:
    """Until every Pipeline of ``names`` has succeeded, as its status says (the stored
    object, not a copy: FakeCluster.get copies)."""
    deadline = time.monotonic() + limit
    while True:
        phases = [
            ((fake.store.get(PIPELINE_KEY, "default", name) or {}).get("status") or {}).get("phase")
            for name in names
        ]
        if all(phase == "Succeeded" for phase in phases):
            return
        if "Failed" in phases:
            raise SystemExit(f"pipeline {names[phases.index('Failed')]} failed")
        if not watcher.is_alive():
            raise SystemExit(f"the bench's Job watcher exited ({watcher.exitcode})")
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(names)} pipelines not finished within {limit:.0f}s")
        time.sleep(0.2)


def run(
    workers: int,
    pipelines: int,
    alone: int,
    duration: float,
    jitter: float,
    k8sco_dir: Path | None,
    api_first: float = API_FIRST,
) -> dict[str, dict[str, Any]]:
    runner = SleepRunner(duration, jitter) if duration > 0 else InstantRunner()
    with (
        # The fake cluster stands for Go programs (bench/controller.py), but keeps Python's
        # 5 ms switch interval: at 1 ms the 30 s run's p99 together/alone was 7.09x and
        # 7.52x in two runs, 4.04x at 5 ms in one, with less CPU in the fake (6.4 ms a Job,
        # 9.0 at 1 ms), when the watcher shared this process; with the watcher in its own,
        # p99 together was 40.1 ms at 1 ms against 31.2 and 35.3 ms at 5 ms.
        go_like_runtime(switch_interval=None),
        # A node as big as a CI cluster: 1,000 Jobs at once are never Unschedulable.
        FakeCluster(
            runner=runner,
            bookmark_interval=5.0,
            node_capacity={"cpu": "100000", "memory": "1000Ti", "pods": "100000"},
            job_sync_batch_period=JOB_SYNC_BATCH_PERIOD,
            api_first=api_first,
        ) as fake,
        tempfile.TemporaryDirectory() as tmp,
    ):
        kubeconfig = Path(tmp) / "kubeconfig"
        fake.write_kubeconfig(kubeconfig)
        from k8sco.render.crd import crd

        fake.create(crd())
        client = Cluster(str(kubeconfig))
        watcher = JobWatcher(kubeconfig)
        log = open(Path(tmp) / "controller.log", "wb")  # noqa: SIM115
        controller = start_controller(
            kubeconfig, log, {"K8SCO_WORKERS": str(workers)}, k8sco_dir=k8sco_dir
        )
        limit = 120 + 20 * duration * STAGES
        try:
            time.sleep(1.0)
            out: dict[str, dict[str, Any]] = {}
            # One at a time: each pipeline alone on the controller.
            single: dict[str, float] = {}
            cpu0, own0 = cpu_seconds(controller.pid), own_cpu()
            calls = fake.requests.snapshot()
            for i in range(alone):
                name = f"alone{i}"
                submit(client, [name], single)
                wait_done(fake, watcher.process, [name], limit)
            out["alone"] = {
                "count": alone,
                "cpu_s": cpu_seconds(controller.pid) - cpu0,
                "fake_cpu_s": own_cpu() - own0,
                "requests": requests_since(calls, fake.requests.snapshot()),
            }
            # All together.
            together: dict[str, float] = {}
            names = [f"ci{i}" for i in range(pipelines)]
            cpu0, own0 = cpu_seconds(controller.pid), own_cpu()
            calls = fake.requests.snapshot()
            start = time.monotonic()
            submit(client, names, together)
            wait_done(fake, watcher.process, names, 10 * limit)
            out["many"] = {
                "count": pipelines,
                "cpu_s": cpu_seconds(controller.pid) - cpu0,
                "fake_cpu_s": own_cpu() - own0,
                "requests": requests_since(calls, fake.requests.snapshot()),
                "wall_all_s": time.monotonic() - start,
            }
            seen = Seen(watcher.seen())
            for what, submitted in (("alone", single), ("many", together)):
                out[what].update(seen.figures(submitted), raw=seen.raw(submitted))
            return out
        finally:
            controller.terminate()
            controller.wait(10)
            log.close()
            watcher.close()
            client.close()


def requests_since(
    before: dict[tuple[str, str], int], after: dict[tuple[str, str], int]
) -> dict[str, int]:
    """API requests between two snapshots of the fake's counter (the controller's, and
    the bench's few: a Pipeline create each, its watch): all, and the writes that are
    not Job creates, which a pipeline's scheduling latency waits behind."""
    made = {k: n - before.get(k, 0) for k, n in after.items()}

    def writes(resource: str) -> int:
        return sum(n for (v, r), n in made.items() if r == resource and v in WRITE_VERBS)

    status, events = writes("pipelines/status"), writes("events")
    return {"all": sum(made.values()), "status": status, "events": events}


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
    # Fairness: the pipeline worst served, by its own median.
    out["worst_pipeline_p50_ms"] = max(figures["median"], default=float("nan")) * 1000
    jobs = figures["count"] * STAGES * WIDTH
    out["controller_cpu_ms_per_job"] = figures["cpu_s"] * 1000 / jobs
    # With the submitter (the watcher has a process of its own).
    out["fake_cluster_cpu_ms_per_job"] = figures["fake_cpu_s"] * 1000 / jobs
    out["api_requests_per_job"] = figures["requests"]["all"] / jobs
    out["status_writes_per_job"] = figures["requests"]["status"] / jobs
    out["event_writes_per_job"] = figures["requests"]["events"] / jobs
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipelines", type=int, default=200)
    parser.add_argument("--alone", type=int, default=5, help="runs alone, instant containers")
    parser.add_argument("--alone-timed", type=int, default=3, help="runs alone, timed ones")
    parser.add_argument(
        "--workers", default=str(DEFAULT_WORKERS), help="K8SCO_WORKERS values, e.g. 4,16"
    )
    parser.add_argument("--durations", default="0,30", help="container seconds (0: instant)")
    parser.add_argument("--jitter", type=float, default=0.5, help="fraction of a duration")
    parser.add_argument(
        "--compare",
        type=Path,
        action="append",
        default=[],
        help="another tree's controller, side by side (repeatable)",
    )
    parser.add_argument("--dump", type=Path, help="write every Job's times (JSON) here")
    add_api_first(parser, API_FIRST)
    args = parser.parse_args()
    api_first = seconds(parser, "--api-first", args.api_first)
    durations = [
        seconds(parser, "--durations", d)
        for d in numbers(parser, "--durations", args.durations, float)
    ]
    worker_counts = numbers(parser, "--workers", args.workers, int)
    # Each ratio divides by the runs alone: none, or no pipeline together, printed NaN.
    needed = [("--pipelines", args.pipelines), ("--workers", min(worker_counts))]
    if 0 in durations:
        needed.append(("--alone", args.alone))
    if any(durations):
        needed.append(("--alone-timed", args.alone_timed))
    for flag, count in needed:
        if count < 1:
            parser.error(f"{flag} {count}: at least 1")
    if not 0 <= args.jitter < 1:  # also NaN; at 1 a container could last 0 s
        parser.error(f"--jitter {args.jitter}: a fraction of the duration, from 0 to below 1")
    controllers: list[tuple[str, Path | None]] = [("this", None)]
    controllers += [(str(other), other.resolve()) for other in args.compare]
    results: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    rows: list[tuple[str, float, float]] = []
    for duration in durations:
        for workers in worker_counts:
            for who, k8sco_dir in controllers:
                label = f"{who} workers={workers} duration={duration:g}s"
                alone_runs = args.alone if duration == 0 else args.alone_timed
                found = run(
                    workers,
                    args.pipelines,
                    alone_runs,
                    duration,
                    args.jitter,
                    k8sco_dir,
                    api_first,
                )
                alone, many = summary(found["alone"]), summary(found["many"])
                results[label] = {
                    "alone": alone,
                    "many": many,
                    "many_wall_all_s": found["many"]["wall_all_s"],
                }
                raw[label] = {"alone": found["alone"]["raw"], "many": found["many"]["raw"]}
                spread = f" +-{args.jitter * 100:.0f}%" if duration > 0 else ""
                print(
                    f"\n{label}{spread}: {args.pipelines} pipelines of {STAGES * WIDTH} nodes "
                    f"together (all done in {found['many']['wall_all_s']:.1f}s) vs one alone "
                    f"({alone_runs} runs)",
                    flush=True,
                )
                print(f"{'':<30}{'alone':>12}{'together':>12}{'ratio':>10}")
                for key in alone:
                    ratio = many[key] / alone[key] if alone[key] else float("nan")
                    digits = 2 if key.endswith("_per_job") else 1
                    print(
                        f"{key:<30}{alone[key]:>12.{digits}f}{many[key]:>12.{digits}f}"
                        f"{ratio:>10.2f}"
                    )
                rows.append(
                    (
                        label,
                        many["latency_p50_ms"] / alone["latency_p50_ms"],
                        many["latency_p99_ms"] / alone["latency_p99_ms"],
                    )
                )
    print("\nscheduling latency together/alone (goal: within 2x)")
    for label, p50, p99 in rows:
        print(f"  {label:<44} p50 {p50:>6.2f}x  p99 {p99:>6.2f}x")
    if args.dump is not None:
        args.dump.write_text(json.dumps(raw))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
