"""Where the page's pipelines come from: the local runs of a directory and the Pipelines of
a cluster. Each source lists its pipelines, opens one (its tree, once), reads its states,
waits for them to change, streams a node's log and carries out the controls.

A pipeline is named by a reference string: ``local:<run id>`` or ``kube:<namespace>/<name>``.
Controls go through the code the CLI runs: :mod:`k8sco.kube.pipelines` for a cluster,
:mod:`k8sco.local.control` for a local run (rerun and stop are requests its runner takes
through the run directory, as from ``k8sco rerun`` and ``k8sco stop``; delete removes the
run's directory, stopping a run in progress first, as ``k8sco delete --run``).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k8sco import controls as live_controls
from k8sco.engine import EXEC, Graph, NodeState, State, evaluate
from k8sco.errors import ClusterError, Gone, RunError, UsageError
from k8sco.local.processes import alive
from k8sco.local.rundir import RunDir, list_runs
from k8sco.tree import Node
from k8sco.ui import views

POLL = 0.25  # seconds between looks at a local run's files
LIST_POLL = 2.0  # seconds between listings of a cluster's Pipelines
MAX_RUNS = 200  # local runs listed, newest first
LOG_CHUNK = 64 * 1024
LOG_TAIL = 2 * 1024 * 1024  # bytes of a node's log the page is sent at most


@dataclass(frozen=True)
class Opened:
    """A pipeline's tree, compiled once (it never changes during a run)."""

    ref: str
    root: Node
    graph: Graph
    tree: dict[str, Any]  # views.tree_view


@dataclass(frozen=True)
class Snapshot:
    """The recorded states of a pipeline at one moment, and whether it still changes."""

    version: str
    recorded: dict[str, NodeState]
    live: bool  # still running (or may run again)
    info: dict[str, Any]

    def view(self, opened: Opened, now: float) -> dict[str, Any]:
        data = views.states_view(opened.graph, self.recorded, now)
        data.update(version=self.version, live=self.live)
        data.update((k, v) for k, v in self.info.items() if k != "runner_pid")
        return data


def check_path(opened: Opened, path: str) -> str:
    norm = "/" + path.strip("/") if path != "/" else "/"
    if norm not in opened.graph.index:
        raise UsageError(f"{opened.ref} has no node {path!r}")
    return norm


# --- local runs -----------------------------------------------------------------------------


class LocalRuns:
    """The runs under ``base`` (``.k8sco/runs`` of the directory ``k8sco ui`` started in)."""

    controls = ("rerun", "stop", "delete", *live_controls.ACTIONS)

    def __init__(self, base: Path) -> None:
        self.base = Path(base)
        self._opened: dict[str, tuple[int, Opened]] = {}  # by run id, with tree.json's mtime
        self._summaries: dict[str, tuple[int, dict[str, Any]]] = {}
        self._snapshots: dict[str, Snapshot] = {}
        self._lock = threading.Lock()

    def _run(self, run_id: str) -> RunDir:
        if run_id not in list_runs(self.base):
            raise UsageError(f"no local run {run_id!r} in {self.base}/")
        return RunDir.open(self.base, run_id)

    def signature(self) -> tuple[tuple[str, int], ...]:
        """Changes whenever a run starts, or any run's states change."""
        out = []
        for run_id in list_runs(self.base)[-MAX_RUNS:]:
            out.append((run_id, _mtime(self.base / run_id / "states.json")))
        return tuple(out)

    def summaries(self, now: float) -> list[dict[str, Any]]:
        out = []
        for run_id, mtime in reversed(self.signature()):
            cached = self._summaries.get(run_id)
            if cached is None or cached[0] != mtime:
                try:
                    cached = (mtime, self._summary(run_id, now))
                except (UsageError, RunError) as exc:
                    cached = (mtime, {"ref": f"local:{run_id}", "name": run_id, "error": str(exc)})
                self._summaries[run_id] = cached
            out.append(cached[1])
        return out

    def _summary(self, run_id: str, now: float) -> dict[str, Any]:
        run = self._run(run_id)
        opened = self.open(run_id)
        snap = self.snapshot(run_id)
        ev = evaluate(opened.graph, snap.recorded, now)
        counts = ev.counts(opened.graph)
        total = sum(counts.values())
        finished = sum(counts[s.value] for s in State if s.finished)  # as a Pipeline's status
        state = ev.root.value
        if snap.info.get("interrupted"):
            state = "interrupted"
        elif snap.info.get("finished") is None and not snap.live:
            state = "abandoned"
        from k8sco.cli.output import target_line

        return {
            "ref": f"local:{run_id}",
            "name": target_line(run.meta),
            "id": run_id,
            "phase": state,
            "progress": f"{finished}/{total}",
            "counts": counts,
            "created": run.meta.get("started"),
            "where": "local",
            "live": snap.live,
        }

    def open(self, run_id: str) -> Opened:
        # Read again when tree.json is replaced: a live control (skip, modify) or a co.Lazy
        # node's generated nodes change the tree of a run in progress.
        version = _mtime(self._run(run_id).path / "tree.json")
        with self._lock:
            found = self._opened.get(run_id)
        opened = found[1] if found is not None and found[0] == version else None
        if opened is None:
            root = self._run(run_id).tree()
            graph = Graph.from_tree(root)
            opened = Opened(f"local:{run_id}", root, graph, views.tree_view(graph))
            with self._lock:
                self._opened[run_id] = (version, opened)
        return opened

    def snapshot(self, run_id: str, recent: bool = False) -> Snapshot:
        """The run's states; with ``recent``, the last ones read when there are any (a
        node's detail, while the page's own stream keeps them fresh)."""
        run = self._run(run_id)
        version = str(_mtime(run.path / "states.json"))
        with self._lock:
            cached = self._snapshots.get(run_id)
        if cached is not None and (recent or cached.version == version):
            # Every open page and node detail reads the same file: parse it once per change.
            # Liveness is looked at again: a runner killed with SIGKILL writes nothing more.
            live = cached.info.get("finished") is None and alive(cached.info.get("runner_pid"))
            return Snapshot(version, cached.recorded, live, cached.info)
        recorded, info = run.states()
        live = info.get("finished") is None and alive(info.get("runner_pid"))
        shown = {k: info.get(k) for k in ("finished", "interrupted", "updated", "runner_pid")}
        snap = Snapshot(version, recorded, live, shown)
        with self._lock:
            self._snapshots[run_id] = snap
        return snap

    def changes(self, run_id: str, stop: threading.Event) -> Iterator[Snapshot | None]:
        """The snapshot at once, then each time states.json is replaced; None every second
        without a change (a heartbeat for the stream)."""
        last = ""
        quiet = 0.0
        while not stop.is_set():
            version = str(_mtime(self._run(run_id).path / "states.json"))
            if version != last:
                snap = self.snapshot(run_id)
                last = snap.version
                quiet = 0.0
                yield snap
            elif quiet >= 1.0:
                quiet = 0.0
                yield None
            stop.wait(POLL)
            quiet += POLL

    def log(self, run_id: str, path: str, stop: threading.Event) -> Iterator[str]:
        """The node's log, then what it appends while the node runs."""
        opened = self.open(run_id)
        path = check_path(opened, path)
        if opened.graph.kinds[opened.graph.index[path]] != EXEC:
            raise UsageError(f"{path} is not an Exec node: it has no log of its own")
        file = self._run(run_id).log_path(path)
        offset = max(_size(file) - LOG_TAIL, 0)
        if offset:  # a page holds the end of a huge log; the terminal has it all
            yield f"[k8sco: the first {offset} bytes are left out; k8sco logs {path} has them]\n"
            with open(file, "rb") as f:  # from the start of a line
                f.seek(offset)
                offset += len(f.readline())
        decoder = _Utf8()
        while not stop.is_set():
            try:
                with open(file, "rb") as f:
                    f.seek(offset)
                    data = f.read(LOG_CHUNK)
            except FileNotFoundError:
                data = b""
            if data:
                offset += len(data)
                yield decoder.feed(data)
                continue
            snap = self.snapshot(run_id)
            rec = snap.recorded.get(path, NodeState())
            if not snap.live or rec.state.finished:
                # One more read: what the node wrote between the last read and its end.
                if _size(file) == offset:
                    return
                continue
            stop.wait(POLL)

    def control(
        self, run_id: str, action: str, path: str, extra: Mapping[str, Any] | None = None
    ) -> str:
        from k8sco.local import control

        run = self._run(run_id)
        if action in live_controls.ACTIONS:  # as k8sco reset/skip/unskip/modify --run
            return control.live(control.running_run(self.base, run_id), _live(action, path, extra))
        if action == "rerun":
            return control.rerun(control.running_run(self.base, run_id), path)
        if action == "stop":
            return control.stop(control.running_run(self.base, run_id))
        if action == "delete":
            message = control.delete(self.base, run.run_id)
            with self._lock:
                self._opened.pop(run_id, None)
                self._snapshots.pop(run_id, None)
                self._summaries.pop(run_id, None)
            return message
        raise UsageError(f"unknown control {action!r}: {', '.join(self.controls)}")


def _live(action: str, path: str, extra: Mapping[str, Any] | None) -> live_controls.Control:
    """A live control from a request's body: modify's ``set`` (an object, or NAME=VALUE
    lines as the page's form sends them) and ``command``."""
    extra = extra or {}
    values = extra.get("set") or {}
    if isinstance(values, str):
        values = live_controls.parse_sets([line for line in values.splitlines() if line.strip()])
    if not isinstance(values, Mapping):
        raise UsageError("modify: 'set' is an object of parameter values")
    command = extra.get("command")
    return live_controls.make(action, path, values, str(command) if command else None)


def _mtime(file: Path) -> int:
    try:
        st = file.stat()
    except OSError:
        return 0
    return st.st_mtime_ns ^ st.st_size << 1 ^ st.st_ino << 2


def _size(file: Path) -> int:
    try:
        return file.stat().st_size
    except OSError:
        return 0


class _Utf8:
    """Decodes a byte stream whose chunks may end inside a character."""

    def __init__(self) -> None:
        import codecs

        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        return str(self._dec.decode(data))


# --- a cluster ------------------------------------------------------------------------------


class ClusterPipelines:
    """The Pipelines of ``namespaces`` (None: every namespace) in the cluster ``cluster``
    (a :class:`k8sco.kube.client.Cluster`, with the user's own credentials)."""

    controls = ("rerun", "stop", "delete", *live_controls.ACTIONS)

    def __init__(self, cluster: Any, namespaces: Sequence[str] | None) -> None:
        self.cluster = cluster
        self.namespaces = list(namespaces) if namespaces is not None else None
        self._opened: dict[tuple[str, str, str, str], Opened] = {}
        self._lock = threading.Lock()

    def _in(self, namespace: str) -> Any:
        if self.namespaces is not None and namespace not in self.namespaces:
            raise UsageError(f"namespace {namespace!r} is not one this page shows")
        scoped = copy.copy(self.cluster)
        scoped.namespace = namespace
        return scoped

    def _objects(self) -> list[dict[str, Any]]:
        from k8sco.kube import pipelines

        if self.namespaces is None:
            return list(pipelines.listing(self.cluster, everywhere=True).get("items") or [])
        items: list[dict[str, Any]] = []
        for ns in self.namespaces:
            items.extend(pipelines.listing(self._in(ns)).get("items") or [])
        return items

    def summaries(self, now: float) -> list[dict[str, Any]]:
        return summarize(self._objects(), self.cluster.host)

    def list_watch(self) -> ListWatch:
        """The page's Pipelines, kept current by watches (close it when done)."""
        return ListWatch(self)

    def open(self, ref: str) -> tuple[Opened, dict[str, Any]]:
        from k8sco.kube import pipelines
        from k8sco.kube.overflow import load_tree
        from k8sco.render.names import job_name
        from k8sco.sequence import job_path

        ns, name = split_kube(ref)
        cluster = self._in(ns)
        obj = pipelines.get(cluster, name)
        meta = obj.get("metadata") or {}
        # A new generation (spec.controls: a skip, a modification) may change the tree.
        key = (ns, name, str(meta.get("uid")), str(meta.get("generation")))
        with self._lock:
            opened = self._opened.get(key)
        if opened is None:
            root = load_tree(cluster, obj)
            graph = Graph.from_tree(root)
            # A shared container's nodes show their group's Job (k8sco/sequence.py).
            tree = views.tree_view(graph, lambda p: job_name(name, job_path(root, p)))
            opened = Opened(ref, root, graph, tree)
            with self._lock:
                for old in [k for k in self._opened if k[:2] == key[:2]]:
                    del self._opened[old]  # an earlier generation's
                self._opened[key] = opened
        return opened, obj

    def snapshot(
        self, ref: str, obj: dict[str, Any] | None = None, recent: bool = False
    ) -> Snapshot:
        from k8sco.kube.overflow import read_status
        from k8sco.render.pipeline import recorded_states

        ns, _ = split_kube(ref)
        cluster = self._in(ns)
        opened, fresh = self.open(ref)
        obj = obj or fresh
        # Node records too many for the Pipeline live in its status ConfigMaps, read as
        # `k8sco status` reads them.
        status = read_status(cluster, obj).get("status") or {}
        recorded = recorded_states(opened.graph, status)
        meta = obj.get("metadata") or {}
        return Snapshot(
            str(meta.get("resourceVersion", "")),
            recorded,
            status.get("phase") not in _FINISHED,
            {"phase": status.get("phase", "Pending"), "message": status.get("message")},
        )

    def changes(self, ref: str, stop: threading.Event) -> Iterator[Snapshot | None]:
        """The snapshot at once, then one per change the Pipeline's watch delivers."""
        from k8sco.kube.follow import PipelineWatch

        ns, name = split_kube(ref)
        watch = PipelineWatch(self._in(ns), name)
        try:
            while not stop.is_set():
                obj = watch.next(timeout=1.0)
                yield None if obj is None else self.snapshot(ref, obj)
        finally:
            watch.close()

    def log(self, ref: str, path: str, stop: threading.Event) -> Iterator[str]:
        """The output of the node's newest pod, followed until the pod ends."""
        from k8sco.kube import pipelines
        from k8sco.kube.overflow import read_status
        from k8sco.reconcile.callbacks import attempt_name
        from k8sco.render.pipeline import recorded_states
        from k8sco.sequence import job_path, member_index, member_lines

        ns, name = split_kube(ref)
        cluster = self._in(ns)
        opened, obj = self.open(ref)
        path = check_path(opened, path)
        if opened.graph.kinds[opened.graph.index[path]] != EXEC:
            raise UsageError(f"{path} is not an Exec node: it has no log of its own")
        # The Job of the node's current attempt (co.callback retries), as `k8sco logs` reads.
        status = read_status(cluster, obj).get("status") or {}
        retried = recorded_states(opened.graph, status).get(path, NodeState()).retried
        job = attempt_name(name, job_path(opened.root, path), retried)
        index = member_index(opened.root, path)  # in a shared container: its part of the log
        while not stop.is_set():
            pods = pipelines.pods_of_job(cluster, job)
            if pods:
                pod = pods[0]
                why = pipelines.not_started(pod)
                if why is None:
                    lines = pipelines.logs(cluster, pod["metadata"]["name"], follow=True)
                    for line in lines if index is None else member_lines(lines, index):
                        if stop.is_set():
                            return
                        yield line.decode("utf-8", errors="replace") + "\n"
                    return
                yield f"[k8sco: {why}]\n"
            elif not self.snapshot(ref).live:
                yield "[k8sco: this node has no pod (it never started, or its pod is gone)]\n"
                return
            stop.wait(1.0)

    def control(
        self, ref: str, action: str, path: str, extra: Mapping[str, Any] | None = None
    ) -> str:
        from k8sco.kube import pipelines

        ns, name = split_kube(ref)
        cluster = self._in(ns)
        if action in live_controls.ACTIONS:  # as k8sco reset/skip/unskip/modify PIPELINE
            ctl = _live(action, path, extra)
            pipelines.control(cluster, name, ctl)
            return f"pipeline/{name}: {ctl.describe()}"
        if action == "rerun":
            opened, _ = self.open(ref)
            path = check_path(opened, path)
            pipelines.rerun(cluster, name, path)
            return f"pipeline/{name}: rerunning failed and killed nodes under {path}"
        if action == "stop":
            pipelines.stop(cluster, name)
            return f"pipeline/{name}: stopping"
        if action == "delete":
            pipelines.delete(cluster, name)
            return f"pipeline/{name} deleted"
        raise UsageError(f"unknown control {action!r}: {', '.join(self.controls)}")


_FINISHED = ("Succeeded", "Failed", "Killed", "Skipped")
WATCH_SECONDS = 60  # server-side end of one watch request; the next one resumes from there


def summarize(objects: Sequence[dict[str, Any]], host: str) -> list[dict[str, Any]]:
    """The list's rows for Pipeline objects, newest first."""
    from k8sco.render.pipeline import parse_timestamp

    out = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        status = obj.get("status") or {}
        stamp = meta.get("creationTimestamp")
        out.append(
            {
                "ref": f"kube:{meta.get('namespace')}/{meta.get('name')}",
                "name": meta.get("name"),
                "id": meta.get("name"),
                "phase": status.get("phase", "Pending"),
                "progress": status.get("progress", ""),
                "counts": status.get("counts") or {},
                "created": parse_timestamp(stamp) if stamp else None,
                "where": f"{meta.get('namespace')} @ {host}",
                "live": status.get("phase") not in _FINISHED,
            }
        )
    out.sort(key=lambda s: s["created"] or 0, reverse=True)
    return out


class ListWatch:
    """Every Pipeline a page lists: a list, then a watch from its resourceVersion, per
    namespace (one for all with ``-A``), each in a daemon thread; listed again when the
    watch's history expired (410 Gone) or broke. :attr:`changed` is set on every change."""

    def __init__(self, source: ClusterPipelines) -> None:
        self.source = source
        self.changed = threading.Event()
        self.stop = threading.Event()
        self.error: str | None = None
        self._objects: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()
        scopes: list[str | None] = [None] if source.namespaces is None else list(source.namespaces)
        for scope in scopes:
            threading.Thread(
                target=self._run, args=(scope,), daemon=True, name=f"ui-list:{scope or '*'}"
            ).start()

    def rows(self) -> list[dict[str, Any]]:
        with self._lock:
            objects = list(self._objects.values())
        return summarize(objects, self.source.cluster.host)

    def close(self) -> None:
        self.stop.set()

    def _key(self, obj: dict[str, Any]) -> tuple[str, str]:
        meta = obj.get("metadata") or {}
        return str(meta.get("namespace")), str(meta.get("name"))

    def _run(self, scope: str | None) -> None:
        from k8sco.kube import pipelines

        cluster = self.source.cluster if scope is None else self.source._in(scope)
        everywhere = scope is None
        failures = 0
        while not self.stop.is_set():
            try:
                listing = pipelines.listing(cluster, everywhere)
                with self._lock:
                    for key in [k for k in self._objects if everywhere or k[0] == scope]:
                        del self._objects[key]
                    for obj in listing.get("items") or []:
                        self._objects[self._key(obj)] = obj
                self.error = None
                self.changed.set()
                rv = str((listing.get("metadata") or {}).get("resourceVersion", ""))
                while not self.stop.is_set():
                    for event in pipelines.watch(cluster, rv, everywhere, WATCH_SECONDS):
                        obj = event.get("object") or {}
                        rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                        kind = event.get("type")
                        with self._lock:
                            if kind in ("ADDED", "MODIFIED"):
                                self._objects[self._key(obj)] = obj
                            elif kind == "DELETED":
                                self._objects.pop(self._key(obj), None)
                        if kind != "BOOKMARK":
                            self.changed.set()
                        if self.stop.is_set():
                            return
                    failures = 0
            except Gone:
                continue  # list again
            except ClusterError as exc:
                self.error = str(exc)
                self.changed.set()
                failures += 1
                self.stop.wait(min(0.5 * 2**failures, 10.0))


def split_kube(ref: str) -> tuple[str, str]:
    ns, _, name = ref.partition(":")[2].partition("/")
    if not ns or not name:
        raise UsageError(f"{ref!r} is not a pipeline reference (kube:NAMESPACE/NAME)")
    return ns, name


def now() -> float:
    return time.time()
