"""Shared containers: ``container_reuse_context=co.ContainerReuseContext.NEW`` (Conducto's
``same_container=co.SameContainer.NEW``).

The Exec nodes below a node that sets ``NEW`` form a *group*: they run one after another in
tree order, in one container, sharing its filesystem. A node below that sets its own context
starts its own group (``NEW``) or leaves the group (``GLOBAL``), as in Conducto, where a
node's ``container_id`` is the nearest ancestor's that sets one.

How each backend runs a group:

- the engine (``k8sco.engine.Graph``) caps the group's head at one running Exec, so every
  backend offers the members one at a time, in tree order, each with its own state, and a
  failure stops the rest as the group's Serials (``stop_on_error``) would;
- ``k8sco run`` (processes): each member is its own process in the code root, the working
  directory that every node of the run shares; ``k8sco run --docker``: one container per
  group, kept between its members, each member ``docker exec``'d into it;
- on Kubernetes: one Job per group (named after the head's path), whose container runs
  ``k8sco sequence SPEC`` (:func:`main`): the members in order, each its own process (no
  shell unless the member is a shell command), printing delimiter lines into the pod's log
  (``k8sco logs`` slices a member's part out of it: :func:`slice_log`) and writing each
  member's outcome (exit code, start, end) into the container's termination message
  (:func:`encode_message`). The controller turns that one Job into one record per member
  (:func:`member_jobs`).

The termination message holds at most 4096 bytes: the kubelet reads only the file's last
4 KiB (kubernetes/kubernetes pkg/kubelet/kuberuntime/kuberuntime_container.go,
getTerminationMessage: ``tail.ReadAtMost(path,
kubecontainer.MaxContainerTerminationMessageLength)``, 1024 * 4 in
pkg/kubelet/container/runtime.go). A group whose outcomes do not fit writes a marker
instead, and the controller reads the outcomes from the delimiter lines of the pod's log.

The dispatcher side (:func:`main`) imports only the tree and the engine: it starts once per
group, in the node's image.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k8sco.image import Image
from k8sco.params import ContainerReuseContext
from k8sco.tree import Exec, Node

NEW, GLOBAL = ContainerReuseContext.NEW.value, ContainerReuseContext.GLOBAL.value

# On a group's Job: the number of its members (the controller's sign of a group Job).
ANNOTATION_SEQUENCE = "k8sco.io/sequence"
# The kubelet's default terminationMessagePath; the Job sets it explicitly and passes it in
# K8SCO_TERMINATION_LOG so that the runner writes where the pod spec says.
TERMINATION_LOG = "/dev/termination-log"
TERMINATION_ENV = "K8SCO_TERMINATION_LOG"
MESSAGE_LIMIT = 4096  # bytes of termination message the kubelet keeps (see above)
MARK = "[k8sco-sequence]"  # delimiter lines in the pod's log start with it
FORMAT = 1
GRACE = 10.0  # seconds between SIGTERM and SIGKILL for a member past its max_time


# --- groups (pure) -----------------------------------------------------------------------


def head_of(node: Node) -> str | None:
    """The path of the group ``node`` belongs to: the nearest node of its lineage (itself
    included) that sets a context, when that context is NEW (and it is not an Exec);
    else None."""
    at: Node | None = node
    while at is not None:
        ctx = at.params.get("container_reuse_context")
        if ctx is not None:
            # An Exec that asks for a container of its own has one anyway.
            return at.path if ctx == NEW and not isinstance(at, Exec) else None
        at = at.parent
    return None


def groups(root: Node) -> dict[str, list[str]]:
    """Every group of the tree: its head's path and its Exec members' paths, in tree order."""
    out: dict[str, list[str]] = {}
    stack: list[tuple[Node, str, str | None]] = [(root, root.path, None)]
    while stack:
        node, path, head = stack.pop()
        ctx = node.params.get("container_reuse_context")
        if ctx is not None:
            head = path if ctx == NEW else None
        if isinstance(node, Exec):
            if head is not None and head != path:  # (an Exec's own NEW: see head_of)
                out.setdefault(head, []).append(path)
            continue
        prefix = path.rstrip("/") + "/"
        stack.extend(
            (child, prefix + name, head) for name, child in reversed(list(node.children.items()))
        )
    return out


def members(root: Node, head: str) -> list[str]:
    """The Exec members of the group headed at ``head``, in tree order."""
    return groups(root[head]).get(head, [])


def relative(head: str, path: str) -> str:
    """``path`` as seen from the group's subtree (whose root is ``head``)."""
    if head == "/":
        return path
    return path[len(head) :] or "/"


def absolute(head: str, rel: str) -> str:
    if head == "/":
        return rel
    return head if rel == "/" else head + rel


def job_path(root: Node, path: str) -> str:
    """The node path whose Job runs the Exec node at ``path``: its group's head, or itself."""
    return head_of(root[path]) or path


def member_index(root: Node, path: str) -> int | None:
    """The position of ``path`` among its group's members (its delimiter lines' number), or
    None when it runs in a container of its own."""
    head = head_of(root[path])
    if head is None:
        return None
    return members(root, head).index(path)


# --- outcomes: the termination message and the log's delimiter lines ----------------------


@dataclass(frozen=True)
class Outcome:
    """How one member ended: its exit code (negative: killed by that signal; None: the
    runner stopped it at its max_time) and when it started and ended (epoch seconds)."""

    code: int | None
    start: float
    end: float
    reason: str | None = None


def encode_message(outcomes: Mapping[int, Outcome], complete: bool) -> str:
    """The termination message: ``{"v":1,"t0":T,"o":[[i,code,start,end],...],"end":1}``
    with member indexes, exit codes and times in milliseconds after ``t0``. ``end`` says the
    runner finished (members without an outcome were not to run). Past MESSAGE_LIMIT bytes:
    ``{"v":1,"log":1}``, the outcomes are in the log."""
    t0 = min((o.start for o in outcomes.values()), default=0.0)
    rows = [
        [i, o.code, round((o.start - t0) * 1000), round((o.end - t0) * 1000)]
        for i, o in sorted(outcomes.items())
    ]
    data: dict[str, Any] = {"v": FORMAT, "t0": round(t0, 3), "o": rows}
    if complete:
        data["end"] = 1
    text = json.dumps(data, separators=(",", ":"))
    if len(text.encode()) > MESSAGE_LIMIT:
        return json.dumps({"v": FORMAT, "log": 1}, separators=(",", ":"))
    return text


@dataclass(frozen=True)
class Report:
    """What a group's pod says of its members: outcomes by member index, and whether the
    runner got to its end (else the pod was killed, ran out of time or memory)."""

    outcomes: dict[int, Outcome]
    complete: bool


def decode_message(text: str | None) -> Report | None:
    """The report in a termination message; None when it holds none (the runner never wrote
    it, the kubelet fell back to the log's tail, or it says to read the log)."""
    if not text:
        return None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != FORMAT or "o" not in data:
            return None
        t0 = float(data["t0"])
        outcomes = {
            int(i): Outcome(None if code is None else int(code), t0 + s / 1000, t0 + e / 1000)
            for i, code, s, e in data["o"]
        }
    except (ValueError, TypeError, KeyError):
        return None
    return Report(outcomes, bool(data.get("end")))


def _start_line(index: int, path: str, now: float) -> str:
    return f"{MARK} start {index} {now:.3f} {path}\n"


def _end_line(index: int, outcome: Outcome) -> str:
    code = "timeout" if outcome.code is None else str(outcome.code)
    return f"{MARK} end {index} {outcome.end:.3f} {code}\n"


def _done_line() -> str:
    return f"{MARK} done\n"


def _marks(log: bytes) -> Iterator[tuple[int, int, list[str]]]:
    """(start offset, end offset, fields) of each delimiter line of a log."""
    needle = MARK.encode()
    pos = 0
    while True:
        at = log.find(needle, pos)
        if at < 0:
            return
        if at > 0 and log[at - 1 : at] != b"\n":  # only at the start of a line
            pos = at + len(needle)
            continue
        end = log.find(b"\n", at)
        end = len(log) if end < 0 else end + 1
        fields = log[at + len(needle) : end].decode("utf-8", "replace").split(maxsplit=3)
        yield at, end, fields
        pos = end


def log_report(log: bytes) -> Report:
    """The outcomes the delimiter lines of a group's log say (the fallback to a termination
    message that could not hold them)."""
    starts: dict[int, float] = {}
    outcomes: dict[int, Outcome] = {}
    complete = False
    for _, _, fields in _marks(log):
        try:
            if fields[:1] == ["start"]:  # the first attempt's, as a node's record keeps
                starts.setdefault(int(fields[1]), float(fields[2]))
            elif fields[:1] == ["end"] and int(fields[1]) in starts:
                i = int(fields[1])
                code = None if fields[3].strip() == "timeout" else int(fields[3])
                outcomes[i] = Outcome(code, starts[i], float(fields[2]))
            elif fields[:1] == ["done"]:
                complete = True
        except (IndexError, ValueError):
            continue
    return Report(outcomes, complete)


def slice_log(log: bytes, index: int) -> bytes | None:
    """Member ``index``'s part of its group's log (between its delimiter lines, which are
    left out; every attempt when it was retried); None when it has not started."""
    parts: list[bytes] = []
    begin: int | None = None
    for at, end, fields in _marks(log):
        if len(fields) < 2 or not fields[1].isdigit() or int(fields[1]) != index:
            continue
        if fields[0] == "start":
            begin = end
        elif fields[0] == "end" and begin is not None:
            parts.append(log[begin:at])
            begin = None
    if begin is not None:  # still running
        parts.append(log[begin:])
    return b"".join(parts) if parts else None


def member_lines(lines: Iterable[bytes], index: int) -> Iterator[bytes]:
    """Member ``index``'s lines of its group's log as it streams (``k8sco logs -f``): those
    between its delimiter lines, until another member starts or the group ends."""
    inside, seen = False, False
    for line in lines:
        if not line.startswith(MARK.encode()):
            if inside:
                yield line
            continue
        fields = line[len(MARK) :].decode("utf-8", "replace").split()
        ours = len(fields) > 1 and fields[1] == str(index)
        if ours and fields[0] in ("start", "end"):
            inside = fields[0] == "start"
            seen = True
        elif seen:
            return


# --- the controller's view: one group Job, one Job-like record per member ------------------


def is_group_job(job: Mapping[str, Any]) -> bool:
    return ANNOTATION_SEQUENCE in ((job.get("metadata") or {}).get("annotations") or {})


def _iso(seconds: float) -> str:
    """A MicroTime: members of a group often take less than the second a Job's times hold."""
    whole = int(seconds)
    micro = round((seconds - whole) * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micro:06d}Z"


def _ended(job: Mapping[str, Any]) -> bool:
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("status") == "True" and cond.get("type") in (
            "Complete",
            "SuccessCriteriaMet",
            "Failed",
            "FailureTarget",
        ):
            return True
    return False


def _failed(job: Mapping[str, Any]) -> bool:
    return any(
        c.get("status") == "True" and c.get("type") in ("Failed", "FailureTarget")
        for c in (job.get("status") or {}).get("conditions") or ()
    )


def member_jobs(
    root: Node,
    jobs: Mapping[str, Mapping[str, Any]],
    report_of: Callable[[Mapping[str, Any]], Report | None],
) -> dict[str, Mapping[str, Any]]:
    """``jobs`` (by node path) with each group Job replaced by one Job-like object per
    member that has something to show, as :func:`k8sco.reconcile.observe.job_state` reads
    them: the member's outcome as the Job's end (``report_of`` reads the pod, once it has
    ended), the running member as the Job running. Each carries the group Job's metadata,
    so ownership and deletion act on the group Job."""
    out = dict(jobs)
    for head, job in jobs.items():
        if not is_group_job(job) or head not in root:
            continue
        del out[head]
        paths = members(root, head)
        ended = _ended(job)
        report = report_of(job) if ended else None
        outcomes = report.outcomes if report is not None else {}
        complete = report is not None and report.complete
        meta = job.get("metadata") or {}
        first_open = True
        succeeded = ended and report is None and not _failed(job)
        for i, path in enumerate(paths):
            outcome = outcomes.get(i)
            if outcome is not None:
                out[path] = {"metadata": meta, "status": _outcome_status(outcome)}
                continue
            if complete:
                continue  # the runner left it pending: blocked by an earlier failure
            if succeeded:  # its pod is gone, and with it the details: the group succeeded
                out[path] = {"metadata": meta, "status": job.get("status") or {}}
                continue
            if first_open:
                first_open = False
                # Running (or, once the pod ended without saying, ended as the Job did).
                out[path] = {"metadata": meta, "status": job.get("status") or {}}
            elif ended:
                out[path] = {"metadata": meta, "status": _not_run_status(job)}
    return out


def _outcome_status(outcome: Outcome) -> dict[str, Any]:
    status: dict[str, Any] = {"startTime": _iso(outcome.start), "ready": 0, "active": 0}
    if outcome.code == 0:
        status["succeeded"] = 1
        status["completionTime"] = _iso(outcome.end)
        status["conditions"] = [{"type": "Complete", "status": "True"}]
        return status
    if outcome.code is None:
        reason = "DeadlineExceeded"  # observe.py shows it as "max time exceeded"
    elif outcome.code > 0:
        reason = f"exit code {outcome.code}"
    else:
        reason = f"killed by signal {-outcome.code}"
    status["failed"] = 1
    status["conditions"] = [
        {
            "type": "Failed",
            "status": "True",
            "reason": reason,
            "lastTransitionTime": _iso(outcome.end),
        }
    ]
    return status


def _not_run_status(job: Mapping[str, Any]) -> dict[str, Any]:
    status = dict(job.get("status") or {})
    when = next(
        (
            c.get("lastTransitionTime")
            for c in status.get("conditions") or ()
            if c.get("lastTransitionTime")
        ),
        None,
    )
    status["conditions"] = [
        {
            "type": "Failed",
            "status": "True",
            "reason": "not run: its group's pod ended before it",
            **({"lastTransitionTime": when} if when else {}),
        }
    ]
    return status


def pod_report(pod: Mapping[str, Any]) -> Report | None:
    """The report in a group pod's termination message (its main container's)."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or ():
        ended = (cs.get("state") or {}).get("terminated") or {}
        report = decode_message(ended.get("message"))
        if report is not None:
            return report
    return None


# --- the spec a group's Job carries ----------------------------------------------------------

_RUNNER_PARAMS = ("max_time", "retries", "image")  # inherited: the shell comes from image


def spec(root: Node, head: str) -> str:
    """The argument of ``k8sco sequence``: the group's subtree (commands, params) as JSON.
    The subtree is the tree's own serialization, so the runner's engine sees the same
    Serials, Parallels, stop_on_error and retries as the controller's.

    Kubernetes expands ``$(VAR)`` in a container's command and turns ``$$`` into ``$``:
    :func:`k8sco.render.jobs.command_argv` escapes every container command, this one
    included, so the runner receives the JSON as written."""
    node = root[head]
    sub = node.to_dict()
    # What the head inherits from above and the runner's engine needs (each member's own
    # env reaches it through the container's).
    inherited: dict[str, Any] = {}
    for name in _RUNNER_PARAMS:
        value = node.get(name)
        if name not in node.params and value is not None:
            # An Image as the tree's serialization writes one.
            inherited[name] = {"image": value.to_dict()} if isinstance(value, Image) else value
    sub["params"] = {**inherited, **sub.get("params", {})}
    text = json.dumps(
        {"v": FORMAT, "head": head, "tree": sub},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return text


# --- the runner in the pod: ``k8sco sequence SPEC`` -----------------------------------------

USAGE = "usage: k8sco sequence SPEC_JSON\n\nRuns the Exec nodes of a shared container in order."


def main(argv: Sequence[str] | None = None) -> int:
    """Run a group's members in order; 0 when the group's subtree is done, else 1."""
    args = list(sys.argv[2:] if argv is None else argv)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if args[:1] in (["-h"], ["--help"]) else sys.stderr)
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    try:
        data = json.loads(args[0])
        head = str(data["head"])
        sub = Node.from_dict(data["tree"])
    except (ValueError, KeyError, TypeError) as exc:
        print(f"k8sco sequence: not a sequence spec: {exc}", file=sys.stderr)
        return 2
    path = os.environ.get(TERMINATION_ENV, TERMINATION_LOG)
    return run(sub, head, Path(path), os.environ)


def run(sub: Node, head: str, message: Path, environ: Mapping[str, str]) -> int:
    """Run the Execs of ``sub`` (the group's subtree, whose root sits at ``head``) one at
    a time as the engine offers them; write the termination message after each."""
    from k8sco import engine  # pure, and only the runner needs it

    graph = engine.Graph.from_tree(sub)
    index = {p: i for i, p in enumerate(graph.exec_paths)}
    recorded: dict[str, engine.NodeState] = {}
    outcomes: dict[int, Outcome] = {}
    while True:
        ev = engine.evaluate(graph, recorded, time.time())
        if not ev.ready:
            break
        rel = ev.ready[0]
        i = graph.index[rel]
        node = sub[rel]
        assert isinstance(node, Exec)
        start = time.time()
        rec = engine.started(recorded.get(rel, engine.PENDING), start)
        recorded[rel] = rec
        sys.stdout.write(_start_line(index[rel], absolute(head, rel), start))
        sys.stdout.flush()
        # max_time counts from the first attempt's start, across retries (engine.started).
        left = (rec.started or start) + graph.max_time[i] - start
        code = _run_member(node, absolute(head, rel), environ, max(left, 0.0))
        end = time.time()
        outcome = Outcome(code, rec.started or start, end)
        sys.stdout.write(_end_line(index[rel], outcome))
        sys.stdout.flush()
        if code is None:
            recorded[rel] = engine.timed_out(rec, graph.max_time[i], end)
        else:
            recorded[rel] = engine.exited(rec, code, graph.retries[i], end)
        if recorded[rel].state.finished:
            outcomes[index[rel]] = outcome
        _write(message, encode_message(outcomes, complete=False))
    state = engine.evaluate(graph, recorded, time.time()).root
    sys.stdout.write(_done_line())
    sys.stdout.flush()
    _write(message, encode_message(outcomes, complete=True))
    return 0 if state in (engine.State.DONE, engine.State.SKIPPED) else 1


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:  # the log's delimiter lines still say it all
        print(f"k8sco sequence: cannot write {path}: {exc}", file=sys.stderr)


def member_argv(node: Exec) -> list[str]:
    """A member's argv: a shell string through its image's shell, an argv as it is, a
    native function through this installation's ``k8sco``."""
    image = node.get("image")
    if isinstance(node.command, str):
        shell = image.command_shell if isinstance(image, Image) else "/bin/sh"
        return [shell, "-c", node.command]
    argv = list(node.command)
    if argv[0] == "k8sco":
        script = Path(sys.executable).with_name("k8sco")
        argv[:1] = [str(script)] if os.access(script, os.X_OK) else [sys.executable, "-m", "k8sco"]
    return argv


def member_env(node: Exec, path: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The container's environment with the member's own literal env (set in the group's
    subtree: the container's holds its ancestors') and its path."""
    env = dict(environ)
    for key, value in node.get("env").items():
        if isinstance(value, str):
            env[key] = value
    env["K8SCO_NODE_PATH"] = path
    return env


def _run_member(node: Exec, path: str, environ: Mapping[str, str], max_time: float) -> int | None:
    """Run one member to its end; its exit code, or None when it ran past ``max_time``."""
    try:
        proc = subprocess.Popen(
            member_argv(node),
            env=member_env(node, path, environ),
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its process group is what a timeout kills
        )
    except OSError as exc:
        print(f"k8sco sequence: {path}: cannot start: {exc.strerror or exc}", file=sys.stderr)
        return 127
    try:
        return proc.wait(timeout=max_time)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=GRACE)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
        return None


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(pid, sig)
