"""Run directories: names of logs, run ids, opening runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import k8sco as co
from k8sco.errors import UsageError
from k8sco.local.rundir import RunDir, log_names, new_run_id


def test_log_names_are_readable_and_distinct() -> None:
    paths = ["/", "/build/test a", "/build/test_a", "/x/y", "/x.y", "/X/Y", "/über"]
    names = log_names(paths)
    assert names["/build/test a"] == "build.test_a.log"
    assert names["/x/y"] == "x.y.log"
    assert names["/"] == "root.log"
    assert len(set(n.lower() for n in names.values())) == len(paths)  # case-insensitive FS too
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+\.log", n) for n in names.values())


def test_run_ids_sort_by_start_time() -> None:
    early, late = new_run_id(1_800_000_000.0), new_run_id(1_800_000_001.0)
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", early)
    assert early[:15] < late[:15]


def test_open_names_the_problem(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    with pytest.raises(UsageError, match="no runs in"):
        RunDir.open(runs)
    root = co.Serial()
    root["a"] = co.Exec("true")
    created = RunDir.create(runs, root, ["/a"], {"file": "p.py"}, 1_800_000_000.0)
    assert RunDir.open(runs).run_id == created.run_id
    with pytest.raises(UsageError, match=f"recent runs: {created.run_id}"):
        RunDir.open(runs, "20000101-000000-0000")


def test_encoded_states_write_the_same_file_as_records(tmp_path: Path) -> None:
    from k8sco.local.rundir import EncodedStates

    root = co.Serial()
    root['a "quoted" é'] = co.Exec("true")
    root["b"] = co.Exec("true")
    run = RunDir.create(tmp_path, root, ['/a "quoted" é', "/b"], {"file": "x"}, 1.0)
    records = {
        '/a "quoted" é': {"state": "done", "attempts": 1, "exit_code": 0},
        "/b": {"state": "error", "reason": "exit code 3\nline"},
    }
    run.write_states(records, 2.0, 3.0, "error", False)
    plain = (run.path / "states.json").read_text()
    encoded = EncodedStates()
    encoded.set("/b", {"state": "running"})  # replaced below: the last record counts
    for path, record in records.items():
        encoded.set(path, record)
    run.write_states(encoded, 2.0, 3.0, "error", False)
    assert json.loads((run.path / "states.json").read_text()) == json.loads(plain)
    states, _ = run.states()
    assert states["/b"].reason == "exit code 3\nline"
