"""``k8sco debug``: the shell of a local node (process and --docker mode) and the pod of a
cluster's node, printed with --print (no terminal needed) and run with a here-doc."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import k8sco as co
from k8sco.cli.app import cli
from k8sco.cli.debug import debug_pod
from k8sco.render.pipeline import job_for, render_pipeline

REPO = Path(__file__).resolve().parents[2]

PIPELINE = textwrap.dedent(
    """
    import k8sco as co


    def main() -> co.Serial:
        with co.Serial(env={"STAGE": "ci"}) as root:
            co.Exec("echo stage=$STAGE node=$K8SCO_NODE_PATH; exit 3", name="fails", cpu=2)
            co.Exec("echo never", name="never")
        return root


    if __name__ == "__main__":
        co.main(default=main)
    """
)


def k8sco(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A finished local run of PIPELINE in tmp_path (the current directory); its id."""
    (tmp_path / "pipe.py").write_text(PIPELINE)
    monkeypatch.chdir(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "k8sco", "run", "--plain", "pipe.py"],
        cwd=tmp_path,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout
    return os.readlink(tmp_path / ".k8sco" / "runs" / "latest")


def test_the_printed_shell_runs_the_node_as_the_runner_did(tmp_path: Path, finished: str) -> None:
    out = k8sco("debug", "--run", finished, "/fails", "--print")
    assert out.exit_code == 0, out.stderr
    assert "echo stage=$STAGE node=$K8SCO_NODE_PATH; exit 3" in out.stderr  # what to run
    # The shell reads its commands from stdin: a here-doc, as a user would type them.
    typed = "echo cwd=$(pwd)\necho stage=$STAGE node=$K8SCO_NODE_PATH; exit 3\n"
    script = f'{out.stdout.strip()} <<"EOF"\n{typed}EOF\n'
    shell = subprocess.run(
        ["/bin/sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SHELL": "/bin/sh"},
    )
    assert shell.returncode == 3
    assert shell.stdout.splitlines() == [f"cwd={tmp_path}", "stage=ci node=/fails"]
    log = (tmp_path / ".k8sco" / "runs" / finished / "logs" / "fails.log").read_text()
    assert log.strip() == "stage=ci node=/fails"  # the same as when the runner ran it


def test_without_a_terminal_it_says_so_and_bad_paths_are_one_line(finished: str) -> None:
    out = k8sco("debug", "/fails")
    assert out.exit_code == 2 and "needs a terminal; --print gives the command" in out.stderr
    out = k8sco("debug", "/nope", "--print")
    assert out.exit_code == 2 and f"run {finished} has no node '/nope'" in out.stderr
    out = k8sco("debug", "/", "--print")
    assert out.exit_code == 2 and "/ is a Serial: debug an Exec node below it" in out.stderr


def test_docker_mode_prints_docker_run_of_the_nodes_container(
    finished: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from k8sco.local.rundir import RUNS_DIR, RunDir

    run = RunDir.open(RUNS_DIR, finished)
    tree = run.tree()
    tree["/fails"].set(image="busybox:1.36")  # a named image: nothing to build
    (run.path / "tree.json").write_text(tree.serialize())
    out = k8sco("debug", "/fails", "--docker", "--print")
    assert out.exit_code == 0, out.stderr
    argv = shlex.split(out.stdout)
    assert argv[:6] == ["docker", "run", "--rm", "-i", "-t", "--user"]
    assert argv[-3:] == ["--entrypoint", "/bin/sh", "busybox:1.36"]
    assert argv[argv.index("--network") + 1] == "none"
    assert argv[argv.index("--cpus") + 1] == "2" and argv[argv.index("-w") + 1] == "/app"
    env = {argv[i + 1] for i, a in enumerate(argv) if a == "-e"}
    assert {"STAGE=ci", "K8SCO_NODE_PATH=/fails", f"K8SCO_PIPELINE={finished}"} <= env
    assert "--cap-drop" in argv and "no-new-privileges" in argv


def test_the_cluster_pod_keeps_the_jobs_spec_and_its_restricted_security() -> None:
    with co.Serial(env={"STAGE": "ci"}) as root:
        co.Exec("echo hi", name="a", cpu=2)
    pipeline = render_pipeline(root, "demo", "default", image="img:1", uid="u-1")
    job = job_for(pipeline, root, "/a", ("TOKEN",))
    pod = debug_pod(job)
    template = job["spec"]["template"]["spec"]
    main, want = pod["spec"]["containers"][0], template["containers"][0]
    assert main["command"] == ["/bin/sh"] and "args" not in main
    assert main["tty"] is True and main["stdin"] is True
    for key in ("image", "env", "resources", "securityContext", "workingDir"):
        assert main.get(key) == want.get(key), key
    assert pod["spec"]["securityContext"] == template["securityContext"]
    assert pod["spec"]["restartPolicy"] == "Never"
    assert "labels" not in pod["metadata"]  # no controller takes it for a node's pod
    assert len(pod["metadata"]["name"]) <= 63
    assert json.loads(json.dumps(pod)) == pod
