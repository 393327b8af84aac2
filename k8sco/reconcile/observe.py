"""What a Job says about its node: a batch/v1 Job object in, a :class:`NodeState` out.

Pure. The Job is the source of truth for a node it exists for: the controller writes no
state that the cluster does not already hold, so a restarted controller reads the same
answer off the same Jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from k8sco.engine import NodeState, State
from k8sco.render.pipeline import parse_timestamp


def parse_time(text: str | None) -> float | None:
    """Seconds since the epoch of an optional Kubernetes time (None when absent)."""
    return parse_timestamp(text) if text else None


def _condition(job: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind and cond.get("status") == "True":
            return cond  # type: ignore[no-any-return]
    return None


_REASONS = {
    "DeadlineExceeded": "max time exceeded",
    "BackoffLimitExceeded": "failed",
    "PodFailurePolicy": "failed (pod failure policy)",
}


def job_state(job: Mapping[str, Any], prior: NodeState | None = None) -> NodeState:
    """The node state a Job shows. ``prior`` (the controller's last record) keeps what the
    Job cannot say: that the controller killed it."""
    status = job.get("status") or {}
    started = parse_time(status.get("startTime"))
    attempts = int(status.get("failed") or 0) + int(status.get("succeeded") or 0)
    attempts += int(status.get("active") or 0)
    if prior is not None and prior.state is State.KILLED:
        return prior
    if job.get("metadata", {}).get("deletionTimestamp"):
        return NodeState(State.KILLED, attempts, started, None, None, "Job deleted")
    done = _condition(job, "Complete")
    if done is not None:
        finished = parse_time(status.get("completionTime")) or parse_time(
            done.get("lastTransitionTime")
        )
        return NodeState(State.DONE, max(attempts, 1), started, finished, 0)
    failed = _condition(job, "Failed")
    if failed is not None:
        reason = _REASONS.get(str(failed.get("reason")), str(failed.get("reason") or "failed"))
        if reason == "failed" and attempts > 1:
            reason = f"failed {attempts} times"
        return NodeState(
            State.ERROR,
            max(attempts, 1),
            started,
            parse_time(failed.get("lastTransitionTime")),
            None,
            reason,
        )
    if int(status.get("ready") or 0) > 0 or (
        int(status.get("active") or 0) > 0 and status.get("ready") is None
    ):
        return NodeState(State.RUNNING, max(attempts, 1), started)
    return NodeState(State.QUEUED, attempts, started)
