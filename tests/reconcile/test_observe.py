"""What a Job, its pods and its Events say about a node (pure)."""

from __future__ import annotations

from typing import Any

from k8sco.engine import NodeState, State
from k8sco.reconcile.observe import (
    events_trouble,
    job_state,
    pod_failure,
    pod_trouble,
    waiting_for_pod,
)
from k8sco.reconcile.problems import Trouble, classify, create_failed, owns


def job(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "demo-a", "uid": "j1"}, "status": status}


def cond(kind: str, reason: str = "") -> dict[str, str]:
    return {"type": kind, "status": "True", "reason": reason}


def test_failure_target_means_failed_before_the_terminal_condition() -> None:
    """Kubernetes 1.31+: FailureTarget at once, Failed after the pods have terminated."""
    state = job_state(
        job(active=1, failed=1, conditions=[cond("FailureTarget", "DeadlineExceeded")])
    )
    assert state.state is State.ERROR
    assert state.reason == "max time exceeded"


def test_success_criteria_met_means_done_before_complete() -> None:
    state = job_state(job(active=1, succeeded=1, conditions=[cond("SuccessCriteriaMet")]))
    assert state.state is State.DONE


def test_a_false_condition_means_nothing() -> None:
    state = job_state(job(conditions=[{"type": "FailureTarget", "status": "False"}]))
    assert state.state is State.QUEUED


def test_a_running_node_does_not_go_back_to_queued_between_pods() -> None:
    prior = NodeState(State.RUNNING, 1, 100.0)
    assert job_state(job(active=1, ready=0, failed=1), prior) == prior


def test_a_recorded_outcome_outlives_its_job() -> None:
    prior = NodeState(State.ERROR, 1, 100.0, 160.0, None, "could not start")
    deleting = job(active=1)
    deleting["metadata"]["deletionTimestamp"] = "2027-01-01T00:00:00Z"
    assert job_state(deleting, prior) == prior


def test_pod_trouble_names_waiting_reasons_and_unschedulable() -> None:
    def pod(**status: Any) -> dict[str, Any]:
        return {"status": {"phase": "Pending", **status}}

    pulling = pod(
        containerStatuses=[
            {"state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling"}}}
        ]
    )
    assert pod_trouble(pulling) == "ImagePullBackOff: Back-off pulling"
    creating = pod(containerStatuses=[{"state": {"waiting": {"reason": "ContainerCreating"}}}])
    assert pod_trouble(creating) is None
    unschedulable = pod(
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient cpu.",
            }
        ]
    )
    assert (
        pod_trouble(unschedulable) == "Unschedulable: 0/3 nodes are available: 3 Insufficient cpu."
    )


def test_events_trouble_takes_the_latest_failed_create() -> None:
    events = [
        {"reason": "FailedCreate", "message": "old", "lastTimestamp": "2027-01-01T00:00:01Z"},
        {"reason": "SuccessfulCreate", "message": "x", "lastTimestamp": "2027-01-01T00:00:09Z"},
        {"reason": "FailedCreate", "message": "new", "lastTimestamp": "2027-01-01T00:00:05Z"},
    ]
    assert events_trouble(events) == "FailedCreate: new"
    assert events_trouble([]) is None


def test_classify_create_errors() -> None:
    assert classify(403, "exceeded quota: jobs, requested: count/jobs.batch=1") is Trouble.TRANSIENT
    assert classify(403, 'User "x" cannot create resource "jobs"') is Trouble.PERMANENT
    assert classify(422, "invalid") is Trouble.PERMANENT
    assert classify(400, 'admission webhook "x" denied the request') is Trouble.PERMANENT
    for code in (0, 429, 500, 503, 504):
        assert classify(code, "") is Trouble.TRANSIENT


def test_the_backoff_doubles_and_is_capped() -> None:
    p = create_failed(500, "boom", "demo-a", None, 0.0)
    delays = []
    for _ in range(9):
        delays.append(p.retry_at - p.since if p.attempts == 1 else None)
        q = create_failed(500, "boom", "demo-a", p, 100.0)
        delays[-1] = q.retry_at - 100.0
        p = q
    assert delays[:4] == [2.0, 4.0, 8.0, 16.0]
    assert max(delays) == 60.0
    assert p.since == 0.0


def test_ownership_is_by_uid_not_by_name_or_label() -> None:
    j = {"metadata": {"ownerReferences": [{"kind": "Pipeline", "name": "demo", "uid": "u1"}]}}
    assert owns(j, "u1")
    assert not owns(j, "u2")
    assert not owns({"metadata": {}}, "u1")
    assert not owns(j, None)


def test_waiting_for_pod_agrees_with_job_state() -> None:
    cases = [
        job(),
        job(active=1),
        job(active=1, ready=0),
        job(active=1, ready=1),
        job(active=1, failed=1, conditions=[cond("FailureTarget", "BackoffLimitExceeded")]),
        job(succeeded=1, conditions=[cond("SuccessCriteriaMet"), cond("Complete")]),
        job(conditions=[{"type": "Failed", "status": "False"}]),
    ]
    for case in cases:
        assert waiting_for_pod(case) is (job_state(case).state is State.QUEUED), case


def test_pod_failure_says_how_the_container_ended() -> None:
    def pod(terminated: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
        statuses = [{"state": {"terminated": terminated}}] if terminated else []
        return {"status": {"phase": "Failed", "containerStatuses": statuses, **status}}

    assert pod_failure(pod({"reason": "Error", "exitCode": 3})) == "exit code 3"
    assert pod_failure(pod({"reason": "OOMKilled", "exitCode": 137})) == "OOMKilled (exit code 137)"
    assert pod_failure(pod({"reason": "Completed", "exitCode": 0})) is None
    evicted = pod(reason="Evicted", message="The node was low on resource: memory.")
    assert pod_failure(evicted) == "Evicted: The node was low on resource: memory."
