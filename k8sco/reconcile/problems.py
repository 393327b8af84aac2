"""Why a node's Job could not be created or started, and what to do about it (pure).

The controller does the I/O (creating Jobs, reading their pods and Events) and hands the
outcome here as data; the decisions (wait and retry, or fail the node) are made by
:func:`k8sco.reconcile.reconcile` from these records.

Kinds of trouble with creating a node's Job:

- ``transient``: the API may accept the same request later. 429 and 5xx (the server is
  overloaded or restarting), no answer at all, and 403 from a ResourceQuota: the quota
  admission plugin answers ``exceeded quota: <name>, requested: count/jobs.batch=1, ...``
  (kubernetes/kubernetes staging/src/k8s.io/apiserver/pkg/admission/plugin/resourcequota/
  controller.go), which frees up as other Jobs finish. Retried with capped backoff.
- ``permanent``: the same request will be refused again. 403 from RBAC or from an
  admission webhook, 422 from validation, 400. The node fails with the API's message.
- ``foreign``: a Job already has the node's deterministic name but this Pipeline does not
  own it (no ownerReference with the Pipeline's uid). Typically the Job of an earlier
  Pipeline of the same name that the garbage collector has not deleted yet: Background
  deletion removes the owner first and its dependents later, asynchronously
  (kubernetes/kubernetes pkg/controller/garbagecollector/garbagecollector.go,
  attemptToDeleteItem). Such a Job is never adopted; the node waits for it to go, and
  fails after ``Limits.foreign_timeout`` naming the Job and how to remove it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from k8sco.tree import Node

TRANSIENT_BACKOFF_MAX = 60.0  # seconds between two tries to create a node's Job, at most
FOREIGN_RECHECK_MAX = 30.0  # seconds between two looks at a foreign Job not in the cache


class Trouble(str, Enum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    FOREIGN = "foreign"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Problem:
    """What stands between a node and its Job, as last seen by the controller."""

    kind: Trouble
    message: str  # the API's message, or why the Job is not this Pipeline's
    since: float  # first seen (a foreign Job fails its node ``foreign_timeout`` after this)
    retry_at: float  # when to try to create the Job again
    attempts: int = 1
    job: str = ""  # the Job's name


@dataclass(frozen=True)
class Limits:
    """The controller's bounds on waiting, in seconds."""

    # Longer than the garbage collector takes to delete a deleted Pipeline's Jobs on a busy
    # cluster (seconds normally, minutes under load).
    foreign_timeout: float = 600.0
    # How long a Job's pod may fail to start (ErrImagePull, Unschedulable, FailedCreate...)
    # before the node fails with that reason instead of waiting for max_time.
    start_timeout: float = 600.0


def start_timeouts(root: Node) -> dict[str, float]:
    """The ``start_timeout`` of each Exec node that has one (set on it or an ancestor), by
    path; the others use :attr:`Limits.start_timeout`. One walk of the tree."""
    out: dict[str, float] = {}
    stack: list[tuple[Node, str, float | None]] = [(root, "/", root.params.get("start_timeout"))]
    while stack:
        node, path, inherited = stack.pop()
        value = node.params.get("start_timeout", inherited)
        if node.kind == "Exec":
            if value is not None:
                out[path] = float(value)
            continue
        prefix = path.rstrip("/") + "/"
        stack.extend((child, prefix + name, value) for name, child in node.children.items())
    return out


def classify(status: int, message: str) -> Trouble:
    """Transient or permanent, for an error answering a Job create (not AlreadyExists)."""
    if status in (0, 429) or status >= 500:
        return Trouble.TRANSIENT
    if status == 403 and "exceeded quota" in message:
        return Trouble.TRANSIENT
    return Trouble.PERMANENT


def create_failed(
    status: int, message: str, job: str, prior: Problem | None, now: float
) -> Problem:
    """The record of a failed Job create, continuing ``prior`` (the backoff doubles)."""
    kind = classify(status, message)
    same = prior is not None and prior.kind is kind
    attempts = prior.attempts + 1 if same and prior is not None else 1
    since = prior.since if prior is not None else now
    delay = min(2.0 ** (attempts - 1), TRANSIENT_BACKOFF_MAX)
    return Problem(kind, _one_line(message), since, now + delay, attempts, job)


def not_owned(job: Mapping[str, Any], prior: Problem | None, now: float) -> Problem:
    """The record of a foreign Job under a node's name (``job`` as read from the API)."""
    meta = job.get("metadata") or {}
    name = str(meta.get("name", ""))
    since = prior.since if prior is not None and prior.kind is Trouble.FOREIGN else now
    attempts = prior.attempts + 1 if prior is not None and prior.kind is Trouble.FOREIGN else 1
    delay = min(2.0**attempts, FOREIGN_RECHECK_MAX)
    return Problem(Trouble.FOREIGN, foreign_message(job), since, now + delay, attempts, name)


def foreign_message(job: Mapping[str, Any]) -> str:
    meta = job.get("metadata") or {}
    owners = [
        f"{o.get('kind', '?')} {o.get('name', '?')} (uid {o.get('uid', '?')})"
        for o in meta.get("ownerReferences") or ()
    ]
    owner = "owned by " + ", ".join(owners) if owners else "with no owner"
    going = ", being deleted" if meta.get("deletionTimestamp") else ""
    return f"job {meta.get('name', '?')} exists, {owner}{going}, not by this pipeline"


def owns(job: Mapping[str, Any], uid: str | None) -> bool:
    """True when one of the Job's ownerReferences is the Pipeline with ``uid``."""
    if not uid:
        return False
    refs = (job.get("metadata") or {}).get("ownerReferences") or ()
    return any(ref.get("uid") == uid for ref in refs)


def _one_line(text: str, limit: int = 500) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


__all__ = [
    "Limits",
    "Problem",
    "Trouble",
    "classify",
    "create_failed",
    "foreign_message",
    "not_owned",
    "owns",
    "start_timeouts",
]
