"""How the simulated kubelet runs a container. The seam is :class:`ContainerRunner`
(``start(launch) -> ContainerProcess``); :class:`ProcessRunner` runs the container's
command as a local process in its own session. A Docker-backed runner can implement the
same two methods."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class ContainerLaunch:
    """Everything a runner needs; ``argv`` is the container's command + args, already
    $(VAR)-expanded, and ``env`` only what the pod spec defines."""

    namespace: str
    pod: str
    pod_uid: str
    container: str
    image: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    log_path: Path = Path(os.devnull)


class RunnerError(Exception):
    """The container could not start: the kubelet reports ``reason`` (exit code 128)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class ContainerProcess(Protocol):
    container_id: str

    def wait(self) -> int:
        """Block until the container exits; its exit code (128+N when killed by signal N)."""
        ...

    def terminate(self) -> None:
        """SIGTERM (the start of the grace period)."""
        ...

    def kill(self) -> None:
        """SIGKILL."""
        ...


class ContainerRunner(Protocol):
    def start(self, launch: ContainerLaunch) -> ContainerProcess: ...


class Exited:
    """A container that has already exited with ``code``, without a process: for tests and
    benchmarks of what happens around containers, not in them."""

    container_id = "instant://0"

    def __init__(self, code: int = 0) -> None:
        self.code = code

    def wait(self) -> int:
        return self.code

    def terminate(self) -> None:
        pass

    def kill(self) -> None:
        pass


class InstantRunner:
    """Every container exits 0 the moment it starts."""

    def start(self, launch: ContainerLaunch) -> Exited:
        return Exited(0)


class PathMap:
    """Maps container paths to host paths by the longest matching prefix; unmatched paths
    are used as they are (the default is the identity)."""

    def __init__(self, mapping: Mapping[str, str | os.PathLike[str]] | None = None) -> None:
        items = [(p.rstrip("/") or "/", Path(h)) for p, h in (mapping or {}).items()]
        self._items = sorted(items, key=lambda item: len(item[0]), reverse=True)

    def to_host(self, path: str) -> str:
        for prefix, host in self._items:
            if prefix == "/" or path == prefix or path.startswith(prefix + "/"):
                rest = path[len(prefix) :].lstrip("/") if prefix != "/" else path.lstrip("/")
                return str(host / rest) if rest else str(host)
        return path


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def session_rss() -> dict[int, int]:
    """Resident bytes by session id, over every process of this host (one pass over
    /proc). A LocalProcess starts a session of its own, so its container's memory is its
    session's: what a container's cgroup counts, near enough. {} without /proc."""
    out: dict[int, int] = {}
    try:
        pids = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return out
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
            # The fields after the command name (in parentheses, it may hold spaces):
            # state ppid pgrp session ...; rss is the 24th field of the whole line.
            fields = data[data.rindex(b")") + 2 :].split()
            sid, rss = int(fields[3]), int(fields[21])
        except (OSError, ValueError, IndexError):
            continue
        out[sid] = out.get(sid, 0) + rss * _PAGE
    return out


class LocalProcess:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self.pid = proc.pid
        self.container_id = f"process://{proc.pid}"

    def wait(self) -> int:
        code = self._proc.wait()
        # Like a container runtime, take the rest of the process group down with the main one.
        self._signal(signal.SIGKILL)
        return 128 - code if code < 0 else code

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)


class ProcessRunner:
    """Runs each container as ``argv`` in a new session (no shell), its working directory
    mapped through ``path_map``, with ``base_env`` (default: this process's environment)
    overlaid by the pod's env. Output and errors go to ``launch.log_path``."""

    def __init__(
        self,
        path_map: Mapping[str, str | os.PathLike[str]] | PathMap | None = None,
        base_env: Mapping[str, str] | None = None,
        default_working_dir: str | None = None,
    ) -> None:
        self.path_map = path_map if isinstance(path_map, PathMap) else PathMap(path_map)
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.default_working_dir = default_working_dir

    def start(self, launch: ContainerLaunch) -> LocalProcess:
        argv = list(launch.argv)
        if not argv:
            raise RunnerError(
                "CreateContainerError",
                "fakecluster runs containers as local processes: the container needs a command",
            )
        if argv[0].startswith("/"):
            argv[0] = self.path_map.to_host(argv[0])
        workdir = launch.working_dir or self.default_working_dir
        cwd = self.path_map.to_host(workdir) if workdir else None
        if cwd is not None and not os.path.isdir(cwd):
            raise RunnerError(
                "StartError",
                f'failed to create containerd task: chdir to cwd ("{workdir}") set in config.json '
                "failed: no such file or directory",
            )
        env = {**self.base_env, **launch.env}
        with open(launch.log_path, "ab") as log:
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as e:
                raise RunnerError(
                    "StartError",
                    f"failed to create containerd task: exec: {argv[0]!r}: {e.strerror or e}",
                ) from e
        return LocalProcess(proc)
