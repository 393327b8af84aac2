"""A node's recorded outcome does not depend on its Job still existing (Jobs may be deleted
later by TTLs or retention), and a node recorded as started never runs a second time under
its deterministic name."""

from __future__ import annotations

from typing import Any

import k8sco as co
from k8sco import engine
from k8sco.engine import Graph, NodeState, State
from k8sco.reconcile import reconcile
from k8sco.render.pipeline import recorded_states, render_pipeline, render_status

T0 = 1_800_000_000.0


def pipeline_with(records: dict[str, NodeState]) -> tuple[Graph, dict[str, Any]]:
    with co.Serial() as root:
        co.Exec("true", name="a")
        co.Exec("true", name="b")
        co.Exec("true", name="c")
    obj = render_pipeline(root, "demo", "default")
    obj["metadata"].update(uid="u-1", generation=1)
    graph = Graph.from_tree(root)
    states = engine.evaluate(graph, records, T0 + 100).states
    obj["status"] = render_status(graph, records, states, T0, observed_generation=1)
    return graph, obj


def test_finished_nodes_whose_jobs_are_gone_stay_finished() -> None:
    graph, obj = pipeline_with(
        {
            "/a": NodeState(State.DONE, 1, T0, T0 + 5, 0),
            "/b": NodeState(State.ERROR, 4, T0 + 6, T0 + 9, None, "failed 4 times"),
        }
    )
    result = reconcile(graph, obj, {}, T0 + 100)  # no Job at all: all deleted by a TTL
    assert result.create == []
    assert result.status is None or "nodes" not in result.status  # nothing changes
    assert result.finished


def test_a_running_node_whose_job_vanished_is_not_run_again() -> None:
    graph, obj = pipeline_with(
        {
            "/a": NodeState(State.DONE, 1, T0, T0 + 5, 0),
            "/b": NodeState(State.RUNNING, 1, T0 + 6),
        }
    )
    result = reconcile(graph, obj, {}, T0 + 100)
    assert "/b" not in result.create, "a node seen running must not run again under its name"
    assert result.status is not None
    after = recorded_states(graph, {**obj["status"], **result.status})
    assert after["/b"].state is State.KILLED
    assert "Job" in (after["/b"].reason or "")


def test_a_queued_node_whose_job_is_not_seen_is_created_again() -> None:
    # Queued: its create may not have reached the cluster; AlreadyExists is success.
    graph, obj = pipeline_with(
        {"/a": NodeState(State.DONE, 1, T0, T0 + 5, 0), "/b": NodeState(State.QUEUED, 0)}
    )
    result = reconcile(graph, obj, {}, T0 + 100)
    assert result.create == ["/b"]
