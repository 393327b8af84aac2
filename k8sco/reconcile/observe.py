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
    Job cannot say: that the controller killed it, that the node already ended (a recorded
    outcome never changes because a Job is deleted later), that it was already running."""
    status = job.get("status") or {}
    started = parse_time(status.get("startTime"))
    attempts = int(status.get("failed") or 0) + int(status.get("succeeded") or 0)
    attempts += int(status.get("active") or 0)
    if prior is not None and prior.state.finished:
        return prior
    if job.get("metadata", {}).get("deletionTimestamp"):
        return NodeState(State.KILLED, attempts, started, None, None, "Job deleted")
    # Since Kubernetes 1.31 the Job controller first adds SuccessCriteriaMet/FailureTarget
    # and only adds the terminal Complete/Failed once every pod has finished terminating
    # (30 s of grace by default, never if a node is lost): the outcome is known at the
    # first condition (kubernetes/kubernetes pkg/controller/job/job_controller.go,
    # syncJob: "FailureTarget" / "SuccessCriteriaMet" before finishedCondition).
    done = _condition(job, "Complete") or _condition(job, "SuccessCriteriaMet")
    if done is not None:
        finished = parse_time(status.get("completionTime")) or parse_time(
            done.get("lastTransitionTime")
        )
        return NodeState(State.DONE, max(attempts, 1), started, finished, 0)
    failed = _condition(job, "Failed") or _condition(job, "FailureTarget")
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
    if prior is not None and prior.state is State.RUNNING:
        return prior  # between a pod's end and its retry's start: still running
    return NodeState(State.QUEUED, attempts, started)


def waiting_for_pod(job: Mapping[str, Any]) -> bool:
    """True when the Job has not ended and none of its pods is ready: what
    :func:`job_state` calls queued, without parsing a time (the controller asks this of
    every Job at every reconciliation)."""
    if (job.get("metadata") or {}).get("deletionTimestamp"):
        return False
    status = job.get("status") or {}
    for cond in status.get("conditions") or ():
        if cond.get("status") == "True" and cond.get("type") in _ENDS:
            return False
    if int(status.get("ready") or 0) > 0:
        return False
    return not (int(status.get("active") or 0) > 0 and status.get("ready") is None)


_ENDS = frozenset({"Complete", "SuccessCriteriaMet", "Failed", "FailureTarget"})


# Container waiting reasons that mean the pod cannot start by itself (kubelet:
# kubernetes/kubernetes pkg/kubelet/images/types.go ErrImagePull, ImagePullBackOff,
# ErrImageNeverPull, InvalidImageName; pkg/kubelet/container/sync_result.go
# CreateContainerConfigError, CreateContainerError, RunContainerError). ContainerCreating
# and PodInitializing are progress, not trouble.
START_FAILURES = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "PreStartHookError",
        "CrashLoopBackOff",
    }
)


def pod_trouble(pod: Mapping[str, Any]) -> str | None:
    """Why a pod that is not running cannot start, or None when nothing is wrong (yet)."""
    status = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(key) or ():
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in START_FAILURES:
                return _reason_text(waiting.get("reason"), waiting.get("message"))
    for cond in status.get("conditions") or ():
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            return _reason_text("Unschedulable", cond.get("message"))
    return None


def pod_failure(pod: Mapping[str, Any]) -> str | None:
    """How a failed pod's container ended, when it says more than "failed": a start error
    (its command is not in the image: StartError, ContainerCannotRun), OOMKilled, or the
    exit code; the pod's own reason when it was evicted or ran out of time."""
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or ():
        ended = (cs.get("state") or {}).get("terminated") or {}
        if not ended:
            continue
        code = ended.get("exitCode")
        if ended.get("reason") not in (None, "", "Error", "Completed"):
            text = _reason_text(ended.get("reason"), ended.get("message"))
            return f"{text} (exit code {code})" if code not in (None, 0) else text
        if code not in (None, 0):
            return f"exit code {code}"
    if status.get("reason"):
        return _reason_text(status.get("reason"), status.get("message"))
    return None


def events_trouble(events: list[Mapping[str, Any]]) -> str | None:
    """The latest FailedCreate Event on a Job: the Job controller could not create its pod
    (Pod Security admission, a ResourceQuota on pods, a LimitRange...). The reason is the
    one kubernetes/kubernetes pkg/controller/controller_utils.go records
    (FailedCreatePodReason)."""
    latest: Mapping[str, Any] | None = None
    for event in events:
        if event.get("reason") != "FailedCreate":
            continue
        if latest is None or _event_time(event) >= _event_time(latest):
            latest = event
    if latest is None:
        return None
    return _reason_text("FailedCreate", latest.get("message"))


def _event_time(event: Mapping[str, Any]) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime") or "")


def _reason_text(reason: object, message: object, limit: int = 300) -> str:
    text = " ".join(str(message or "").split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{reason}: {text}" if text else str(reason)
