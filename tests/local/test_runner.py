"""The local runner on small trees: real processes, state and logs in a temporary directory.

No assertion depends on timing: order is read from files the nodes write, overlap is proven
by nodes that wait for each other, and concurrency by nodes that record their start and end.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

import k8sco as co
from k8sco import engine
from k8sco.engine import State
from k8sco.incremental import Incremental, View
from k8sco.local import runner
from k8sco.local.progress import PlainProgress
from k8sco.local.rundir import RunDir


def run(
    root: co.Node, tmp_path: Path, cpus: float | None = 4
) -> tuple[runner.RunResult, list[str]]:
    """Run ``root`` with ``tmp_path`` as the code root; the result and the progress lines."""
    lines: list[str] = []
    spec = runner.RunSpec(root=root, code_root=str(tmp_path), meta={"file": "test.py"})
    result = runner.run(
        spec,
        PlainProgress(lines.append),
        runs_dir=tmp_path / ".k8sco" / "runs",
        cpus=cpus,
    )
    return result, lines


def log(result: runner.RunResult, path: str) -> str:
    return result.run.log_path(path).read_text()


def test_serial_runs_children_one_after_another_in_order(tmp_path: Path) -> None:
    root = co.Serial()
    for name in ["c", "a", "b"]:
        root[name] = co.Exec(f"echo start {name} >> order; sleep 0.05; echo end {name} >> order")
    result, _ = run(root, tmp_path)
    assert result.exit_code == 0
    assert result.root is State.DONE
    assert (tmp_path / "order").read_text().split("\n")[:-1] == [
        "start c",
        "end c",
        "start a",
        "end a",
        "start b",
        "end b",
    ]


@pytest.mark.timeout(60)
def test_parallel_children_run_at_the_same_time(tmp_path: Path) -> None:
    # Each node waits for the other's marker: they can only both finish if they overlap.
    wait = (
        "touch {me}; i=0; while [ ! -e {other} ] && [ $i -lt 200 ]; "
        "do sleep 0.05; i=$((i+1)); done; test -e {other}"
    )
    root = co.Parallel()
    root["a"] = co.Exec(wait.format(me="a.started", other="b.started"))
    root["b"] = co.Exec(wait.format(me="b.started", other="a.started"))
    result, _ = run(root, tmp_path)
    assert result.states == {"/": State.DONE, "/a": State.DONE, "/b": State.DONE}


def test_stop_on_error_leaves_later_children_pending(tmp_path: Path) -> None:
    root = co.Serial()
    root["ok"] = co.Exec("true")
    root["bad"] = co.Exec("echo broken >&2; exit 3")
    root["later"] = co.Exec("touch later.ran")
    result, lines = run(root, tmp_path)
    assert result.exit_code == 1
    assert result.states["/"] is State.ERROR
    assert result.states["/later"] is State.PENDING
    assert not (tmp_path / "later.ran").exists()
    assert result.recorded["/bad"].reason == "exit code 3"
    assert log(result, "/bad") == "broken\n"
    assert any(" error /bad (" in line and line.endswith("s): exit code 3\n") for line in lines)


def test_stop_on_error_false_runs_the_rest_and_still_fails(tmp_path: Path) -> None:
    root = co.Serial(stop_on_error=False)
    root["bad"] = co.Exec("exit 1")
    root["later"] = co.Exec("touch later.ran")
    result, _ = run(root, tmp_path)
    assert (tmp_path / "later.ran").exists()
    assert result.states["/later"] is State.DONE
    assert result.states["/"] is State.ERROR
    assert result.exit_code == 1


def test_parallel_sibling_of_a_failure_runs_to_the_end(tmp_path: Path) -> None:
    root = co.Parallel()
    root["bad"] = co.Exec("exit 1")
    root["slow"] = co.Exec("sleep 0.2; touch slow.done")
    result, _ = run(root, tmp_path)
    assert (tmp_path / "slow.done").exists()
    assert result.states == {"/": State.ERROR, "/bad": State.ERROR, "/slow": State.DONE}


def test_suppress_errors_makes_the_parent_done(tmp_path: Path) -> None:
    root = co.Serial()
    root["tolerant"] = co.Parallel(suppress_errors=True)
    root["tolerant/bad"] = co.Exec("exit 1")
    root["after"] = co.Exec("true")
    result, _ = run(root, tmp_path)
    assert result.states["/tolerant/bad"] is State.ERROR
    assert result.states["/tolerant"] is State.DONE
    assert result.states["/after"] is State.DONE
    assert result.exit_code == 0


def test_skipped_subtree_does_not_run(tmp_path: Path) -> None:
    root = co.Serial()
    root["skipped"] = co.Serial(skip=True)
    root["skipped/x"] = co.Exec("touch x.ran")
    root["y"] = co.Exec("touch y.ran")
    result, _ = run(root, tmp_path)
    assert not (tmp_path / "x.ran").exists()
    assert (tmp_path / "y.ran").exists()
    assert result.states["/skipped/x"] is State.SKIPPED
    assert result.exit_code == 0


def test_retries_rerun_a_failed_node_until_it_passes(tmp_path: Path) -> None:
    # Fails on the first two attempts, passes on the third.
    cmd = "echo try >> tries; [ $(wc -l < tries) -ge 3 ]"
    result, lines = run(_one(cmd, retries=2), tmp_path)
    assert (tmp_path / "tries").read_text() == "try\n" * 3
    assert result.recorded["/x"].attempts == 3
    assert result.states["/x"] is State.DONE
    assert sum("retry /x" in line for line in lines) == 2
    assert "[k8sco] attempt 3" in log(result, "/x")


def test_retries_run_out(tmp_path: Path) -> None:
    result, _ = run(_one("echo try >> tries; exit 4", retries=1), tmp_path)
    assert (tmp_path / "tries").read_text() == "try\n" * 2
    rec = result.recorded["/x"]
    assert (rec.state, rec.attempts, rec.exit_code) == (State.ERROR, 2, 4)


def _one(cmd: str, **params: object) -> co.Serial:
    root = co.Serial()
    root["x"] = co.Exec(cmd, **params)
    return root


@pytest.mark.timeout(30)
def test_max_time_kills_the_whole_process_group(tmp_path: Path) -> None:
    # The shell starts sleep in the background and waits: killing only the shell would
    # leave the sleep behind.
    root = _one("sleep 30 & echo $! > sleep.pid; wait", max_time=1)
    result, _ = run(root, tmp_path)
    rec = result.recorded["/x"]
    assert rec.state is State.ERROR
    assert rec.reason == "max time exceeded (1s)"
    assert result.exit_code == 1
    pid = int((tmp_path / "sleep.pid").read_text())
    assert _dies(pid)


def _dies(pid: int) -> bool:
    """True once ``pid`` is gone; a SIGKILL is delivered asynchronously, so allow it a moment
    (generous: this bounds a wait, it does not measure anything)."""
    for _ in range(200):
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (it is reaped by its parent, init, once the group is gone).
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _peak(events: str) -> int:
    running = peak = 0
    for line in events.split():
        running += 1 if line == "+" else -1
        peak = max(peak, running)
    return peak


def test_max_concurrent_is_never_exceeded(tmp_path: Path) -> None:
    root = co.Parallel(max_concurrent=2)
    for i in range(6):
        root[f"n{i}"] = co.Exec("echo + >> events; sleep 0.1; echo - >> events")
    result, _ = run(root, tmp_path, cpus=16)
    assert result.exit_code == 0
    events = (tmp_path / "events").read_text()
    assert events.count("+") == 6
    assert _peak(events) <= 2


def test_cpu_bounds_concurrency_but_one_node_always_runs(tmp_path: Path) -> None:
    root = co.Parallel()
    for i in range(3):
        root[f"n{i}"] = co.Exec("echo + >> events; sleep 0.1; echo - >> events", cpu=2)
    root["huge"] = co.Exec("echo huge ran", cpu=64)  # more than the machine: runs alone
    result, _ = run(root, tmp_path, cpus=3)
    assert result.exit_code == 0
    assert _peak((tmp_path / "events").read_text()) == 1
    assert log(result, "/huge") == "huge ran\n"


def test_environment_working_directory_and_k8sco_variables(tmp_path: Path) -> None:
    os.environ["K8SCO_TEST_INHERITED"] = "from-parent"
    try:
        root = co.Serial(env={"A": "root", "B": "root"})
        root["s"] = co.Serial(env={"B": "child"})
        root["s/x"] = co.Exec(
            'echo "$A $B $K8SCO_TEST_INHERITED|$K8SCO_PIPELINE|$K8SCO_NODE_PATH|$(pwd)"'
        )
        result, _ = run(root, tmp_path)
    finally:
        del os.environ["K8SCO_TEST_INHERITED"]
    assert log(result, "/s/x") == (
        f"root child from-parent|{result.run.run_id}|/s/x|{os.path.realpath(tmp_path)}\n"
    )


def test_argv_commands_run_without_a_shell(tmp_path: Path) -> None:
    root = co.Serial()
    root["argv"] = co.Exec(["printf", "%s|", "a b", "$HOME", "*"])
    root["missing"] = co.Exec(["/nonexistent/program"])
    root.set(stop_on_error=False)
    result, _ = run(root, tmp_path)
    assert log(result, "/argv") == "a b|$HOME|*|"
    rec = result.recorded["/missing"]
    assert rec.state is State.ERROR
    assert rec.reason is not None and rec.reason.startswith("cannot start")


def test_state_file_holds_every_node_and_reads_back(tmp_path: Path) -> None:
    root = co.Serial()
    root["a"] = co.Exec("echo a")
    root["b"] = co.Exec("exit 2")
    result, _ = run(root, tmp_path)
    again = RunDir.open(tmp_path / ".k8sco" / "runs")  # the latest run
    assert again.run_id == result.run.run_id
    recorded, info = again.states()
    assert recorded == result.recorded
    assert info["root"] == "error"
    assert info["finished"] == result.finished
    assert again.tree().serialize() == root.serialize()
    assert (tmp_path / ".k8sco" / "runs" / "latest").resolve() == result.run.path.resolve()


@pytest.mark.timeout(60)
def test_an_interrupt_kills_running_nodes_and_records_them_killed(tmp_path: Path) -> None:
    root = co.Parallel()
    root["a"] = co.Exec("sleep 30 & echo $! > a.pid; wait")
    root["b"] = co.Exec("sleep 30 & echo $! > b.pid; wait")
    pids = [tmp_path / "a.pid", tmp_path / "b.pid"]

    def interrupt() -> None:  # SIGINT to this process once both sleeps run
        for _ in range(600):
            if all(p.exists() and p.read_text().strip() for p in pids):
                break
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    spec = runner.RunSpec(root=root, code_root=str(tmp_path), meta={})
    result = runner.run(spec, PlainProgress(lambda _: None), runs_dir=tmp_path / "runs", cpus=4)
    assert result.interrupted
    assert result.exit_code == 130
    assert {result.recorded[p].state for p in ("/a", "/b")} == {State.KILLED}
    recorded, _ = RunDir.open(tmp_path / "runs").states()
    assert recorded["/a"].state is State.KILLED
    for path in pids:
        assert _dies(int(path.read_text()))


def test_without_pidfds_a_thread_waits_for_each_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "pidfd_open", raising=False)  # as on macOS or an old kernel
    root = co.Serial()
    root["a"] = co.Exec("echo a")
    root["p"] = co.Parallel()
    root["p/b"] = co.Exec("exit 1")
    root["p/c"] = co.Exec("sleep 0.1; echo c")
    result, _ = run(root, tmp_path)
    assert result.states == {
        "/": State.ERROR,
        "/a": State.DONE,
        "/p": State.ERROR,
        "/p/b": State.ERROR,
        "/p/c": State.DONE,
    }
    assert log(result, "/p/c") == "c\n"


def test_the_runner_never_evaluates_the_whole_tree_from_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every wake-up used to re-evaluate the whole tree (O(nodes) each: quadratic in all);
    # the incremental engine answers instead, and must answer what evaluate would.
    oracle = engine.evaluate

    def refuse(*args: object, **kwargs: object) -> engine.Evaluation:
        raise AssertionError("engine.evaluate called by the local runner")

    monkeypatch.setattr(engine, "evaluate", refuse)
    root = co.Serial(stop_on_error=False)
    root["p"] = co.Parallel(max_concurrent=2)
    for i in range(5):
        root[f"p/n{i}"] = co.Exec(f"echo {i}")
    root["p/bad"] = co.Exec("exit 1", suppress_errors=True)
    root["flaky"] = co.Exec("test -e again || { touch again; exit 1; }", retries=1)
    root["slow"] = co.Exec("sleep 30", max_time=0.2)
    root["gone"] = co.Exec("true", skip=True)
    root["last"] = co.Exec("true")
    result, _ = run(root, tmp_path, cpus=2)
    assert result.states == oracle(result.graph, result.recorded, result.finished).states
    assert result.states["/p"] is State.DONE
    assert result.states["/flaky"] is State.DONE
    assert result.states["/slow"] is State.ERROR
    assert result.states["/gone"] is State.SKIPPED
    assert result.states["/last"] is State.DONE
    assert result.states["/"] is State.ERROR


def test_a_wake_up_reads_only_the_ready_nodes_it_has_room_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A wide Parallel has every child ready at once: listing them all on each wake-up is
    # O(width) per node started.
    offered: list[int] = []

    class Spy(Incremental):
        def evaluation(self, now: float, limit: int | None = None) -> View:
            view = super().evaluation(now, limit)
            offered.append(len(view.ready))
            return view

    monkeypatch.setattr(runner, "Incremental", Spy)
    root = co.Parallel()
    for i in range(30):
        root[f"n{i}"] = co.Exec("true")
    result, _ = run(root, tmp_path, cpus=2)
    assert result.exit_code == 0
    assert offered and max(offered) <= 3  # two cores, one cpu each: room for two, and one


@pytest.mark.timeout(60)
def test_states_are_written_while_nodes_run_not_only_at_the_end(tmp_path: Path) -> None:
    # States are written in batches; a change must still reach states.json while the other
    # nodes run (a reader, or a run killed with SIGKILL, sees it), not wait for the next exit.
    root = co.Parallel()
    root["fast"] = co.Exec("true")
    root["slow"] = co.Exec(
        "i=0; while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done"
    )
    seen: list[dict[str, str]] = []

    def release() -> None:  # lets /slow end once states.json shows /fast done, /slow running
        for _ in range(600):
            time.sleep(0.05)
            try:
                runs = tmp_path / ".k8sco" / "runs"
                recorded, _ = RunDir.open(runs).states()
            except Exception:  # not created yet
                continue
            now = {p: r.state.value for p, r in recorded.items()}
            if now.get("/fast") == "done" and now.get("/slow") == "running":
                seen.append(now)
                break
        (tmp_path / "go").touch()

    threading.Thread(target=release, daemon=True).start()
    result, _ = run(root, tmp_path, cpus=4)
    assert result.exit_code == 0
    assert seen == [{"/fast": "done", "/slow": "running"}]
