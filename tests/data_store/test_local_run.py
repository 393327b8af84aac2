"""``k8sco run``: nodes of one run share co.data.pipeline through ``<run dir>/data``, a
second run does not see the first's, and co.data.user persists across runs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .conftest import k8sco_bin

PIPELINE = """
import k8sco as co


def produce(tag: str) -> None:
    assert not co.data.pipeline.exists("shared")  # nothing from an earlier run
    co.data.pipeline.puts("shared", tag.encode())
    seen = co.data.user.gets("runs") if co.data.user.exists("runs") else b""
    co.data.user.puts("runs", seen + tag.encode())


def consume(tag: str) -> None:
    assert co.data.pipeline.gets("shared") == tag.encode(), co.data.pipeline.gets("shared")
    co.data.pipeline.puts("consumed", b"yes")


def root(tag: str = "1") -> co.Serial:
    s = co.Serial()
    s["produce"] = co.Exec(produce, tag)
    with co.Parallel() as p:
        p["consume"] = co.Exec(consume, tag)
        # Shell commands written for Conducto call its command names.
        p["shell"] = co.Exec(
            "test \\"$(conducto-data-pipeline gets shared)\\" = " + tag
            + " && echo ok | conducto-data-pipeline puts from-shell"
        )
    s["both"] = p
    return s
"""


def test_nodes_share_pipeline_data_and_runs_do_not(tmp_path: Path) -> None:
    (tmp_path / "p.py").write_text(PIPELINE)
    env = {**os.environ, "K8SCO_HOME": str(tmp_path / "home")}
    env.pop("K8SCO_DATA_PIPELINE", None)
    env.pop("K8SCO_DATA_USER", None)
    # The console scripts of k8sco's venv, as a node's image would have them on PATH.
    env["PATH"] = str(Path(k8sco_bin("k8sco")).parent) + os.pathsep + env["PATH"]
    runs = tmp_path / ".k8sco/runs"
    for run in ("1", "2"):
        done = subprocess.run(
            [k8sco_bin("k8sco"), "run", "p.py:root", f"--tag={run}"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        data = runs / os.readlink(runs / "latest") / "data"
        assert (data / "shared").read_text() == run
        assert (data / "consumed").read_bytes() == b"yes"
        assert (data / "from-shell").read_bytes() == b"ok\n"
    assert (tmp_path / "home/data/runs").read_text() == "12"
