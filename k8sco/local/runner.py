"""The local runner: every Exec node a child process, every decision the engine's.

One loop, single-threaded: ask the engine (kept up to date one node at a time by
:class:`k8sco.incremental.Incremental`, so a wake-up costs what changed, not the tree) what
may start and what ran out of time, start processes (within the machine's cores), record
each transition through the engine's transition functions, write the states (batched: see
``_write_states``), and sleep until a child exits, a deadline passes or a signal arrives.
Ctrl-C (SIGINT or SIGTERM) stops every running node, records it ``killed`` and ends the run.

A run in progress also takes requests through its run directory (:mod:`k8sco.local.control`:
``k8sco rerun``, ``k8sco stop`` and the web UI's buttons), looked for every REQUEST_POLL
seconds: ``stop`` is Ctrl-C; ``rerun PATH`` puts the failed and killed Exec nodes under PATH
back to pending (``engine.reset``, through the incremental engine), as on a cluster; reset,
skip, unskip and modify are :mod:`k8sco.controls`'.

No process of a run outlives it: a node's process group is killed when the node ends, and
at the end of the run (Ctrl-C included) a guardian process kills the groups left and every
process whose environment holds the run's ``K8SCO_RUN_TOKEN``, including those that left
their group (``setsid``). The guardian also does so when the runner itself is killed with
SIGKILL (:mod:`k8sco.local.guardian`; on macOS, the process groups only). Run directories
are owner-only (0700).

Docker mode (``RunSpec.images``, ``k8sco run --docker``) changes only what a child is: a shim
process (``python -m k8sco.containers.run``) that runs the node in its image and stops the
container on SIGTERM. Containers carry the run's and the node's labels, so those of a shim
killed after its grace, and any left at the end, are removed by the runner.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

from k8sco import controls, engine, lazy, notify
from k8sco.callback import OOM_MARKER
from k8sco.data.local import ENV_PIPELINE, local_data_env
from k8sco.engine import Graph, NodeState, State
from k8sco.errors import PipelineError, RunError
from k8sco.incremental import Incremental
from k8sco.local import control, guardian, processes
from k8sco.local import secrets as local_secrets
from k8sco.local.progress import PlainProgress, Progress
from k8sco.local.rundir import RUNS_DIR, EncodedStates, RunDir
from k8sco.reconcile import callbacks as cbs
from k8sco.secrets import process_env, secret_names
from k8sco.tree import Exec, Node

GRACE = 2.0  # seconds between SIGTERM and SIGKILL when a node is stopped
MAX_WAIT = 86400.0  # seconds: the longest sleep of the loop
# states.json is rewritten whole (O(nodes)): at most once per this long, and never more
# often than STATE_WRITE_SHARE of the time allows, so writing stays a bounded share of the
# run whatever its size, and what a reader (or a SIGKILLed run) sees is this recent.
STATE_WRITE_INTERVAL = 0.1
STATE_WRITE_SHARE = 0.05
TIMEOUT, KILLED, RESET = "timeout", "killed", "reset"
EXIT_INTERRUPTED = 130
# Seconds between looks for requests in the run directory (one scandir of a small folder):
# an answer takes at most this long when nothing else wakes the loop.
REQUEST_POLL = 0.2
RUN_LABEL = "k8sco.io/run"  # on the containers of a docker-mode run: the run id
NODE_LABEL = "k8sco.io/node-path"  # and the node's path


@dataclass(frozen=True)
class RunResult:
    run: RunDir
    graph: Graph
    recorded: Mapping[str, NodeState]
    states: Mapping[str, State]  # every node, control nodes derived
    started: float
    finished: float
    interrupted: bool

    @property
    def root(self) -> State:
        return self.states["/"]

    @property
    def exit_code(self) -> int:
        """0 when the root is done (or skipped), 1 when it failed, 130 when interrupted."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        return 0 if self.root in (State.DONE, State.SKIPPED) else 1


@dataclass(frozen=True)
class RunSpec:
    """What to run and where: the tree, the code root (working directory of every node), and
    what to record about where the tree came from."""

    root: Node
    code_root: str
    meta: Mapping[str, Any]  # pipeline file, function, args; written to run.json
    # Docker mode (``k8sco run --docker``): the image of each Exec node, by path. Each node
    # then runs in a container through a shim process the runner treats like any child.
    images: Mapping[str, str] | None = None


def run(
    spec: RunSpec,
    progress: Progress | None = None,
    runs_dir: Path = RUNS_DIR,
    cpus: float | None = None,
) -> RunResult:
    """Run the tree to the end on this machine; state and logs go under ``runs_dir``."""
    graph = Graph.from_tree(spec.root)
    now = time.time()
    exec_paths = graph.exec_paths
    rundir = RunDir.create(runs_dir, spec.root, exec_paths, spec.meta, now)
    runner = _Runner(spec, graph, rundir, progress or PlainProgress(_stdout), cpus)
    return runner.run(now)


def _stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


class _Runner:
    def __init__(
        self,
        spec: RunSpec,
        graph: Graph,
        rundir: RunDir,
        progress: Progress,
        cpus: float | None,
    ) -> None:
        self.spec, self.graph, self.rundir, self.progress = spec, graph, rundir, progress
        self.cpus = float(cpus if cpus is not None else os.cpu_count() or 1)
        self.recorded: dict[str, NodeState] = {}
        self._set_graph(graph)
        # The recorded states as states.json holds them, kept up to date one node at a time
        # so that writing the file does not convert every node again.
        self.state_dicts = EncodedStates()
        self.children: dict[int, processes.Child] = {}  # pid -> child
        self.cpu_used = 0.0
        self.interrupts = 0
        self.handled_interrupts = 0
        self.dirty = False
        self.write_due = 0.0  # when states.json may next be rewritten
        self.requests_due = 0.0  # when the requests folder is next looked at
        self.waiter = processes.Waiter()
        self.dispatcher = processes.dispatcher_argv()
        base_env = dict(os.environ)
        base_env["K8SCO_PIPELINE"] = rundir.run_id
        # co.data (k8sco/data): the run's data beside its logs; the user's where configured.
        base_env.update(local_data_env(rundir.path, base_env))
        token = secrets.token_hex(16)
        base_env[guardian.TOKEN_VAR] = token
        self.base_env = base_env
        # Read once, at the start: a file open to others fails the run before any node.
        self.secrets = local_secrets.load()
        self.guardian = processes.Guardian(token)
        run_id = rundir.run_id
        self.watcher = notify.Watcher(
            self.callbacks, run_id, lambda: notify.Outbox(notify.Notifier.from_env(run_id))
        )

    # --- the loop -------------------------------------------------------------------------

    def run(self, started: float) -> RunResult:
        try:
            with self._signals():
                self._loop()
        finally:  # also when the loop fails: no child outlives it, and its states are kept
            self._kill_all()
            self.guardian.close()  # what left the nodes' process groups dies now
            if self.spec.images is not None:
                self._remove_containers()
            self.waiter.close()
            self._refuse_requests()
            self.progress.close()
            self.watcher.close()  # what the callbacks still have to send
            finished = time.time()
            final = self.inc.snapshot(finished)
            self.rundir.write_states(
                self.state_dicts, finished, finished, final.root.value, self.interrupts > 0
            )
        return RunResult(
            run=self.rundir,
            graph=self.graph,
            recorded=dict(self.recorded),
            states=final.states,
            started=started,
            finished=finished,
            interrupted=self.interrupts > 0,
        )

    def _set_graph(self, graph: Graph) -> None:
        """The graph to run (again after a co.Lazy splice): the engine's state is built
        for it once, O(nodes), and then kept up to date one change at a time."""
        self.graph = graph
        self.inc = Incremental(graph, self.recorded)
        self.callbacks = cbs.Table.of(self.spec.root)  # co.callback: k8sco.reconcile.callbacks
        if getattr(self, "watcher", None) is not None:
            self.watcher.retable(self.callbacks)
        cpus = [graph.cpu[i] for i in range(len(graph.paths)) if graph.kinds[i] == engine.EXEC]
        self.min_cpu = max(min(cpus, default=1.0), 1e-3)

    def _room(self) -> int:
        """How many ready nodes the cores left could start: as many as the smallest node
        fits, and one more (the first always starts when nothing runs). Reading only these
        keeps a wake-up's cost off the width of a Parallel."""
        free = max(self.cpus - self.cpu_used, 0.0)
        return int(free / self.min_cpu + 1e-9) + 1

    def _loop(self) -> None:
        while True:
            now = time.time()
            if now >= self.requests_due:
                self._requests(now)
                self.requests_due = now + REQUEST_POLL
            ev = self.inc.evaluation(now, self._room())
            for path in ev.expired:
                self._stop(path, TIMEOUT, now)
            deadline = ev.next_deadline
            started: list[str] = []
            if self.interrupts > self.handled_interrupts:
                self._interrupt(now)
            elif not self.interrupts and ev.ready:
                started = self._start(ev.ready, now)
                deadline = self._first_deadline(started, deadline)
                if started:  # root and counts as they are now (states is live already)
                    ev = self.inc.evaluation(now, 0)
            if self.dirty and (now >= self.write_due or not self.children):
                self._write_states(now)
            self.progress.tick(ev, self.recorded, now)
            if not self.children:
                if started:  # none of them could be started: evaluate again
                    continue
                if ev.finished or self.interrupts:
                    return
                raise RunError(  # the engine offered nothing to run and nothing runs
                    f"the run is stuck: nothing running, nothing ready, root {ev.root.value}"
                )
            if self.dirty:  # wake up to write them, when no child exits before
                deadline = self.write_due if deadline is None else min(deadline, self.write_due)
            due = self.requests_due
            deadline = due if deadline is None else min(deadline, due)
            for pid in self.waiter.wait(self._timeout(deadline, now)):
                self._reap(pid)
            self._escalate(time.time())

    # --- requests (k8sco.local.control) ----------------------------------------------------

    def _requests(self, now: float) -> None:
        for req in control.pending(self.rundir.path):
            if req.action == "stop":
                # As Ctrl-C (a second one: no more grace); handled by the loop right after.
                self.interrupts += 1
                ok, message = True, f"run {self.rundir.run_id}: stopping"
            elif req.action == "rerun":
                ok, message = self._rerun(req.path, now)
            elif req.action in controls.ACTIONS:  # reset, skip, unskip, modify
                ok, message = self._live(req, now)
            else:
                ok, message = False, f"unknown request {req.action!r}: rerun or stop"
            control.answer(req, ok, message)

    def _rerun(self, node_path: str, now: float) -> tuple[bool, str]:
        run_id = self.rundir.run_id
        if self.interrupts:
            return False, f"run {run_id} is stopping; it cannot rerun nodes"
        path = "/" + node_path.strip("/") if node_path != "/" else "/"
        if path not in self.graph.index:
            return False, f"run {run_id} has no node {node_path!r}"
        failed = [
            self.graph.paths[i]
            for i in self.graph.subtree(path)
            if self.graph.kinds[i] == engine.EXEC
            and self.recorded.get(self.graph.paths[i], engine.PENDING).state.failed
        ]
        self.inc.reset(path)
        for p in failed:
            del self.recorded[p]
            self.state_dicts.drop(p)
        if failed:
            self.dirty = True
            self.write_due = now  # the page and `k8sco status` see them pending at once
            note = getattr(self.progress, "note", None)
            if note is not None:
                note(f"rerun {path}: {len(failed)} failed or killed node(s) back to pending", now)
        return True, (
            f"run {run_id}: rerunning failed and killed nodes under {path} ({len(failed)})"
        )

    def _live(self, req: control.Request, now: float) -> tuple[bool, str]:
        """A live control (k8sco.controls): the tree changed (and written, so that
        ``k8sco status`` and the UI show it) and the engine rebuilt, or, for a reset, the
        subtree's records back to pending, its running nodes stopped first."""
        if self.interrupts:
            return False, f"run {self.rundir.run_id} is stopping; it takes no controls"
        try:
            ctl = req.control()
            controls.apply(self.spec.root, ctl)  # checked first: nothing changes on error
        except PipelineError as exc:
            return False, f"run {self.rundir.run_id}: {exc}"
        if ctl.action == controls.RESET:
            _, dropped = controls.reset_records(self.graph, self.recorded, ctl.path)
            running = {c.path for c in self.children.values()}
            for path in dropped:
                if path in running:
                    self._stop(path, RESET, now)  # back to pending once it has ended
                else:
                    self._record(path, engine.PENDING, now)
        else:
            self.rundir = self.rundir.grow(self.spec.root, self.graph.exec_paths)
            self._set_graph(Graph.from_tree(self.spec.root))
            regraph = getattr(self.progress, "regraph", None)
            if regraph is not None:
                regraph(self.graph)
        self.dirty, self.write_due = True, now
        return True, f"run {self.rundir.run_id}: {ctl.describe()}"

    def _refuse_requests(self) -> None:
        """Answer what came in after the last look: the run has ended."""
        for req in control.pending(self.rundir.path):
            control.answer(req, False, f"run {self.rundir.run_id} has ended before taking it")

    def _write_states(self, now: float) -> None:
        """Rewrite states.json (atomically: a reader, or a run killed since, sees the last
        whole one); the next write waits long enough that writing, O(nodes) each time, stays
        a bounded share of the run's time instead of O(nodes) per node."""
        began = time.perf_counter()
        self.rundir.write_states(self.state_dicts, now, None)
        took = time.perf_counter() - began
        self.dirty = False
        self.write_due = now + max(STATE_WRITE_INTERVAL, took / STATE_WRITE_SHARE)

    def _first_deadline(self, started: list[str], deadline: float | None) -> float | None:
        """The earliest max_time deadline, counting the nodes just started (which the
        evaluation before they started could not know about)."""
        for path in started:
            rec = self.recorded[path]
            if rec.state is State.RUNNING and rec.started is not None:
                end = rec.started + self.graph.max_time[self.graph.index[path]]
                deadline = end if deadline is None else min(deadline, end)
        return deadline

    def _timeout(self, deadline: float | None, now: float) -> float | None:
        wake = [t for t in (c.kill_at for c in self.children.values()) if t is not None]
        if deadline is not None:
            wake.append(deadline)
        timeout = max(min(wake) - now, 0.0) if wake else None
        interval = self.progress.refresh_interval
        if interval is not None:
            timeout = interval if timeout is None else min(timeout, interval)
        # epoll takes at most INT_MAX milliseconds (~24 days): a far max_time wakes up early
        # and waits again, instead of an OverflowError.
        return None if timeout is None else min(timeout, MAX_WAIT)

    # --- starting -------------------------------------------------------------------------

    def _start(self, ready: list[str], now: float) -> list[str]:
        """Start the ready nodes that fit in the cores left (at least one always runs);
        the nodes tried, including any whose process could not be started."""
        started = []
        for path in ready:
            need = self.graph.cpu[self.graph.index[path]]
            if self.children and self.cpu_used + need > self.cpus + 1e-9:
                break  # in order, so a big node is not overtaken forever by small ones
            self._spawn(path, now)
            started.append(path)
        return started

    def _spawn(self, path: str, now: float) -> None:
        node = self.spec.root[path]
        assert isinstance(node, Exec)
        rec = engine.started(self.recorded.get(path, engine.PENDING), now)
        log = self.rundir.log_path(path)
        try:
            # Secrets beat node env, the framework's variables beat both (k8sco/secrets.py).
            framework = {
                k: self.base_env[k] for k in ("K8SCO_PIPELINE", ENV_PIPELINE, guardian.TOKEN_VAR)
            }
            framework["K8SCO_NODE_PATH"] = path
            if rec.retried:  # an attempt after a retry by callback, as on a cluster
                framework[cbs.ATTEMPT_ENV] = str(cbs.attempt(rec))
            env = process_env(self.base_env, node.get("env"), self.secrets, framework, path)
            if rec.attempts > 1:
                with open(log, "a", encoding="utf-8") as f:
                    f.write(f"[k8sco] attempt {rec.attempts}\n")
            cwd = self.spec.code_root
            if self.spec.images is None:
                # Where its Job runs: the image's copy_dir (k8sco.local.processes.node_workdir).
                cwd = processes.node_workdir(node, self.spec.code_root)
                argv = processes.node_argv(node, self.dispatcher, self.spec.code_root, cwd)
                env = processes.node_pythonpath(env, self.spec.code_root, cwd)
            else:
                argv = self._container_argv(node, path)
            proc = processes.spawn(argv, cwd, env, log)
        except (OSError, ValueError) as exc:  # ValueError: text no argv can carry
            self._cannot_start(path, rec, exc, now)
            return
        cpu = self.graph.cpu[self.graph.index[path]]
        self.children[proc.pid] = processes.Child(path=path, proc=proc, cpu=cpu)
        self.cpu_used += cpu
        self.guardian.started(proc.pid)
        self.waiter.watch(proc)
        self._record(path, rec, now)

    def _container_argv(self, node: Exec, path: str) -> list[str]:
        from k8sco.containers import run, shared  # docker loads only in docker mode

        assert self.spec.images is not None
        framework = {"K8SCO_PIPELINE": self.rundir.run_id, "K8SCO_NODE_PATH": path}
        retried = self.recorded.get(path, engine.PENDING).retried
        if retried:  # an attempt after a retry by callback
            framework[cbs.ATTEMPT_ENV] = str(retried + 1)
        # The run's token reaches the container's processes too, so that the guardian's scan
        # of /proc (the engine runs on this host) kills them when the runner is SIGKILLed.
        framework[guardian.TOKEN_VAR] = self.base_env[guardian.TOKEN_VAR]
        spec = run.node_spec(
            node,
            self.spec.images[path],
            env=framework,
            labels=self._labels(path),
        )
        if node.get("run_as_root"):  # as its Job's pod would (DESIGN.md §2)
            spec = replace(spec, user="0:0")
        # requires_docker (the engine's socket) and shared containers (one per group).
        spec = shared.for_node(spec, self.spec.root, path, self.rundir.run_id, NODE_LABEL)
        mem = self.recorded.get(path, engine.PENDING).mem
        if mem is not None:  # an attempt with more memory (co.callback.retry_with_double_mem)
            spec = replace(spec, mem=mem)
        # Secret values reach the container from the shim's environment (_spawn put them
        # there), never from its argv; they replace the node's values of the same names.
        hidden = secret_names(node.get("env"), self.secrets, framework)
        env = {k: v for k, v in spec.env.items() if k not in hidden}
        spec = replace(spec, env=env, secret_env=tuple(sorted(hidden)))
        return run.shim_argv(spec)

    def _labels(self, path: str | None = None) -> dict[str, str]:
        labels = {RUN_LABEL: self.rundir.run_id}
        return labels if path is None else {**labels, NODE_LABEL: path}

    def _cannot_start(
        self, path: str, rec: NodeState, exc: OSError | ValueError, now: float
    ) -> None:
        reason = f"cannot start: {getattr(exc, 'strerror', None) or exc}"
        try:
            with open(self.rundir.log_path(path), "a", encoding="utf-8") as f:
                f.write(f"[k8sco] {reason}\n")
        except OSError:
            pass
        retries = self.graph.retries[self.graph.index[path]]
        done = engine.exited(rec, 127, retries, now)
        self._record(path, done.with_(reason=reason), now)

    # --- stopping -------------------------------------------------------------------------

    def _reap(self, pid: int) -> None:
        child = self.children.get(pid)
        if child is None or child.proc.poll() is None:
            return
        now = time.time()
        del self.children[pid]
        self.cpu_used = max(self.cpu_used - child.cpu, 0.0)
        self.waiter.forget(pid)
        child.signal_group(signal.SIGKILL)  # what the node left behind, as a container would
        self.guardian.ended(pid)
        if self.spec.images is not None and child.proc.returncode < 0:
            # A shim killed (after its grace) cannot remove its container: no node's
            # container outlives its process, even until the end of the run.
            self._remove_containers(child.path)
        rec = self.recorded[child.path]
        i = self.graph.index[child.path]
        if child.stop_reason == TIMEOUT:
            rec = engine.timed_out(rec, self.graph.max_time[i], now)
        elif child.stop_reason == KILLED:
            rec = engine.killed(rec, now, "interrupted")
        elif child.stop_reason == RESET:
            rec = engine.PENDING
        else:
            code = child.proc.returncode
            # retries= counts within one attempt, as a Job's backoffLimit (co.callback).
            retries = self.graph.retries[i] + cbs.attempts_before(rec)
            rec = engine.exited(rec, code, retries, now)
            if lazy.is_generate(self.spec.root, child.path):
                rec = self._generated(child.path, rec, now)
        if rec.state is State.ERROR and self.callbacks:  # a retry or skip by callback
            oom = cbs.is_oom(rec, self._oom_detail(child.path))
            rec = cbs.after_failure(self.callbacks, child.path, rec, self.recorded, oom=oom)
        self._record(child.path, rec, now)

    def _oom_detail(self, path: str) -> str | None:
        """What says the node's container ran out of memory: in docker mode the shim's line
        in its log (Docker's State.OOMKilled); in process mode nothing (the exit code
        alone: a best effort)."""
        if self.spec.images is None:
            return None
        try:
            tail = self._log_tail(path)[-4096:]
        except PipelineError:
            return ""
        return "OOMKilled" if OOM_MARKER.encode() in tail else ""

    # --- co.Lazy --------------------------------------------------------------------------

    def _generated(self, path: str, rec: NodeState, now: float) -> NodeState:
        """A Generate node ended: when it succeeded, splice the tree it printed into its
        Execute node (tree, graph and run directory), before its success is recorded, so
        that no evaluation sees the Lazy node done with nothing in Execute. A tree that
        cannot be read or spliced fails the node, saying why."""
        if rec.state is not State.DONE:
            if rec.state is State.ERROR:
                problem = self._generator_problem(path)
                if problem:
                    rec = rec.with_(reason=f"{rec.reason}: {problem}")
            return rec
        lazy_path = path[: -len(lazy.GENERATE) - 1] or "/"
        try:
            generated = lazy.read_tree(self._log_tail(path))
            root = lazy.splice(self.spec.root, lazy_path, generated)
            graph = Graph.from_tree(root)
            images = self.spec.images
            if images is not None:  # docker mode: images are built before the run
                images = lazy.generated_images(images, root, graph, lazy_path)
            self.rundir = self.rundir.grow(root, graph.exec_paths)
        except PipelineError as exc:
            reason = " ".join(str(exc).split())
            self._note(path, reason)
            return rec.with_(state=State.ERROR, reason=reason)
        self.spec = replace(self.spec, root=root, images=images)
        self._set_graph(graph)  # before the generator's success is recorded in it
        regraph = getattr(self.progress, "regraph", None)  # a live tree redraws the new one
        if regraph is not None:
            regraph(graph)
        return rec

    def _log_tail(self, path: str) -> bytes:
        try:
            with open(self.rundir.log_path(path), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(f.tell() - lazy.TAIL_BYTES, 0))
                return f.read()
        except OSError as exc:
            raise PipelineError(f"cannot read the Lazy generator's output: {exc}") from None

    def _generator_problem(self, path: str) -> str | None:
        """The dispatcher's one-line complaint about what a generator returned, if any."""
        try:
            tail = self._log_tail(path)[-8192:].decode("utf-8", "replace")
        except PipelineError:
            return None
        found = None
        for line in tail.splitlines():  # `k8sco call`'s, or co.main's for a shell command
            for prefix in ("k8sco call: ", "k8sco: "):
                if line.startswith(prefix + "the Lazy generator"):
                    found = line[len(prefix) :]
        return found

    def _note(self, path: str, text: str) -> None:
        try:
            with open(self.rundir.log_path(path), "a", encoding="utf-8") as f:
                f.write(f"[k8sco] {text}\n")
        except OSError:
            pass

    def _stop(self, path: str, reason: str, now: float) -> None:
        for child in self.children.values():
            if child.path == path and child.stop_reason is None:
                child.stop_reason = reason
                child.kill_at = now + GRACE
                child.signal_group(signal.SIGTERM)

    def _interrupt(self, now: float) -> None:
        self.handled_interrupts = self.interrupts
        for child in self.children.values():
            if child.stop_reason is None:
                child.stop_reason = KILLED
                child.kill_at = now + GRACE
                child.signal_group(signal.SIGTERM)
            elif self.interrupts > 1:  # a second Ctrl-C: no more grace
                child.kill_at = now

    def _escalate(self, now: float) -> None:
        for child in self.children.values():
            if child.kill_at is not None and now >= child.kill_at:
                child.signal_group(signal.SIGKILL)
                child.kill_at = None

    def _kill_all(self) -> None:
        """On the way out for any reason: no child outlives the runner."""
        for pid, child in list(self.children.items()):
            child.signal_group(signal.SIGKILL)
            child.proc.wait()
            rec = engine.killed(self.recorded[child.path], time.time(), "runner stopped")
            self.recorded[child.path] = rec
            delta = self.inc.update(child.path, rec)
            self.watcher.changed(delta.states, child.path, rec)
            self.state_dicts.set(child.path, rec.to_dict())
            del self.children[pid]

    def _remove_containers(self, path: str | None = None) -> None:
        """Remove (killing) the containers of the run, or of one node: a shim killed with
        SIGKILL cannot remove its own."""
        from k8sco.containers import run

        try:
            run.remove_containers(self._labels(path))
        except Exception as exc:  # the run's result stands; leftovers are only untidy
            sys.stderr.write(f"k8sco: could not remove the run's containers: {exc}\n")

    def _record(self, path: str, rec: NodeState, now: float) -> None:
        self.recorded[path] = rec
        delta = self.inc.update(path, rec)
        if self.watcher.paths:  # co.callback notifications (k8sco.notify)
            self.watcher.changed(delta.states, path, rec)
        self.state_dicts.set(path, rec.to_dict())
        self.dirty = True
        self.progress.event(path, rec, now)

    @contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            self.interrupts += 1
            self.waiter.wake()

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
