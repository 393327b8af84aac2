"""co.Lazy on the cluster: the controller reads each Generate node's tree from its pod's log,
records it in the Pipeline's status and runs it (k8sco/lazy.py, kube/controller.py)."""

from __future__ import annotations

import random
import time
from pathlib import Path

from fakecluster import FakeCluster

from k8sco.render.names import job_name

from .conftest import Target, wait_for
from .test_reliability import assert_one_job_and_one_pod_per_node, finished_phase

PIPES = "tests/e2e/pipelines/lazy_pipelines.py"


def job_done(target: Target, name: str, path: str) -> bool:
    return any(
        j["metadata"]["annotations"]["k8sco.io/path"] == path
        and (j.get("status") or {}).get("succeeded") == 1
        for j in target.jobs(name)
    )


def running_pods(target: Target, name: str) -> int:
    return sum(1 for p in target.pods(name) if (p.get("status") or {}).get("phase") == "Running")


def test_a_lazy_pipeline_runs_its_generated_nodes_seen_by_status_and_logs(
    target: Target,
) -> None:
    name = target.name("lazy")
    applied = target.apply(f"{PIPES}:lazy", name, "--wait")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    assert "Succeeded (22/22)" in applied.stdout
    assert_one_job_and_one_pod_per_node(target, name, 22)

    status = target.k8sco("status", name)
    assert status.returncode == 0, status.stderr
    assert f"job/{job_name(name, '/l/Execute/n19')}" in status.stdout
    assert status.stdout.count(" done ") == 25  # 22 Exec nodes, the root, Lazy and Execute
    assert "done /l/Execute/n7" in applied.stdout  # --wait follows the grown tree
    logs = target.k8sco("logs", name, "/l/Execute/n7")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.strip() == "generated-7 hello"  # the Lazy node's ancestors' env


def test_nested_lazy_nodes_run_on_the_cluster(target: Target) -> None:
    name = target.name("nested-lazy")
    applied = target.apply(f"{PIPES}:nested", name, "--wait")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    assert "Succeeded (6/6)" in applied.stdout
    paths = sorted(j["metadata"]["annotations"]["k8sco.io/path"] for j in target.jobs(name))
    assert paths == [
        "/l/Execute/before",
        "/l/Execute/inner/Execute/n0",
        "/l/Execute/inner/Execute/n1",
        "/l/Execute/inner/Execute/n2",
        "/l/Execute/inner/Generate",
        "/l/Generate",
    ]


def test_a_generator_that_prints_no_tree_fails_its_node(target: Target) -> None:
    name = target.name("bad-gen")
    applied = target.apply(f"{PIPES}:bad_generator", name, "--wait")
    assert applied.returncode != 0
    status = target.get("pipeline", name)["status"]
    assert status["phase"] == "Failed"
    assert status["message"].startswith("/l/Generate: the Lazy generator printed no tree")


def test_controller_killed_during_an_expansion_runs_each_generated_node_once(
    target: Target, fake_only: FakeCluster
) -> None:
    controller = target.controller
    assert controller is not None
    name = target.name("lazy-killed")
    assert target.apply(f"{PIPES}:lazy", name).returncode == 0
    # Killed as soon as the Generate Job has succeeded: around the expansion's write and
    # the creates that follow it; then at random moments while the generated nodes run.
    assert wait_for(lambda: job_done(target, name, "/l/Generate"), timeout=60, every=0.05)
    controller.kill()
    controller.start()
    rng = random.Random(20261130)
    for _ in range(3):
        time.sleep(rng.uniform(0.05, 0.8))
        controller.kill()
        time.sleep(rng.uniform(0.0, 0.3))
        controller.start()
    assert wait_for(lambda: finished_phase(target, name), timeout=120) == "Succeeded"
    assert target.get("pipeline", name)["status"]["progress"] == "22/22"
    assert_one_job_and_one_pod_per_node(target, name, 22)


def test_rerun_of_a_lazy_node_regenerates_its_subtree(
    target: Target, fake_only: FakeCluster, tmp_path: Path
) -> None:
    name = target.name("lazy-rerun")
    marker = tmp_path / "generated-once"
    applied = target.apply(f"{PIPES}:regenerated", name, "--wait", f"--marker={marker}")
    assert "Failed" in applied.stdout, applied.stderr + applied.stdout
    status = target.get("pipeline", name)["status"]
    assert status["message"].startswith("/l/Execute/broken")

    assert target.k8sco("rerun", name, "/l").returncode == 0
    assert wait_for(lambda: finished_phase(target, name), timeout=60) == "Succeeded"
    paths = sorted(j["metadata"]["annotations"]["k8sco.io/path"] for j in target.jobs(name))
    assert paths == ["/l/Execute/fixed", "/l/Execute/good", "/l/Generate"]
    logs = target.k8sco("logs", name, "/l/Execute/fixed")
    assert logs.stdout.strip() == "fixed"


def test_stop_kills_generated_nodes(target: Target) -> None:
    name = target.name("lazy-long")
    assert target.apply(f"{PIPES}:long", name).returncode == 0
    wait_for(lambda: running_pods(target, name) == 3)  # the generated nodes
    assert target.k8sco("stop", name).returncode == 0
    wait_for(lambda: target.get("pipeline", name)["status"]["phase"] == "Killed")
    wait_for(lambda: running_pods(target, name) == 0)
    assert target.get("pipeline", name)["status"]["counts"]["killed"] == 3
    assert target.k8sco("delete", name).returncode == 0
