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
  ``path`` go back to pending (their Jobs are deleted first; done nodes stay done);
- ``spec.controls`` — live controls (k8sco.controls): a reset once per entry, recorded by
  ``status.controlToken``; skips and modifications are already in ``graph``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from k8sco import controls, engine
from k8sco.engine import Evaluation, Graph, NodeState, State
from k8sco.lazy import STATUS_KEY
from k8sco.reconcile import callbacks as cbs
from k8sco.reconcile.observe import job_state, parse_time
from k8sco.reconcile.problems import Limits, Problem, Trouble, not_owned, owns
from k8sco.render.pipeline import Phase, recorded_states, render_status

DEFAULT_LIMITS = Limits()


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
    # What still stands between nodes and their Jobs (to keep for the next reconciliation).
    problems: dict[str, Problem] = field(default_factory=dict)
    wake_at: float | None = None  # reconcile again by then (a retry, a timeout) if nothing else
    # The records of nodes in ``create`` on an attempt after a retry by callback: their Job
    # is that attempt's (reconcile.callbacks.attempt_job).
    attempts: dict[str, NodeState] = field(default_factory=dict)


def reconcile(
    graph: Graph,
    pipeline: Mapping[str, Any],
    jobs: Mapping[str, Mapping[str, Any]],
    now: float,
    *,
    problems: Mapping[str, Problem] | None = None,
    waiting: Mapping[str, tuple[str, float]] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    failures: Mapping[str, str] | None = None,
    start_timeouts: Mapping[str, float] | None = None,
    callbacks: cbs.Table | None = None,
) -> Reconciliation:
    """Decide for ``pipeline`` given the Jobs under its nodes' names by node path (the
    ``k8sco.io/path`` annotation), the ``problems`` kept from earlier reconciliations and
    why the pods of queued Jobs cannot start and since when, by the controller's clock
    (``waiting``, by path: the start timeout counts from then) and how the last pod of
    a failed Job ended (``failures``, by path: an exit code, a start error). A node's
    ``start_timeout`` parameter (``start_timeouts``, by path) overrides the controller's.

    Only a Job owned by the Pipeline (an ownerReference with its uid) is a node's run; any
    other Job under a node's name is waited out, never adopted (reconcile.problems).
    """
    spec = pipeline.get("spec") or {}
    meta = pipeline.get("metadata") or {}
    prior_status = pipeline.get("status") or {}
    base = parse_time(prior_status.get("startTime")) or now
    prior = recorded_states(graph, prior_status)
    stopped = bool(spec.get("stop"))
    rerun = spec.get("rerun") or {}
    token = rerun.get("token") or prior_status.get("rerunToken")
    known = problems or {}
    ns = str(meta.get("namespace", ""))
    why = waiting or {}

    recorded: dict[str, NodeState] = {}
    blocked: set[str] = set()  # a Job of an earlier attempt is still being deleted
    recreate: list[str] = []  # recorded as created, but not (yet) among the Jobs seen
    kept: dict[str, Problem] = {}
    delete: list[str] = []
    wakes: list[float] = []
    uid = str(meta.get("uid") or "")
    inputs = NodeInputs(uid, ns, now, known, why, failures or {}, start_timeouts or {}, limits)
    if callbacks:  # co.callback: retries and skips decided per node (reconcile.callbacks)
        inputs = dataclasses.replace(inputs, callbacks=callbacks, records=prior)
    for path in graph.exec_paths:
        out = decide_node(path, jobs.get(path), prior.get(path), inputs)
        if out.state is not None:
            recorded[path] = out.state
        if out.problem is not None:
            kept[path] = out.problem
        if out.blocked:
            blocked.add(path)
        if out.recreate:
            recreate.append(path)
        if out.delete:
            delete.append(path)
        if out.wake is not None:
            wakes.append(out.wake)

    if rerun.get("token") and rerun["token"] != prior_status.get("rerunToken"):
        target = rerun.get("path") or "/"
        if target in graph.index:
            kept_states = engine.reset(graph, recorded, target)
            for path in set(recorded) - set(kept_states):
                kept.pop(path, None)
                if path in jobs and owns(jobs[path], meta.get("uid")):
                    delete.append(path)
                    blocked.add(path)
            recreate = [p for p in recreate if p in kept_states]
            recorded = kept_states

    # Live resets (k8sco.controls), once each: as a rerun, but done nodes run again too.
    recorded, reset = controls.cluster_resets(graph, recorded, spec, prior_status)
    for path in reset:
        kept.pop(path, None)
        if path in jobs and owns(jobs[path], meta.get("uid")):
            delete.append(path)
            blocked.add(path)
    recreate = [p for p in recreate if p not in reset]

    if stopped:
        for path, rec in list(recorded.items()):
            if rec.state in (State.QUEUED, State.RUNNING):
                recorded[path] = engine.killed(rec, now, "stopped")
                if path in jobs and owns(jobs[path], meta.get("uid")):
                    delete.append(path)
        recreate = []
        kept = {}

    create: list[str] = []
    if not stopped:
        ev = engine.evaluate(graph, recorded, now)
        for path in ev.ready:
            if path not in blocked:
                create.append(path)
                attempts = prior.get(path, NodeState()).attempts
                recorded[path] = cbs.queued(recorded.get(path), attempts)
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
        observed_generation=meta.get("generation"),
        message=_message(graph, ev, recorded),
    )
    if stopped and completed and not ev.finished:
        new_status["phase"] = Phase.KILLED  # what never started stays pending, for a rerun
    if token:
        new_status["rerunToken"] = token
    control_token = controls.last_token(spec, prior_status)
    if control_token:
        new_status[controls.STATUS_TOKEN] = control_token
    if STATUS_KEY in prior_status:  # the co.Lazy expansions: the controller's to change
        new_status[STATUS_KEY] = prior_status[STATUS_KEY]
    notify = dict(prior_status.get(cbs.NOTIFY_KEY) or {})  # sent by the controller, then removed
    if callbacks and callbacks.notify_paths:
        before = engine.evaluate(graph, prior, now).states
        notify.update(cbs.outbox(callbacks, uid, before, ev.states, recorded))
    if notify:
        new_status[cbs.NOTIFY_KEY] = notify
    patch = _merge_patch(prior_status, new_status)
    return Reconciliation(
        create=create,
        delete=sorted(set(delete)),
        status=patch or None,
        events=_events(
            graph.exec_paths, prior, recorded, prior_status.get("phase"), new_status["phase"]
        ),
        finished=completed,
        problems={} if completed else kept,
        wake_at=None if completed or not wakes else min(wakes),
        attempts={p: recorded[p] for p in create if recorded[p].retried},
    )


@dataclass(frozen=True)
class NodeInputs:
    """What one node's decision reads besides its Job and record: the same for every node
    of a reconciliation."""

    uid: str  # the Pipeline's
    namespace: str
    now: float
    known: Mapping[str, Problem]  # problems kept from earlier reconciliations, by path
    waiting: Mapping[str, tuple[str, float]]  # why a queued Job's pod cannot start, since
    failures: Mapping[str, str]  # how the last pod of a failed Job ended
    start_timeouts: Mapping[str, float]
    limits: Limits
    callbacks: cbs.Table | None = None  # co.callback, when the tree has any
    records: Mapping[str, NodeState] | None = None  # every node's, for skip_some_errors


@dataclass(frozen=True)
class NodeOutcome:
    """One Exec node's part of a reconciliation."""

    state: NodeState | None = None  # what to record (None: nothing, pending)
    problem: Problem | None = None  # what stands between it and its Job, to keep
    blocked: bool = False  # a Job of an earlier attempt is still being deleted
    recreate: bool = False  # recorded as created but its Job is not seen: create it again
    delete: bool = False  # its Job is to be deleted (it could not start in time)
    wake: float | None = None  # decide again by then

    @property
    def volatile(self) -> bool:
        """Whether the same inputs may give another outcome later: it depends on the time,
        on a problem kept, or on a Job not (yet) seen (the controller's incremental path
        decides these nodes again at every reconciliation)."""
        return self.problem is not None or self.recreate or self.wake is not None


def decide_node(
    path: str,
    job: Mapping[str, Any] | None,
    rec: NodeState | None,
    inputs: NodeInputs,
) -> NodeOutcome:
    """One Exec node: its Job under its name (any owner), its recorded state ``rec``."""
    now, limits, known = inputs.now, inputs.limits, inputs.known
    if inputs.callbacks:  # only the Job of the recorded attempt is the node's run
        job, rec = cbs.current_job(job, rec)
    if job is not None and not owns(job, inputs.uid):
        if rec is not None and rec.state.finished:
            return NodeOutcome(rec)  # its outcome is recorded; the name is free or not
        # Retried as soon as the Job is gone from the cache, not before.
        problem = dataclasses.replace(not_owned(job, known.get(path), now), retry_at=now)
        state, _ = _held(problem, rec, now, limits, inputs.namespace)
        wake = None if state.state.finished else problem.since + limits.foreign_timeout
        return NodeOutcome(state, problem, wake=wake)
    if job is not None:
        deleting = bool(job.get("metadata", {}).get("deletionTimestamp"))
        if deleting and (rec is None or rec.state is State.PENDING):
            return NodeOutcome(blocked=True)
        state = job_state(job, rec)
        state = cbs.carry(state, rec) if inputs.callbacks else state
        detail = inputs.failures.get(path)
        if detail and state.state is State.ERROR and state is not rec:
            state = state.with_(reason=f"{state.reason}: {detail}" if state.reason else detail)
        if inputs.callbacks and state.state is State.ERROR and state is not rec:
            # A new attempt (another Job) or a skip, decided from the status: exactly once.
            oom = cbs.is_oom(state, detail or "")
            after = cbs.after_failure(inputs.callbacks, path, state, inputs.records or {}, oom=oom)
            if after is not state:
                return NodeOutcome(after)
        if state.state is State.QUEUED and path in inputs.waiting:
            trouble, since = inputs.waiting[path]
            bound = inputs.start_timeouts.get(path, limits.start_timeout)
            if now - since >= bound:
                state = state.with_(
                    state=State.ERROR,
                    finished=now,
                    reason=f"could not start in {_seconds(bound)}: {trouble}",
                )
                return NodeOutcome(state, delete=True)
            return NodeOutcome(state.with_(reason=f"waiting: {trouble}"), wake=since + bound)
        return NodeOutcome(state)
    if path in known and not (rec is not None and rec.state.finished):
        problem = known[path]
        state, retry = _held(problem, rec, now, limits, inputs.namespace)
        wake = None if state.state.finished else _wake(problem, limits)
        return NodeOutcome(state, problem, recreate=retry, wake=wake)
    if rec is not None:
        if rec.state is State.QUEUED:  # its create may not have landed: AlreadyExists is ok
            return NodeOutcome(rec, recreate=True)
        if rec.state is State.RUNNING:
            # Seen running, so its Job existed and was deleted since (by someone, a TTL):
            # creating it again would run the node a second time under its name.
            return NodeOutcome(engine.killed(rec, now, "its Job was deleted while it ran"))
        return NodeOutcome(rec)
    return NodeOutcome()


def _held(
    problem: Problem, rec: NodeState | None, now: float, limits: Limits, namespace: str
) -> tuple[NodeState, bool]:
    """The state of a node whose Job cannot be created (yet), and whether to try now."""
    attempts = rec.attempts if rec is not None else 0
    if problem.kind is Trouble.PERMANENT:
        return NodeState(
            State.ERROR, attempts, None, now, None, f"cannot create its Job: {problem.message}"
        ), False
    if problem.kind is Trouble.FOREIGN and now - problem.since >= limits.foreign_timeout:
        reason = (
            f"{problem.message} (for {_seconds(limits.foreign_timeout)}): delete it with "
            f"kubectl delete job {problem.job} -n {namespace}, then k8sco rerun"
        )
        return NodeState(State.ERROR, attempts, None, now, None, reason), False
    return NodeState(State.QUEUED, attempts, reason=f"waiting: {problem.message}"), (
        now >= problem.retry_at
    )


def _wake(problem: Problem, limits: Limits) -> float:
    if problem.kind is Trouble.FOREIGN:
        return min(problem.retry_at, problem.since + limits.foreign_timeout)
    return problem.retry_at


def _seconds(value: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{int(value // size)}{unit}"
    return f"{value:g}s"


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
    parts = [f"{running} running"] if running else []
    stuck = [
        p
        for p in graph.exec_paths
        if ev.states[p] is State.QUEUED and (recorded.get(p, NodeState()).reason or "")
    ]
    if stuck:
        more = f" (and {len(stuck) - 1} more)" if len(stuck) > 1 else ""
        parts.append(f"{stuck[0]}: {recorded[stuck[0]].reason}{more}")
    return "; ".join(parts)


def _events(
    paths: Iterable[str],
    before: Mapping[str, NodeState],
    after: Mapping[str, NodeState],
    phase_before: str | None,
    phase_after: str,
) -> list[Event]:
    """Node starts and successes batched into one Event each; a failure gets its own
    (``paths``: the Exec nodes that may have changed, in tree order)."""
    started, succeeded, out = [], [], []
    for path in paths:
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
    if phase_after != phase_before and Phase(phase_after).finished:
        final = Phase(phase_after)
        kind = "Normal" if final in (Phase.SUCCEEDED, Phase.SKIPPED) else "Warning"
        out.append(Event(kind, f"Pipeline{final}", _FINAL[final]))
    return out


_FINAL = {
    Phase.SUCCEEDED: "pipeline succeeded",
    Phase.FAILED: "pipeline failed",
    Phase.KILLED: "pipeline stopped: its running nodes were killed",
    Phase.SKIPPED: "pipeline skipped",
}


def problem_events(before: Mapping[str, Problem], after: Mapping[str, Problem]) -> list[Event]:
    """Warning Events for the problems that are new or say something new (a retry that
    fails the same way again is not news); nodes refused with the same message share one."""
    fresh: dict[tuple[Trouble, str], list[str]] = {}
    for path, problem in after.items():
        old = before.get(path)
        if old is not None and (old.kind, old.message) == (problem.kind, problem.message):
            continue
        fresh.setdefault((problem.kind, problem.message), []).append(path)
    out = []
    for (kind, message), paths in fresh.items():
        if kind is Trouble.FOREIGN:
            out.append(Event("Warning", "JobNotOwned", f"{', '.join(paths)}: {message}; waiting"))
        else:
            shown = ", ".join(paths[:10]) + (
                f" and {len(paths) - 10} more" if len(paths) > 10 else ""
            )
            whose = f"of {shown}" if len(paths) == 1 else f"of {len(paths)} nodes ({shown})"
            out.append(
                Event(
                    "Warning", "FailedCreate", f"cannot create the Job {whose}, {kind}: {message}"
                )
            )
    return out


def _listing(verb: str, paths: list[str]) -> str:
    shown = ", ".join(paths[:10])
    more = f" and {len(paths) - 10} more" if len(paths) > 10 else ""
    return f"{len(paths)} {verb}: {shown}{more}"
