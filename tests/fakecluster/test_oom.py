"""A container past its memory limit is OOM-killed, reported as the kubelet does: the
terminated state's reason ``OOMKilled`` and exit code 137 (kubernetes
pkg/kubelet/kuberuntime/kuberuntime_container.go, from the runtime's reason)."""

from __future__ import annotations

import sys
from typing import Any

from .cluster import FakeCluster
from .test_jobs import finished, job_pods

# Holds about 200 MiB resident (bytes(...) would be zero pages the kernel never backs),
# then waits: only a kill ends it early.
HOG = f"{sys.executable} -c 'import time; b = b\"x\" * (200 * 2**20); time.sleep(60)'"


def limited_job(name: str, script: str, memory: str) -> dict[str, Any]:
    resources = {"requests": {"memory": memory}, "limits": {"memory": memory}}
    container = {
        "name": "main",
        "image": "busybox:1.36",
        "command": ["/bin/sh", "-c", script],
        "resources": resources,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
        },
    }


def terminated(cluster: FakeCluster, name: str) -> dict[str, Any]:
    (pod,) = job_pods(cluster, name)
    state: dict[str, Any] = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    return state


def test_a_container_past_its_memory_limit_is_oom_killed(fake_cluster: FakeCluster) -> None:
    fake_cluster.create(limited_job("hog", HOG, "64Mi"))
    job = fake_cluster.wait_for(lambda: finished(fake_cluster, "hog"), timeout=60)
    assert [c["type"] for c in job["status"]["conditions"] if c["status"] == "True"][-1] == (
        "Failed"
    )
    ended = terminated(fake_cluster, "hog")
    assert (ended["reason"], ended["exitCode"]) == ("OOMKilled", 137)


def test_a_container_within_its_limit_is_not(fake_cluster: FakeCluster) -> None:
    fake_cluster.create(limited_job("fits", HOG.replace("60", "1"), "1Gi"))
    fake_cluster.wait_for(lambda: finished(fake_cluster, "fits"), timeout=60)
    ended = terminated(fake_cluster, "fits")
    assert (ended["reason"], ended["exitCode"]) == ("Completed", 0)
