"""The controller's incremental path (reconcile/live.py) against reconcile(), its oracle.

A random tree runs through random histories of what a controller sees: Jobs created (or
refused, transiently or for good), starting, ending, failing, deleted, foreign Jobs under a
node's name, pods that cannot start, time passing (past the start and foreign timeouts),
reruns and stops (which reconcile() handles: the Live is built again after them, as the
controller does). At every reconciliation both decide on the same inputs, the Live told
only which Jobs changed since the last one: the Jobs to create and delete, the Events, the
problems, the wake-up, whether it finished and the status stored must be the same, and
the Live's copy of the status must be the one stored. A Live that missed a change (a stale
cache) gives another answer here.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import k8sco as co
from k8sco.engine import Graph
from k8sco.reconcile import Reconciliation, reconcile
from k8sco.reconcile.live import Live, stored_form
from k8sco.reconcile.problems import Limits, Problem, create_failed
from k8sco.render.overflow import apply_patch
from k8sco.render.pipeline import render_pipeline

T0 = 1_800_000_000.0
UID = "u-1"
LIMITS = Limits(foreign_timeout=30.0, start_timeout=20.0)

Spec = tuple[Any, ...]
_flags = st.sampled_from([False, False, False, True])


def _params(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    optional: dict[str, st.SearchStrategy[Any]] = {
        "suppress_errors": _flags,
        "skip": _flags,
        "max_concurrent": st.integers(1, 3),
    }
    if kind == "S":
        optional["stop_on_error"] = st.booleans()
    if kind == "E":
        optional["start_timeout"] = st.sampled_from([5, 50])
    return st.fixed_dictionaries({}, optional=optional)


def _control(children: st.SearchStrategy[Spec]) -> st.SearchStrategy[Spec]:
    return st.sampled_from(["S", "P"]).flatmap(
        lambda kind: st.tuples(
            st.just(kind), _params(kind), st.lists(children, min_size=1, max_size=4).map(tuple)
        )
    )


_trees = _control(st.recursive(st.tuples(st.just("E"), _params("E")), _control, max_leaves=9))


def build(spec: Spec) -> co.Node:
    if spec[0] == "E":
        return co.Exec("true", **spec[1])
    node: co.Node = co.Serial(**spec[1]) if spec[0] == "S" else co.Parallel(**spec[1])
    for j, child in enumerate(spec[2]):
        node[f"n{j}"] = build(child)
    return node


def stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def job(path: str, phase: str, serial: int, now: float, owner: str = UID) -> dict[str, Any]:
    """A Job as the API shows it in ``phase``: queued, running, done or failed."""
    status: dict[str, Any] = {}
    if phase == "queued":
        status = {"active": 1, "ready": 0}
    elif phase == "running":
        status = {"active": 1, "ready": 1, "startTime": stamp(now)}
    elif phase == "done":
        status = {
            "succeeded": 1,
            "startTime": stamp(now - 1),
            "completionTime": stamp(now),
            "conditions": [{"type": "Complete", "status": "True"}],
        }
    elif phase == "failed":
        status = {
            "failed": 2,
            "startTime": stamp(now - 1),
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "lastTransitionTime": stamp(now),
                }
            ],
        }
    return {
        "metadata": {
            "name": f"demo-{serial}",
            "uid": f"job-{serial}",
            "annotations": {"k8sco.io/path": path},
            "ownerReferences": [{"kind": "Pipeline", "name": "demo", "uid": owner}],
        },
        "status": status,
    }


class History:
    """The world both deciders see, and what the controller would do with their answers."""

    def __init__(self, root: co.Node) -> None:
        self.graph = Graph.from_tree(root)
        self.pipeline = render_pipeline(root, "demo", "default", image="img:1", uid=UID)
        self.pipeline["metadata"]["generation"] = 1
        self.status: dict[str, Any] = {}  # as stored
        self.jobs: dict[str, dict[str, Any]] = {}
        self.changed: set[str] = set()
        self.problems: dict[str, Problem] = {}
        self.waiting: dict[str, tuple[str, float]] = {}
        self.failures: dict[str, str] = {}
        self.now = T0 + 0.3
        self.serial = 0
        self.live: Live | None = None
        self.finished = False
        self.lagging: set[str] = set()  # created, not yet in the cache

    def put(self, path: str, phase: str, owner: str = UID) -> None:
        self.serial += 1
        self.jobs[path] = job(path, phase, self.serial, self.now, owner)
        self.changed.add(path)

    def sync(self, refuse: list[int]) -> None:
        obj = {**self.pipeline, "status": self.status}
        args: dict[str, Any] = dict(
            problems=self.problems,
            waiting=self.waiting,
            limits=LIMITS,
            failures=self.failures,
            start_timeouts={},
        )
        want = reconcile(self.graph, obj, self.jobs, self.now, **args)
        if not Live.handles(obj, self.status):
            self.live = None  # reconcile() decides; built again after
        else:
            if self.live is None:
                self.live = Live(self.graph, self.status, 1)
            assert self.live.mirror == self.status
            got = self.live.reconcile(obj, self.jobs, self.changed, self.now, **args)
            same(got, want, self.status)
        self.changed = set()
        self.status = stored_form(apply_patch(self.status, want.status or {}))
        if self.live is not None:
            assert self.live.mirror == self.status
        self.finished = want.finished
        self.apply(want, refuse)

    def apply(self, result: Reconciliation, refuse: list[int]) -> None:
        """Create and delete Jobs as the controller would; some creates refused."""
        problems = dict(result.problems)
        for n, path in enumerate(result.create):
            if path in self.jobs or path in self.lagging:
                continue  # AlreadyExists
            code = refuse[n % len(refuse)] if refuse else 0
            if code < 0:  # created, but the cache does not show it yet
                problems.pop(path, None)
                self.lagging.add(path)
            elif code:
                problems[path] = create_failed(
                    code, f"refused ({code})", "demo-x", problems.get(path), self.now
                )
            else:
                problems.pop(path, None)
                self.put(path, "queued")
        for path in result.delete:
            found = self.jobs.get(path)
            if found is not None:
                found = {**found, "metadata": {**found["metadata"], "deletionTimestamp": "x"}}
                self.jobs[path] = found
                self.changed.add(path)
        self.problems = problems


def same(got: Reconciliation, want: Reconciliation, stored: dict[str, Any]) -> None:
    assert got.create == want.create
    assert got.delete == want.delete
    assert got.events == want.events
    assert got.finished == want.finished
    assert got.problems == want.problems
    assert got.wake_at == want.wake_at
    assert stored_form(apply_patch(stored, got.status or {})) == stored_form(
        apply_patch(stored, want.status or {})
    )


_ACTIONS = "sync sync sync job job job appear foreign wait time rerun stop"
_actions = st.sampled_from(_ACTIONS.split())


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(_trees, st.data())
def test_the_live_path_agrees_with_reconcile_through_random_histories(
    spec: Spec, data: st.DataObject
) -> None:
    world = History(build(spec))
    refuse = data.draw(st.lists(st.sampled_from([0, 0, 0, -1, 500, 422, 403]), max_size=3))
    world.sync(refuse)
    for _ in range(data.draw(st.integers(5, 40))):
        action = data.draw(_actions)
        paths = world.graph.exec_paths
        if action == "sync":
            world.sync(refuse)
        elif action == "job" and world.jobs:
            path = data.draw(st.sampled_from(sorted(world.jobs)))
            owner = world.jobs[path]["metadata"]["ownerReferences"][0]["uid"]
            change = data.draw(st.sampled_from(["running", "done", "failed", "queued", "gone"]))
            if change == "gone":
                del world.jobs[path]
                world.changed.add(path)
            else:
                world.put(path, change, owner)
                if change == "failed" and data.draw(st.booleans()):
                    world.failures[path] = "exit code 3"
        elif action == "appear" and world.lagging:
            path = data.draw(st.sampled_from(sorted(world.lagging)))
            world.lagging.discard(path)
            world.put(path, "queued")
        elif action == "foreign":
            free = [p for p in paths if p not in world.jobs and p not in world.lagging]
            if free:
                world.put(data.draw(st.sampled_from(free)), "done", owner="old-uid")
        elif action == "wait":
            queued = [p for p, j in world.jobs.items() if j["status"].get("ready") == 0]
            if queued:
                path = data.draw(st.sampled_from(sorted(queued)))
                if path in world.waiting:
                    del world.waiting[path]
                else:
                    world.waiting[path] = ("ErrImagePull: no such image", world.now)
        elif action == "time":
            world.now += data.draw(st.sampled_from([0.4, 1.0, 7.0, 45.0]))
        elif action == "rerun" and world.finished:
            world.pipeline["spec"]["rerun"] = {"path": "/", "token": f"t{world.serial}"}
        elif action == "stop" and data.draw(st.booleans()):
            world.pipeline["spec"]["stop"] = True
    world.sync(refuse)


def test_a_live_path_not_told_of_a_change_is_caught() -> None:
    """The oracle is not blind: a Live that misses a Job's change answers otherwise."""
    with co.Serial() as root:
        co.Exec("true", name="a")
        co.Exec("true", name="b")
    world = History(root)
    world.sync([])
    world.sync([])  # the Live is built here
    world.put("/a", "done")
    world.changed = set()  # the change is lost
    with pytest.raises(AssertionError):
        world.sync([])
