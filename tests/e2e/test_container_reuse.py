"""Shared containers on the cluster (container_reuse_context=NEW, Conducto's
same_container=NEW): one Job for the group, whose pod runs its nodes in order through
``k8sco sequence``; each node keeps its own state, timing and log (k8sco/sequence.py)."""

from __future__ import annotations

from k8sco.render.names import job_name

from .conftest import Target

PIPES = "tests/e2e/pipelines/reuse_pipelines.py"


def test_a_shared_container_runs_its_nodes_in_one_job_sharing_files(target: Target) -> None:
    name = target.name("reuse")
    applied = target.apply(f"{PIPES}:shared", name, "--wait")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    assert "Succeeded (5/5)" in applied.stdout
    paths = sorted(j["metadata"]["annotations"]["k8sco.io/path"] for j in target.jobs(name))
    assert paths == ["/after", "/before", "/box"]  # one Job for the three shared nodes

    status = target.k8sco("status", name)
    assert status.returncode == 0, status.stderr
    group_job = f"job/{job_name(name, '/box')}"
    for leaf in ("write", "a", "b"):
        line = next(x for x in status.stdout.splitlines() if x.split()[:1] == [leaf])
        assert " done " in line and line.rstrip().endswith(group_job), status.stdout

    first = target.k8sco("logs", name, "/box/both/a")
    second = target.k8sco("logs", name, "/box/both/b")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    word = first.stdout.split()[-1]
    assert word.startswith("shared-")  # the file the first node wrote
    assert first.stdout.strip() == f"first {word}"
    assert second.stdout.strip() == f"second {word}"  # same container: same file, same pid
    wrote = target.k8sco("logs", name, "/box/write")
    assert wrote.stdout.strip() == "wrote"  # its own part of the group's log, no delimiters


def test_a_failing_node_of_a_shared_container_stops_its_serial(target: Target) -> None:
    name = target.name("reuse-fail")
    applied = target.apply(f"{PIPES}:failing", name, "--wait")
    assert applied.returncode != 0
    status = target.get("pipeline", name)["status"]
    assert status["phase"] == "Failed"
    shown = target.k8sco("status", name).stdout
    rows = {x.split()[0]: x.split()[2] for x in shown.splitlines()[1:] if len(x.split()) > 2}
    assert (rows["one"], rows["two"], rows["three"]) == ("done", "error", "pending"), shown
    assert "exit code 3" in shown
    assert target.k8sco("logs", name, "/two").stdout.strip() == "two"
    three = target.k8sco("logs", name, "/three")
    assert three.returncode != 0 and "three" not in three.stdout  # it never ran


def test_a_group_whose_pod_cannot_start_fails_its_first_node_after_its_start_timeout(
    target: Target,
) -> None:
    name = target.name("reuse-pending")
    applied = target.apply(f"{PIPES}:unschedulable", name, "--wait")
    assert applied.returncode != 0
    shown = target.k8sco("status", name).stdout
    rows = {x.split()[0]: x for x in shown.splitlines()[1:] if x.split()}
    assert " error " in rows["one"] and "Unschedulable" in rows["one"], shown
    assert " pending " in rows["two"], shown
