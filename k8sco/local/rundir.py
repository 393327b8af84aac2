"""A local run on disk: ``.k8sco/runs/<run id>/`` in the directory ``k8sco run`` was started in.

::

    .k8sco/runs/
        latest -> 20261126-235000-1a2b          symlink to the newest run
        20261126-235000-1a2b/
            run.json      the pipeline file, function, arguments, log file per node
            tree.json     the serialized tree (Node.serialize)
            states.json   the recorded state of every Exec node, rewritten after each change
            logs/<name>.log   stdout and stderr of one Exec node

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
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k8sco.engine import NodeState
from k8sco.errors import RunError, UsageError
from k8sco.tree import Node

RUNS_DIR = Path(".k8sco") / "runs"
LATEST = "latest"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{4}$")


def new_run_id(now: float) -> str:
    """A run id that sorts by start time: ``20261126-235000-1a2b`` (local time)."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + "-" + secrets.token_hex(2)


def log_names(paths: Iterable[str]) -> dict[str, str]:
    """A distinct, readable file name for each node path: ``/build/test a`` -> ``build.test_a``.

    Names that would collide after the unsafe characters are replaced get a short hash of
    the path, so two paths never share a log file.
    """
    out: dict[str, str] = {}
    used: set[str] = set()
    for path in paths:
        base = _UNSAFE.sub("_", ".".join(p for p in path.split("/") if p)).strip(".") or "root"
        base = base[:80]
        name = base
        if name.lower() in used:
            name = f"{base}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"
        used.add(name.lower())
        out[path] = name + ".log"
    return out


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
        return self.path / "logs" / self.logs[node_path]

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
        """A new run directory under ``base`` (``.k8sco/runs``), made the latest run."""
        runs = Path(base)
        while True:  # two runs started in the same second get different random suffixes
            run_id = new_run_id(now)
            path = runs / run_id
            try:
                (path / "logs").mkdir(parents=True, exist_ok=False)
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise RunError(f"cannot create the run directory {path}: {exc}") from exc
        full = {**meta, "run_id": run_id, "started": now, "logs": log_names(exec_paths)}
        run = cls(path=path, meta=full)
        _write_atomic(path / "tree.json", root.serialize())
        _write_atomic(path / "run.json", json.dumps(full, indent=2))
        run.write_states({}, now=now, finished=None)
        _point_latest(runs, run_id)
        return run

    def write_states(
        self,
        nodes: Mapping[str, Mapping[str, object]],
        now: float,
        finished: float | None,
        root_state: str | None = None,
        interrupted: bool = False,
    ) -> None:
        """Replace states.json; ``nodes`` maps Exec paths to ``NodeState.to_dict()``."""
        data = {
            "updated": now,
            "finished": finished,
            "root": root_state,
            "interrupted": interrupted,
            "runner_pid": os.getpid(),
            "nodes": nodes,
        }
        _write_atomic(self.path / "states.json", json.dumps(data, separators=(",", ":")))

    # --- reading ------------------------------------------------------------------------

    @classmethod
    def open(cls, base: Path, run_id: str | None = None) -> RunDir:
        """The run ``run_id``, or the latest run, under ``base``; UsageError if there is none."""
        runs = Path(base)
        if run_id is None:
            run_id = latest_id(runs)
            if run_id is None:
                raise UsageError(
                    f"no runs in {runs}/ (start one with `k8sco run FILE.py`, from this directory)"
                )
        path = runs / run_id
        try:
            meta = json.loads((path / "run.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            known = list_runs(runs)[-5:]
            raise UsageError(
                f"no run {run_id!r} in {runs}/; recent runs: " + (", ".join(known) or "none")
            ) from None
        except (OSError, ValueError) as exc:
            raise RunError(f"{path}/run.json cannot be read: {exc}") from exc
        return cls(path=path, meta=meta)

    def tree(self) -> Node:
        return Node.deserialize((self.path / "tree.json").read_text(encoding="utf-8"))

    def states(self) -> tuple[dict[str, NodeState], dict[str, Any]]:
        """The recorded Exec states and the rest of states.json (updated, finished, ...)."""
        try:
            data = json.loads((self.path / "states.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunError(f"{self.path}/states.json cannot be read: {exc}") from exc
        nodes = {path: NodeState.from_dict(rec) for path, rec in data.pop("nodes", {}).items()}
        return nodes, data


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
