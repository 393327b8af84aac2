"""A local run on disk: ``.k8sco/runs/<run id>/`` in the directory ``k8sco run`` was started in.

::

    .k8sco/runs/
        latest -> 20261126-235000-1a2b          symlink to the newest run
        20261126-235000-1a2b/
            run.json      the pipeline file, function, arguments, log file per node
            tree.json     the serialized tree (Node.serialize)
            states.json   the recorded state of every Exec node, rewritten as they change
            logs/<name>.log   stdout and stderr of one Exec node
            requests/<id>.json        a request to the runner (k8sco.local.control)
            requests/done/<id>.json   and its answer

Every write goes to a temporary file that then replaces the real one (``os.replace``), so a
reader, or a runner that died half-way, never sees a torn file. Files are not fsynced: that
guards against a crash of the machine, not of the runner, and would cost a disk flush per
node state change.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k8sco.engine import NodeState
from k8sco.errors import PipelineError, RunDirError, RunError, UsageError
from k8sco.tree import Node

RUNS_DIR = Path(".k8sco") / "runs"
LATEST = "latest"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{4}$")


def new_run_id(now: float) -> str:
    """A run id that sorts by start time: ``20261126-235000-1a2b`` (local time)."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + "-" + secrets.token_hex(2)


def log_names(paths: Iterable[str], taken: Iterable[str] = ()) -> dict[str, str]:
    """A distinct, readable file name for each node path: ``/build/test a`` -> ``build.test_a``.

    Names that would collide after the unsafe characters are replaced (or with the names
    ``taken`` already, lower case without ``.log``) get a short hash of the path, so two
    paths never share a log file.
    """
    out: dict[str, str] = {}
    used: set[str] = set(taken)
    for path in paths:
        base = _UNSAFE.sub("_", ".".join(p for p in path.split("/") if p)).strip(".") or "root"
        base = base[:80]
        name = base
        if name.lower() in used:
            name = f"{base}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"
        used.add(name.lower())
        out[path] = name + ".log"
    return out


class EncodedStates:
    """The ``nodes`` of states.json, each record kept as JSON text: the runner rewrites
    the file as nodes change (in batches: ``runner._Runner._write_states``), and encoding
    only the records that changed keeps each rewrite to joining the texts."""

    def __init__(self) -> None:
        self._parts: dict[str, str] = {}

    def set(self, path: str, record: Mapping[str, object]) -> None:
        self._parts[path] = json.dumps(path) + ":" + json.dumps(record, separators=(",", ":"))

    def drop(self, path: str) -> None:
        """No record for ``path`` any more (a node put back to pending by a rerun)."""
        self._parts.pop(path, None)

    def json(self) -> str:
        return "{" + ",".join(self._parts.values()) + "}"


@dataclass(frozen=True)
class RunDir:
    """One run's directory; ``meta`` is run.json's content."""

    path: Path
    meta: Mapping[str, Any]

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def logs(self) -> Mapping[str, str]:
        """The log file name of each Exec node path."""
        logs: Mapping[str, str] = self.meta["logs"]
        return logs

    def log_path(self, node_path: str) -> Path:
        name = self.logs.get(node_path)
        if name is None or "/" in name or name.startswith("."):
            raise _damaged(self.run_id, self.path / "run.json", f"has no log file for {node_path}")
        return self.path / "logs" / name

    # --- writing ------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        base: Path,
        root: Node,
        exec_paths: list[str],
        meta: Mapping[str, Any],
        now: float,
    ) -> RunDir:
        """A new run directory under ``base`` (``.k8sco/runs``), made the latest run.

        Owner-only (0700): logs and the tree's env may hold secrets. Everything is written
        before the run is made the latest, and a failure on the way removes the directory,
        so no half-written run is left for ``status`` and ``logs`` to stumble on."""
        runs = Path(base)
        try:  # may fail: before anything is on disk
            tree_text = root.serialize()
            tree_text.encode("utf-8")
        except (UnicodeEncodeError, RecursionError, ValueError) as exc:
            raise PipelineError(f"the tree cannot be written: {exc}") from None
        try:
            runs.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot create the run directory {runs}: {exc}") from exc
        while True:  # two runs started in the same second get different random suffixes
            run_id = new_run_id(now)
            path = runs / run_id
            try:
                path.mkdir(mode=0o700)
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise RunError(f"cannot create the run directory {path}: {exc}") from exc
        try:
            os.chmod(path, 0o700)  # whatever the umask
            (path / "logs").mkdir(mode=0o700)
            full = {**meta, "run_id": run_id, "started": now, "logs": log_names(exec_paths)}
            run = cls(path=path, meta=full)
            _write_atomic(path / "tree.json", tree_text)
            _write_atomic(path / "run.json", json.dumps(full, indent=2))
            run.write_states({}, now=now, finished=None)
        except BaseException as exc:
            shutil.rmtree(path, ignore_errors=True)
            if isinstance(exc, OSError):
                raise RunError(f"cannot create the run directory {path}: {exc}") from exc
            raise
        _point_latest(runs, run_id)
        return run

    def grow(self, root: Node, exec_paths: Iterable[str]) -> RunDir:
        """The run after a co.Lazy node has generated nodes: ``root`` is the tree with them,
        ``exec_paths`` its Exec nodes. The log names of the nodes already there stay; the
        new ones get theirs, and run.json is written before tree.json, so a reader that sees
        a generated node in the tree also finds its log."""
        try:
            tree_text = root.serialize()
        except (UnicodeEncodeError, RecursionError, ValueError) as exc:
            raise PipelineError(f"the generated tree cannot be written: {exc}") from None
        logs = dict(self.logs)
        fresh = [p for p in exec_paths if p not in logs]
        if fresh:
            used = {name.lower()[: -len(".log")] for name in logs.values()}
            logs.update(log_names(fresh, used))
        meta = {**self.meta, "logs": logs}
        _write_atomic(self.path / "run.json", json.dumps(meta, indent=2))
        _write_atomic(self.path / "tree.json", tree_text)
        return RunDir(path=self.path, meta=meta)

    def write_states(
        self,
        nodes: Mapping[str, Mapping[str, object]] | EncodedStates,
        now: float,
        finished: float | None,
        root_state: str | None = None,
        interrupted: bool = False,
    ) -> None:
        """Replace states.json; ``nodes`` maps Exec paths to ``NodeState.to_dict()``, or is
        an :class:`EncodedStates` that holds them as JSON already."""
        data = {
            "updated": now,
            "finished": finished,
            "root": root_state,
            "interrupted": interrupted,
            "runner_pid": os.getpid(),
        }
        if isinstance(nodes, EncodedStates):
            head = json.dumps(data, separators=(",", ":"))
            text = head[:-1] + ',"nodes":' + nodes.json() + "}"
        else:
            text = json.dumps({**data, "nodes": nodes}, separators=(",", ":"))
        _write_atomic(self.path / "states.json", text)

    # --- reading ------------------------------------------------------------------------

    @classmethod
    def open(cls, base: Path, run_id: str | None = None) -> RunDir:
        """The run ``run_id``, or the latest run, under ``base``; UsageError if there is none,
        RunDirError if it is incomplete or damaged."""
        runs = Path(base)
        if run_id is None:
            run_id = latest_id(runs)
            if run_id is None:
                raise UsageError(
                    f"no runs in {runs}/ (start one with `k8sco run FILE.py`, from this directory)"
                )
        if not run_id or "/" in run_id or os.sep in run_id or run_id.startswith("."):
            raise UsageError(
                f"--run {run_id!r} is not a run id (they look like 20261126-235000-1a2b)"
            )
        path = runs / run_id
        if not path.is_dir():
            known = list_runs(runs)[-5:]
            raise UsageError(
                f"no run {run_id!r} in {runs}/; recent runs: " + (", ".join(known) or "none")
            )
        meta = _read_json(path / "run.json", run_id)
        logs = meta.get("logs") if isinstance(meta, dict) else None
        if not (
            isinstance(logs, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in logs.items())
        ):
            raise _damaged(run_id, path / "run.json", "it is not what k8sco wrote")
        return cls(path=path, meta=meta)

    def tree(self) -> Node:
        file = self.path / "tree.json"
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, ValueError) as exc:
            raise _damaged(self.run_id, file, _reason(exc)) from None
        try:
            return Node.deserialize(text)
        except (UsageError, KeyError, TypeError, AttributeError) as exc:
            raise _damaged(self.run_id, file, str(exc)) from None

    def states(self) -> tuple[dict[str, NodeState], dict[str, Any]]:
        """The recorded Exec states and the rest of states.json (updated, finished, ...)."""
        file = self.path / "states.json"
        data = _read_json(file, self.run_id)
        nodes_data = data.pop("nodes", {}) if isinstance(data, dict) else None
        if not isinstance(nodes_data, dict):
            raise _damaged(self.run_id, file, "it is not what k8sco wrote")
        nodes: dict[str, NodeState] = {}
        for path, rec in nodes_data.items():
            if not (isinstance(rec, dict) and _valid_record(rec)):
                raise _damaged(self.run_id, file, f"the record of {path!r} is not valid")
            try:
                nodes[path] = NodeState.from_dict(rec)
            except (ValueError, TypeError) as exc:
                raise _damaged(self.run_id, file, f"the record of {path!r}: {exc}") from None
        for key in ("updated", "finished"):
            if not isinstance(data.get(key), (int, float, type(None))):
                raise _damaged(self.run_id, file, f"{key!r} is not a time")
        return nodes, data


_TIMES = ("started", "finished")


def _valid_record(rec: Mapping[str, Any]) -> bool:
    numbers_ok = all(
        rec.get(k) is None or (isinstance(rec[k], (int, float)) and not isinstance(rec[k], bool))
        for k in _TIMES
    )
    ints_ok = all(
        rec.get(k) is None or (isinstance(rec[k], int) and not isinstance(rec[k], bool))
        for k in ("attempts", "exit_code")
    )
    return numbers_ok and ints_ok and isinstance(rec.get("reason"), (str, type(None)))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "it is missing"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return " ".join(str(exc).split())


def _damaged(run_id: str, file: Path, why: str) -> RunDirError:
    return RunDirError(
        f"run {run_id} is incomplete or damaged: {file} {why} (it was interrupted while "
        "being created, or edited or deleted since; start a new run, or pick another with --run)"
    )


def _read_json(file: Path, run_id: str) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _damaged(run_id, file, _reason(exc)) from None


def latest_id(runs: Path) -> str | None:
    try:
        target = os.readlink(runs / LATEST)
    except OSError:
        known = list_runs(runs)
        return known[-1] if known else None
    return os.path.basename(target)


def list_runs(runs: Path) -> list[str]:
    """Run ids under ``runs``, oldest first."""
    try:
        return sorted(p.name for p in runs.iterdir() if _RUN_ID.match(p.name) and p.is_dir())
    except OSError:
        return []


def _point_latest(runs: Path, run_id: str) -> None:
    tmp = runs / f".{LATEST}.{os.getpid()}"
    try:
        tmp.unlink(missing_ok=True)
        os.symlink(run_id, tmp)
        os.replace(tmp, runs / LATEST)
    except OSError:  # no symlinks here: latest_id falls back to the newest directory
        tmp.unlink(missing_ok=True)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise RunError(f"cannot write {path}: {exc}") from exc
