"""The controller's decisions on ``spec.controls`` (k8sco.controls), pure: a reset once per
entry (done nodes too, their Jobs deleted first), recorded by ``status.controlToken`` in the
same status write; a skip, folded into the tree, lets a failed Serial go on."""

from __future__ import annotations

from typing import Any

from reconcile.test_decide import T0, job, merged, pipeline_of, tree

from k8sco import controls
from k8sco.engine import Graph
from k8sco.reconcile import reconcile


def test_a_reset_runs_done_nodes_again_once_per_token() -> None:
    root = tree()
    graph = Graph.from_tree(root)
    jobs = {"/a": job("/a", done=True)}
    first = reconcile(graph, pipeline_of(root), jobs, T0)
    assert first.status is not None and first.create == ["/p/b", "/p/c"]
    status = first.status
    entry = {"action": "reset", "path": "/a", "token": "r1"}
    obj = pipeline_of(root, status, controls=[entry])
    result = reconcile(graph, obj, jobs, T0 + 10)
    assert result.delete == ["/a"]  # the done node's Job goes first
    assert "/a" not in result.create  # while it is still there
    assert result.status is not None and result.status["controlToken"] == "r1"
    status = merged(status, result.status)
    assert status["nodes"].get("1") is None  # /a (index 1) is pending again

    # The controller restarted, the Job being deleted: decided again, the reset is not.
    obj = pipeline_of(root, status, controls=[entry])
    deleting = {"/a": job("/a", done=True, deleting=True)}
    again = reconcile(graph, obj, deleting, T0 + 11)
    assert again.delete == [] and "/a" not in again.create
    gone = reconcile(graph, obj, {}, T0 + 12)
    assert "/a" in gone.create
    # Once it has run again, the same control list resets nothing more.
    status = merged(status, gone.status or {})
    obj = pipeline_of(root, status, controls=[entry])
    rerun = {"/a": job("/a", done=True)}
    after = reconcile(graph, obj, rerun, T0 + 20)
    assert after.delete == []
    assert (after.status or {}).get("controlToken") is None  # unchanged: no patch of it


def test_a_skipped_failure_lets_its_serial_go_on_on_a_cluster() -> None:
    root = tree()
    jobs = {"/a": job("/a", failed="BackoffLimitExceeded")}
    failed = reconcile(Graph.from_tree(root), pipeline_of(root), jobs, T0)
    assert failed.status is not None and failed.status["phase"] == "Failed"
    items: list[dict[str, Any]] = [{"action": "skip", "path": "/a", "token": "s1"}]
    # What the controller compiles: the spec's tree with the controls folded in.
    skipped = controls.overridden(tree(), items)
    obj = pipeline_of(root, failed.status, controls=items)
    result = reconcile(Graph.from_tree(skipped), obj, jobs, T0 + 10)
    assert result.create == ["/p/b", "/p/c"]
    assert result.delete == []  # the failed Job is kept: its record and log stay
    assert result.status is not None and result.status["controlToken"] == "s1"
    assert result.status["counts"]["skipped"] == 1
