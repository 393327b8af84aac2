"""``k8sco status`` of a large tree: a summary, the running and failed branches, and the
options that list more (``--all``, ``--depth``, ``--expand``); a small tree stays whole."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fakecluster import FakeCluster

import k8sco as co
from k8sco.cli import output, statusview
from k8sco.cli.app import cli
from k8sco.cli.statusview import View
from k8sco.engine import Graph, NodeState, State, evaluate
from k8sco.errors import UsageError
from k8sco.kube import pipelines
from k8sco.kube.client import Cluster
from k8sco.local.rundir import RUNS_DIR, RunDir
from k8sco.render.crd import crd
from k8sco.render.pipeline import render_pipeline

T0 = 1_700_000_000.0
STAGES, WIDTH = 20, 50  # 1,021 nodes


def wide() -> co.Serial:
    with co.Serial() as root:
        for s in range(STAGES):
            with co.Parallel(name=f"stage {s}"):
                for i in range(WIDTH):
                    co.Exec(f"echo {s} {i}", name=f"n{i}")
    return root


def midway() -> dict[str, NodeState]:
    """Stages 0-9 done, but /stage 3/n7 failed (suppressed nowhere: the Serial goes on only
    because stop_on_error is off); stage 10 half running."""
    recorded: dict[str, NodeState] = {}
    for s in range(10):
        for i in range(WIDTH):
            failed = (s, i) == (3, 7)
            recorded[f"/stage {s}/n{i}"] = NodeState(
                state=State.ERROR if failed else State.DONE,
                attempts=1,
                started=T0 + s * 10,
                finished=T0 + s * 10 + 5,
                exit_code=1 if failed else 0,
                reason="exit code 1" if failed else None,
            )
    for i in range(3):
        recorded[f"/stage 10/n{i}"] = NodeState(State.RUNNING, attempts=1, started=T0 + 100)
    return recorded


def lines_of(view: View) -> list[str]:
    root = wide()
    root.stop_on_error = False
    graph = Graph.from_tree(root)
    recorded = midway()
    ev = evaluate(graph, recorded, T0 + 200)
    return output.status_text(graph, ev.states, recorded, T0 + 200, None, view).splitlines()


def names(rows: list[str]) -> list[str]:
    """The first column of the tree's rows: a node's name, or ``… N more``."""
    return [re.split(r"\s{2,}", row.strip())[0] for row in rows]


def test_a_large_tree_is_summarised_with_its_running_and_failed_branches() -> None:
    lines = lines_of(View())
    assert lines[0] == "1000 Exec nodes: 499 done, 1 error, 3 running, 47 queued, 450 pending"
    assert lines[1] == "started 2023-11-14 22:13:20 UTC, running for 3m20s"
    rows = lines[2:-1]
    assert names(rows) == [
        "/",
        "stage 3",
        "n7",
        "… 49 more",
        "stage 10",
        "n0",
        "n1",
        "n2",
        "… 47 more",
        "… 18 more",
    ]
    assert rows[1].split()[:4] == ["stage", "3", "Parallel", "error"]
    assert rows[1].endswith("49 done, 1 error")  # a listed Parallel shows its counts
    assert rows[2].split()[:3] == ["n7", "Exec", "error"] and rows[2].endswith("exit code 1")
    assert rows[3].endswith("49 done")
    assert rows[8].endswith("47 queued")
    assert rows[9].endswith("9 done, 9 pending")  # the other stages, by their own state
    assert lines[-1] == (
        "7 of 1021 nodes listed (--all: every node; --depth N: N levels; "
        "--expand PATH: its children)"
    )


def test_expand_lists_every_child_of_a_node() -> None:
    shown = names(lines_of(View(expand=("/stage 5",)))[2:-1])
    start = shown.index("stage 5")
    assert shown[start + 1 : start + 1 + WIDTH] == [f"n{i}" for i in range(WIDTH)]
    assert shown.index("stage 3") < start < shown.index("stage 10")  # in tree order
    assert shown[-1] == "… 17 more"


def test_depth_lists_every_node_down_to_that_level() -> None:
    rows = lines_of(View(depth=1))[2:-1]
    shown = names(rows)
    stages = [n for n in shown if n.startswith("stage")]
    assert stages == [f"stage {s}" for s in range(STAGES)]
    assert "n7" in shown and "n0" in shown  # the failed and running branches still show
    assert "n20" not in shown
    assert len(rows) == 1 + STAGES + 2 + 4  # root, stages, n7 and a fold, 3 running and a fold
    # a stage that is not opened shows its subtree's counts
    assert next(r for r in rows if r.strip().startswith("stage 15")).endswith("50 pending")


def test_all_lists_every_node_without_a_summary() -> None:
    lines = lines_of(View(all_nodes=True))
    assert len(lines) == 1 + STAGES * (1 + WIDTH)
    assert lines[0].split()[:3] == ["/", "Serial", "running"]


def test_a_small_tree_is_listed_whole_as_before() -> None:
    with co.Serial() as root, co.Parallel(name="p"):
        for i in range(12):  # more children than a large tree's node would list
            co.Exec(f"echo {i}", name=f"n{i}")
    graph = Graph.from_tree(root)
    ev = evaluate(graph, {}, T0)
    whole = output.status_text(graph, ev.states, {}, T0, None, View(all_nodes=True))
    assert output.status_text(graph, ev.states, {}, T0) == whole
    assert output.status_text(graph, ev.states, {}, T0, None, View()) == whole
    assert len(whole.splitlines()) == 14
    assert statusview.FULL_TREE_NODES >= 14


def test_expand_of_an_unknown_path_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--expand /nope: no such node"):
        lines_of(View(expand=("/nope",)))


def k8sco(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_local_status_summarises_a_large_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    root = wide()
    root.stop_on_error = False
    run = RunDir.create(RUNS_DIR, root, [], {"file": "wide.py", "func": "wide"}, now=T0)
    nodes = {path: rec.to_dict() for path, rec in midway().items()}
    run.write_states(nodes, now=T0 + 200, finished=None)

    lines = k8sco("status").stdout.splitlines()
    assert lines[0].startswith(f"run {run.run_id}: wide.py:wide  running")
    assert lines[1] == "1000 Exec nodes: 499 done, 1 error, 3 running, 47 queued, 450 pending"
    assert len(lines) == 1 + 2 + 10 + 1

    expanded = k8sco("status", "--expand", "/stage 12").stdout.splitlines()
    assert names(expanded[3:-1])[-WIDTH - 1 : -1] == [f"n{i}" for i in range(WIDTH)]
    assert len(k8sco("status", "--all").stdout.splitlines()) == 1 + 1 + STAGES * (1 + WIDTH)
    assert len(k8sco("status", "--depth", "1").stdout.splitlines()) == 1 + 2 + 27 + 1

    bad = k8sco("status", "--expand", "/stage 99")
    assert bad.exit_code == 2 and "--expand /stage 99: no such node" in bad.stderr


def test_cluster_status_summarises_a_large_pipeline(tmp_path: Path) -> None:
    with FakeCluster() as fake:
        fake.create(crd())
        kubeconfig = tmp_path / "kubeconfig"
        fake.write_kubeconfig(kubeconfig)
        cluster = Cluster(str(kubeconfig))
        try:
            pipelines.create(cluster, render_pipeline(wide(), "wide", "default", image="x:1"))
        finally:
            cluster.close()
        result = k8sco("status", "wide", "--kubeconfig", str(kubeconfig))
        expanded = k8sco("status", "wide", "--kubeconfig", str(kubeconfig), "--expand", "/stage 0")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "pipeline/wide in default: Pending ()"
    assert lines[1:3] == ["1000 Exec nodes: 50 queued, 950 pending", "not started"]
    # Nothing runs or failed: the root's children fold into one row.
    assert names(lines[3:-1]) == ["/", "… 20 more"]
    assert lines[4].endswith("1 queued, 19 pending")
    rows = expanded.stdout.splitlines()[3:-1]
    assert rows[1].strip().startswith("stage 0")
    assert all("job/wide-stage-0-n" in r for r in rows[2 : 2 + WIDTH])
    assert rows[-1].strip().startswith("… 19 more")
