"""Controls for a local run: rerun, stop, delete and the live controls of
:mod:`k8sco.controls` (reset, skip, unskip, modify), the same code for ``k8sco rerun``,
``k8sco stop``, ``k8sco delete --run``, ``k8sco reset`` (and skip, unskip, modify) and the web
UI's buttons.

A running ``k8sco run`` takes requests through its run directory::

    <run dir>/requests/<id>.json         {"id", "action", "path"} (modify: also "set",
                                         "command"): from a client
    <run dir>/requests/done/<id>.json    the runner's answer: also "ok", "message", "answered"

A client writes the request atomically (a temporary name, then ``os.replace``) and waits,
a bounded time, for its answer. The runner looks for requests every ``runner.REQUEST_POLL``
seconds (its loop already wakes on child exits and deadlines), carries each out, writes the
answer and only then removes the request: a request is answered once, and one the runner
never took (it died first) stays in ``requests/``, where ``k8sco status`` shows it. A
client whose runner ended without taking its request withdraws it (removing it is the
claim: if the runner removed it first, its answer is there).

The run directory is owner-only (0700, :mod:`k8sco.local.rundir`): only its owner can ask.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k8sco import controls
from k8sco.errors import RunError, UsageError
from k8sco.local.processes import alive
from k8sco.local.rundir import RunDir, _point_latest, latest_id, list_runs

REQUESTS = "requests"
DONE = "done"
ACTIONS = ("rerun", "stop", *controls.ACTIONS)
ANSWER_WAIT = 30.0  # seconds a client waits for the runner's answer
END_WAIT = 60.0  # seconds ``delete`` waits for a stopped run's runner to end
CHECK = 0.05  # seconds between a waiting client's looks


@dataclass(frozen=True)
class Request:
    id: str
    action: str
    path: str
    file: Path
    extra: Mapping[str, Any] = field(default_factory=dict)  # modify's "set" and "command"

    def control(self) -> controls.Control:
        """The request as a live control (reset, skip, unskip, modify); PipelineError when
        it is not a valid one."""
        return controls.Control.from_dict({**self.extra, "action": self.action, "path": self.path})


# --- is it running? -------------------------------------------------------------------------


def runner_pid(run: RunDir, info: Mapping[str, Any] | None = None) -> int | None:
    """The pid of the run's runner while the run is in progress; None once it finished or
    its runner is gone (killed with SIGKILL, its pid perhaps reused since). ``info``: the
    run's state information, when the caller has read it already."""
    if info is None:
        _, info = run.states()
    pid = info.get("runner_pid")
    if info.get("finished") is not None or not alive(pid) or not isinstance(pid, int):
        return None
    if not started_by(pid, float(run.meta.get("started") or 0)):
        return None
    return pid


def started_by(pid: int, when: float) -> bool:
    """Whether process ``pid`` was already running at ``when`` (seconds since the epoch): a
    run's runner was, a process that later got the pid of a dead runner was not. Read from
    /proc (proc(5): field 22 of /proc/PID/stat, ticks after boot; btime in /proc/stat);
    where there is no /proc, the pid is trusted."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError, IndexError):
        return True
    fields = stat[stat.rindex(")") + 2 :].split()
    started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return started <= when + 1.0  # btime is whole seconds


def not_running(run: RunDir) -> UsageError:
    """Why a run takes no requests, in one line."""
    _, info = run.states()
    if info.get("finished") is not None:
        return UsageError(
            f"run {run.run_id} has finished; rerun and stop act on a run in progress "
            "(start a new one with k8sco run)"
        )
    return UsageError(f"run {run.run_id} is not running (its runner is gone)")


def running_run(base: Path, run_id: str | None = None) -> RunDir:
    """The run ``run_id``, or the newest run in progress under ``base``; UsageError, saying
    why, when it is not in progress or there is none."""
    if run_id is not None:
        run = RunDir.open(base, run_id)
        if runner_pid(run) is None:
            raise not_running(run)
        return run
    known = list_runs(base)
    for candidate in reversed(known):
        try:
            run = RunDir.open(base, candidate)
            if runner_pid(run) is not None:
                return run
        except UsageError:  # a damaged run (RunDirError) takes no requests
            continue
    latest = latest_id(base)
    if latest is None:
        raise UsageError(f"no runs in {base}/ (start one with `k8sco run FILE.py`)")
    raise UsageError(
        f"no local run in progress in {base}/ (the latest, {latest}, has ended); "
        "give a pipeline name for the cluster"
    )


# --- the client's side ----------------------------------------------------------------------


def rerun(run: RunDir, path: str, wait: float = ANSWER_WAIT) -> str:
    """Failed and killed Exec nodes under ``path`` of a run in progress back to pending,
    as ``k8sco rerun PIPELINE PATH`` does on a cluster; the runner's one-line answer."""
    return submit(run, "rerun", path, wait)


def live(run: RunDir, control: controls.Control, wait: float = ANSWER_WAIT) -> str:
    """A live control (reset, skip, unskip, modify) of a run in progress, checked here
    against the run's tree first (a bad path or parameter fails in one line, changing
    nothing), then carried out by its runner; the runner's one-line answer."""
    controls.check(run.tree(), control)
    extra = {k: v for k, v in control.to_dict().items() if k in ("set", "command")}
    return submit(run, control.action, control.path, wait, extra)


def stop(run: RunDir, wait: float = ANSWER_WAIT) -> str:
    """Kill the running nodes of a run in progress, record them killed and end the run:
    what Ctrl-C in its terminal does."""
    return submit(run, "stop", "/", wait)


def delete(base: Path, run_id: str, wait: float = ANSWER_WAIT, end_wait: float = END_WAIT) -> str:
    """Remove a run's directory; a run in progress is stopped first, and removed once its
    runner has ended (so no runner writes into a removed directory)."""
    run = RunDir.open(base, run_id)
    if runner_pid(run) is not None:
        with contextlib.suppress(UsageError):  # it ended meanwhile
            stop(run, wait)
        deadline = time.monotonic() + end_wait
        while runner_pid(run) is not None:
            if time.monotonic() >= deadline:
                raise RunError(
                    f"run {run_id} did not end within {end_wait:g}s of being stopped; "
                    "it is left in place (try again, or stop its k8sco run process)"
                )
            time.sleep(CHECK)
    try:
        shutil.rmtree(run.path)
    except OSError as exc:
        raise RunError(f"cannot remove {run.path}: {exc}") from exc
    if latest_id(base) == run_id or not (base / "latest").exists():
        rest = list_runs(base)
        if rest:
            _point_latest(base, rest[-1])
        else:
            (base / "latest").unlink(missing_ok=True)
    return f"run {run_id} deleted"


def submit(
    run: RunDir,
    action: str,
    path: str,
    wait: float = ANSWER_WAIT,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Hand a request to the run's runner and wait for its answer: its message, or the
    runner's refusal as a UsageError."""
    if action not in ACTIONS:
        raise UsageError(f"unknown control {action!r} for a local run: {', '.join(ACTIONS)}")
    if runner_pid(run) is None:
        raise not_running(run)
    ident = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(3)}"
    folder = run.path / REQUESTS
    file = folder / f"{ident}.json"
    try:
        (folder / DONE).mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = folder / f".{ident}.tmp"
        request = {**(extra or {}), "id": ident, "action": action, "path": path}
        tmp.write_text(json.dumps(request))
        os.replace(tmp, file)
    except OSError as exc:
        raise RunError(f"cannot write a request into {folder}: {exc}") from exc
    answer_file = folder / DONE / f"{ident}.json"
    deadline = time.monotonic() + wait
    while True:
        answer = _read(answer_file)
        if answer is not None:
            break
        if runner_pid(run) is None:
            try:
                file.unlink()  # withdrawn: the runner will never take it
            except FileNotFoundError:
                continue  # the runner took it first: its answer is there
            raise not_running(run)
        if time.monotonic() >= deadline:
            raise RunError(
                f"the runner of run {run.run_id} did not answer within {wait:g}s; "
                f"the request waits in {file}"
            )
        time.sleep(CHECK)
    message = str(answer.get("message") or "")
    if not answer.get("ok"):
        raise UsageError(message or f"run {run.run_id} refused the {action} request")
    return message


def _read(file: Path) -> Mapping[str, Any] | None:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"ok": False, "message": f"the answer {file} cannot be read"}
    return data if isinstance(data, dict) else None


# --- the runner's side ----------------------------------------------------------------------


def pending(run_path: Path) -> list[Request]:
    """The requests not yet answered, oldest first (ids sort by time). A file that is not a
    request is answered as refused, so that nothing waits on it."""
    folder = run_path / REQUESTS
    try:
        names = sorted(
            e.name
            for e in os.scandir(folder)
            if e.name.endswith(".json") and not e.name.startswith(".")
        )
    except OSError:
        return []
    out = []
    for name in names:
        file = folder / name
        ident = name[: -len(".json")]
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue  # withdrawn meanwhile
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("path", "/"), str):
            answer(Request(ident, "?", "/", file), False, f"{file} is not a request")
            continue
        extra = {k: data[k] for k in ("set", "command") if k in data}
        action, path = str(data.get("action")), str(data.get("path") or "/")
        out.append(Request(ident, action, path, file, extra))
    return out


def answer(req: Request, ok: bool, message: str) -> None:
    """Write the answer to ``req``, then remove it: answered once, never lost."""
    done = req.file.parent / DONE
    record: dict[str, object] = {"id": req.id, "action": req.action, "path": req.path}
    record.update(ok=ok, message=message, answered=time.time())
    try:
        done.mkdir(mode=0o700, exist_ok=True)
        tmp = done / f".{req.id}.tmp"
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, done / f"{req.id}.json")
        req.file.unlink(missing_ok=True)
    except OSError:
        pass  # left in requests/: visible, and the client says it got no answer


def unanswered(run_path: Path) -> list[str]:
    """The names of the request files no runner took (for ``k8sco status``)."""
    try:
        return sorted(
            e.name
            for e in os.scandir(run_path / REQUESTS)
            if e.name.endswith(".json") and not e.name.startswith(".")
        )
    except OSError:
        return []
