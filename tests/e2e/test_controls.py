"""Live controls on a cluster (k8sco skip, unskip, reset, modify PIPELINE PATH): a skipped
failure lets its Serial go on, a modification changes the command of a node that has not
started, a reset runs a done node again (a new Job), each control applied once; and
``k8sco debug --print`` gives a pod like the node's."""

from __future__ import annotations

import json
import shlex

from fakecluster import FakeCluster

from .conftest import Target, wait_for

SKIPPABLE = "tests/e2e/pipelines/controls_pipelines.py:skippable"


def phase(target: Target, name: str) -> str | None:
    found: str | None = target.get("pipeline", name).get("status", {}).get("phase")
    return found


def job_uid(target: Target, name: str, path: str) -> str | None:
    for job in target.jobs(name):
        if job["metadata"].get("annotations", {}).get("k8sco.io/path") == path:
            return str(job["metadata"]["uid"])
    return None


def test_skip_modify_and_reset_on_a_cluster(target: Target) -> None:
    name = target.name("controls")
    ns = ("-n", target.namespace)
    applied = target.apply(SKIPPABLE, name)
    assert applied.returncode == 0, applied.stderr
    wait_for(lambda: phase(target, name) == "Failed")
    assert job_uid(target, name, "/after") is None  # the failure stopped the Serial

    bad = target.k8sco("modify", name, "/last", "--set", "cpu=0", *ns)
    assert bad.returncode == 2
    assert "/last: parameter 'cpu'" in bad.stderr and len(bad.stderr.splitlines()) == 1
    assert "controls" not in target.get("pipeline", name)["spec"]  # nothing written

    modified = target.k8sco("modify", name, "/last", "--command", "echo modified", *ns)
    assert modified.returncode == 0, modified.stderr
    skipped = target.k8sco("skip", name, "/fails", *ns)
    assert skipped.returncode == 0, skipped.stderr
    wait_for(lambda: phase(target, name) == "Succeeded")
    status = target.get("pipeline", name)["status"]
    assert status["counts"]["skipped"] == 1 and status["counts"]["done"] == 2
    shown = target.k8sco("status", name).stdout.splitlines()
    assert any(line.split()[:3] == ["fails", "Exec", "skipped"] for line in shown), shown
    logs = target.k8sco("logs", name, "/last", *ns)
    assert logs.stdout.strip() == "modified", logs.stderr

    before = job_uid(target, name, "/after")
    assert before is not None
    reset = target.k8sco("reset", name, "/after", *ns)
    assert reset.returncode == 0, reset.stderr
    wait_for(lambda: job_uid(target, name, "/after") not in (None, before))
    wait_for(lambda: phase(target, name) == "Succeeded")
    obj = target.get("pipeline", name)
    tokens = [c["token"] for c in obj["spec"]["controls"]]
    assert obj["status"]["controlToken"] == tokens[-1]
    assert [c["action"] for c in obj["spec"]["controls"]] == ["modify", "skip", "reset"]

    # Unskipped, the failure shows again and fails the pipeline.
    assert target.k8sco("unskip", name, "/fails", *ns).returncode == 0
    wait_for(lambda: phase(target, name) == "Failed")
    assert target.k8sco("delete", name).returncode == 0


def test_debug_prints_a_pod_like_the_nodes(target: Target) -> None:
    name = target.name("debug")
    assert target.apply(SKIPPABLE, name).returncode == 0
    wait_for(lambda: phase(target, name) == "Failed")
    out = target.k8sco("debug", name, "/fails", "--print", "-n", target.namespace)
    assert out.returncode == 0, out.stderr
    assert "echo failing; exit 3" in out.stderr  # the command to run in the shell
    argv = shlex.split(out.stdout)
    assert argv[:2] == ["kubectl", "--kubeconfig"] and "run" in argv
    overrides = json.loads(next(a for a in argv if a.startswith("--overrides="))[12:])
    main = overrides["spec"]["containers"][0]
    assert main["command"] == ["/bin/sh"] and main["tty"] and main["stdin"]
    job = next(
        j for j in target.jobs(name) if j["metadata"]["annotations"]["k8sco.io/path"] == "/fails"
    )
    pod = job["spec"]["template"]["spec"]
    assert main["securityContext"] == pod["containers"][0]["securityContext"]
    assert overrides["spec"]["securityContext"] == pod["securityContext"]
    assert main["image"] == pod["containers"][0]["image"]
    assert main["env"] == pod["containers"][0]["env"]
    # The namespace enforces Pod Security "restricted": the debug pod is admitted.
    overrides["metadata"]["namespace"] = target.namespace
    created = target.kubectl("create", "-f", "-", input=json.dumps(overrides), check=False)
    assert created.returncode == 0, created.stderr
    target.kubectl("delete", "pod", overrides["metadata"]["name"], "-n", target.namespace)
    assert target.k8sco("delete", name).returncode == 0


def test_a_restarted_controller_applies_each_reset_once(
    target: Target, fake_only: FakeCluster
) -> None:
    assert target.controller is not None
    name = target.name("restarts")
    ns = ("-n", target.namespace)
    assert target.apply(SKIPPABLE, name).returncode == 0
    wait_for(lambda: phase(target, name) == "Failed")
    assert target.k8sco("skip", name, "/fails", *ns).returncode == 0
    wait_for(lambda: phase(target, name) == "Succeeded")
    first = job_uid(target, name, "/after")

    target.controller.kill()  # the reset lands while no controller runs
    try:
        assert target.k8sco("reset", name, "/after", *ns).returncode == 0
    finally:
        target.controller.start()
    wait_for(lambda: job_uid(target, name, "/after") not in (None, first))
    wait_for(lambda: phase(target, name) == "Succeeded")
    second = job_uid(target, name, "/after")

    # Killed and started again: the reset, recorded in status.controlToken, is not redone.
    # A later control's effect shows the new controller has judged the Pipeline since.
    target.controller.kill()
    target.controller.start()
    assert target.k8sco("modify", name, "/last", "--set", "retries=1", *ns).returncode == 0
    token = target.get("pipeline", name)["spec"]["controls"][-1]["token"]
    wait_for(lambda: target.get("pipeline", name)["status"].get("controlToken") == token)
    assert job_uid(target, name, "/after") == second
    after = next(
        j for j in target.jobs(name) if j["metadata"]["annotations"]["k8sco.io/path"] == "/after"
    )
    assert "deletionTimestamp" not in after["metadata"]  # not being deleted for a reset again
    assert phase(target, name) == "Succeeded"
    assert target.k8sco("delete", name).returncode == 0
