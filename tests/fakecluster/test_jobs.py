"""The simulated job controller and kubelet, observed through the official client."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

import pytest
from kubernetes import client

from .cluster import FakeCluster


def job(name: str, script: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "busybox:1.36", "command": ["/bin/sh", "-c", script]}
    restart = spec.pop("restart_policy", "Never")
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {"spec": {"restartPolicy": restart, "containers": [container]}},
            **spec,
        },
    }


def finished(cluster: FakeCluster, name: str) -> dict[str, Any] | None:
    obj = cluster.get("jobs.batch", name, "default")
    conds = (obj or {}).get("status", {}).get("conditions", [])
    done = any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conds)
    return obj if done else None


def condition_types(obj: dict[str, Any]) -> list[str]:
    return [c["type"] for c in obj["status"].get("conditions", [])]


def job_pods(cluster: FakeCluster, name: str) -> list[dict[str, Any]]:
    return [
        p
        for p in cluster.objects("pods", "default")
        if p["metadata"]["labels"].get("job-name") == name
    ]


def pid_of(pod: dict[str, Any]) -> int:
    cid = pod["status"]["containerStatuses"][0]["containerID"]
    assert cid.startswith("process://")
    return int(cid.removeprefix("process://"))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_successful_job(fake_cluster: FakeCluster, k8s_client: client.ApiClient) -> None:
    batch = client.BatchV1Api(k8s_client)
    batch.create_namespaced_job("default", job("ok", "echo hi"))
    done = fake_cluster.wait_for(lambda: finished(fake_cluster, "ok"))
    assert condition_types(done) == ["SuccessCriteriaMet", "Complete"]
    status = done["status"]
    assert status["succeeded"] == 1 and "failed" not in status and "active" not in status
    assert (
        status["uncountedTerminatedPods"] == {}
        and status["ready"] == 0
        and status["terminating"] == 0
    )
    assert (
        status["completionTime"]
        == status["conditions"][1]["lastTransitionTime"]
        >= status["startTime"]
    )
    assert status["conditions"][1]["reason"] == "CompletionsReached"
    [pod] = job_pods(fake_cluster, "ok")
    meta = pod["metadata"]
    assert meta["name"].startswith("ok-") and len(meta["name"]) == len("ok-") + 5
    assert meta["labels"]["batch.kubernetes.io/job-name"] == "ok"
    assert meta["labels"]["controller-uid"] == done["metadata"]["uid"]
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": "ok",
            "uid": done["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert "finalizers" not in meta  # the tracking finalizer is gone once counted
    assert pod["status"]["phase"] == "Succeeded"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    core = client.CoreV1Api(k8s_client)
    assert core.read_namespaced_pod_log(meta["name"], "default") == "hi\n"
    reasons = [
        e.reason
        for e in core.list_namespaced_event(
            "default", field_selector="involvedObject.name=ok"
        ).items
    ]
    assert reasons == ["SuccessfulCreate", "Completed"]


def test_backoff_limit_exceeded(fake_cluster: FakeCluster, k8s_client: client.ApiClient) -> None:
    client.BatchV1Api(k8s_client).create_namespaced_job(
        "default", job("bad", "exit 3", backoffLimit=1)
    )
    done = fake_cluster.wait_for(lambda: finished(fake_cluster, "bad"))
    assert condition_types(done) == ["FailureTarget", "Failed"]
    failed = done["status"]["conditions"][1]
    assert (failed["reason"], failed["message"]) == (
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    )
    assert done["status"]["failed"] == 2 and "completionTime" not in done["status"]
    pods = job_pods(fake_cluster, "bad")
    assert len(pods) == 2 and {p["status"]["phase"] for p in pods} == {"Failed"}
    codes = {p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] for p in pods}
    assert codes == {3}
    events = (
        client.CoreV1Api(k8s_client)
        .list_namespaced_event("default", field_selector="involvedObject.name=bad")
        .items
    )
    assert [(e.type, e.reason) for e in events if e.reason != "SuccessfulCreate"] == [
        ("Warning", "BackoffLimitExceeded")
    ]


def test_active_deadline_kills_running_pod(
    fake_cluster: FakeCluster, k8s_client: client.ApiClient
) -> None:
    client.BatchV1Api(k8s_client).create_namespaced_job(
        "default", job("slow", "exec sleep 30", activeDeadlineSeconds=1)
    )
    pod = fake_cluster.wait_for(
        lambda: next(
            (p for p in job_pods(fake_cluster, "slow") if p["status"]["phase"] == "Running"), None
        )
    )
    pid = pid_of(pod)
    assert alive(pid)
    done = fake_cluster.wait_for(lambda: finished(fake_cluster, "slow"), timeout=6)
    assert condition_types(done) == ["FailureTarget", "Failed"]
    assert done["status"]["conditions"][1]["reason"] == "DeadlineExceeded"
    assert done["status"]["failed"] == 1
    assert not alive(pid)


def test_background_deletion_kills_the_process(
    fake_cluster: FakeCluster, k8s_client: client.ApiClient
) -> None:
    batch = client.BatchV1Api(k8s_client)
    batch.create_namespaced_job("default", job("gone", "exec sleep 30"))
    pod = fake_cluster.wait_for(
        lambda: next(
            (p for p in job_pods(fake_cluster, "gone") if p["status"]["phase"] == "Running"), None
        )
    )
    pid = pid_of(pod)
    batch.delete_namespaced_job("gone", "default", propagation_policy="Background")
    fake_cluster.wait_for(lambda: not job_pods(fake_cluster, "gone"))
    assert fake_cluster.get("jobs.batch", "gone", "default") is None
    assert not alive(pid)


def test_job_deletion_defaults_to_orphan(
    fake_cluster: FakeCluster, k8s_client: client.ApiClient
) -> None:
    batch = client.BatchV1Api(k8s_client)
    batch.create_namespaced_job("default", job("orph", "exec sleep 30"))
    pod = fake_cluster.wait_for(
        lambda: next(
            (p for p in job_pods(fake_cluster, "orph") if p["status"]["phase"] == "Running"), None
        )
    )
    batch.delete_namespaced_job("orph", "default")  # no propagationPolicy: batch/v1 orphans
    fake_cluster.wait_for(lambda: fake_cluster.get("jobs.batch", "orph", "default") is None)
    left = fake_cluster.wait_for(
        lambda: [p for p in job_pods(fake_cluster, "orph") if not p["metadata"].get("finalizers")]
    )
    assert [p["metadata"]["name"] for p in left] == [pod["metadata"]["name"]]
    assert "ownerReferences" not in left[0]["metadata"]
    assert alive(pid_of(pod))
    client.CoreV1Api(k8s_client).delete_namespaced_pod(pod["metadata"]["name"], "default")
    fake_cluster.wait_for(lambda: not job_pods(fake_cluster, "orph"))


def test_pod_failure_policy(fake_cluster: FakeCluster, k8s_client: client.ApiClient) -> None:
    batch = client.BatchV1Api(k8s_client)
    policy = {
        "rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
        ]
    }
    batch.create_namespaced_job(
        "default", job("pfp", "sleep 30; exit 42", podFailurePolicy=policy, backoffLimit=0)
    )
    pod = fake_cluster.wait_for(
        lambda: next(
            (p for p in job_pods(fake_cluster, "pfp") if p["status"]["phase"] == "Running"), None
        )
    )
    core = client.CoreV1Api(k8s_client)
    name = pod["metadata"]["name"]
    core.create_namespaced_pod_eviction(name, "default", {"metadata": {"name": name}})
    # The eviction is ignored (not counted): a replacement pod starts.
    replacement = fake_cluster.wait_for(
        lambda: next(
            (
                p
                for p in job_pods(fake_cluster, "pfp")
                if p["metadata"]["name"] != name and p["status"]["phase"] == "Running"
            ),
            None,
        )
    )
    assert "failed" not in fake_cluster.get("jobs.batch", "pfp", "default")["status"]
    # SIGKILL gives exit code 137, which matches no rule: counted, and backoffLimit is 0.
    os.kill(pid_of(replacement), 9)
    done = fake_cluster.wait_for(lambda: finished(fake_cluster, "pfp"))
    assert done["status"]["conditions"][-1]["reason"] == "BackoffLimitExceeded"


def test_pod_failure_policy_fail_job(
    fake_cluster: FakeCluster, k8s_client: client.ApiClient
) -> None:
    policy = {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]},
            }
        ]
    }
    client.BatchV1Api(k8s_client).create_namespaced_job(
        "default", job("fj", "exit 42", podFailurePolicy=policy)
    )
    done = fake_cluster.wait_for(lambda: finished(fake_cluster, "fj"))
    assert condition_types(done) == ["FailureTarget", "Failed"]
    failed = done["status"]["conditions"][1]
    assert failed["reason"] == "PodFailurePolicy"
    assert (
        failed["message"].startswith("Container main for pod default/fj-")
        and "exit code 42 matching FailJob rule at index 0" in failed["message"]
    )
    assert len(job_pods(fake_cluster, "fj")) == 1


def test_suspend_and_resume(fake_cluster: FakeCluster, k8s_client: client.ApiClient) -> None:
    batch = client.BatchV1Api(k8s_client)
    batch.create_namespaced_job("default", job("sus", "echo done", suspend=True))
    suspended = fake_cluster.wait_for(
        lambda: (
            (j := fake_cluster.get("jobs.batch", "sus", "default"))
            and "Suspended" in condition_types(j)
            and j
        )
    )
    assert "startTime" not in suspended["status"] and job_pods(fake_cluster, "sus") == []
    batch.patch_namespaced_job("sus", "default", {"spec": {"suspend": False}})
    done = fake_cluster.wait_for(lambda: finished(fake_cluster, "sus"))
    suspended_cond = next(c for c in done["status"]["conditions"] if c["type"] == "Suspended")
    assert (suspended_cond["status"], suspended_cond["reason"]) == ("False", "JobResumed")
    assert done["status"]["succeeded"] == 1


def test_env_workdir_and_path_map(tmp_path) -> None:
    (tmp_path / "code").mkdir()
    with FakeCluster(path_map={"/app": str(tmp_path / "code")}) as cluster:
        spec = job("env", 'echo "$GREETING $POD_NAME $(pwd)"')
        container = spec["spec"]["template"]["spec"]["containers"][0]
        container["workingDir"] = "/app"
        container["env"] = [
            {"name": "GREETING", "value": "hello"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ]
        cluster.create(spec)
        cluster.wait_for(lambda: finished(cluster, "env"))
        [pod] = job_pods(cluster, "env")
        with cluster.api_client() as api:
            text = client.CoreV1Api(api).read_namespaced_pod_log(pod["metadata"]["name"], "default")
        assert text == f"hello {pod['metadata']['name']} {tmp_path / 'code'}\n"


def test_missing_command_and_restricted_namespace(
    fake_cluster: FakeCluster, k8s_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(k8s_client)
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    core.create_namespace({"metadata": {"name": "strict", "labels": labels}})
    spec = job("psa", "true")
    spec["metadata"]["namespace"] = "strict"
    fake_cluster.create(spec)
    event = fake_cluster.wait_for(
        lambda: [
            e for e in fake_cluster.objects("events", "strict") if e["reason"] == "FailedCreate"
        ]
    )
    assert (
        'violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false'
        in event[0]["message"]
    )
    assert job_pods(fake_cluster, "psa") == []


@pytest.mark.parametrize("policy", ["OnFailure"])
def test_on_failure_restarts_count_against_backoff(fake_cluster: FakeCluster, policy: str) -> None:
    fake_cluster.create(job("rs", "exit 1", restart_policy=policy, backoffLimit=2))
    done = fake_cluster.wait_for(lambda: finished(fake_cluster, "rs"))
    assert done["status"]["conditions"][-1]["reason"] == "BackoffLimitExceeded"
    assert len(job_pods(fake_cluster, "rs")) <= 1  # restarted in place, not re-created


def test_completions_parallelism_and_work_queue(fake_cluster: FakeCluster) -> None:
    fake_cluster.create(job("multi", "sleep 0.1", completions=3, parallelism=2))
    fake_cluster.create(job("queue", "sleep 0.1", parallelism=2))  # completions unset
    multi = fake_cluster.wait_for(lambda: finished(fake_cluster, "multi"))
    assert multi["status"]["succeeded"] == 3 and len(job_pods(fake_cluster, "multi")) == 3
    queue = fake_cluster.wait_for(lambda: finished(fake_cluster, "queue"))
    assert condition_types(queue) == ["SuccessCriteriaMet", "Complete"]
    assert queue["status"]["succeeded"] == 2 and "failed" not in queue["status"]


def test_ttl_after_finished_deletes_the_job(fake_cluster: FakeCluster) -> None:
    fake_cluster.create(job("ttl", "true", ttlSecondsAfterFinished=0))
    fake_cluster.wait_for(lambda: fake_cluster.get("jobs.batch", "ttl", "default") is None)
    fake_cluster.wait_for(lambda: not job_pods(fake_cluster, "ttl"))


def test_managed_by_another_controller_is_left_alone(fake_cluster: FakeCluster) -> None:
    fake_cluster.create(job("ext", "true", managedBy="example.com/mine"))
    fake_cluster.create(job("own", "true"))
    fake_cluster.wait_for(lambda: finished(fake_cluster, "own"))
    assert fake_cluster.get("jobs.batch", "ext", "default")["status"] == {}
    assert job_pods(fake_cluster, "ext") == []


def test_with_api_first_an_open_watch_does_not_hold_the_job_controller() -> None:
    """A watch counts as a request being answered only until it streams: a client watching
    (as every controller does) must not make each loop item wait out its cap."""
    with FakeCluster(api_first=60.0) as cluster, cluster.api_client() as api:
        batch = client.BatchV1Api(api)
        streaming = batch.list_namespaced_job(
            "default", watch=True, timeout_seconds=60, _preload_content=False
        )  # its headers have come: it streams, and stays open until the cluster stops

        def drain() -> None:
            with contextlib.suppress(Exception):
                streaming.read()

        threading.Thread(target=drain, daemon=True).start()
        batch.create_namespaced_job("default", job("watched", "exit 0"))
        assert cluster.wait_for(lambda: finished(cluster, "watched"), timeout=20)
