"""The controller on its incremental path (reconcile/live.py), fed by watch events one Job
at a time, against reconcile() from scratch on the same Pipeline and Jobs; and the cache
dropped whenever the Pipeline's status may not be the one it holds."""

from __future__ import annotations

import copy
from typing import Any

import k8sco as co
from k8sco.engine import State
from k8sco.reconcile import reconcile
from k8sco.reconcile.live import stored_form
from k8sco.render.names import job_name
from k8sco.render.overflow import apply_patch
from k8sco.render.pipeline import timestamp

from .test_controller import JOBS, KEY, World

STARTED = timestamp(1_800_000_000.0)
DONE = {"type": "Complete", "status": "True"}


def staged() -> co.Serial:
    with co.Serial() as root:
        for i in range(3):
            with co.Parallel(name=f"s{i}", max_concurrent=2):
                for j in range(4):
                    co.Exec(f"echo {i}.{j}", name=f"n{j}")
        co.Exec("echo last", name="last")
    return root


def observe(w: World, path: str, **status: Any) -> None:
    """The Job of ``path`` changes and its watch event reaches the controller."""
    w.set_job_status(path, **status)
    w.ctl._apply_event("jobs", "MODIFIED", copy.deepcopy(w.job(path)))


def expected(w: World) -> tuple[list[str], dict[str, Any]]:
    """What reconcile() decides from scratch on what the controller sees now."""
    pipeline = copy.deepcopy(w.ctl.pipelines[KEY])
    jobs = copy.deepcopy(dict(w.ctl.jobs.get(KEY, {})))
    result = reconcile(w.graph, pipeline, jobs, w.clock())
    status = stored_form(apply_patch(pipeline.get("status") or {}, result.status or {}))
    return result.create, status


def test_the_incremental_controller_writes_what_reconcile_decides_from_scratch() -> None:
    w = World(staged())
    w.sync()  # lists everything: decided from scratch, the cache built next time
    incremental = steps = 0
    for _ in range(60):
        running = [
            p
            for p in w.ctl.jobs.get(KEY, {})
            if not (w.job(p).get("status") or {}).get("conditions")
        ]
        if not running:
            break
        path = sorted(running)[0]
        if (w.job(path).get("status") or {}).get("ready"):
            if path == "/s1/n2":
                observe(w, path, failed=1, conditions=[{"type": "Failed", "status": "True"}])
            else:
                done = {"type": "Complete", "status": "True"}
                observe(w, path, succeeded=1, startTime=STARTED, conditions=[done])
        else:
            observe(w, path, active=1, ready=1, startTime=STARTED)
        w.clock.now += 0.5
        steps += 1
        create, status = expected(w)
        created = w.ctl.stats.jobs_created
        incremental += KEY in w.ctl._live
        w.ctl.sync(KEY)
        assert w.ctl.stats.jobs_created - created == len(create)
        assert w.status == status
    # The cache was there every time but the first (the status had no startTime yet).
    assert steps > 12 and incremental == steps - 1
    assert w.status["phase"] == "Failed"
    assert w.node("/s1/n2").state is State.ERROR
    assert w.node("/s2/n0").state is State.PENDING  # the Serial stopped at the failure


def test_a_status_written_by_someone_else_is_decided_on_not_the_cache() -> None:
    """A second leader for a moment records /a done: the next reconciliation decides on
    that status (and creates /b), not on the copy it holds from its own last write."""
    with co.Serial() as root:
        co.Exec("echo a", name="a")
        co.Exec("echo b", name="b")
    w = World(root)
    w.sync()
    observe(w, "/a", active=1, ready=1, startTime=STARTED)
    w.ctl.sync(KEY)
    observe(w, "/a", active=1, ready=1, startTime=STARTED)  # a resync: nothing new
    w.ctl.sync(KEY)
    assert KEY in w.ctl._live and w.node("/a").state is State.RUNNING
    nodes = dict(w.status["nodes"], **{"1": {"s": "done", "t": 0, "f": 1}})
    w.pipeline["status"] = dict(w.status, nodes=nodes)
    w.pipeline["metadata"]["resourceVersion"] += "o"
    w.ctl._apply_event("pipelines", "MODIFIED", copy.deepcopy(w.pipeline))
    w.ctl.sync(KEY)
    assert w.node("/a").state is State.DONE
    assert f"{JOBS}/{job_name('demo', '/b')}" in w.api.objects
    assert w.node("/b").state is State.QUEUED


def test_status_writes_wait_for_status_interval_but_jobs_do_not() -> None:
    """Nodes that finish within status_interval of the last write: the Jobs they unblock
    are created at once, their records wait for one patch and one Event; a failure is
    written at once."""
    with co.Serial() as root:
        for i in range(4):
            co.Exec(f"echo {i}", name=f"n{i}")
    w = World(root, status_interval=2.0)
    w.sync()
    observe(w, "/n0", active=1, ready=1, startTime=STARTED)
    w.ctl.sync(KEY)  # written: the first write after the start is not held
    patches = w.api.count("PATCH", "pipelines")
    for path in ("/n0", "/n1"):
        w.clock.now += 0.3
        observe(w, path, succeeded=1, startTime=STARTED, conditions=[DONE])
        w.ctl.sync(KEY)
    assert w.ctl.stats.jobs_created == 3  # /n1 and /n2 created without waiting
    assert w.api.count("PATCH", "pipelines") == patches  # no status write yet
    assert w.node("/n0").state is State.RUNNING  # the status lags by design
    assert w.ctl._timers[KEY] == w.ctl._status_at[KEY] + 2.0  # woken to write it
    w.clock.now += 2.0
    w.ctl.sync(KEY)
    assert w.api.count("PATCH", "pipelines") == patches + 1
    assert w.node("/n0").state is State.DONE and w.node("/n1").state is State.DONE
    assert w.node("/n2").state is State.QUEUED
    succeeded = w.events("NodesSucceeded")
    assert len(succeeded) == 1 and succeeded[0]["message"] == "2 done: /n0, /n1"
    w.clock.now += 0.3
    observe(w, "/n2", failed=1, conditions=[{"type": "Failed", "status": "True"}])
    w.ctl.sync(KEY)
    assert w.api.count("PATCH", "pipelines") == patches + 2  # a failure is not held
    assert w.node("/n2").state is State.ERROR and w.status["phase"] == "Failed"
