"""The local runner's guardian: kills what a run left behind, even when the runner is SIGKILLed.

The runner starts this file as a script (stdlib only, no k8sco import: it must start fast
and depend on nothing) in a session of its own, so that the terminal's signals do not reach
it, with a pipe on its stdin. The runner writes ``+PGID`` when a node's process group
starts and ``-PGID`` when it has been reaped. When the pipe closes, because the runner
ended or was killed (the kernel closes a dead process's pipes), the guardian

1. kills the process groups still registered, then
2. on Linux, kills every process whose environment holds the run's token
   (``K8SCO_RUN_TOKEN=<token>``, set in every node's environment and inherited by what the
   node starts): processes that left the node's process group with ``setsid`` or a double
   fork, which no signal to the group reaches, until a scan finds none left.

A child's parent-death signal (``PR_SET_PDEATHSIG``) would reach only the node's first
process, not its descendants, and a subreaper dies with the runner: hence a separate
process. What escapes: a process that clears its environment and leaves its group, or one
of another user; on macOS (no ``/proc``) only the process groups are killed. A best effort,
as Kubernetes' own (a container's processes all die with it, by its cgroup) is not
available to an unprivileged local process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

TOKEN_VAR = "K8SCO_RUN_TOKEN"
_ROUNDS = 50  # scans at most; each kills what the one before could not see yet


def marked(token: str) -> set[int]:
    """Pids of the processes whose environment holds the run's token (empty without /proc)."""
    needle = f"{TOKEN_VAR}={token}".encode()
    found: set[int] = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
        except OSError:  # gone, or not ours to read
            continue
        if needle in environ.split(b"\0"):
            found.add(int(entry))
    return found


def sweep(token: str, groups: set[int]) -> int:
    """Kill the groups and every process marked with the token; how many were signalled."""
    me = os.getpid()
    killed = 0
    for pgid in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
            killed += 1
    for _ in range(_ROUNDS):
        found = marked(token) - {me}
        if not found:
            break
        for pid in found:  # a killed process is a zombie until reaped: its environ is empty
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.005)
    return killed


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1]:
        sys.stderr.write("usage: guardian.py TOKEN (the run's token; pgids on stdin)\n")
        return 2
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)  # the runner's Ctrl-C is the runner's to handle
    groups: set[int] = set()
    for line in sys.stdin.buffer:  # until the runner closes the pipe or dies
        text = line.strip()
        if text[:1] in (b"+", b"-") and text[1:].isdigit():
            pgid = int(text[1:])
            if text[:1] == b"+":
                groups.add(pgid)
            else:
                groups.discard(pgid)
    sweep(argv[1], groups)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
