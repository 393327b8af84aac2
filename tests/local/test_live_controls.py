"""Live controls of a local run in progress (k8sco reset, skip, unskip, modify --run), on a
real ``k8sco run`` process, through its run directory: a skipped failure lets its Serial go
on (and the run succeed), a reset runs a done node again, a modification changes the
command of a node that has not started; a bad one is refused in one line, changing
nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from k8sco.cli.app import cli
from k8sco.local.rundir import RunDir

REPO = Path(__file__).resolve().parents[2]
WAIT = 60.0  # seconds: a bound on every wait, never an assertion on time

PIPELINE = textwrap.dedent(
    """
    import os
    import k8sco as co

    HERE = os.path.dirname(os.path.abspath(__file__))


    def main() -> co.Parallel:
        with co.Parallel() as root:
            with co.Serial(name="chain"):
                co.Exec("echo failing; exit 3", name="fails")
                co.Exec(f"echo after >> '{HERE}/after'", name="after")
            with co.Serial(name="seq"):
                co.Exec(f"echo once >> '{HERE}/count'", name="once")
                co.Exec(
                    f"echo start >> '{HERE}/starts'; "
                    f"while [ ! -e '{HERE}/go' ]; do sleep 0.05; done",
                    name="gate",
                )
                co.Exec(f"echo old >> '{HERE}/later'", name="later")
        return root


    if __name__ == "__main__":
        co.main(default=main)
    """
)


def k8sco(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def until(check: Callable[[], bool], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, "waited too long"
        assert proc.poll() is None, "k8sco run ended"
        time.sleep(0.02)


def test_skip_reset_and_modify_a_local_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pipe.py").write_text(PIPELINE)
    monkeypatch.chdir(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "k8sco", "run", "--plain", "pipe.py"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        runs = tmp_path / ".k8sco" / "runs"
        until(lambda: (runs / "latest").exists(), proc)
        run = RunDir.open(runs)

        def state(path: str) -> str | None:
            rec = json.loads((run.path / "states.json").read_text())["nodes"].get(path)
            return None if rec is None else str(rec["state"])

        until(lambda: state("/chain/fails") == "error" and state("/seq/gate") == "running", proc)
        assert state("/chain/after") is None  # the failure stopped its Serial
        tree_before = (run.path / "tree.json").read_text()

        # A bad modification: one line naming the path and the parameter; nothing changes.
        bad = k8sco("modify", "/seq/later", "--set", "cpu=-1", "--command", "echo new")
        assert bad.exit_code == 2
        assert len(bad.output.strip().splitlines()) == 1
        assert "/seq/later: parameter 'cpu'" in bad.output
        assert (run.path / "tree.json").read_text() == tree_before

        # Modify a node that has not started: its new command runs when its turn comes.
        done = k8sco("modify", "/seq/later", "--command", f"echo new >> '{tmp_path}/later'")
        assert done.exit_code == 0, done.output
        assert "modified /seq/later" in done.output

        # Reset a done node: it runs again.
        assert (tmp_path / "count").read_text() == "once\n"
        reset = k8sco("reset", "--run", run.run_id, "/seq/once")
        assert reset.exit_code == 0, reset.output
        until(lambda: (tmp_path / "count").read_text() == "once\nonce\n", proc)

        # Reset a running node: it is stopped, and runs again.
        assert k8sco("reset", "/seq/gate").exit_code == 0
        until(lambda: (tmp_path / "starts").read_text() == "start\nstart\n", proc)
        until(lambda: state("/seq/gate") == "running", proc)

        # Skip the failure: its Serial goes on.
        skipped = k8sco("skip", "/chain/fails")
        assert skipped.exit_code == 0, skipped.output
        until(lambda: state("/chain/after") == "done", proc)
        status = k8sco("status")
        assert any(
            line.split()[:3] == ["fails", "Exec", "skipped"] for line in status.output.splitlines()
        ), status.output

        (tmp_path / "go").touch()
        assert proc.wait(timeout=WAIT) == 0  # the skipped failure does not fail the run
        assert (tmp_path / "later").read_text() == "new\n"
        assert (tmp_path / "after").read_text() == "after\n"
    finally:
        (tmp_path / "go").touch()
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate()


def test_unskip_fails_the_serial_again_and_a_finished_run_takes_no_controls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pipe.py").write_text(PIPELINE)
    monkeypatch.chdir(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "k8sco", "run", "--plain", "pipe.py"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        runs = tmp_path / ".k8sco" / "runs"
        until(lambda: (runs / "latest").exists(), proc)
        run = RunDir.open(runs)

        def state(path: str) -> str | None:
            rec = json.loads((run.path / "states.json").read_text())["nodes"].get(path)
            return None if rec is None else str(rec["state"])

        until(lambda: state("/chain/fails") == "error" and state("/seq/gate") == "running", proc)
        # Skip a Serial that has not finished: /chain/after never runs.
        assert k8sco("skip", "/chain").exit_code == 0
        refused = k8sco("unskip", "/chain/fails")
        assert refused.exit_code == 2
        assert "/chain/fails is skipped because /chain is: unskip /chain" in refused.output
        assert k8sco("unskip", "/chain").exit_code == 0
        (tmp_path / "go").touch()
        assert proc.wait(timeout=WAIT) == 1  # unskipped, the failure fails the run again
        assert state("/chain/after") is None
        late = k8sco("skip", "/chain/fails")
        assert late.exit_code == 2 and "has ended" in late.output
    finally:
        (tmp_path / "go").touch()
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate()
