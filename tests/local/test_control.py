"""Controls of a local run in progress: ``k8sco rerun``, ``k8sco stop`` and ``k8sco delete
--run`` on a real ``k8sco run`` process, through requests in its run directory
(k8sco.local.control), and what is left when no runner takes a request."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from k8sco.cli import runs as runs_cli
from k8sco.cli.app import cli
from k8sco.errors import UsageError
from k8sco.local import control
from k8sco.local.rundir import RunDir

REPO = Path(__file__).resolve().parents[2]
WAIT = 60.0  # seconds: a bound on every wait, never an assertion on time

# /work/flaky fails until the file ``ok`` exists; /work/waits runs until ``go`` exists.
PIPELINE = textwrap.dedent(
    """
    import os
    import k8sco as co

    HERE = os.path.dirname(os.path.abspath(__file__))


    def main() -> co.Serial:
        with co.Serial() as root:
            with co.Parallel(name="work"):
                co.Exec(f"echo try; test -e '{HERE}/ok'", name="flaky")
                co.Exec(f"while [ ! -e '{HERE}/go' ]; do sleep 0.05; done", name="waits")
        root.stop_on_error = False
        return root


    if __name__ == "__main__":
        co.main(default=main)
    """
)


def k8sco(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunInProgress]:
    """``k8sco run --plain pipe.py`` in tmp_path (the current directory), once /work/flaky
    has failed and /work/waits runs."""
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
        run = RunInProgress(tmp_path, RunDir.open(runs), proc)
        run.until(lambda n: n("/work/flaky") == "error" and n("/work/waits") == "running")
        yield run
    finally:
        (tmp_path / "go").touch()
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate()


def until(check: Callable[[], bool], proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, "waited too long"
        assert proc is None or proc.poll() is None, "k8sco run ended"
        time.sleep(0.02)


class RunInProgress:
    def __init__(self, home: Path, run: RunDir, proc: subprocess.Popen[bytes]) -> None:
        self.home, self.run, self.proc = home, run, proc

    def nodes(self) -> dict[str, Any]:
        nodes: dict[str, Any] = json.loads((self.run.path / "states.json").read_text())["nodes"]
        return nodes

    def state(self, path: str) -> str | None:
        rec = self.nodes().get(path)
        return None if rec is None else str(rec["state"])

    def until(self, check: Callable[[Callable[[str], str | None]], bool]) -> None:
        until(lambda: check(self.state), self.proc)


@pytest.mark.slow
def test_rerun_stop_and_delete_a_local_run_from_the_cli(running: RunInProgress) -> None:
    run_id = running.run.run_id
    log = running.run.log_path("/work/flaky")
    assert log.read_text() == "try\n"
    (running.home / "ok").touch()
    res = k8sco("rerun", "/work/flaky")  # no pipeline name: the local run in progress
    assert res.exit_code == 0, res.output
    assert res.output == f"run {run_id}: rerunning failed and killed nodes under /work/flaky (1)\n"
    running.until(lambda n: n("/work/flaky") == "done")
    assert log.read_text() == "try\ntry\n"  # it ran again
    assert running.state("/work/waits") == "running"  # a rerun leaves the running alone

    res = k8sco("stop")
    assert res.exit_code == 0, res.output
    assert res.output == f"run {run_id}: stopping\n"
    out, _ = running.proc.communicate(timeout=WAIT)
    assert running.proc.returncode == 130  # as Ctrl-C
    assert running.nodes()["/work/waits"]["state"] == "killed"
    assert b"rerun /work/flaky: 1 failed or killed node(s) back to pending" in out
    assert not list((running.run.path / "requests").glob("*.json"))  # each taken once
    answers = sorted((running.run.path / "requests" / "done").glob("*.json"))
    assert [json.loads(a.read_text())["action"] for a in answers] == ["rerun", "stop"]

    res = k8sco("rerun", "/work")
    assert res.exit_code == 2
    assert f"the latest, {run_id}, has ended" in res.output
    res = k8sco("rerun", "--run", run_id)
    assert res.exit_code == 2
    assert f"run {run_id} has finished; rerun and stop act on a run in progress" in res.output
    assert len(res.output.strip().splitlines()) == 1

    res = k8sco("delete", "--run", run_id)
    assert res.exit_code == 0, res.output
    assert not running.run.path.exists()
    assert not (running.home / ".k8sco" / "runs" / "latest").exists()


@pytest.mark.slow
def test_a_bad_node_path_is_refused_and_the_run_goes_on(running: RunInProgress) -> None:
    res = k8sco("rerun", "/nope")
    assert res.exit_code == 2
    assert f"run {running.run.run_id} has no node '/nope'" in res.output
    assert running.proc.poll() is None
    assert running.state("/work/flaky") == "error"  # nothing was reset


@pytest.mark.slow
def test_deleting_a_run_in_progress_stops_it_first(running: RunInProgress) -> None:
    older = running.run.run_id
    res = k8sco("delete", "--run", older)
    assert res.exit_code == 0, res.output
    assert running.proc.wait(timeout=WAIT) == 130
    assert not running.run.path.exists()


def test_without_a_name_the_controls_act_locally_and_with_one_on_the_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    calls: list[tuple[Any, ...]] = []
    for name in ("cluster_rerun", "cluster_stop", "cluster_delete"):
        monkeypatch.setattr(runs_cli, name, lambda *a, name=name: calls.append((name, *a[:-3])))
    assert k8sco("rerun", "demo").exit_code == 0
    assert k8sco("rerun", "demo", "/x").exit_code == 0
    assert k8sco("stop", "demo").exit_code == 0
    assert k8sco("delete", "demo").exit_code == 0
    assert calls == [
        ("cluster_rerun", "demo", "/"),
        ("cluster_rerun", "demo", "/x"),
        ("cluster_stop", "demo"),
        ("cluster_delete", "demo"),
    ]
    for args in (["rerun"], ["rerun", "/x"], ["stop"]):
        res = k8sco(*args)
        assert res.exit_code == 2 and "no runs in .k8sco/runs/" in res.output, args
    res = k8sco("delete")
    assert res.exit_code == 2 and "give PIPELINE (a cluster) or --run ID" in res.output
    assert len(calls) == 4


def _abandoned_run(tmp_path: Path) -> RunDir:
    """A finished run made to look as if its runner had died mid-run (states.json still
    says running, naming a process that is gone)."""
    (tmp_path / "pipe.py").write_text(PIPELINE)
    (tmp_path / "ok").touch()
    (tmp_path / "go").touch()
    subprocess.run(
        [sys.executable, "-m", "k8sco", "run", "--plain", "pipe.py"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    run = RunDir.open(tmp_path / ".k8sco" / "runs")
    gone = subprocess.Popen(["true"])
    gone.wait()
    states = json.loads((run.path / "states.json").read_text())
    states.update(finished=None, runner_pid=gone.pid)
    (run.path / "states.json").write_text(json.dumps(states))
    return run


def test_a_request_no_runner_takes_is_shown_and_a_client_does_not_leave_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _abandoned_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="its runner is gone"):
        control.stop(run)
    assert control.unanswered(run.path) == []
    # One the runner would have taken had it not died: left where `k8sco status` shows it.
    (run.path / "requests").mkdir(exist_ok=True)
    (run.path / "requests" / "0001-1-abc.json").write_text(
        json.dumps({"id": "0001-1-abc", "action": "stop", "path": "/"})
    )
    res = k8sco("status", "--run", run.run_id)
    assert "the runner is gone" in res.output
    assert "1 request(s) not taken by the runner: " in res.output
    assert f".k8sco/runs/{run.run_id}/requests/0001-1-abc.json" in res.output


def test_the_runner_answers_each_request_once_and_refuses_what_is_not_one(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "requests"
    folder.mkdir()
    (folder / "0002-1-aaa.json").write_text("{not json")
    (folder / "0001-1-bbb.json").write_text(json.dumps({"action": "rerun", "path": "/a"}))
    (folder / ".0003-1-ccc.tmp").write_text("{}")  # being written: not a request yet
    [req] = control.pending(tmp_path)
    assert (req.id, req.action, req.path) == ("0001-1-bbb", "rerun", "/a")
    bad = json.loads((folder / "done" / "0002-1-aaa.json").read_text())
    assert bad["ok"] is False and "is not a request" in bad["message"]
    control.answer(req, True, "fine")
    assert control.pending(tmp_path) == []
    assert control.unanswered(tmp_path) == []
    good = json.loads((folder / "done" / "0001-1-bbb.json").read_text())
    assert (good["ok"], good["message"], good["path"]) == (True, "fine", "/a")
