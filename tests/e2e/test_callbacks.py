"""Callbacks on a cluster: a retrying node (each retry a Job of its own, every attempt in
the status), a failure skipped by retry_then_skip, and, on the fake cluster, a controller
killed at random moments while nodes retry: each retry happens exactly once."""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

from fakecluster import FakeCluster

from .conftest import Target, wait_for

PIPELINES = "tests/e2e/pipelines/callbacks_pipelines.py"


def finished_phase(target: Target, name: str) -> str | None:
    phase = target.get("pipeline", name).get("status", {}).get("phase")
    return phase if phase in ("Succeeded", "Failed", "Killed") else None


def attempts_by_path(jobs: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The attempt numbers of each node's Jobs ("1" for the first, unannotated)."""
    out: dict[str, list[str]] = {}
    for job in jobs:
        annotations = job["metadata"]["annotations"]
        out.setdefault(annotations["k8sco.io/path"], []).append(
            annotations.get("k8sco.io/attempt", "1")
        )
    return {path: sorted(found) for path, found in out.items()}


def test_a_retrying_node_succeeds_on_its_third_attempt(target: Target) -> None:
    name = target.name("retrying")
    applied = target.apply(f"{PIPELINES}:retrying", name, "--wait")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    assert "Succeeded (2/2)" in applied.stdout
    jobs = target.jobs(name)
    assert attempts_by_path(jobs) == {"/flaky": ["1", "2", "3"], "/after": ["1"]}
    flaky = [j for j in jobs if j["metadata"]["annotations"]["k8sco.io/path"] == "/flaky"]
    assert sorted(bool(j["status"].get("succeeded")) for j in flaky) == [False, False, True]
    status = target.k8sco("status", name)
    assert status.returncode == 0, status.stderr
    assert "3 attempts" in status.stdout
    logs = target.k8sco("logs", name, "/flaky")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.strip() == "attempt 3"  # the node's log is its last attempt's


def test_a_failure_skipped_after_its_retry_lets_the_serial_go_on(target: Target) -> None:
    name = target.name("skipped")
    applied = target.apply(f"{PIPELINES}:skipped_failure", name, "--wait")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    nodes = target.get("pipeline", name)["status"]["nodes"]
    states = sorted(record["s"] for record in nodes.values())
    assert states == ["done", "skipped"]
    assert attempts_by_path(target.jobs(name))["/broken"] == ["1", "2"]


def test_controller_killed_while_nodes_retry_retries_each_once(
    target: Target, fake_only: FakeCluster
) -> None:
    assert target.controller is not None
    name = target.name("killretry")
    assert target.apply(f"{PIPELINES}:many_retrying", name).returncode == 0
    rng = random.Random(20261130)
    for _ in range(5):
        time.sleep(rng.uniform(0.2, 1.2))
        target.controller.kill()
        time.sleep(rng.uniform(0.0, 0.5))
        target.controller.start()
    assert wait_for(lambda: finished_phase(target, name), timeout=180) == "Succeeded"
    jobs = target.jobs(name)
    assert attempts_by_path(jobs) == {f"/n{i}": ["1", "2", "3"] for i in range(8)}
    pods = Counter(p["metadata"]["labels"]["job-name"] for p in target.pods(name))
    assert len(pods) == 24 and set(pods.values()) == {1}, "an attempt ran more than once"
    nodes = target.get("pipeline", name)["status"]["nodes"]
    assert sorted(record.get("c") for record in nodes.values()) == [2] * 8
