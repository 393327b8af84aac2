"""Issue 14's features together, as a Conducto user moving pipelines over would use them
(tests/e2e/pipelines/issue14_pipelines.py): a retry callback inside a same_container
Serial, a skipped failure inside a Parallel, a reset of a Lazy subtree, a modification of
a node that has a callback."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from fakecluster import FakeCluster

from .conftest import Target, wait_for

PIPES = "tests/e2e/pipelines/issue14_pipelines.py"


def phase(target: Target, name: str) -> str | None:
    found: str | None = target.get("pipeline", name).get("status", {}).get("phase")
    return found


def rows(target: Target, name: str) -> dict[str, list[str]]:
    shown = target.k8sco("status", name, "--all")
    assert shown.returncode == 0, shown.stderr
    return {x.split()[0]: x.split() for x in shown.stdout.splitlines()[1:] if x.split()}


def paths(jobs: list[dict[str, Any]]) -> list[str]:
    return sorted(j["metadata"]["annotations"]["k8sco.io/path"] for j in jobs)


@pytest.mark.parametrize(
    "target_name", ["retry_in_shared_container", "retry_then_skip_in_shared_container"]
)
def test_a_retry_or_skip_callback_inside_a_shared_container_is_refused(
    target: Target, target_name: str
) -> None:
    # One Job runs the whole container: a retry ran every node again as a retry of each,
    # and a skip left the nodes after it queued forever (tests/test_group_callbacks.py).
    name = target.name("mix-groupcb")
    applied = target.apply(f"{PIPES}:{target_name}", name)
    assert applied.returncode == 2, applied.stdout + applied.stderr
    lines = applied.stderr.strip().splitlines()
    assert len(lines) == 1 and "of the shared container of /" in lines[0], lines
    assert "retries=" in lines[0]
    found = target.kubectl("get", "pipeline", name, "-n", target.namespace, check=False)
    assert found.returncode != 0  # nothing created
    assert target.jobs(name) == []


def test_a_failure_inside_a_parallel_skipped_by_its_callback(target: Target) -> None:
    name = target.name("mix-skip")
    applied = target.apply(f"{PIPES}:skip_in_parallel", name, "--wait")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    shown = rows(target, name)
    assert (shown["bad"][2], shown["good"][2], shown["after"][2]) == ("skipped", "done", "done")


def test_a_failure_inside_a_parallel_skipped_by_hand(target: Target) -> None:
    name = target.name("mix-skiphand")
    assert target.apply(f"{PIPES}:failure_in_parallel", name).returncode == 0
    wait_for(lambda: phase(target, name) == "Failed")
    skipped = target.k8sco("skip", name, "/par/bad", "-n", target.namespace)
    assert skipped.returncode == 0, skipped.stderr
    wait_for(lambda: phase(target, name) == "Succeeded")
    shown = rows(target, name)
    assert (shown["bad"][2], shown["par"][2], shown["after"][2]) == ("skipped", "done", "done")


def test_a_reset_of_a_lazy_subtree_runs_its_generated_nodes_again(target: Target) -> None:
    name = target.name("mix-lazy")
    applied = target.apply(f"{PIPES}:lazy_subtree", name, "--wait")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    before = {j["metadata"]["uid"] for j in target.jobs(name)}
    reset = target.k8sco("reset", name, "/lazy", "-n", target.namespace)
    assert reset.returncode == 0, reset.stderr

    def rerun() -> bool:
        now = {
            j["metadata"]["annotations"]["k8sco.io/path"]
            for j in target.jobs(name)
            if j["metadata"]["uid"] not in before
        }
        return (
            phase(target, name) == "Succeeded" and {"/lazy/Execute/g0", "/lazy/Execute/g1"} <= now
        )

    wait_for(rerun)
    shown = rows(target, name)
    assert shown["g0"][2] == "done" and shown["end"][2] == "done", shown


def test_a_modified_node_keeps_its_callback(target: Target, fake_only: FakeCluster) -> None:
    name = target.name("mix-modify")
    gate = Path("/tmp/k8sco-e2e-modify-gate")
    gate.unlink(missing_ok=True)
    assert target.apply(f"{PIPES}:modify_under_callback", name).returncode == 0
    wait_for(lambda: "/gate" in paths(target.jobs(name)))
    ns = ("-n", target.namespace)
    cmd = 'echo "new ${K8SCO_ATTEMPT:-1}"; test "${K8SCO_ATTEMPT:-1}" -ge 2'
    modified = target.k8sco("modify", name, "/later", "--command", cmd, *ns)
    assert modified.returncode == 0, modified.stderr
    gate.touch()
    try:
        wait_for(lambda: phase(target, name) in ("Succeeded", "Failed"))
    finally:
        gate.unlink(missing_ok=True)
    assert phase(target, name) == "Succeeded"
    logs = target.k8sco("logs", name, "/later", *ns)
    assert logs.stdout.strip() == "new 2", logs.stdout + logs.stderr


def test_a_failed_shared_container_is_skipped_whole_on_a_cluster(target: Target) -> None:
    name = target.name("mix-groupskip")
    assert target.apply(f"{PIPES}:failing_group", name).returncode == 0
    wait_for(lambda: phase(target, name) == "Failed")
    ns = ("-n", target.namespace)
    # One of its nodes cannot be skipped: the nodes after it would need a Job of their own.
    refused = target.k8sco("skip", name, "/box/two", *ns)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.startswith("k8sco: /box/two: ") and "skip /box" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1, refused.stderr
    assert "controls" not in target.get("pipeline", name)["spec"]  # nothing written
    skipped = target.k8sco("skip", name, "/box", *ns)
    assert skipped.returncode == 0, skipped.stderr
    wait_for(lambda: phase(target, name) == "Succeeded")
    shown = rows(target, name)
    assert (shown["box"][2], shown["after"][2]) == ("skipped", "done"), shown


def test_a_reset_of_a_shared_container_runs_it_again(target: Target) -> None:
    name = target.name("mix-groupreset")
    assert target.apply(f"{PIPES}:failing_group", name).returncode == 0
    wait_for(lambda: phase(target, name) == "Failed")
    before = {j["metadata"]["uid"] for j in target.jobs(name)}
    ns = ("-n", target.namespace)
    assert target.k8sco("modify", name, "/box/two", "--command", "echo fixed", *ns).returncode == 0
    reset = target.k8sco("reset", name, "/box", *ns)
    assert reset.returncode == 0, reset.stderr
    wait_for(lambda: phase(target, name) == "Succeeded")
    assert any(j["metadata"]["uid"] not in before for j in target.jobs(name))
    shown = rows(target, name)
    assert [shown[k][2] for k in ("one", "two", "three", "after")] == ["done"] * 4, shown
    two = target.k8sco("logs", name, "/box/two", *ns)
    assert two.stdout.strip() == "fixed", two.stdout + two.stderr


def test_a_reset_of_a_retried_node_runs_its_attempts_again(target: Target) -> None:
    name = target.name("mix-resetretry")
    retrying = "tests/e2e/pipelines/callbacks_pipelines.py:retrying"
    applied = target.apply(retrying, name, "--wait")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    before = {j["metadata"]["uid"] for j in target.jobs(name)}
    reset = target.k8sco("reset", name, "/flaky", "-n", target.namespace)
    assert reset.returncode == 0, reset.stderr

    def again() -> bool:
        jobs = target.jobs(name)
        fresh = [j for j in jobs if j["metadata"]["uid"] not in before]
        return phase(target, name) == "Succeeded" and len(fresh) == 3

    wait_for(again)
    flaky = [
        j for j in target.jobs(name) if j["metadata"]["annotations"]["k8sco.io/path"] == "/flaky"
    ]
    assert len(flaky) == 3 and not {j["metadata"]["uid"] for j in flaky} & before
    logs = target.k8sco("logs", name, "/flaky", "-n", target.namespace)
    assert logs.stdout.strip() == "attempt 3", logs.stdout + logs.stderr


def test_debug_of_a_node_of_a_shared_container_gives_its_own_command(target: Target) -> None:
    name = target.name("mix-debug")
    assert target.apply(f"{PIPES}:failing_group", name).returncode == 0
    wait_for(lambda: phase(target, name) == "Failed")
    out = target.k8sco("debug", name, "/box/two", "--print", "-n", target.namespace)
    assert out.returncode == 0, out.stderr
    assert "echo two; exit 3" in out.stderr and "echo three" not in out.stderr, out.stderr
    argv = shlex.split(out.stdout)
    overrides = json.loads(next(a for a in argv if a.startswith("--overrides="))[12:])
    env = {e["name"]: e.get("value") for e in overrides["spec"]["containers"][0]["env"]}
    assert env.get("K8SCO_NODE_PATH") == "/box/two", env
