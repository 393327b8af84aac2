"""What a node's callbacks (``co.callback``) do when it changes state.

Pure: no clock, no environment, no I/O. The local runner and the controller ask the same
two questions here, so the semantics are written once:

- :func:`after_failure`: an Exec node has just failed; the record to keep instead: a new
  attempt (``retry``, ``retry_then_skip``, ``retry_with_double_mem``,
  ``handle_memory_errors``; with twice the memory after an out-of-memory kill), skipped
  (``retry_then_skip`` out of retries, ``skip_some_errors``), or the failure as it is.
- :func:`notices`: a node (Exec or control) has entered a state; the notifications its
  callbacks ask for (``email``, ``slack_status``, ``github_status``...), each with an
  idempotency key (pipeline, node, attempt, state, callback) so that a receiver drops the
  duplicates a restarted controller may send.

Every decision is a function of the recorded states, which the backends keep durably (the
run directory, the Pipeline's status): a runner or controller killed in the middle decides
the same again, so a retry or a skip happens once. A retry is a new attempt of the node: its
record keeps ``retried`` (attempts by callback so far), the memory of the next attempt
(``mem``, bytes, when doubled) and one summary per earlier attempt (``history``). On
Kubernetes each attempt is a Job of its own, ``<job>-a<n>`` (:func:`attempt_job`), because a
Job's pod template cannot change and doubling the memory changes it.

Where Conducto does more (its service keeps callbacks on control nodes too):
``skip_some_errors`` on a Serial or Parallel skips each failing Exec below while fewer than
its count have been skipped, instead of waiting for the parent to fail and then skipping all
of them; a retry callback set on a Serial or Parallel retries the Exec nodes below it (as
``inherited=True``), not the whole subtree.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from k8sco.callback import NOTIFICATIONS, RETRIES, Callback, Event, entries
from k8sco.engine import NodeState, State
from k8sco.params import mem_bytes
from k8sco.render import names
from k8sco.render.constants import ANNOTATION_PATH
from k8sco.tree import Exec, Node

ATTEMPT_ANNOTATION = "k8sco.io/attempt"  # on a retry's Job: its attempt number (2, 3, ...)
ATTEMPT_ENV = "K8SCO_ATTEMPT"  # in a retry's environment: the same number
OOM_EXIT = 137  # 128 + SIGKILL: how the kernel's OOM killer ends a container's process
SKIPPED_BY = "skipped by skip_some_errors"
_GIB = 2**30

_EVENT_OF = {
    State.DONE: Event.DONE,
    State.ERROR: Event.ERROR,
    State.QUEUED: Event.QUEUED,
    State.RUNNING: Event.RUNNING,
    State.KILLED: Event.KILLED,
}


@dataclass(frozen=True)
class Entry:
    """A callback in effect at a node: the event, the callback, the node that set it."""

    event: Event
    callback: Callback
    owner: str  # the path of the node it was set on


@dataclass(frozen=True)
class Table:
    """The callbacks in effect at every node, by path: built once per tree (O(nodes))."""

    by_path: Mapping[str, tuple[Entry, ...]]
    mem: Mapping[str, int]  # an Exec node's memory in bytes, for nodes with retry callbacks
    notify_paths: frozenset[str] = frozenset()  # nodes whose state changes may notify

    @classmethod
    def of(cls, root: Node) -> Table:
        if not _any_callbacks(root):  # the usual tree: one cheap walk, nothing built
            return cls(by_path={}, mem={})
        by_path: dict[str, tuple[Entry, ...]] = {}
        mem: dict[str, int] = {}
        # (node, path, what reaches it from above)
        stack: list[tuple[Node, str, tuple[Entry, ...]]] = [(root, "/", ())]
        while stack:
            node, path, above = stack.pop()
            own = tuple(Entry(ev, cb, path) for ev, cb in entries(node.params.get("callbacks")))
            here = own + above
            if here:
                by_path[path] = here
                if isinstance(node, Exec) and any(e.callback.name in RETRIES for e in here):
                    mem[path] = mem_bytes(node.get("mem"))
            # What the children get: inherited callbacks, a control node's retries (they
            # act on the Execs below) and its skip_some_errors (about its subtree).
            down = tuple(
                e
                for e in own
                if e.callback.inherited
                or (
                    not isinstance(node, Exec)
                    and (e.callback.name in RETRIES or e.callback.name == "skip_some_errors")
                )
            )
            below = down + above
            prefix = path.rstrip("/") + "/"
            stack.extend((child, prefix + name, below) for name, child in node.children.items())
        notify_paths = frozenset(
            p for p, es in by_path.items() if any(e.callback.name in NOTIFICATIONS for e in es)
        )
        return cls(by_path=by_path, mem=mem, notify_paths=notify_paths)

    def __bool__(self) -> bool:
        return bool(self.by_path)

    def at(self, path: str) -> tuple[Entry, ...]:
        return self.by_path.get(path, ())

    def notifying(self) -> frozenset[str]:
        """The paths whose state changes may send a notification."""
        return self.notify_paths


def _any_callbacks(root: Node) -> bool:
    stack = [root]
    while stack:
        node = stack.pop()
        if "callbacks" in node._params:
            return True
        stack.extend(node._children.values())
    return False


# --- state effects ----------------------------------------------------------------------------


def attempt(rec: NodeState) -> int:
    """The attempt a record is about: 1 for the first run, 2 after one retry by callback."""
    return rec.retried + 1


def attempts_before(rec: NodeState) -> int:
    """The starts of the node's earlier attempts: ``retries=`` counts within one attempt
    (on a cluster, one Job's backoffLimit), so a backend that counts starts across attempts
    adds this to it."""
    if not rec.history:
        return 0
    return int(str(rec.history[-1].get("a", len(rec.history))))


def summary(rec: NodeState, oom: bool) -> dict[str, Any]:
    """One finished attempt, as the record's ``history`` keeps it (short keys, as
    ``status.nodes``): ``s`` state, ``a`` attempts so far, ``x`` exit code, ``r`` reason,
    ``m`` memory in bytes when not the node's own, ``t``/``f`` start and finish (seconds
    since the epoch), ``oom`` when it was killed for memory, ``cb`` the callback that
    retried it."""
    out: dict[str, Any] = {"s": rec.state.value, "a": rec.attempts}
    for key, value in (("x", rec.exit_code), ("r", rec.reason), ("m", rec.mem)):
        if value is not None:
            out[key] = value
    for key, moment in (("t", rec.started), ("f", rec.finished)):
        if moment is not None:
            out[key] = round(moment)
    if oom:
        out["oom"] = True
    return out


def is_oom(rec: NodeState, detail: str | None = None) -> bool:
    """Was the attempt killed for running out of memory? ``detail`` is how the container
    ended as the backend saw it: a pod's terminated reason first (the kubelet reports
    ``OOMKilled``: kubernetes pkg/kubelet/kuberuntime/kuberuntime_container.go takes it from
    the runtime, containerd's internal/cri/server/events.go ``oomExitReason``), Docker's
    ``State.OOMKilled``; without one (process mode) an exit by SIGKILL is taken as one."""
    text = f"{detail or ''} {rec.reason or ''}"
    if "OOMKilled" in text:
        return True
    if detail is not None:
        return False
    return rec.exit_code in (OOM_EXIT, -9)


def after_failure(
    table: Table,
    path: str,
    rec: NodeState,
    recorded: Mapping[str, NodeState],
    *,
    oom: bool,
) -> NodeState:
    """The record to keep for the Exec node at ``path`` that has just failed with ``rec``
    (state ERROR): ``rec`` itself, a new attempt (state PENDING, ``retried`` + 1) or
    SKIPPED. ``recorded`` holds the other Exec records (for ``skip_some_errors``'s
    count); ``oom``: the attempt was killed for running out of memory (:func:`is_oom`)."""
    if rec.state is not State.ERROR:
        return rec
    for entry in table.at(path):
        if entry.event not in (Event.ERROR, Event.STATE_CHANGE):
            continue
        cb = entry.callback
        name, args = cb.name, cb.kwargs
        used = sum(1 for h in rec.history if h.get("cb") == name)
        mem = rec.mem if rec.mem is not None else table.mem.get(path)
        if name in ("retry", "retry_then_skip"):
            if used < int(args["max_num_retries"]):
                return _retry(rec, name, used + 1, int(args["max_num_retries"]), oom, rec.mem)
            if name == "retry_then_skip":
                return _skip(rec, oom, f"skipped after {used + 1} attempts (retry_then_skip)")
        elif name == "retry_with_double_mem":
            if used < int(args["max_num_retries"]):
                doubled = 2 * mem if oom and mem is not None else rec.mem
                return _retry(rec, name, used + 1, int(args["max_num_retries"]), oom, doubled)
        elif name == "handle_memory_errors":
            if not oom or mem is None:
                continue
            lower, upper = (float(v) * _GIB for v in args["mem_limits"])
            ran = (rec.finished or 0.0) - (rec.started or 0.0)
            if 2 * mem > upper or ran > float(args["max_duration"]):
                continue
            if mem < lower or used == 0:
                return _retry(rec, name, used + 1, None, oom, 2 * mem)
        elif name == "skip_some_errors":
            budget = int(args["max_num_errors"])
            owner = entry.owner.rstrip("/") + "/"
            taken = sum(
                1
                for p, r in recorded.items()
                if p != path
                and (p == entry.owner or p.startswith(owner))
                and r.state is State.SKIPPED
                and (r.reason or "").startswith(SKIPPED_BY)
            )
            if taken < budget:
                return _skip(rec, oom, f"{SKIPPED_BY} on {entry.owner} ({taken + 1} of {budget})")
    return rec


def _retry(
    rec: NodeState, name: str, n: int, of: int | None, oom: bool, mem: int | None
) -> NodeState:
    entry = summary(rec, oom)
    entry["cb"] = name
    count = f"{n} of {of}" if of is not None else f"{n}"
    grown = f", memory {_gib(mem)}" if mem is not None and mem != rec.mem else ""
    return NodeState(
        state=State.PENDING,
        attempts=rec.attempts,
        retried=rec.retried + 1,
        mem=mem,
        history=(*rec.history, entry),
        reason=f"attempt {attempt(rec)} {rec.reason or 'failed'}; {name} {count}{grown}",
    )


def _skip(rec: NodeState, oom: bool, why: str) -> NodeState:
    return rec.with_(state=State.SKIPPED, reason=f"{why}: {rec.reason or 'failed'}")


def _gib(value: int) -> str:
    return f"{value / _GIB:g} GiB"


def carry(seen: NodeState, rec: NodeState | None) -> NodeState:
    """``seen`` (read off a Job, which knows nothing of callbacks) with the attempt fields
    of the record it continues; its ``attempts`` count those of the earlier Jobs too."""
    if rec is None or (rec.retried, rec.mem, rec.history) == (0, None, ()):
        return seen
    if seen.retried == rec.retried and seen.history == rec.history:
        return seen  # already carried (a recorded outcome)
    return seen.with_(
        retried=rec.retried,
        mem=rec.mem,
        history=rec.history,
        attempts=seen.attempts + attempts_before(rec),
    )


# --- Kubernetes: one Job per attempt ----------------------------------------------------------


def job_attempt(job: Mapping[str, Any]) -> int:
    """The attempt number a Job's annotation says (0: the first, unannotated one)."""
    text = ((job.get("metadata") or {}).get("annotations") or {}).get(ATTEMPT_ANNOTATION)
    try:
        return max(int(str(text)) - 1, 0) if text else 0
    except ValueError:
        return 0


def _deleting(job: Mapping[str, Any]) -> bool:
    return bool((job.get("metadata") or {}).get("deletionTimestamp"))


def newer(cached: Mapping[str, Any] | None, seen: Mapping[str, Any]) -> bool:
    """Should a Job ``seen`` in a watch event or a listing replace the ``cached`` Job under
    the same node? Not when it is an earlier attempt's, nor a Job being deleted (a rerun's)
    over one that is not."""
    if cached is None or cached.get("metadata", {}).get("uid") == seen.get("metadata", {}).get(
        "uid"
    ):
        return True
    if _deleting(seen) != _deleting(cached):
        return _deleting(cached)
    return job_attempt(seen) >= job_attempt(cached)


def older_attempts(job: Mapping[str, Any], pipeline: str) -> list[str]:
    """The names of the earlier attempts' Jobs of the node whose Job is ``job``: deleted
    with it (a rerun, a reset), so that the first attempt's name is free again."""
    path = ((job.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_PATH)
    if not path:
        return []
    return [attempt_name(pipeline, path, n) for n in range(job_attempt(job))]


def queued(rec: NodeState | None, attempts: int) -> NodeState:
    """The record of a node whose Job is about to be created: queued, its attempt kept
    (``attempts``: the starts recorded before, for a node with no retry by callback)."""
    if rec is None or not rec.retried:
        return NodeState(State.QUEUED, attempts)
    return NodeState(
        State.QUEUED, rec.attempts, retried=rec.retried, mem=rec.mem, history=rec.history
    )


def current_job(
    job: Mapping[str, Any] | None, rec: NodeState | None
) -> tuple[Mapping[str, Any] | None, NodeState | None]:
    """The Job that is the run of ``rec``'s attempt (None: an earlier attempt's Job, which
    says nothing about this one) and the record to continue. A Job of a later attempt than
    recorded exists when the controller died between creating it and writing the status
    that decided it: the retry was decided, so the record moves to that attempt."""
    if job is None:
        return None, rec
    n = job_attempt(job)
    have = rec.retried if rec is not None else 0
    if n < have:
        return None, rec
    if n > have and _deleting(job):
        return job, rec  # a rerun's deletion: the node waits for it to go
    if n > have:
        base = rec or NodeState()
        lost = {"s": State.ERROR.value, "r": "attempt record lost in a controller restart"}
        history = (*base.history, *([lost] * (n - have)))
        return job, base.with_(retried=n, history=history)
    return job, rec


def attempt_name(pipeline: str, path: str, retried: int) -> str:
    """The Job name of attempt ``retried + 1``: the node's Job name, with ``-a<n>`` for
    retries, still a DNS-1123 label of at most 63 characters and unique per attempt (the
    name's hash part is the node's)."""
    base = names.job_name(pipeline, path)
    if retried <= 0:
        return base
    suffix = f"-a{retried + 1}"
    head, _, tail = base.rpartition("-")
    room = names.MAX_NAME - len(suffix) - len(tail) - 1
    return f"{head[:room].rstrip('-')}-{tail}{suffix}"


def attempt_job(job: Mapping[str, Any], pipeline: str, rec: NodeState | None) -> dict[str, Any]:
    """The Job ``job`` (rendered for the node) for the attempt ``rec`` records: its own
    name and annotation, and the attempt's memory as the container's request and limit."""
    if rec is None or (rec.retried == 0 and rec.mem is None):
        return dict(job)
    out = copy.deepcopy(dict(job))
    meta = out["metadata"]
    path = (meta.get("annotations") or {}).get(ANNOTATION_PATH, "/")
    meta["name"] = attempt_name(pipeline, path, rec.retried)
    meta.setdefault("annotations", {})[ATTEMPT_ANNOTATION] = str(attempt(rec))
    template = out["spec"]["template"]
    template.setdefault("metadata", {}).setdefault("annotations", {})[ATTEMPT_ANNOTATION] = str(
        attempt(rec)
    )
    for container in template["spec"].get("containers") or ():
        # Which attempt this is, for the command (1 when unset: the first Job has none).
        env = [e for e in container.get("env") or () if e.get("name") != ATTEMPT_ENV]
        container["env"] = [*env, {"name": ATTEMPT_ENV, "value": str(attempt(rec))}]
    if rec.mem is not None:
        quantity = f"{math.ceil(rec.mem / 2**20)}Mi"
        for container in template["spec"].get("containers") or ():
            resources = container.setdefault("resources", {})
            resources.setdefault("requests", {})["memory"] = quantity
            resources.setdefault("limits", {})["memory"] = quantity
    return out


# --- notifications ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """One notification to send: what a notifier (k8sco.notify) needs, and its key."""

    key: str  # the same for the same transition, whoever sends it and how often
    kind: str  # email, slack_status, github_status, github_pipeline_status
    args: Mapping[str, Any]  # the callback's arguments
    path: str
    state: str
    attempt: int
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "key": self.key,
            "kind": self.kind,
            "args": dict(self.args),
            "path": self.path,
            "state": self.state,
            "attempt": self.attempt,
        }
        if self.reason:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notice:
        return cls(
            key=str(data["key"]),
            kind=str(data["kind"]),
            args=dict(data.get("args") or {}),
            path=str(data["path"]),
            state=str(data["state"]),
            attempt=int(data.get("attempt", 1)),
            reason=data.get("reason"),
        )


def notices(
    table: Table,
    pipeline_id: str,
    path: str,
    before: State | None,
    after: State,
    rec: NodeState | None = None,
) -> list[Notice]:
    """The notifications due because the node at ``path`` went from ``before`` to
    ``after`` (``rec``: its record, for an Exec node). ``pipeline_id`` (a Pipeline's uid,
    a local run's id) makes the keys differ between runs."""
    if before is after:
        return []
    event = _EVENT_OF.get(after)
    n = attempt(rec) if rec is not None else 1
    started = "" if rec is None or rec.started is None else str(round(rec.started))
    out = []
    for i, entry in enumerate(table.at(path)):
        cb = entry.callback
        if cb.name not in NOTIFICATIONS:
            continue
        if entry.event is not Event.STATE_CHANGE and entry.event is not event:
            continue
        if cb.name == "github_pipeline_status" and entry.owner != path:
            continue  # the pipeline's state: reported for the node it was set on only
        raw = "\0".join((pipeline_id, path, str(n), started, after.value, str(i), cb.name))
        key = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        out.append(
            Notice(
                key=key,
                kind=cb.name,
                args={k: v for k, v in cb.kwargs.items() if k not in ("inherited", "user_display")},
                path=path,
                state=after.value,
                attempt=n,
                reason=rec.reason if rec is not None else None,
            )
        )
    return out


NOTIFY_KEY = "notify"  # status.notify: {key: notice} not yet known to be sent (a cluster's)


def outbox(
    table: Table,
    pipeline_id: str,
    before: Mapping[str, State],
    after: Mapping[str, State],
    recorded: Mapping[str, NodeState],
) -> dict[str, dict[str, Any]]:
    """The notifications due between two evaluations of a tree (every node's state
    ``before`` and ``after``), by key, as ``status.notify`` keeps them."""
    out: dict[str, dict[str, Any]] = {}
    for path in table.notify_paths:
        b, a = before.get(path, State.PENDING), after.get(path, State.PENDING)
        for notice in notices(table, pipeline_id, path, b, a, recorded.get(path)):
            out[notice.key] = notice.to_dict()
    return out


def unsent(status: Mapping[str, Any], patch: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """What ``status.notify`` holds once ``patch`` (a merge patch of it) is applied."""
    out = dict(status.get(NOTIFY_KEY) or {})
    for key, value in ((patch or {}).get(NOTIFY_KEY) or {}).items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


__all__ = [
    "ATTEMPT_ANNOTATION",
    "NOTIFY_KEY",
    "Entry",
    "Notice",
    "Table",
    "after_failure",
    "attempt",
    "attempt_job",
    "attempt_name",
    "attempts_before",
    "carry",
    "current_job",
    "is_oom",
    "job_attempt",
    "newer",
    "notices",
    "older_attempts",
    "outbox",
    "queued",
    "summary",
    "unsent",
]
