"""One Pipeline's reconciliation kept current from one to the next: the controller's
incremental path (pure).

:func:`k8sco.reconcile.reconcile` decides from scratch: every Exec node's Job and record,
two evaluations of the whole tree, the whole status rendered and compared. At 10,000 nodes
that is tens of milliseconds for each Job that changes. :class:`Live` gives the same
answer at the cost of what changed: it keeps, in memory, the status it last decided (as
the Pipeline stores it: ``mirror``), the records in an :class:`k8sco.incremental.Incremental`
engine, and which nodes must be decided at every reconciliation (those whose outcome
depends on the time, on a problem kept or on a Job not seen: ``NodeOutcome.volatile``).
Each reconciliation decides only the nodes the caller names as changed (their Job was
added, modified or deleted since the last one), the volatile ones, and those with a
problem or a pod that cannot start, with :func:`k8sco.reconcile.decide.decide_node`, the
same function :func:`reconcile` calls for every node.

It is a cache: nothing in it is needed to reach a decision. The controller builds it from
the Pipeline's status (the first reconciliation then decides every node), drops it
whenever its status may not be the Pipeline's (a write that did not land, another
writer, a new generation, a co.Lazy splice), and leaves to :func:`reconcile` what it does
not do (``spec.stop``, a new ``spec.rerun`` or ``spec.controls`` entry: :meth:`Live.handles`).
tests/reconcile/test_live.py holds it to :func:`reconcile`'s answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from k8sco import controls
from k8sco.engine import EXEC, Graph, NodeState, State
from k8sco.incremental import Incremental
from k8sco.lazy import STATUS_KEY
from k8sco.reconcile import callbacks as cbs
from k8sco.reconcile.decide import (
    DEFAULT_LIMITS,
    Event,
    NodeInputs,
    Reconciliation,
    _events,
    _merge_patch,
    decide_node,
)
from k8sco.reconcile.observe import parse_time
from k8sco.reconcile.problems import Limits, Problem
from k8sco.render import overflow
from k8sco.render.pipeline import (
    node_record,
    node_state,
    parse_timestamp,
    phase,
    recorded_states,
    timestamp,
)

_FINISHED = tuple(s.value for s in State if s.finished)


def stored_form(status: Mapping[str, Any]) -> dict[str, Any]:
    """``status`` as a reader of the Pipeline sees it once written (the status ConfigMaps
    joined back: :meth:`k8sco.kube.overflow.StatusStore.view`): ``status.message`` clipped,
    no ``overflow`` bookkeeping."""
    out = {k: v for k, v in status.items() if k != "overflow"}
    message = out.get("message")
    if isinstance(message, str) and len(message) > overflow.MESSAGE_MAX:
        out["message"] = message[: overflow.MESSAGE_MAX - 3] + "..."
    return out


class Live:
    """The reconciliation of one Pipeline (uid, generation, working tree ``graph``), kept
    current. ``status``: the Pipeline's whole status (as :meth:`StatusStore.view` gives it)
    it starts from; the first :meth:`reconcile` decides every node."""

    def __init__(self, graph: Graph, status: Mapping[str, Any], generation: Any) -> None:
        self.graph = graph
        self.generation = generation
        self.mirror: dict[str, Any] = dict(status)
        self.mirror["nodes"] = dict(status.get("nodes") or {})
        self.engine = Incremental(graph, recorded_states(graph, status))
        self._full = True  # the next reconciliation decides every node
        self._volatile: set[str] = set()
        self._blocked: set[str] = set()
        self._kept: dict[str, Problem] = {}
        self._wakes: dict[str, float] = {}
        # Exec nodes shown failed, and those whose record has a reason but has not
        # finished (what status.message names), by pre-order index.
        self._failed: set[int] = set()
        self._reasoned: set[int] = set()
        # For the status store (kube/overflow.py StatusStore.store_changes): the records
        # the last reconciliation changed (by index), the layout of the status in the
        # Pipeline and its ConfigMaps, and the JSON size of the spec (one generation's).
        self.changed: set[str] = set()
        self.layout: overflow.Layout | None = None
        self.spec_bytes: int | None = None
        # What changed since the status was last written (the controller may write less
        # often than it decides: see :meth:`unwritten`): each node's state then and now,
        # and the phase then.
        self._then: dict[str, NodeState | None] = {}
        self._now: dict[str, NodeState | None] = {}
        self._phase_then: str | None = None
        self._pending = False

    @staticmethod
    def handles(pipeline: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
        """Whether :meth:`reconcile` decides this Pipeline now; otherwise ask
        :func:`reconcile` (and build a new Live after)."""
        spec = pipeline.get("spec") or {}
        rerun = spec.get("rerun") or {}
        return not (
            spec.get("stop")
            or (rerun.get("token") and rerun["token"] != status.get("rerunToken"))
            or controls.new_controls(spec, status)
            or not status.get("startTime")
            or not isinstance(status.get("nodes"), Mapping)
        )

    # --- deciding -------------------------------------------------------------------------

    def reconcile(
        self,
        pipeline: Mapping[str, Any],
        jobs: Mapping[str, Mapping[str, Any]],
        changed: Iterable[str],
        now: float,
        *,
        problems: Mapping[str, Problem] | None = None,
        waiting: Mapping[str, tuple[str, float]] | None = None,
        limits: Limits = DEFAULT_LIMITS,
        failures: Mapping[str, str] | None = None,
        start_timeouts: Mapping[str, float] | None = None,
    ) -> Reconciliation:
        """:func:`reconcile`'s answer for ``pipeline`` (whose status is ``self.mirror``)
        and ``jobs``, given the paths whose Job changed since the last call (``changed``);
        the other arguments as there. The Live then holds the status this answer writes:
        the caller drops it if the write does not land."""
        graph, eng = self.graph, self.engine
        spec, meta = pipeline.get("spec") or {}, pipeline.get("metadata") or {}
        prior_status = self.mirror
        base = parse_time(prior_status.get("startTime")) or now
        t0_read = parse_timestamp(timestamp(base))  # what the next reader's records are from
        known = problems or {}
        why = waiting or {}
        inputs = NodeInputs(
            str(meta.get("uid") or ""),
            str(meta.get("namespace", "")),
            now,
            known,
            why,
            failures or {},
            start_timeouts or {},
            limits,
        )
        index, kinds = graph.index, graph.kinds
        if self._full:
            todo: list[str] = graph.exec_paths
        else:
            wanted = set(changed) | self._volatile | set(known) | set(why)
            todo = sorted(
                (p for p in wanted if p in index and kinds[index[p]] == EXEC),
                key=index.__getitem__,
            )

        before: dict[str, NodeState | None] = {}
        fresh: dict[str, NodeState | None] = {}  # this reconciliation's records, as decided
        recreate: list[str] = []
        delete: list[str] = []
        updates: list[tuple[str, NodeState | None]] = []
        for path in todo:
            rec = eng.recorded.get(path)
            out = decide_node(path, jobs.get(path), rec, inputs)
            before[path] = rec
            fresh[path] = out.state
            if out.volatile:
                self._volatile.add(path)
            else:
                self._volatile.discard(path)
            if out.problem is not None:
                self._kept[path] = out.problem
            else:
                self._kept.pop(path, None)
            if out.wake is not None:
                self._wakes[path] = out.wake
            else:
                self._wakes.pop(path, None)
            if out.blocked:
                self._blocked.add(path)
            else:
                self._blocked.discard(path)
            if out.recreate:
                recreate.append(path)
            if out.delete:
                delete.append(path)
            updates.append((path, self._read_back(out.state, base, t0_read)))
        self._apply(updates)

        create: list[str] = []
        queued: list[tuple[str, NodeState | None]] = []
        for path in eng.ready():
            if path in self._blocked:
                continue
            create.append(path)
            self._volatile.add(path)  # queued with no Job seen: created again until seen
            rec = eng.recorded.get(path)
            before.setdefault(path, rec)
            fresh[path] = cbs.queued(rec, rec.attempts if rec is not None else 0)
            queued.append((path, self._read_back(fresh[path], base, t0_read)))
        self._apply(queued)
        create.extend(recreate)

        completed = eng.finished
        completion = parse_time(prior_status.get("completionTime")) or now if completed else None
        top = self._top(pipeline, spec, meta, base, completion, fresh)
        top_old = {k: v for k, v in prior_status.items() if k != "nodes"}
        patch = _merge_patch(top_old, top)

        nodes_old: dict[str, Any] = prior_status["nodes"]
        nodes_patch: dict[str, Any] = {}
        if self._full:
            nodes_new: dict[str, Any] = {}
            for i, kind in enumerate(kinds):
                if kind != EXEC:
                    continue
                path = graph.paths[i]
                st = fresh.get(path) if path in fresh else eng.recorded.get(path)
                record = node_record(st, base) if st is not None else None
                if record is not None:
                    nodes_new[str(i)] = record
            nodes_patch = _merge_patch(nodes_old, nodes_new)
        else:
            for path in sorted(fresh, key=index.__getitem__):
                key = str(index[path])
                st = fresh[path]
                record = node_record(st, base) if st is not None else None
                old = nodes_old.get(key)
                if record is None:
                    if key in nodes_old:
                        nodes_patch[key] = None
                elif not isinstance(old, Mapping):
                    nodes_patch[key] = record
                elif old != record:
                    nodes_patch[key] = _merge_patch(old, record)
        if nodes_patch:
            patch["nodes"] = nodes_patch

        events = _events(
            sorted(fresh, key=index.__getitem__),
            {p: r for p, r in before.items() if r is not None},
            {p: r for p, r in fresh.items() if r is not None},
            prior_status.get("phase"),
            top["phase"],
        )
        if patch:
            if not self._pending:
                self._phase_then = prior_status.get("phase")
            self._pending = True
        for path, state in fresh.items():
            if str(index[path]) in nodes_patch:
                self._then.setdefault(path, before[path])
                self._now[path] = state
        self._store(top, nodes_patch)
        self._full = False
        return Reconciliation(
            create=create,
            delete=sorted(set(delete)),
            status=patch or None,
            events=events,
            finished=completed,
            problems={} if completed else dict(self._kept),
            wake_at=None if completed or not self._wakes else min(self._wakes.values()),
            attempts={p: st for p in create if (st := fresh.get(p)) is not None and st.retried},
        )

    def _read_back(self, state: NodeState | None, base: float, t0: float) -> NodeState | None:
        """``state`` as the next reconciliation reads it from the status (times to the
        second from status.startTime, the reason clipped): what :func:`reconcile` would
        take as the prior record."""
        if state is None:
            return None
        record = node_record(state, base)
        return node_state(record, t0) if record is not None else None

    def _apply(self, updates: list[tuple[str, NodeState | None]]) -> None:
        if self._full:
            # Built from the status: the failed and reasoned sets from every node, once.
            for path, rec in updates:
                if self.engine.recorded.get(path) != rec:
                    self.engine.update(path, rec)
            states, paths = self.engine.states, self.graph.paths
            self._failed = {
                i for i, k in enumerate(self.graph.kinds) if k == EXEC and states[paths[i]].failed
            }
            self._reasoned = {
                self.graph.index[p]
                for p, r in self.engine.recorded.items()
                if p in self.graph.index and r.reason and not r.state.finished
            }
            return
        changes = [(p, r) for p, r in updates if self.engine.recorded.get(p) != r]
        if not changes:
            return
        delta = self.engine.apply(changes)
        index = self.graph.index
        for path, state in delta.states.items():
            i = index[path]
            if self.graph.kinds[i] != EXEC:
                continue
            if state.failed:
                self._failed.add(i)
            else:
                self._failed.discard(i)
        for path, rec in changes:
            if rec is not None and rec.reason and not rec.state.finished:
                self._reasoned.add(index[path])
            else:
                self._reasoned.discard(index[path])

    # --- the status -----------------------------------------------------------------------

    def _top(
        self,
        pipeline: Mapping[str, Any],
        spec: Mapping[str, Any],
        meta: Mapping[str, Any],
        base: float,
        completion: float | None,
        fresh: Mapping[str, NodeState | None],
    ) -> dict[str, Any]:
        """The status without its node records, as render_status and reconcile make it."""
        counts = self.engine.counts()
        total = sum(counts.values())
        finished = sum(counts[s] for s in _FINISHED)
        out: dict[str, Any] = {
            "phase": phase(self.engine.root),
            "progress": f"{finished}/{total}",
            "counts": counts,
        }
        if meta.get("generation") is not None:
            out["observedGeneration"] = meta["generation"]
        out["startTime"] = timestamp(base)
        if completion is not None:
            out["completionTime"] = timestamp(completion)
        message = self._message(fresh, counts)
        if message:
            out["message"] = message
        prior = self.mirror
        rerun = spec.get("rerun") or {}
        token = rerun.get("token") or prior.get("rerunToken")
        if token:
            out["rerunToken"] = token
        control_token = controls.last_token(spec, prior)
        if control_token:
            out[controls.STATUS_TOKEN] = control_token
        if STATUS_KEY in prior:
            out[STATUS_KEY] = prior[STATUS_KEY]
        notify = prior.get(cbs.NOTIFY_KEY)  # the controller's to send (no callbacks here)
        if notify:
            out[cbs.NOTIFY_KEY] = dict(notify)
        return stored_form(out)

    def _message(self, fresh: Mapping[str, NodeState | None], counts: Mapping[str, int]) -> str:
        """decide._message, from the sets kept current instead of every node."""
        paths, states = self.graph.paths, self.engine.states

        def reason(path: str) -> str | None:
            rec = fresh[path] if path in fresh else self.engine.recorded.get(path)
            return rec.reason if rec is not None else None

        if self._failed:
            first = paths[min(self._failed)]
            why = reason(first) or str(states[first])
            more = f" (and {len(self._failed) - 1} more)" if len(self._failed) > 1 else ""
            return f"{first}: {why}{more}"
        running = counts[State.RUNNING.value]
        parts = [f"{running} running"] if running else []
        stuck = [
            paths[i]
            for i in sorted(self._reasoned)
            if states[paths[i]] is State.QUEUED and reason(paths[i])
        ]
        if stuck:
            more = f" (and {len(stuck) - 1} more)" if len(stuck) > 1 else ""
            parts.append(f"{stuck[0]}: {reason(stuck[0])}{more}")
        return "; ".join(parts)

    def _store(self, top: Mapping[str, Any], nodes_patch: Mapping[str, Any]) -> None:
        """The mirror after this reconciliation's status is written."""
        nodes: dict[str, Any] = self.mirror["nodes"]
        for key, value in nodes_patch.items():
            old = nodes.get(key)
            if value is None:
                nodes.pop(key, None)
            else:
                nodes[key] = overflow.apply_patch(old, value) if isinstance(old, Mapping) else value
        self.changed.update(nodes_patch)
        self.mirror = {**top, "nodes": nodes}

    # --- writing less often than deciding ---------------------------------------------------

    def unwritten(self) -> bool:
        """Whether the status holds changes not yet written (``changed``: their records)."""
        return self._pending

    def may_wait(self) -> bool:
        """Whether the unwritten changes can wait for a later write: every one of them is
        a node queued (its Job just created), running or done, which its Job still shows
        to a controller that lost this copy (DESIGN.md §3); a failure, a phase that
        changes or a node without a Job is written at once."""
        if self.mirror.get("phase") != self._phase_then:
            return False
        waits = (State.QUEUED, State.RUNNING, State.DONE)
        return all(st is not None and st.state in waits for st in self._now.values())

    def written(self) -> list[Event]:
        """The status as it stands is written: forget what was pending, and the Events that
        say what changed since the last write (one NodesStarted, one NodesSucceeded)."""
        index = self.graph.index
        paths = sorted(self._now, key=index.__getitem__)
        events = _events(
            paths,
            {p: r for p, r in self._then.items() if r is not None},
            {p: r for p, r in self._now.items() if r is not None},
            self._phase_then,
            str(self.mirror.get("phase")),
        )
        self._then, self._now, self._pending = {}, {}, False
        self.changed = set()
        return events


__all__ = ["Live", "stored_form"]
