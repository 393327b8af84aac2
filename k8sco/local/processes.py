"""Child processes of the local runner: how a node's command becomes a process, and waiting
for many of them without polling.

Each node runs in its own session (``start_new_session``), so signalling its process group
reaches the shell and everything it started; the :class:`Guardian` reaches what left the
group, and outlives a runner killed with SIGKILL (:mod:`k8sco.local.guardian`).

The runner sleeps in ``selectors`` on one ``pidfd`` per child (Linux 5.3+) plus a wake-up
pipe that signal handlers write to; where pidfds are missing, a thread per child waits for
it and writes to the same pipe.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from k8sco.image import Image
from k8sco.local import guardian
from k8sco.tree import Exec


def alive(pid: object) -> bool:
    """Whether ``pid`` (as read from a run directory: anything) names a live process, such
    as the runner of a run in progress. A process of another user counts as alive."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dispatcher_argv() -> list[str]:
    """How to run ``k8sco`` itself: the console script next to this Python, if installed."""
    script = Path(sys.executable).with_name("k8sco")
    if os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "k8sco"]


def node_workdir(node: Exec, code_root: str) -> str:
    """Where a node runs: its image's ``copy_dir`` (from the pipeline file's folder, as the
    builder reads it), the folder its Job runs in as the image's code root; else the code
    root. So relative paths mean the same files locally and on a cluster."""
    image = node.get("image")
    copy_dir = image.copy_dir if isinstance(image, Image) else None
    if copy_dir is None:
        return code_root
    return os.path.normpath(os.path.join(code_root, copy_dir))


def node_argv(
    node: Exec, dispatcher: Sequence[str], code_root: str | None = None, cwd: str | None = None
) -> list[str]:
    """The argv of a node: a shell string through /bin/sh, an argv list as it is, and a
    native function's ``k8sco call ...`` through this installation's dispatcher (its file,
    relative to ``code_root``, made relative to ``cwd`` when the node runs elsewhere)."""
    if isinstance(node.command, str):
        return ["/bin/sh", "-c", node.command]
    if node.command[0] == "k8sco":
        args = list(node.command[1:])
        if code_root is not None and cwd is not None and cwd != code_root and len(args) > 1:
            args[1] = _target_from(args[1], code_root, cwd)
        return [*dispatcher, *args]
    return list(node.command)


def _target_from(target: str, code_root: str, cwd: str) -> str:
    where, sep, func = target.rpartition(":")
    if not sep or not (where.endswith(".py") or "/" in where):
        return target  # package.module:FUNC: found through PYTHONPATH (see node_pythonpath)
    return os.path.relpath(os.path.join(code_root, where), cwd) + ":" + func


def node_pythonpath(env: Mapping[str, str], code_root: str, cwd: str) -> dict[str, str]:
    """``env`` with the code root first on PYTHONPATH when the node runs elsewhere, so a
    native function in a package of the code root still imports."""
    out = dict(env)
    if cwd != code_root:
        rest = out.get("PYTHONPATH")
        out["PYTHONPATH"] = code_root + (os.pathsep + rest if rest else "")
    return out


@dataclass
class Child:
    """A running node's process."""

    path: str
    proc: subprocess.Popen[bytes]
    cpu: float
    stop_reason: str | None = None  # set once the runner asks it to stop: "timeout" | "killed"
    kill_at: float | None = None  # when SIGTERM's grace runs out and SIGKILL follows

    def signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
            os.killpg(self.proc.pid, sig)


class Waiter:
    """Sleeps until a child exits, a signal arrives or a timeout passes."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._pidfds: dict[int, int] = {}  # pid -> pidfd
        self._use_pidfd = hasattr(os, "pidfd_open")
        self._exited: set[int] = set()  # pids reported by waiter threads (no-pidfd fallback)
        self._lock = threading.Lock()

    def wake(self) -> None:
        """Make the current or next ``wait`` return at once (safe in a signal handler)."""
        with contextlib.suppress(OSError):  # a full pipe: a wake-up is pending anyway
            os.write(self._wake_w, b"\0")

    def watch(self, proc: subprocess.Popen[bytes]) -> None:
        if self._use_pidfd:
            try:
                fd = os.pidfd_open(proc.pid)
            except OSError:
                self._use_pidfd = False
            else:
                self._pidfds[proc.pid] = fd
                self._selector.register(fd, selectors.EVENT_READ, proc.pid)
                return
        threading.Thread(target=self._wait_thread, args=(proc,), daemon=True).start()

    def _wait_thread(self, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()
        with self._lock:
            self._exited.add(proc.pid)
        self.wake()

    def forget(self, pid: int) -> None:
        fd = self._pidfds.pop(pid, None)
        if fd is not None:
            self._selector.unregister(fd)
            os.close(fd)
        with self._lock:
            self._exited.discard(pid)

    def wait(self, timeout: float | None) -> set[int]:
        """Pids that may have exited (check with ``poll``); empty on a timeout or wake-up."""
        events = self._selector.select(timeout)
        pids: set[int] = set()
        for key, _ in events:
            if key.data is None:
                _drain(self._wake_r)
            else:
                pids.add(key.data)
        with self._lock:
            pids |= self._exited
        return pids

    def close(self) -> None:
        for pid in list(self._pidfds):
            self.forget(pid)
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def spawn(
    argv: Sequence[str], cwd: str, env: Mapping[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """Start a node's process in a new session, stdout and stderr appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


class Guardian:
    """The run's guardian process (:mod:`k8sco.local.guardian`): told of each node's process
    group, it kills them, and every process carrying the run's token, when the runner closes
    its pipe or dies. Without one (it could not start), the runner works as before."""

    def __init__(self, token: str) -> None:
        self.token = token
        self._proc: subprocess.Popen[bytes] | None
        try:
            self._proc = subprocess.Popen(
                # -I -S: the stdlib only, whatever the environment says; its own session, so
                # that the terminal's Ctrl-C and hang-up reach the runner, not it.
                [sys.executable, "-I", "-S", guardian.__file__, token],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError:
            self._proc = None

    def _tell(self, line: str) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            return
        try:
            proc.stdin.write(line.encode())
            proc.stdin.flush()
        except OSError:  # it is gone: nothing to tell it any more
            self._proc = None

    def started(self, pgid: int) -> None:
        self._tell(f"+{pgid}\n")

    def ended(self, pgid: int) -> None:
        self._tell(f"-{pgid}\n")

    def close(self, timeout: float = 30.0) -> None:
        """Make it sweep now, and wait until it has."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
