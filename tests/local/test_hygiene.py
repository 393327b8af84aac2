"""No process of a local run outlives it: not when ``k8sco run`` is killed with SIGKILL, not
when a node's grandchild left its process group (``setsid``), not after Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from k8sco.local import guardian

# /a: a shell and its sleep, in the node's process group. /b: a grandchild that made itself
# a session leader (as a daemon does), which no signal to the node's group reaches.
GRANDCHILD = (
    "import os, time; os.setsid(); open('g.pid', 'w').write(str(os.getpid())); time.sleep(300)"
)
PIPELINE = f"""
import k8sco as co


def pipe() -> co.Parallel:
    root = co.Parallel()
    root["a"] = co.Exec("echo $$ > a.pid; sleep 300 & echo $! > a2.pid; wait")
    root["b"] = co.Exec({f"'{sys.executable}' -c {GRANDCHILD!r} & wait"!r})
    return root
"""
PID_FILES = ("a.pid", "a2.pid", "g.pid")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: /proc")


def _gone(pid: int) -> bool:
    """True once ``pid`` is gone or a zombie; waits a bounded while (signals are delivered
    asynchronously; nothing is timed)."""
    for _ in range(400):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def _start(project: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    (project / "p.py").write_text(PIPELINE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "k8sco", "run", "p.py", "--plain"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    files = [project / name for name in PID_FILES]
    try:
        for _ in range(1200):  # until every process runs (bounded by the test's timeout)
            if all(p.exists() and p.read_text().strip() for p in files):
                break
            assert proc.poll() is None, "the run ended early"
            time.sleep(0.05)
        return proc, [int(p.read_text()) for p in files]
    except BaseException:
        proc.send_signal(signal.SIGINT)  # the run cleans up after itself
        proc.wait()
        raise


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return tmp_path


@pytest.mark.timeout(120)
def test_sigkill_of_the_runner_kills_its_nodes_and_their_grandchildren(project: Path) -> None:
    proc, pids = _start(project)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert [pid for pid in pids if not _gone(pid)] == []
    finally:
        for pid in pids:  # on failure, leave nothing behind either
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(120)
def test_ctrl_c_kills_a_grandchild_that_left_the_process_group(project: Path) -> None:
    proc, pids = _start(project)
    try:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        assert [pid for pid in pids if not _gone(pid)] == []
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _marked_soon(token: str, pid: int) -> bool:
    """True once ``pid`` shows the token in its environment; waits a bounded while: Popen
    may return (vfork) before the kernel has set up the new program's environment, and
    /proc/PID/environ reads empty until then (Linux fs/proc/base.c, environ_read: "Ensure
    the process spawned far enough to have an environment"). Nothing is timed."""
    for _ in range(400):
        if pid in guardian.marked(token):
            return True
        time.sleep(0.05)
    return False


def test_the_sweep_finds_processes_by_token_only(tmp_path: Path) -> None:
    token = os.urandom(8).hex()
    env = {**os.environ, guardian.TOKEN_VAR: token}
    marked = subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)
    other = subprocess.Popen(
        ["sleep", "300"], env={**env, guardian.TOKEN_VAR: token + "0"}, start_new_session=True
    )
    try:
        assert _marked_soon(token, marked.pid)
        assert other.pid not in guardian.marked(token)
        guardian.sweep(token, set())
        assert marked.wait(timeout=60) == -signal.SIGKILL
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
        marked.kill()
        marked.wait()
