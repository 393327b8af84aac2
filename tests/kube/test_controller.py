"""The controller's logic against an in-memory API and a fake clock: ownership, refused
creates, pods that cannot start, guarded status writes, Events (no HTTP)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import k8sco as co
from k8sco.engine import Graph, NodeState, State
from k8sco.errors import K8scoError
from k8sco.kube.controller import Controller, Stats, limits_from_env
from k8sco.kube.workqueue import WorkQueue
from k8sco.reconcile.problems import Limits
from k8sco.render.names import job_name
from k8sco.render.pipeline import recorded_states, render_pipeline

from .fakeapi import FakeApi, api_error

T0 = 1_800_000_000.0
PIPES = "/apis/k8sco.io/v1alpha1/namespaces/default/pipelines"
JOBS = "/apis/batch/v1/namespaces/default/jobs"
PODS = "/api/v1/namespaces/default/pods"
EVENTS = "/api/v1/namespaces/default/events"
KEY = ("default", "demo")
A = job_name("demo", "/a")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class World:
    def __init__(
        self, root: co.Node, api: Callable[[Clock], FakeApi] = FakeApi, **options: Any
    ) -> None:
        self.root = root
        self.graph = Graph.from_tree(root)
        self.clock = Clock()
        self.api = api(self.clock)
        obj = render_pipeline(root, "demo", "default", image="img:1")
        obj["metadata"]["generation"] = 1
        self.api.put(PIPES, obj)
        options.setdefault("limits", Limits(foreign_timeout=600, start_timeout=600))
        options.setdefault("status_interval", 0.0)  # every decision written at once
        self.ctl = Controller(self.api, "default", clock=self.clock, **options)

    def sync(self) -> None:
        """What the watches would have brought by now, then one reconciliation."""
        self.ctl._replace("pipelines", "default", self.api.items(PIPES))
        self.ctl._replace("jobs", "default", self.api.items(JOBS))
        self.ctl.sync(KEY)

    @property
    def pipeline(self) -> dict[str, Any]:
        return self.api.objects[f"{PIPES}/demo"]

    @property
    def status(self) -> dict[str, Any]:
        return self.pipeline.get("status") or {}

    def node(self, path: str) -> NodeState:
        return recorded_states(self.graph, self.status).get(path, NodeState())

    def events(self, reason: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.api.items(EVENTS) if reason is None or e["reason"] == reason]

    def job(self, path: str) -> dict[str, Any]:
        return self.api.objects[f"{JOBS}/{job_name('demo', path)}"]

    def set_job_status(self, path: str, **status: Any) -> None:
        self.job(path)["status"] = status
        self.job(path)["metadata"]["resourceVersion"] += "x"

    def spec(self, **changes: Any) -> None:
        self.pipeline["spec"].update(changes)
        self.pipeline["metadata"]["generation"] += 1
        self.pipeline["metadata"]["resourceVersion"] += "s"


def one(command: str = "exit 1") -> co.Serial:
    with co.Serial() as root:
        co.Exec(command, name="a")
    return root


def wide(n: int) -> co.Parallel:
    with co.Parallel() as root:
        for i in range(n):
            co.Exec(f"echo {i}", name=f"n{i}")
    return root


def foreign_job(path: str, *, labelled: bool = True, complete: bool = True) -> dict[str, Any]:
    """A Job under the node's name left by an earlier Pipeline "demo" (another uid)."""
    meta: dict[str, Any] = {
        "name": job_name("demo", path),
        "namespace": "default",
        "annotations": {"k8sco.io/path": path},
        "ownerReferences": [
            {
                "apiVersion": "k8sco.io/v1alpha1",
                "kind": "Pipeline",
                "name": "demo",
                "uid": "old-uid",
            }
        ],
    }
    if labelled:
        meta["labels"] = {"app.kubernetes.io/managed-by": "k8sco", "k8sco.io/pipeline": "demo"}
    status: dict[str, Any] = {}
    if complete:
        status = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "status": status}


# --- 1. ownership --------------------------------------------------------------------------


def test_a_job_under_a_nodes_name_that_the_pipeline_does_not_own_is_never_adopted() -> None:
    w = World(one("exit 1"))
    w.api.put(JOBS, foreign_job("/a"))  # done, but an earlier pipeline's
    w.sync()
    assert w.status["phase"] == "Pending"
    rec = w.node("/a")
    assert rec.state is State.QUEUED
    assert rec.reason is not None and A in rec.reason and "old-uid" in rec.reason
    assert w.api.count("POST", JOBS) == 0
    assert len(w.events("JobNotOwned")) == 1
    w.clock.now += 599
    w.sync()
    assert w.node("/a").state is State.QUEUED
    assert len(w.events("JobNotOwned")) == 1  # not repeated
    w.clock.now += 2
    w.sync()
    rec = w.node("/a")
    assert rec.state is State.ERROR
    assert rec.reason is not None and f"kubectl delete job {A} -n default" in rec.reason
    assert w.status["phase"] == "Failed"


def test_the_node_runs_once_the_garbage_collector_has_removed_the_old_job() -> None:
    """k8sco apply --name X right after k8sco delete X: the old Jobs go late."""
    w = World(one())
    w.api.put(JOBS, foreign_job("/a"))
    w.sync()
    assert w.api.count("POST", JOBS) == 0
    del w.api.objects[f"{JOBS}/{A}"]  # the GC's late delete
    w.clock.now += 1
    w.sync()
    job = w.job("/a")
    assert job["metadata"]["ownerReferences"][0]["uid"] == w.pipeline["metadata"]["uid"]
    assert w.node("/a") == NodeState(State.QUEUED)


def test_already_exists_for_a_job_of_someone_else_is_read_and_waited_out() -> None:
    w = World(one())
    w.api.put(JOBS, foreign_job("/a", labelled=False))  # not in the controller's cache
    w.sync()
    assert w.api.count("POST", JOBS) == 1 and w.api.count("GET", f"{JOBS}/{A}") == 1
    rec = w.node("/a")
    assert rec.state is State.QUEUED and rec.reason is not None and "old-uid" in rec.reason
    assert len(w.events("JobNotOwned")) == 1
    del w.api.objects[f"{JOBS}/{A}"]
    w.clock.now += 5
    w.sync()
    assert w.job("/a")["metadata"]["ownerReferences"][0]["uid"] == w.pipeline["metadata"]["uid"]
    assert w.node("/a") == NodeState(State.QUEUED)


def test_already_exists_for_its_own_job_is_success() -> None:
    w = World(one())
    w.sync()
    w.ctl.jobs.clear()  # a restarted controller whose cache lags
    w.ctl.sync(KEY)
    assert w.node("/a") == NodeState(State.QUEUED)
    assert w.events("JobNotOwned") == [] and w.events("FailedCreate") == []


# --- 2. refused creates ---------------------------------------------------------------------

PERMANENT = [
    (
        403,
        'jobs.batch is forbidden: User "system:serviceaccount:k8sco-system:k8sco" cannot '
        'create resource "jobs" in API group "batch" in the namespace "default"',
    ),
    (422, 'Job.batch "demo-a" is invalid: spec.template.spec.containers[0].image: Required'),
    (400, 'admission webhook "deny.example.com" denied the request: no jobs today'),
    (403, 'admission webhook "policy.example.com" denied the request: not allowed'),
]


@pytest.mark.parametrize(("code", "message"), PERMANENT)
def test_a_permanent_refusal_fails_the_node_and_the_status_is_still_written(
    code: int, message: str
) -> None:
    w = World(one())
    w.api.fail("POST", JOBS, api_error(code, message))
    w.sync()
    rec = w.node("/a")
    assert rec.state is State.ERROR
    assert rec.reason is not None and message in rec.reason
    assert w.status["phase"] == "Failed"
    failed = w.events("FailedCreate")
    assert len(failed) == 1 and message in failed[0]["message"]
    assert failed[0]["type"] == "Warning"


TRANSIENT = [
    (
        403,
        'jobs.batch "demo-a" is forbidden: exceeded quota: jobs, requested: '
        "count/jobs.batch=1, used: count/jobs.batch=2, limited: count/jobs.batch=2",
    ),
    (429, "Too many requests, please try again later."),
    (500, "etcdserver: request timed out"),
    (0, "cannot reach the Kubernetes API at https://10.0.0.1: timed out"),
]


@pytest.mark.parametrize(("code", "message"), TRANSIENT)
def test_a_transient_refusal_keeps_the_node_waiting_and_retries_with_backoff(
    code: int, message: str
) -> None:
    w = World(wide(3))
    w.api.fail("POST", JOBS, api_error(code, message), times=2)
    w.sync()
    assert w.api.count("POST", JOBS) == 1  # the others are not sent into the same wall
    for path in ("/n0", "/n1", "/n2"):
        rec = w.node(path)
        assert rec.state is State.QUEUED
        assert rec.reason == f"waiting: {message}"
    assert w.status["phase"] == "Pending"
    (event,) = w.events("FailedCreate")  # one for the three nodes refused alike
    assert event["message"] == (
        f"cannot create the Job of 3 nodes (/n0, /n1, /n2), transient: {message}"
    )
    w.clock.now += 0.5
    w.sync()
    assert w.api.count("POST", JOBS) == 1  # backing off
    w.clock.now += 1
    w.sync()
    assert w.api.count("POST", JOBS) == 2  # tried again, refused again
    assert len(w.events("FailedCreate")) == 1  # the same message is not news
    w.clock.now += 2.5
    w.sync()
    assert w.api.count("POST", JOBS) == 5
    for path in ("/n0", "/n1", "/n2"):
        assert w.node(path) == NodeState(State.QUEUED)


def test_a_refused_create_does_not_stop_the_other_nodes_or_later_reconciliations() -> None:
    w = World(wide(2))
    w.api.fail("POST", JOBS, api_error(422, 'Job.batch "demo-n0" is invalid'))
    w.sync()
    assert w.node("/n0").state is State.ERROR
    assert w.node("/n1") == NodeState(State.QUEUED)
    assert w.api.count("POST", JOBS) == 2


class Batches(FakeApi):
    """Job creates meet at one barrier per expected batch: a batch whose POSTs were sent
    one after another never gets past its barrier (BrokenBarrierError after 10 s)."""

    def __init__(self, clock: Clock, sizes: list[int], refuse: int | None = None) -> None:
        super().__init__(clock)
        self.batch_of = [i for i, n in enumerate(sizes) for _ in range(n)]
        self.barriers = [threading.Barrier(n, timeout=10) for n in sizes]
        self.refuse = refuse  # the index of the POST answered 429
        self.posts = itertools.count()
        self.count_lock = threading.Lock()

    def request(self, method: str, path: str, **kw: Any) -> Any:
        if method == "POST" and path == JOBS:
            with self.count_lock:
                i = next(self.posts)
            self.barriers[self.batch_of[i]].wait()
            if i == self.refuse:
                self.calls.append((method, path))
                raise api_error(429, "too many requests")
        return super().request(method, path, **kw)


def test_a_stage_is_created_one_job_first_then_in_doubling_batches_at_once() -> None:
    """The slow start of Kubernetes' own controllers: 1, then 2, 4, ... POSTs in flight."""
    w = World(wide(8), api=lambda clock: Batches(clock, [1, 2, 4, 1]))
    w.sync()
    assert w.api.count("POST", JOBS) == 8
    for i in range(8):
        assert w.job(f"/n{i}")["metadata"]["annotations"]["k8sco.io/path"] == f"/n{i}"


def test_a_transient_refusal_in_a_batch_stops_the_batches_after_it() -> None:
    w = World(wide(8), api=lambda clock: Batches(clock, [1, 2, 4, 1], refuse=2))
    w.sync()
    assert w.api.count("POST", JOBS) == 3  # the whole batch went; nothing after it
    paths = [f"/n{i}" for i in range(8)]
    created = [p for p in paths if f"{JOBS}/{job_name('demo', p)}" in w.api.objects]
    assert len(created) == 2
    for i in range(8):
        rec = w.node(f"/n{i}")
        assert rec.state is State.QUEUED
        if f"/n{i}" not in created:
            assert rec.reason == "waiting: too many requests"


def test_a_wake_up_displaced_by_the_min_interval_is_armed_again() -> None:
    """The work queue keeps one time per key, the earliest (as client-go's): a turn held
    back by min_interval replaced a later wake-up (a retention deletion, a pod probe),
    which was then lost until the next resync, 30 s later."""
    w = World(one(), min_interval=1.0)
    w.sync()
    w.ctl.sync = lambda key: None  # type: ignore[method-assign]  # the turns, not the work
    ctl, due = w.ctl, T0 + 10
    ctl.queue, ctl._timers = WorkQueue(clock=w.clock), {}  # only the wake-up armed below
    ctl._last_sync[KEY] = w.clock.now  # just reconciled
    ctl._wake(KEY, due)
    ctl.queue.add(KEY)  # an event
    assert ctl.queue.get(timeout=1) == KEY
    ctl._turn(KEY, None)  # too soon: put off by min_interval, to T0 + 1
    ctl.queue.done(KEY)
    w.clock.now += 1.0
    assert ctl.queue.get(timeout=1) == KEY
    ctl._turn(KEY, None)
    ctl.queue.done(KEY)
    assert ctl.queue.delayed(KEY) == due


# --- 3. Job conditions, pods that cannot start ------------------------------------------------


def test_failure_target_fails_the_node_before_the_terminal_condition() -> None:
    w = World(one())
    w.sync()
    w.set_job_status(
        "/a",
        active=1,
        failed=1,
        conditions=[{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"}],
    )
    w.sync()
    assert w.node("/a").state is State.ERROR
    assert w.status["phase"] == "Failed"


def test_a_failed_node_says_how_its_container_ended() -> None:
    """A command that is not in the image: the node says so, not just "failed"."""
    w = World(one("nope"))
    w.sync()
    job = w.job("/a")
    message = 'exec: "nope": executable file not found in $PATH'
    w.api.put(
        PODS,
        {
            "metadata": {
                "name": f"{A}-x1",
                "labels": {"controller-uid": job["metadata"]["uid"]},
            },
            "status": {
                "phase": "Failed",
                "containerStatuses": [
                    {
                        "name": "main",
                        "state": {
                            "terminated": {
                                "reason": "StartError",
                                "exitCode": 128,
                                "message": message,
                            }
                        },
                    }
                ],
            },
        },
    )
    w.set_job_status(
        "/a",
        failed=1,
        conditions=[{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"}],
    )
    w.sync()
    assert w.node("/a").reason == f"failed: StartError: {message} (exit code 128)"
    w.clock.now += 60
    w.sync()
    w.sync()
    assert w.api.count("GET", PODS) == 1  # looked at once


def pending_pod(job: dict[str, Any], waiting: dict[str, str] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Pending"}
    if waiting:
        status["containerStatuses"] = [{"name": "main", "state": {"waiting": waiting}}]
    return {
        "metadata": {
            "name": job["metadata"]["name"] + "-x1",
            "labels": {"controller-uid": job["metadata"]["uid"]},
        },
        "status": status,
    }


def test_a_pod_that_cannot_pull_its_image_shows_why_then_fails_after_the_start_timeout() -> None:
    w = World(one())
    w.sync()
    job = w.job("/a")
    w.set_job_status("/a", active=1, ready=0)
    why = {"reason": "ErrImagePull", "message": 'pull access denied for "img:1"'}
    w.api.put(PODS, pending_pod(job, why))
    w.clock.now += 6  # past probe_after (5 s)
    w.sync()  # looks at the pod, once its decisions are written
    w.sync()  # decides on what the look found (woken at once)
    rec = w.node("/a")
    assert rec.state is State.QUEUED
    assert rec.reason == 'waiting: ErrImagePull: pull access denied for "img:1"'
    assert w.status["message"] == '/a: waiting: ErrImagePull: pull access denied for "img:1"'
    w.clock.now += 600
    w.sync()
    rec = w.node("/a")
    assert rec.state is State.ERROR
    assert rec.reason == 'could not start in 10m: ErrImagePull: pull access denied for "img:1"'
    assert w.api.count("DELETE", f"{JOBS}/{A}") == 1
    assert f"{JOBS}/{A}" not in w.api.objects
    w.clock.now += 5
    w.sync()
    assert w.node("/a").state is State.ERROR  # the record outlives its Job


def test_the_start_timeout_counts_on_the_controllers_clock_not_the_servers() -> None:
    w = World(one())
    w.sync()
    job = w.job("/a")
    job["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"  # a server clock far off
    w.set_job_status("/a", active=1, ready=0)
    w.api.put(PODS, pending_pod(job, {"reason": "ImagePullBackOff", "message": "back-off"}))
    w.clock.now += 6  # past probe_after (5 s)
    w.sync()  # looks at the pod, once its decisions are written
    w.sync()  # decides on what the look found (woken at once)
    assert w.node("/a") == NodeState(State.QUEUED, 1, reason="waiting: ImagePullBackOff: back-off")
    w.clock.now += 599
    w.sync()
    assert w.node("/a").state is State.QUEUED
    w.clock.now += 2
    w.sync()
    assert w.node("/a").state is State.ERROR


def test_a_nodes_start_timeout_overrides_the_controllers() -> None:
    with co.Serial(start_timeout="30s") as root:
        co.Exec("echo a", name="a")
    w = World(root)
    w.sync()
    job = w.job("/a")
    w.set_job_status("/a", active=1, ready=0)
    w.api.put(PODS, pending_pod(job, {"reason": "ErrImagePull", "message": "not found"}))
    w.clock.now += 6  # past probe_after (5 s)
    w.sync()  # looks at the pod, once its decisions are written
    w.sync()  # decides on what the look found (woken at once)
    assert w.node("/a").state is State.QUEUED
    w.clock.now += 30
    w.sync()
    assert w.node("/a").reason == "could not start in 30s: ErrImagePull: not found"


def test_a_job_whose_pods_are_refused_shows_the_failed_create_event() -> None:
    w = World(one())
    w.sync()
    job = w.job("/a")
    message = (
        'Error creating: pods "demo-a-x1" is forbidden: violates PodSecurity '
        '"restricted:latest": runAsNonRoot != true'
    )
    w.api.put(
        EVENTS,
        {
            "metadata": {"name": "demo-a.1"},
            "involvedObject": {"kind": "Job", "name": "demo-a", "uid": job["metadata"]["uid"]},
            "reason": "FailedCreate",
            "type": "Warning",
            "message": message,
            "lastTimestamp": "2027-01-15T08:00:01Z",
        },
    )
    w.clock.now += 6  # past probe_after (5 s)
    w.sync()  # looks at the pod, once its decisions are written
    w.sync()  # decides on what the look found (woken at once)
    assert w.node("/a").reason == f"waiting: FailedCreate: {message}"


def test_only_queued_jobs_are_looked_at_and_at_a_bounded_rate() -> None:
    w = World(wide(40), probes_per_second=10.0)
    w.sync()
    for i in range(40):
        if i < 20:
            w.set_job_status(f"/n{i}", active=1, ready=1)  # running: never looked at
    w.clock.now += 6  # past probe_after (5 s)
    w.sync()
    assert w.api.count("GET", PODS) == 10
    w.clock.now += 0.5
    w.sync()
    assert w.api.count("GET", PODS) == 15
    w.clock.now += 10
    w.sync()
    assert w.api.count("GET", PODS) == 25
    assert w.ctl.stats.probes == 25


def test_a_node_never_goes_back_from_running_to_queued() -> None:
    w = World(one())
    w.sync()
    w.set_job_status("/a", active=1, ready=1, startTime="2027-01-15T08:00:00Z")
    w.sync()
    assert w.node("/a").state is State.RUNNING
    w.set_job_status("/a", active=1, ready=0, failed=1, startTime="2027-01-15T08:00:00Z")
    w.sync()
    assert w.node("/a").state is State.RUNNING


# --- 4/5. resourceVersions, guarded status writes ----------------------------------------------


def test_watch_events_replace_the_cache_whatever_their_resource_versions_look_like() -> None:
    w = World(one())
    w.sync()
    obj = dict(w.pipeline, metadata=dict(w.pipeline["metadata"], resourceVersion="20"))
    w.ctl._apply_event("pipelines", "MODIFIED", obj)
    later = dict(obj, metadata=dict(obj["metadata"], resourceVersion="3"))
    later["spec"] = dict(obj["spec"], stop=True)
    w.ctl._apply_event("pipelines", "MODIFIED", later)
    assert w.ctl.pipelines[KEY]["spec"]["stop"] is True


def test_a_status_write_from_a_stale_read_is_refused_and_decided_again() -> None:
    """Two leaders for a moment: the one that read an older Pipeline loses the write."""
    w = World(one())
    w.sync()
    w.set_job_status("/a", active=1, ready=1)
    w.ctl._replace("jobs", "default", w.api.items(JOBS))
    while (queued := w.ctl.queue.get(timeout=0)) is not None:  # what the watches queued
        w.ctl.queue.done(queued)
    # Someone else writes the Pipeline after this controller read it.
    w.pipeline["status"] = dict(w.pipeline["status"], message="the other leader")
    w.pipeline["metadata"]["resourceVersion"] += "o"
    w.ctl.sync(KEY)
    assert w.status["message"] == "the other leader"  # not overwritten
    assert w.events("NodesStarted") == []  # nothing announced from a refused write
    assert w.ctl.queue.get(timeout=0) == KEY  # queued again by the refused write
    w.ctl.queue.done(KEY)
    assert (
        w.ctl.pipelines[KEY]["metadata"]["resourceVersion"]
        == w.pipeline["metadata"]["resourceVersion"]
    )
    w.ctl.sync(KEY)
    assert w.node("/a").state is State.RUNNING
    assert len(w.events("NodesStarted")) == 1


# --- 6. code health ---------------------------------------------------------------------------


def test_an_invalid_pipeline_gets_one_event_per_generation() -> None:
    w = World(one())
    w.pipeline["spec"] = {"tree": "{not json"}
    for _ in range(3):
        w.sync()
        w.clock.now += 60
    assert len(w.events("InvalidSpec")) == 1
    assert w.status["phase"] == "Failed"
    w.spec(tree="[still not a tree")
    w.sync()
    assert len(w.events("InvalidSpec")) == 2


def test_a_stopped_pipeline_emits_a_final_event() -> None:
    w = World(one("sleep 100"))
    w.sync()
    w.set_job_status("/a", active=1, ready=1)
    w.sync()
    w.spec(stop=True)
    w.sync()
    assert w.status["phase"] == "Killed"
    final = w.events("PipelineKilled")
    assert len(final) == 1 and final[0]["type"] == "Warning"


def test_the_controller_keeps_no_per_job_history() -> None:
    w = World(wide(30))
    w.sync()
    assert w.ctl.stats.jobs_created == 30
    assert all(isinstance(v, int) for v in vars(w.ctl.stats).values())
    assert set(vars(Stats())) == set(vars(w.ctl.stats))


def test_the_job_cache_keeps_no_pod_templates_or_managed_fields() -> None:
    # Most of a Job's bytes: at 100,000 nodes they would be gigabytes of memory.
    w = World(wide(3))
    w.sync()
    for job in w.api.items(JOBS):
        job["metadata"]["managedFields"] = [{"manager": "kube-controller-manager"}]
    w.ctl._replace("jobs", "default", w.api.items(JOBS))
    w.ctl._apply_event("jobs", "MODIFIED", w.job("/n0"))
    cached = w.ctl.jobs[KEY]
    assert len(cached) == 3
    for job in cached.values():
        assert "template" not in job.get("spec", {}) and "managedFields" not in job["metadata"]
        assert job["metadata"]["uid"] and job["metadata"]["ownerReferences"]
    assert "template" in w.job("/n0")["spec"]  # the API's own objects are left as they are


def test_forgetting_a_deleted_pipeline_drops_everything_kept_for_it() -> None:
    w = World(one())
    w.api.put(JOBS, foreign_job("/a"))
    w.sync()
    assert KEY in w.ctl._problems
    assert w.ctl._compiled  # its tree, compiled once per generation
    w.ctl._apply_event("pipelines", "DELETED", w.pipeline)
    assert KEY not in w.ctl._problems and KEY not in w.ctl._timers
    assert not w.ctl._compiled


def test_a_pipeline_gone_from_a_relist_is_forgotten_with_its_compiled_tree() -> None:
    w = World(one())
    w.sync()
    assert w.ctl._compiled
    w.ctl._replace("pipelines", "default", [])  # deleted while the watch was down
    assert KEY not in w.ctl.pipelines and not w.ctl._compiled


def test_limits_come_from_the_environment() -> None:
    limits = limits_from_env({"K8SCO_FOREIGN_JOB_TIMEOUT": "30", "K8SCO_START_TIMEOUT": "90"})
    assert limits == Limits(foreign_timeout=30, start_timeout=90)
    assert limits_from_env({}) == Limits(foreign_timeout=600, start_timeout=600)
    with pytest.raises(K8scoError, match="K8SCO_START_TIMEOUT"):
        limits_from_env({"K8SCO_START_TIMEOUT": "soon"})


def test_slow_looks_take_at_most_a_tenth_of_a_workers_time() -> None:
    """Each look at a queued Job's pod is charged by the time it took: with a slow API
    they are fewer, so that they never hold up the Jobs' creation."""
    w = World(wide(40), probes_per_second=10.0)
    w.sync()
    w.clock.now += 6
    fast = w.ctl._probe

    def slow(ns: str, job: str, job_uid: str) -> str | None:
        time.sleep(0.05)  # at least 50 ms a look: 5 tokens, not 1
        return fast(ns, job, job_uid)

    w.ctl._probe = slow  # type: ignore[method-assign]
    w.sync()
    assert 1 <= w.ctl.stats.probes <= 2  # 10 tokens buy 2 looks of 50 ms, not 10


def test_the_secret_key_names_are_read_once_per_ttl_not_per_reconciliation() -> None:
    with co.Serial() as root:
        for i in range(3):
            co.Exec(f"echo {i}", name=f"n{i}")
    w = World(root)
    w.sync()
    reads = w.api.count("GET", "/secrets/")
    assert reads == 1
    done = {"type": "Complete", "status": "True"}
    w.set_job_status("/n0", succeeded=1, conditions=[done])
    w.clock.now += 1
    w.sync()
    assert f"{JOBS}/{job_name('demo', '/n1')}" in w.api.objects
    assert w.api.count("GET", "/secrets/") == reads  # the names read for /n0
    w.set_job_status("/n1", succeeded=1, conditions=[done])
    w.clock.now += 5
    w.sync()
    assert f"{JOBS}/{job_name('demo', '/n2')}" in w.api.objects
    assert w.api.count("GET", "/secrets/") == reads + 1  # read again after SECRET_KEYS_TTL
