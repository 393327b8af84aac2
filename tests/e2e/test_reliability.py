"""Nothing is lost and nothing runs twice when the controller dies or the API misbehaves.

These need the fake cluster: they SIGKILL the controller's process and inject API faults.
"""

from __future__ import annotations

import random
import time
from collections import Counter

from fakecluster import FakeCluster

from .conftest import Target, wait_for

NESTED = "tests/e2e/pipelines/e2e_pipelines.py:nested"


def finished_phase(target: Target, name: str) -> str | None:
    phase = target.get("pipeline", name).get("status", {}).get("phase")
    return phase if phase in ("Succeeded", "Failed", "Killed") else None


def assert_one_job_and_one_pod_per_node(target: Target, name: str, nodes: int) -> None:
    jobs = target.jobs(name)
    paths = Counter(j["metadata"]["annotations"]["k8sco.io/path"] for j in jobs)
    assert len(paths) == nodes and set(paths.values()) == {1}
    assert all(j["status"].get("succeeded") == 1 and not j["status"].get("failed") for j in jobs)
    pods = Counter(p["metadata"]["labels"]["job-name"] for p in target.pods(name))
    assert len(pods) == nodes and set(pods.values()) == {1}, "a node ran more than once"


def test_controller_killed_at_random_moments_loses_nothing(
    target: Target, fake_only: FakeCluster
) -> None:
    assert target.controller is not None
    name = target.name("killed")
    assert target.apply(NESTED, name).returncode == 0
    rng = random.Random(20261127)
    for _ in range(5):
        time.sleep(rng.uniform(0.2, 1.5))
        target.controller.kill()
        time.sleep(rng.uniform(0.0, 0.5))
        target.controller.start()
    assert wait_for(lambda: finished_phase(target, name), timeout=120) == "Succeeded"
    assert target.get("pipeline", name)["status"]["progress"] == "50/50"
    assert_one_job_and_one_pod_per_node(target, name, 50)


def test_write_faults_and_dropped_watches_do_not_change_the_result(
    target: Target, fake_only: FakeCluster
) -> None:
    name = target.name("faults")
    assert target.apply(NESTED, name).returncode == 0
    fake_only.faults.configure(
        write_error_rate=0.2,
        error_after_commit_rate=0.3,  # some writes happen although the client is told 500
        watch_drop_rate=0.05,
        seed=7,
    )
    try:
        assert wait_for(lambda: finished_phase(target, name), timeout=180) == "Succeeded"
    finally:
        injected, dropped = fake_only.faults.injected_total(), fake_only.faults.dropped_watches
        fake_only.faults.reset()
    assert injected > 10 and dropped > 0  # the faults really happened
    assert_one_job_and_one_pod_per_node(target, name, 50)
