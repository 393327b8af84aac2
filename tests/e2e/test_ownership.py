"""A Pipeline runs only Jobs it owns: an older Pipeline's Jobs under the same names, which
the garbage collector deletes seconds later, are waited out and never adopted; API
refusals show on the node instead of freezing the Pipeline."""

from __future__ import annotations

from fakecluster import FakeCluster

from .conftest import Target, wait_for

SLOW = "tests/e2e/pipelines/e2e_pipelines.py:slow"


def finished(target: Target, name: str) -> dict[str, object] | None:
    obj = target.get("pipeline", name)
    status = obj.get("status") or {}
    return obj if status.get("phase") in ("Succeeded", "Failed", "Killed") else None


def test_apply_right_after_delete_runs_every_node(target: Target, fake_only: FakeCluster) -> None:
    """The first run fails (sleep 60 > max_time 2); the second, under the same name, must
    run its own Job (sleep 0) and succeed, not adopt the first run's failed Job."""
    name = target.name("again")
    # The garbage collector holds on to the old Jobs (as a busy one does, for minutes) until
    # the new run has been seen waiting; then they go, as the collector would delete them.
    # Slow from before the first Job exists: the fake looks at each new dependent `delay`
    # seconds after it appears, and a look that came after the delete would take it at once.
    fake_only.gc.delay = 3600.0
    try:
        assert target.apply(SLOW, name).returncode == 0
        first = wait_for(lambda: finished(target, name), timeout=60)
        assert first["status"]["phase"] == "Failed"
        old_uid = first["metadata"]["uid"]
        assert target.k8sco("delete", name).returncode == 0
        applied = target.apply(SLOW, name, "--seconds=0")
        assert applied.returncode == 0, applied.stderr
        new_uid = target.get("pipeline", name)["metadata"]["uid"]
        assert new_uid != old_uid
        # While the old Job is there, the node waits and says why.
        wait_for(lambda: "not by this pipeline" in target.k8sco("status", name).stdout, 60)
        old = [j for j in target.jobs(name) if _owner_uids(j) == {old_uid}]
        assert old, "the old run's Job is still there"
        for job in old:
            target.kubectl(
                "delete", "job", job["metadata"]["name"], "-n", target.namespace,
                "--cascade=background", "--wait=false",
            )  # fmt: skip
        done = wait_for(lambda: finished(target, name), timeout=90)
    finally:
        fake_only.gc.delay = 2.0
    assert done["status"]["phase"] == "Succeeded", done["status"]
    jobs = target.jobs(name)
    assert len(jobs) == 1
    assert _owner_uids(jobs[0]) == {new_uid}


def _owner_uids(obj: dict[str, object]) -> set[str]:
    meta = obj.get("metadata") or {}
    assert isinstance(meta, dict)
    return {str(ref.get("uid")) for ref in meta.get("ownerReferences") or []}


def test_a_denied_job_fails_its_node_with_the_api_message(
    target: Target, fake_only: FakeCluster
) -> None:
    name = target.name("denied")
    rule = fake_only.deny_admission(
        "jobs",
        match=lambda job: (
            (job.get("metadata") or {}).get("labels", {}).get("k8sco.io/pipeline") == name
        ),
        message="jobs of this pipeline are not welcome here",
    )
    try:
        assert target.apply(SLOW, name, "--seconds=0").returncode == 0
        done = wait_for(lambda: finished(target, name), timeout=60)
    finally:
        fake_only.allow_admission(rule)
    assert done["status"]["phase"] == "Failed"
    assert "not welcome here" in done["status"]["message"]
    status = target.k8sco("status", name)
    assert "not welcome here" in status.stdout
    events = target.kubectl(
        "get",
        "events",
        "-n",
        target.namespace,
        "--field-selector",
        f"involvedObject.name={name},reason=FailedCreate",
        "-o",
        "name",
    )
    assert events.stdout.strip()
