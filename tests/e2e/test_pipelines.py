"""Pipelines on a cluster, driven by the k8sco CLI and checked with kubectl."""

from __future__ import annotations

import json
import re

from .conftest import Target, wait_for

PRIMES_BELOW_30 = "[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]"


def test_primes_apply_wait_then_logs_status_and_kubectl(target: Target) -> None:
    name = target.name("primes")
    applied = target.apply("examples/primes.py", name, "--wait")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    assert f"pipeline/{name} created" in applied.stdout
    assert "Succeeded (5/5)" in applied.stdout

    logs = target.k8sco("logs", name, "/seive")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.strip() == PRIMES_BELOW_30

    status = target.k8sco("status", name)
    assert status.returncode == 0, status.stderr
    assert "Succeeded (5/5)" in status.stdout
    assert status.stdout.count(" done ") == 7  # 5 Exec nodes, the Parallel and the root

    jobs = target.jobs(name)
    assert len(jobs) == 5
    paths = sorted(j["metadata"]["annotations"]["k8sco.io/path"] for j in jobs)
    assert paths == ["/check/0-10", "/check/10-20", "/check/20-30", "/report", "/seive"]
    assert all(j["metadata"]["ownerReferences"][0]["kind"] == "Pipeline" for j in jobs)

    table = target.kubectl("get", "pipelines", name, "-n", target.namespace)
    assert "Succeeded" in table.stdout and "5/5" in table.stdout
    seive = next(j for j in jobs if j["metadata"]["annotations"]["k8sco.io/path"] == "/seive")
    job_name = seive["metadata"]["name"]
    described = target.kubectl("describe", "job", job_name, "-n", target.namespace)
    assert "1 Succeeded" in described.stdout
    kubectl_logs = target.kubectl("logs", f"job/{job_name}", "-n", target.namespace)
    assert kubectl_logs.stdout.strip() == PRIMES_BELOW_30

    listing = target.k8sco("list")
    assert name in listing.stdout


def test_a_failing_node_stops_its_serial_and_not_its_parallel_siblings(target: Target) -> None:
    name = target.name("failing")
    applied = target.apply("tests/e2e/pipelines/e2e_pipelines.py:failing", name, "--wait")
    assert applied.returncode == 1, applied.stderr + applied.stdout
    pipeline = target.get("pipeline", name)
    assert pipeline["status"]["phase"] == "Failed"
    assert pipeline["status"]["message"].startswith("/p/bad")
    by_path = {j["metadata"]["annotations"]["k8sco.io/path"]: j for j in target.jobs(name)}
    assert sorted(by_path) == ["/first", "/p/bad", "/p/sibling"]  # /never got no Job
    assert by_path["/p/sibling"]["status"].get("succeeded") == 1
    assert target.k8sco("logs", name, "/p/sibling").stdout.strip() == "sibling-done"


def test_retries_become_pod_attempts(target: Target) -> None:
    name = target.name("flaky")
    applied = target.apply("tests/e2e/pipelines/e2e_pipelines.py:flaky", name, "--wait")
    assert applied.returncode == 1
    (job,) = target.jobs(name)
    assert job["spec"]["backoffLimit"] == 2
    assert job["status"]["failed"] == 3
    status = target.k8sco("status", name)
    assert "3 attempts" in status.stdout


def test_max_time_kills_the_node(target: Target) -> None:
    name = target.name("slow")
    applied = target.apply("tests/e2e/pipelines/e2e_pipelines.py:slow", name, "--wait")
    assert applied.returncode == 1
    (job,) = target.jobs(name)
    assert job["spec"]["activeDeadlineSeconds"] == 2
    reasons = [c.get("reason") for c in job["status"]["conditions"]]
    assert "DeadlineExceeded" in reasons
    assert "max time exceeded" in target.get("pipeline", name)["status"]["message"]


def test_stop_kills_running_nodes_and_rerun_runs_them_again(target: Target) -> None:
    name = target.name("long")
    applied = target.apply("tests/e2e/pipelines/e2e_pipelines.py:long", name)
    assert applied.returncode == 0, applied.stderr
    wait_for(lambda: target.get("pipeline", name).get("status", {}).get("phase") == "Running")
    assert target.k8sco("stop", name).returncode == 0
    wait_for(lambda: target.get("pipeline", name)["status"]["phase"] == "Killed")
    wait_for(lambda: not target.pods(name))  # the running pods are gone
    counts = target.get("pipeline", name)["status"]["counts"]
    assert counts["killed"] == 3

    assert target.k8sco("rerun", name).returncode == 0
    wait_for(lambda: len(target.jobs(name)) == 3 and target.pods(name))
    wait_for(lambda: target.get("pipeline", name)["status"]["phase"] == "Running")
    assert target.k8sco("delete", name).returncode == 0


def test_delete_mid_run_leaves_no_job_or_pod(target: Target) -> None:
    name = target.name("deleted")
    assert target.apply("tests/e2e/pipelines/e2e_pipelines.py:long", name).returncode == 0
    wait_for(lambda: len(target.pods(name)) == 3)
    deleted = target.k8sco("delete", name)
    assert deleted.returncode == 0, deleted.stderr
    wait_for(lambda: not target.jobs(name) and not target.pods(name), timeout=60)
    gone = target.kubectl("get", "pipeline", name, "-n", target.namespace, check=False)
    assert gone.returncode != 0


def test_apply_auto_uses_the_running_controller(target: Target) -> None:
    name = target.name("auto")
    applied = target.k8sco(
        "apply", "examples/primes.py", "--name", name, "--image", target.image, "--wait"
    )
    assert applied.returncode == 0, applied.stderr
    assert "embedded" not in applied.stderr  # the cluster's controller was found and used


def test_logs_of_a_node_that_never_ran_say_so(target: Target) -> None:
    name = target.name("failing")
    assert target.apply("tests/e2e/pipelines/e2e_pipelines.py:failing", name, "--wait").returncode
    out = target.k8sco("logs", name, "/never")
    assert out.returncode == 2
    assert "/never has no pod" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_status_json_is_compact(target: Target) -> None:
    name = target.name("nested")
    applied = target.apply("tests/e2e/pipelines/e2e_pipelines.py:nested", name, "--wait")
    assert applied.returncode == 0, applied.stderr
    pipeline = target.get("pipeline", name)
    assert pipeline["status"]["progress"] == "50/50"
    assert len(json.dumps(pipeline["status"]["nodes"])) < 50 * 40


def test_python_file_apply_through_co_main(target: Target) -> None:
    import subprocess
    import sys

    from .conftest import REPO

    name = target.name("script")
    result = subprocess.run(
        [
            sys.executable,
            "examples/primes.py",
            "--n=20",
            "--apply",
            "--wait",
            f"--name={name}",
            f"--image={target.image}",
            f"--kubeconfig={target.kubeconfig}",
            f"--namespace={target.namespace}",
            "--controller=cluster",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=target.env,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert target.k8sco("logs", name, "/seive").stdout.strip() == "[2, 3, 5, 7, 11, 13, 17, 19]"


def test_commands_reach_the_node_as_written_despite_kubernetes_expansion(target: Target) -> None:
    # The kubelet expands $(VAR) and $$ in a container's command; k8sco escapes them so a
    # node sees what a local run would.
    name = target.name("dollars")
    applied = target.apply("tests/e2e/pipelines/e2e_pipelines.py:dollars", name, "--wait")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    shell = target.k8sco("logs", name, "/shell").stdout.split()
    assert shell[:2] == ["$(K8SCO_PIPELINE)", "$$"]
    assert re.fullmatch(r"pid=[0-9]+", shell[2]), shell  # the shell's own $$
    native = target.k8sco("logs", name, "/native").stdout.strip()
    assert native == "text=$(K8SCO_NODE_PATH) $$"
