"""One reconciliation of one Pipeline: what the controller should do now.

Pure: the Pipeline object, its Jobs and the time in; the Jobs to create and delete, the
status to write and the Events to emit out. The controller observes, calls
:func:`reconcile`, applies the result and forgets it (level-triggered, stateless:
DESIGN.md §3). Running it twice on the same inputs gives the same answer, which is what
makes a controller killed at any instant safe to restart: a Job it already created is
found (or its create answers AlreadyExists), never created twice.

The Pipeline's spec may ask for two things besides running:
- ``spec.stop: true`` — delete the running Jobs, record their nodes as killed, start nothing;
- ``spec.rerun: {path, token}`` — once per new token, failed and killed Exec nodes under
  ``path`` go back to pending (their Jobs are deleted first; done nodes stay done).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from k8sco import engine
from k8sco.engine import Evaluation, Graph, NodeState, State
from k8sco.reconcile.observe import job_state, parse_time
from k8sco.render.pipeline import recorded_states, render_status


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Reconciliation:
    create: list[str] = field(default_factory=list)  # node paths whose Job to create
    delete: list[str] = field(default_factory=list)  # node paths whose Job to delete
    status: dict[str, Any] | None = None  # the new status, or None when unchanged
    events: list[Event] = field(default_factory=list)
    finished: bool = False


def reconcile(
    graph: Graph, pipeline: Mapping[str, Any], jobs: Mapping[str, Mapping[str, Any]], now: float
) -> Reconciliation:
    """Decide for ``pipeline`` given its Jobs by node path (the ``k8sco.io/path`` annotation)."""
    spec = pipeline.get("spec") or {}
    prior_status = pipeline.get("status") or {}
    base = parse_time(prior_status.get("startTime")) or now
    prior = recorded_states(graph, prior_status)
    stopped = bool(spec.get("stop"))
    rerun = spec.get("rerun") or {}
    token = rerun.get("token") or prior_status.get("rerunToken")

    recorded: dict[str, NodeState] = {}
    blocked: set[str] = set()  # a Job of an earlier attempt is still being deleted
    recreate: list[str] = []  # recorded as created, but not (yet) among the Jobs seen
    for path in graph.exec_paths:
        job, rec = jobs.get(path), prior.get(path)
        if job is not None:
            deleting = bool(job.get("metadata", {}).get("deletionTimestamp"))
            if deleting and (rec is None or rec.state is State.PENDING):
                blocked.add(path)
                continue
            recorded[path] = job_state(job, rec)
        elif rec is not None:
            recorded[path] = rec
            if rec.state in (State.QUEUED, State.RUNNING):
                recreate.append(path)

    delete: list[str] = []
    if rerun.get("token") and rerun["token"] != prior_status.get("rerunToken"):
        target = rerun.get("path") or "/"
        if target in graph.index:
            kept = engine.reset(graph, recorded, target)
            for path in set(recorded) - set(kept):
                if path in jobs:
                    delete.append(path)
                    blocked.add(path)
            recorded = kept

    if stopped:
        for path, rec in list(recorded.items()):
            if rec.state in (State.QUEUED, State.RUNNING):
                recorded[path] = engine.killed(rec, now, "stopped")
                if path in jobs:
                    delete.append(path)
        recreate = []

    create: list[str] = []
    if not stopped:
        ev = engine.evaluate(graph, recorded, now)
        for path in ev.ready:
            if path not in blocked:
                create.append(path)
                recorded[path] = NodeState(State.QUEUED, prior.get(path, NodeState()).attempts)
        create.extend(recreate)

    ev = engine.evaluate(graph, recorded, now)
    completed = ev.finished or (
        stopped and not any(r.state in (State.QUEUED, State.RUNNING) for r in recorded.values())
    )
    completion = parse_time(prior_status.get("completionTime")) or now if completed else None
    new_status = render_status(
        graph,
        recorded,
        ev.states,
        start_time=base,
        completion_time=completion,
        observed_generation=pipeline.get("metadata", {}).get("generation"),
        message=_message(graph, ev, recorded),
    )
    if stopped and completed and not ev.finished:
        new_status["phase"] = "Killed"  # what never started stays pending, for a rerun
    if token:
        new_status["rerunToken"] = token
    patch = _merge_patch(prior_status, new_status)
    return Reconciliation(
        create=create,
        delete=sorted(set(delete)),
        status=patch or None,
        events=_events(graph, prior, recorded, prior_status.get("phase"), new_status["phase"]),
        finished=completed,
    )


def _merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch from ``old`` to ``new`` (keys gone from ``new`` become null)."""
    patch: dict[str, Any] = {}
    for key in set(old) | set(new):
        if key not in new:
            patch[key] = None
        elif isinstance(new[key], Mapping) and isinstance(old.get(key), Mapping):
            inner = _merge_patch(old[key], new[key])
            if inner:
                patch[key] = inner
        elif old.get(key) != new[key]:
            patch[key] = new[key]
    return patch


def _message(graph: Graph, ev: Evaluation, recorded: Mapping[str, NodeState]) -> str:
    failed = [p for p in graph.exec_paths if ev.states[p].failed]
    if failed:
        reason = recorded.get(failed[0], NodeState()).reason or str(ev.states[failed[0]])
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        return f"{failed[0]}: {reason}{more}"
    running = sum(1 for p in graph.exec_paths if ev.states[p] is State.RUNNING)
    return f"{running} running" if running else ""


def _events(
    graph: Graph,
    before: Mapping[str, NodeState],
    after: Mapping[str, NodeState],
    phase_before: str | None,
    phase_after: str,
) -> list[Event]:
    """Node starts and successes batched into one Event each; a failure gets its own."""
    started, succeeded, out = [], [], []
    for path in graph.exec_paths:
        old, new = before.get(path), after.get(path)
        if new is None or (old is not None and old.state is new.state):
            continue
        if new.state is State.RUNNING:
            started.append(path)
        elif new.state is State.DONE:
            succeeded.append(path)
        elif new.state.failed:
            out.append(Event("Warning", "NodeFailed", f"{path}: {new.reason or new.state}"))
    if started:
        out.insert(0, Event("Normal", "NodesStarted", _listing("started", started)))
    if succeeded:
        out.append(Event("Normal", "NodesSucceeded", _listing("done", succeeded)))
    if phase_after != phase_before and phase_after in ("Succeeded", "Failed", "Stopped"):
        kind = "Normal" if phase_after == "Succeeded" else "Warning"
        out.append(Event(kind, f"Pipeline{phase_after}", f"pipeline {phase_after.lower()}"))
    return out


def _listing(verb: str, paths: list[str]) -> str:
    shown = ", ".join(paths[:10])
    more = f" and {len(paths) - 10} more" if len(paths) > 10 else ""
    return f"{len(paths)} {verb}: {shown}{more}"
