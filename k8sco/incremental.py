"""The engine, incrementally: :func:`k8sco.engine.evaluate`'s answers, kept up to date one
Exec node's change at a time, at a cost that does not grow with the tree.

Pure, like the engine: no clock, no environment, no I/O. The from-scratch engine stays the
definition of the semantics (and the oracle of tests/test_incremental.py); this module keeps,
for every node, what ``evaluate`` derives on its bottom-up pass, so that a change to one
Exec node's :class:`NodeState` re-derives only that node and its ancestors:

- per node: its own state before queued/running are shown on ancestors (``base``), whether
  it lets its parent go on (``ok``), the Exec nodes below holding a slot (``active``) and
  whether anything below has started (``touched``);
- per Serial or Parallel: how many children are open, failed (error, killed) and touched,
  and for a Serial a cursor on the child it waits for;
- per node, ``cnt``: how many Exec nodes below it ``evaluate``'s ``_collect`` would offer
  with no budget from above. A node's offer is always the first ``room`` of its children's
  offers put end to end (``room``: its ``max_concurrent`` less its active nodes), so the
  ready set is a tree of prefixes: a Parallel keeps its children's counts in a Fenwick tree,
  which finds the k-th offered node below it in O(log width).

One change walks its ancestors twice: up, to re-derive them; down, comparing each prefix
before and after, to name the nodes that enter or leave the ready set (the siblings it
unblocks, the next node a freed slot goes to). Queued and running are then shown on the
ancestors of the nodes that changed. Cost: O(depth × log width) per change, plus the nodes
that enter or leave the ready set; O(n) only to build (:class:`Incremental` from a graph
and recorded states, as after a ``co.Lazy`` splice, which builds a new graph).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from k8sco.engine import EXEC, PARALLEL, SERIAL, Evaluation, Graph, NodeState, State
from k8sco.errors import PipelineError

_PENDING, _QUEUED, _RUNNING = State.PENDING, State.QUEUED, State.RUNNING
_DONE, _ERROR, _KILLED, _SKIPPED = State.DONE, State.ERROR, State.KILLED, State.SKIPPED
_UNSET = NodeState()


@dataclass(frozen=True)
class Delta:
    """What one change (or one batch of changes) did."""

    ready: list[str]  # Exec nodes that may start now and could not before, in tree order
    # Exec nodes that were ready and are not any more, in tree order: the node that was
    # started, or one a slot or a rerun ahead of it took the turn of.
    unready: list[str]
    states: dict[str, State]  # every node whose state changed (Exec and control): the new one


class Answers(Protocol):
    """What a backend reads of an evaluation: :class:`engine.Evaluation` and :class:`View`
    both fit, so a function typed with this takes either."""

    @property
    def states(self) -> Mapping[str, State]: ...
    @property
    def ready(self) -> list[str]: ...
    @property
    def expired(self) -> list[str]: ...
    @property
    def next_deadline(self) -> float | None: ...
    @property
    def root(self) -> State: ...
    @property
    def finished(self) -> bool: ...
    def counts(self, graph: Graph) -> dict[str, int]: ...


@dataclass(frozen=True)
class View:
    """What :class:`k8sco.engine.Evaluation` offers, without a dict of every node's state:
    ``states`` reads the engine's (live: it shows later changes too)."""

    states: Mapping[str, State]
    ready: list[str]  # Exec nodes that may start now, in tree order (or the first: evaluation)
    expired: list[str]  # running Exec nodes past their max_time, as evaluate orders them
    next_deadline: float | None
    root: State
    exec_counts: Mapping[str, int]

    @property
    def finished(self) -> bool:
        return self.root.finished

    def counts(self, graph: Graph | None = None) -> dict[str, int]:
        """How many Exec nodes are in each state (``graph`` only for Evaluation's signature)."""
        return dict(self.exec_counts)


class _States(Mapping[str, State]):
    """Every node's state by path, read from the engine when asked."""

    def __init__(self, engine: Incremental) -> None:
        self._engine = engine

    def __getitem__(self, path: str) -> State:
        return self._engine._fin[self._engine.graph.index[path]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._engine.graph.paths)

    def __len__(self) -> int:
        return len(self._engine.graph.paths)

    def __contains__(self, path: object) -> bool:
        return path in self._engine.graph.index


class Incremental:
    """The engine's answers for ``graph``, kept current through :meth:`update`.

    ``recorded`` holds the Exec nodes' states by path, as for :func:`engine.evaluate`
    (entries for paths the graph does not hold are kept and ignored, as there).
    """

    def __init__(self, graph: Graph, recorded: Mapping[str, NodeState] | None = None) -> None:
        self.graph = graph
        n = len(graph.paths)
        kinds, children, parents = graph.kinds, graph.children, graph.parents
        self._pos = pos = [0] * n  # a node's place among its siblings
        self._end = end = list(range(1, n + 1))  # its subtree is [i, end[i]) in pre-order
        for i in range(n - 1, -1, -1):
            kids = children[i]
            for j, c in enumerate(kids):
                pos[c] = j
            if kids:
                end[i] = end[kids[-1]]
        self._recorded: dict[str, NodeState] = dict(recorded or {})
        self._rec: list[NodeState] = [_UNSET] * n
        self._failed: set[int] = set()  # Exec nodes recorded as failed: what a rerun resets
        index = graph.index
        for path, rec in self._recorded.items():
            at = index.get(path)
            if at is not None and kinds[at] == EXEC:
                self._rec[at] = rec
                if rec.state.failed:
                    self._failed.add(at)

        self._base: list[State] = [_PENDING] * n
        self._ok = [False] * n
        self._open = [False] * n  # neither ok nor failed: its parent waits for it
        self._act = [0] * n
        self._tch = [False] * n
        self._cnt = [0] * n
        self._nopen = [0] * n
        self._nerr = [0] * n  # children failed with error, not ok
        self._nkill = [0] * n  # children killed, not ok
        self._nt = [0] * n  # children touched
        self._cur = [0] * n  # Serial: the first child it waits for (len(children): none)
        self._tot = [0] * n  # Parallel: the sum of its children's cnt
        self._bit: list[list[int]] = [[] for _ in range(n)]  # Parallel: Fenwick tree of cnt
        self._nq = [0] * n  # children shown queued
        self._fin: list[State] = [_PENDING] * n  # the state evaluate reports
        self._ready: set[int] = set()
        self._counts = {s.value: 0 for s in State}  # Exec nodes by reported state
        self._deadline: dict[int, float] = {}  # running Exec node -> when max_time runs out
        self._heap: list[tuple[float, int]] = []  # the same, lazily cleaned
        # What the current change did, to report it: the ready set and states before it.
        self._ready_was: dict[int, bool] = {}
        self._state_was: dict[int, State] = {}

        for i in range(n - 1, -1, -1):
            if kinds[i] == EXEC:
                self._set_exec_values(i, self._rec[i])
                self._track_deadline(i)
                continue
            kids = children[i]
            act = nt = nopen = nerr = nkill = 0
            for c in kids:
                act += self._act[c]
                nt += self._tch[c]
                if self._open[c]:
                    nopen += 1
                elif not self._ok[c]:
                    if self._base[c] is _ERROR:
                        nerr += 1
                    else:
                        nkill += 1
            self._act[i], self._nt[i] = act, nt
            self._nopen[i], self._nerr[i], self._nkill[i] = nopen, nerr, nkill
            if kinds[i] == PARALLEL:
                self._bit[i] = _fenwick([self._cnt[c] for c in kids])
                self._tot[i] = sum(self._cnt[c] for c in kids)
            else:
                cur = 0
                while cur < len(kids) and not self._blocks(i, kids[cur]):
                    cur += 1
                self._cur[i] = cur
            self._set_control_values(i)
        if n:
            self._ready.update(self._walk(0, 0, self._cnt[0]))
        for i in range(n - 1, -1, -1):
            f = self._final(i)
            self._fin[i] = f
            if kinds[i] == EXEC:
                self._counts[f.value] += 1
            if f is _QUEUED and parents[i] >= 0:
                self._nq[parents[i]] += 1

    # --- reading --------------------------------------------------------------------------

    @property
    def states(self) -> Mapping[str, State]:
        """Every node's state by path, as ``Evaluation.states`` (a live view)."""
        return _States(self)

    def state(self, path: str) -> State:
        return self._fin[self._index(path)]

    @property
    def root(self) -> State:
        return self._fin[0]

    @property
    def finished(self) -> bool:
        return self._fin[0].finished

    @property
    def recorded(self) -> Mapping[str, NodeState]:
        """The recorded Exec states by path (a read-only live view)."""
        return MappingProxyType(self._recorded)

    def ready(self, limit: int | None = None) -> list[str]:
        """The Exec nodes that may start now, in tree order, or the first ``limit`` of them
        (a caller that starts nodes until it runs out of room reads no further): at the
        cost of the nodes returned, not of the tree."""
        total = self._cnt[0]
        paths = self.graph.paths
        return [paths[i] for i in self._walk(0, 0, total if limit is None else min(limit, total))]

    def is_ready(self, path: str) -> bool:
        return self._index(path) in self._ready

    def counts(self) -> dict[str, int]:
        """How many Exec nodes are in each state, as ``Evaluation.counts``."""
        return dict(self._counts)

    def expired(self, now: float) -> list[str]:
        """Running Exec nodes past their max_time at ``now``, as ``Evaluation.expired``."""
        return self._deadlines(now)[0]

    def next_deadline(self, now: float) -> float | None:
        """The earliest moment after ``now`` a running node's max_time runs out."""
        return self._deadlines(now)[1]

    def evaluation(self, now: float, limit: int | None = None) -> View:
        """What ``engine.evaluate(graph, recorded, now)`` answers, at the cost of the ready
        and expired nodes only (``states`` is read on demand); with ``limit``, ``ready``
        holds only the first ``limit`` ready nodes (what a caller with that much room can
        start), so the cost does not grow with a wide Parallel."""
        expired, deadline = self._deadlines(now)
        return View(
            states=_States(self),
            ready=self.ready(limit),
            expired=expired,
            next_deadline=deadline,
            root=self._fin[0],
            exec_counts=self.counts(),
        )

    def snapshot(self, now: float) -> Evaluation:
        """An :class:`engine.Evaluation` equal to ``evaluate``'s: O(nodes), for the places
        that keep every node's state (a run's result)."""
        expired, deadline = self._deadlines(now)
        return Evaluation(
            states=dict(zip(self.graph.paths, self._fin)),
            ready=self.ready(),
            expired=expired,
            next_deadline=deadline,
        )

    # --- changing -------------------------------------------------------------------------

    def update(self, path: str, rec: NodeState | None) -> Delta:
        """Record ``rec`` for the Exec node at ``path`` (None: no record, as pending)."""
        self._change(self._exec_index(path), rec)
        return self._delta()

    def apply(self, changes: Iterable[tuple[str, NodeState | None]]) -> Delta:
        """Several :meth:`update` calls, with one Delta for them all."""
        resolved = [(self._exec_index(path), rec) for path, rec in changes]  # all, or none
        for i, rec in resolved:
            self._change(i, rec)
        return self._delta()

    def reset(self, path: str = "/") -> Delta:
        """``engine.reset``: failed and killed Exec nodes under ``path`` back to pending
        (their records dropped); done nodes stay done. O(failed nodes, or the subtree)."""
        start = self._index(path)
        stop = self._end[start]
        if len(self._failed) < stop - start:
            hits = sorted(i for i in self._failed if start <= i < stop)
        else:
            hits = [i for i in range(start, stop) if i in self._failed]
        for i in hits:
            self._change(i, None)
        return self._delta()

    # --- the walk up ----------------------------------------------------------------------

    def _change(self, e: int, rec: NodeState | None) -> None:
        path = self.graph.paths[e]
        if rec is None:
            self._recorded.pop(path, None)
            rec = _UNSET
        else:
            self._recorded[path] = rec
        self._rec[e] = rec
        if rec.state.failed:
            self._failed.add(e)
        else:
            self._failed.discard(e)
        self._track_deadline(e)
        if self.graph.skip[e]:
            return  # skipped whatever is recorded

        parents, kinds, stop = self.graph.parents, self.graph.kinds, self.graph.stop_on_error
        chain = []  # e and its ancestors, bottom-up
        a = e
        while a >= 0:
            chain.append(a)
            a = parents[a]
        old_cnt = [self._cnt[a] for a in chain]
        old_active = [self._active(a) if kinds[a] == SERIAL else -1 for a in chain]

        b0, ok0, op0, act0, t0, c0 = self._values(e)
        self._set_exec_values(e, rec)
        child = e
        for a in chain[1:]:
            b1, ok1, op1, act1, t1, c1 = self._values(child)
            if (b0, ok0, op0, act0, t0, c0) == (b1, ok1, op1, act1, t1, c1):
                break  # nothing above can change
            was = self._values(a)
            if op0 != op1:
                self._nopen[a] += 1 if op1 else -1
            e0, e1 = not ok0 and b0 is _ERROR, not ok1 and b1 is _ERROR
            if e0 != e1:
                self._nerr[a] += 1 if e1 else -1
            k0, k1 = not ok0 and b0 is _KILLED, not ok1 and b1 is _KILLED
            if k0 != k1:
                self._nkill[a] += 1 if k1 else -1
            if t0 != t1:
                self._nt[a] += 1 if t1 else -1
            self._act[a] += act1 - act0
            if kinds[a] == PARALLEL:
                if c0 != c1:
                    _fenwick_add(self._bit[a], self._pos[child], c1 - c0)
                    self._tot[a] += c1 - c0
            else:
                blk0, blk1 = (not ok0, not ok1) if stop[a] else (op0, op1)
                p = self._pos[child]
                if blk1 and not blk0 and p < self._cur[a]:
                    self._cur[a] = p
                elif blk0 and not blk1 and p == self._cur[a]:
                    kids = self.graph.children[a]
                    p += 1
                    while p < len(kids) and not self._blocks(a, kids[p]):
                        p += 1
                    self._cur[a] = p
            self._set_control_values(a)
            b0, ok0, op0, act0, t0, c0 = was
            child = a

        added, removed = self._diff(chain, old_cnt, old_active)
        for i in removed:
            self._ready_was.setdefault(i, True)
            self._ready.discard(i)
        for i in added:
            self._ready_was.setdefault(i, False)
            self._ready.add(i)
        for i in removed:
            self._show(i)
        for i in added:
            self._show(i)
        for a in chain:
            self._show(a)

    def _values(self, i: int) -> tuple[State, bool, bool, int, bool, int]:
        """What a node's parent counts of it."""
        return self._base[i], self._ok[i], self._open[i], self._act[i], self._tch[i], self._cnt[i]

    def _set_exec_values(self, i: int, rec: NodeState) -> None:
        if self.graph.skip[i]:
            self._base[i], self._ok[i], self._open[i] = _SKIPPED, True, False
            self._act[i], self._tch[i], self._cnt[i] = 0, False, 0
            return
        s = rec.state
        self._base[i] = s
        ok = s is _DONE or s is _SKIPPED or (s.failed and self.graph.suppress_errors[i])
        self._ok[i] = ok
        self._open[i] = not ok and not s.failed
        act = 1 if s is _RUNNING or s is _QUEUED else 0
        self._act[i] = act
        self._tch[i] = not (s is _PENDING or s is _QUEUED) or rec.attempts > 0
        limit = self.graph.max_concurrent[i]
        self._cnt[i] = 1 if s is _PENDING and (limit is None or limit - act > 0) else 0

    def _set_control_values(self, i: int) -> None:
        """A Serial's or Parallel's own values from its counters (``engine._control_state``)."""
        g = self.graph
        failure: State
        if g.skip[i]:
            b = _SKIPPED
        elif g.kinds[i] == SERIAL and g.stop_on_error[i]:
            kids, cur = g.children[i], self._cur[i]
            if cur == len(kids):
                b = _DONE
            elif self._open[kids[cur]]:
                b = _PENDING
            else:  # the first child not ok failed, and stops it
                failure = self._base[kids[cur]]
                b = _DONE if g.suppress_errors[i] else failure
        elif self._nopen[i]:
            b = _PENDING
        elif self._nerr[i] or self._nkill[i]:
            failure = _ERROR if self._nerr[i] else _KILLED
            b = _DONE if g.suppress_errors[i] else failure
        else:
            b = _DONE
        self._base[i] = b
        self._ok[i] = b is _DONE or b is _SKIPPED
        self._open[i] = b is _PENDING
        self._tch[i] = self._nt[i] > 0
        if b.finished:
            self._cnt[i] = 0
            return
        if g.kinds[i] == SERIAL:
            a = self._active(i)
            offered = self._cnt[a] if a >= 0 else 0
        else:
            offered = self._tot[i]
        limit = g.max_concurrent[i]
        if limit is not None:
            offered = min(offered, max(limit - self._act[i], 0))
        self._cnt[i] = offered

    def _blocks(self, serial: int, child: int) -> bool:
        """Whether a Serial's cursor stops at this child: one not ok, when a failure stops
        it; otherwise one still open (a failed child is passed over)."""
        if self.graph.stop_on_error[serial]:
            return not self._ok[child]
        return self._open[child]

    def _active(self, serial: int) -> int:
        """The child a Serial offers nodes from (``_collect``'s), or -1."""
        kids, cur = self.graph.children[serial], self._cur[serial]
        if cur < len(kids) and self._open[kids[cur]]:
            return kids[cur]
        return -1

    # --- the walk down: which nodes entered or left the ready set -------------------------

    def _diff(
        self, chain: list[int], old_cnt: list[int], old_active: list[int]
    ) -> tuple[list[int], list[int]]:
        """Compare the ready set before and after a change below ``chain[0]``.

        Only the offers of ``chain``'s nodes changed; any other node's offer is as it was.
        At each node from the root down, ``k_old`` and ``k_new`` say how much of its offer
        its ancestors took, before and after.
        """
        kinds, cnt = self.graph.kinds, self._cnt
        added: list[int] = []
        removed: list[int] = []
        level = len(chain) - 1
        k_old, k_new = old_cnt[level], cnt[chain[level]]
        while level > 0 and (k_old or k_new):
            a, c = chain[level], chain[level - 1]
            len_old, len_new = old_cnt[level - 1], cnt[c]
            if kinds[a] == PARALLEL:
                pre = _fenwick_prefix(self._bit[a], self._pos[c])
                # The siblings before c: their offers are unchanged, the share taken is not.
                self._span(a, min(k_old, pre), min(k_new, pre), added, removed)
                # The siblings after c, shifted by the change in c's offer.
                after = pre + len_new
                x_old, x_new = max(k_old - pre - len_old, 0), max(k_new - pre - len_new, 0)
                self._span(a, after + x_old, after + x_new, added, removed)
                k_old = min(max(k_old - pre, 0), len_old)
                k_new = min(max(k_new - pre, 0), len_new)
            else:
                was, now = old_active[level], self._active(a)
                if was == now and was != c:
                    if was >= 0:
                        self._span(was, k_old, k_new, added, removed)
                    return added, removed
                if was != now:
                    if was >= 0 and was != c:
                        removed.extend(self._walk(was, 0, k_old))
                    if now >= 0 and now != c:
                        added.extend(self._walk(now, 0, k_new))
                k_old = min(k_old, len_old) if was == c else 0
                k_new = min(k_new, len_new) if now == c else 0
            level -= 1
        if level == 0:
            if k_old and not k_new:
                removed.append(chain[0])
            elif k_new and not k_old:
                added.append(chain[0])
        return added, removed

    def _span(self, i: int, was: int, now: int, added: list[int], removed: list[int]) -> None:
        """The offer of ``i`` between positions ``was`` and ``now``: gained or lost."""
        if now > was:
            added.extend(self._walk(i, was, now))
        elif was > now:
            removed.extend(self._walk(i, now, was))

    def _walk(self, i: int, lo: int, hi: int) -> Iterator[int]:
        """The Exec nodes at positions [lo, hi) of what ``i``'s children offer end to end
        (for a Serial, its active child), in tree order."""
        if lo >= hi:
            return
        kind = self.graph.kinds[i]
        if kind == EXEC:
            yield i
            return
        if kind == SERIAL:
            yield from self._walk(self._active(i), lo, hi)
            return
        kids, cnt, bit = self.graph.children[i], self._cnt, self._bit[i]
        j, before = _fenwick_find(bit, lo)  # the child holding position lo
        while True:
            size = cnt[kids[j]]
            off = lo - before
            take = min(hi - lo, size - off)
            yield from self._walk(kids[j], off, off + take)
            lo += take
            if lo >= hi:
                return
            before += size
            j += 1
            if not cnt[kids[j]]:  # a run of children offering nothing: jump over it
                j, before = _fenwick_find(bit, lo)

    # --- states as evaluate reports them --------------------------------------------------

    def _final(self, i: int) -> State:
        """``evaluate``'s second pass: ready nodes are queued; queued and running show on
        ancestors (running when anything below started: a running child implies it)."""
        b = self._base[i]
        if self.graph.kinds[i] == EXEC:
            return _QUEUED if i in self._ready else b
        if b.finished:
            return b
        if self._tch[i]:
            return _RUNNING
        return _QUEUED if self._nq[i] else _PENDING

    def _show(self, i: int) -> None:
        """Re-derive the reported state of ``i``, and of its ancestors while it changes
        whether their child shows queued."""
        parents, kinds, fin = self.graph.parents, self.graph.kinds, self._fin
        while i >= 0:
            new, old = self._final(i), fin[i]
            if new is old:
                return
            fin[i] = new
            self._state_was.setdefault(i, old)
            if kinds[i] == EXEC:
                self._counts[old.value] -= 1
                self._counts[new.value] += 1
            p = parents[i]
            if p < 0 or (old is _QUEUED) == (new is _QUEUED):
                return
            self._nq[p] += 1 if new is _QUEUED else -1
            i = p

    def _delta(self) -> Delta:
        paths, ready, fin = self.graph.paths, self._ready, self._fin
        gained = sorted(i for i, was in self._ready_was.items() if not was and i in ready)
        lost = sorted(i for i, was in self._ready_was.items() if was and i not in ready)
        changed = sorted(i for i, was in self._state_was.items() if fin[i] is not was)
        self._ready_was.clear()
        self._state_was.clear()
        return Delta(
            ready=[paths[i] for i in gained],
            unready=[paths[i] for i in lost],
            states={paths[i]: fin[i] for i in changed},
        )

    # --- max_time -------------------------------------------------------------------------

    def _track_deadline(self, i: int) -> None:
        rec = self._rec[i]
        if self.graph.skip[i] or rec.state is not _RUNNING or rec.started is None:
            self._deadline.pop(i, None)
            return
        end = rec.started + self.graph.max_time[i]
        if self._deadline.get(i) != end:
            self._deadline[i] = end
            heapq.heappush(self._heap, (end, i))
            if len(self._heap) > 2 * len(self._deadline) + 64:  # mostly stale: rebuild
                self._heap = [(t, j) for j, t in self._deadline.items()]
                heapq.heapify(self._heap)

    def _deadlines(self, now: float) -> tuple[list[str], float | None]:
        """The expired nodes (in evaluate's order: reverse tree order) and the next deadline."""
        heap, live = self._heap, self._deadline
        taken: list[tuple[float, int]] = []
        expired: set[int] = set()
        deadline = None
        while heap:
            end, i = heap[0]
            if live.get(i) != end:
                heapq.heappop(heap)  # stale: the node moved on
                continue
            if end > now:
                deadline = end
                break
            taken.append(heapq.heappop(heap))
            expired.add(i)
        for item in taken:
            heapq.heappush(heap, item)
        paths = self.graph.paths
        return [paths[i] for i in sorted(expired, reverse=True)], deadline

    # --- lookups --------------------------------------------------------------------------

    def _index(self, path: str) -> int:
        i = self.graph.index.get(path)
        if i is None:
            raise PipelineError(f"{path}: no such node in this pipeline; give a node's path")
        return i

    def _exec_index(self, path: str) -> int:
        i = self._index(path)
        if self.graph.kinds[i] != EXEC:
            raise PipelineError(
                f"{path}: a Serial or Parallel has no recorded state; give an Exec node's path"
            )
        return i


# --- Fenwick trees (1-based arrays of partial sums of a list of counts) -----------------------


def _fenwick(values: list[int]) -> list[int]:
    tree = [0, *values]
    for j in range(1, len(tree)):
        k = j + (j & -j)
        if k < len(tree):
            tree[k] += tree[j]
    return tree


def _fenwick_add(tree: list[int], pos: int, delta: int) -> None:
    j = pos + 1
    while j < len(tree):
        tree[j] += delta
        j += j & -j


def _fenwick_prefix(tree: list[int], pos: int) -> int:
    """The sum of the counts before ``pos``."""
    total = 0
    while pos > 0:
        total += tree[pos]
        pos -= pos & -pos
    return total


def _fenwick_find(tree: list[int], k: int) -> tuple[int, int]:
    """The first position whose count takes the running sum past ``k``, and the sum of the
    counts before it (len(counts) when there is none)."""
    pos, rest = 0, k
    step = 1 << ((len(tree) - 1).bit_length() - 1) if len(tree) > 1 else 0
    while step:
        nxt = pos + step
        if nxt < len(tree) and tree[nxt] <= rest:
            pos, rest = nxt, rest - tree[nxt]
        step >>= 1
    return pos, k - rest
