"""The Pipeline stays under 1 MiB at every moment of a run, whatever the tree: what does
not fit goes into ConfigMaps it owns, each under 1 MiB, and reads back whole (issue 8,
item 5). The worst case of the issue: 10,000 nodes with 2 KB shell commands of hash-like
text that all fail after 3 retries."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from kube_schemas import validate_pipeline

import k8sco as co
from k8sco import engine
from k8sco.engine import Graph, NodeState, State
from k8sco.errors import PipelineError
from k8sco.render import overflow
from k8sco.render.pipeline import (
    SCHEMA_VERSION,
    decode_tree,
    node_record,
    recorded_states,
    render_pipeline,
    render_status,
    tree_configmaps,
)

MIB = 1024 * 1024
T0 = 1_767_225_600.0
NODES = 10_000


def size(obj: Any) -> int:
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode())


def hashes(i: int) -> str:
    """2 KB of hash-like text: 32 hex sha256 digests, incompressible beyond hex."""
    return "".join(hashlib.sha256(f"{i}/{j}".encode()).hexdigest() for j in range(32))


@pytest.fixture(scope="module")
def worst() -> tuple[co.Parallel, dict[str, Any], list[dict[str, Any]]]:
    root = co.Parallel()
    for i in range(NODES):
        root[f"node {i}"] = co.Exec(f"echo {hashes(i)} && exit 1", retries=3)
    pipeline = render_pipeline(root, "worst", "default")
    pipeline["metadata"].update(uid="9b2f6c1e-3d4a-4f5b-8c7d-0e1f2a3b4c5d", generation=1)
    return root, pipeline, tree_configmaps(pipeline, root)


def test_a_large_tree_goes_into_configmaps_each_under_1_mib(
    worst: tuple[co.Parallel, dict[str, Any], list[dict[str, Any]]],
) -> None:
    root, pipeline, maps = worst
    spec = pipeline["spec"]
    assert "treeGzip" not in spec and "tree" not in spec
    assert spec["schemaVersion"] == 2 <= SCHEMA_VERSION
    assert spec["treeRef"]["parts"] == len(maps) > 1
    validate_pipeline(pipeline)
    assert size(pipeline) < 2048
    for i, cm in enumerate(maps):
        assert size(cm) <= overflow.OBJECT_MAX
        meta = cm["metadata"]
        assert meta["name"] == overflow.tree_configmap_name("worst", pipeline["metadata"]["uid"], i)
        assert meta["ownerReferences"][0]["uid"] == pipeline["metadata"]["uid"]
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "k8sco"
        assert meta["labels"]["k8sco.io/pipeline"] == "worst"
    parts = [base64.b64decode(cm["binaryData"]["tree.gz"]) for cm in maps]
    assert decode_tree(spec, parts).serialize() == root.serialize()
    with pytest.raises(PipelineError, match="the Pipeline's tree is in ConfigMaps"):
        decode_tree(spec)
    tampered = [*parts[:-1], parts[-1][:-1] + b"\x00"]
    with pytest.raises(PipelineError, match=r"do not match spec\.treeRef\.sha256"):
        decode_tree(spec, tampered)
    with pytest.raises(PipelineError, match="do not add up"):
        decode_tree(spec, parts[:-1])


def store(pipeline: dict[str, Any], full: dict[str, Any], shards: dict[int, Any]) -> None:
    """What the controller does with a whole status: split it, keep the ConfigMaps."""
    fixed = size({k: v for k, v in pipeline.items() if k != "status"})
    inline, content = overflow.split(full, fixed, pipeline.get("status"))
    pipeline["status"] = inline
    shards.clear()
    shards.update(content)


def test_the_worst_case_stays_under_1_mib_at_every_moment(
    worst: tuple[co.Parallel, dict[str, Any], list[dict[str, Any]]],
) -> None:
    root, spec_only, _ = worst
    pipeline = json.loads(json.dumps(spec_only))
    graph = Graph.from_tree(root)
    recorded: dict[str, NodeState] = {}
    shards: dict[int, Any] = {}
    peak = 0
    # A quota message as the reason while nodes wait, then 4 attempts each, all failed.
    quota = (
        "waiting: exceeded quota: jobs-quota, requested: count/jobs.batch=1, used: "
        "count/jobs.batch=500, limited: count/jobs.batch=500"
    )
    paths = graph.exec_paths
    for step in range(0, NODES + 1000, 1000):
        now = T0 + step
        for k, path in enumerate(paths[step - 1000 : step] if step else []):
            recorded[path] = NodeState(State.ERROR, 4, T0 + k, now, 1, "failed 4 times")
        for path in paths[step : step + 1000]:
            recorded[path] = NodeState(State.QUEUED, 0, None, None, None, quota)
        states = engine.evaluate(graph, recorded, now).states
        full = render_status(graph, recorded, states, T0, None, 1, "working")
        store(pipeline, full, shards)
        peak = max(peak, size(pipeline))
        assert size(pipeline) <= overflow.PIPELINE_BUDGET
        for records in shards.values():
            assert size(overflow.shard_content(records)) < overflow.OBJECT_MAX - 64 * 1024
        back = recorded_states(graph, overflow.join(pipeline["status"], shards))
        assert {p: r.state for p, r in back.items()} == {p: r.state for p, r in recorded.items()}
        assert {p: r.reason for p, r in back.items()} == {p: r.reason for p, r in recorded.items()}
    validate_pipeline(pipeline)
    assert pipeline["status"]["counts"]["error"] == NODES
    print(
        f"\n{NODES} failing nodes with 2 KB commands: Pipeline at most {peak} B, level "
        f"{overflow.level_of(pipeline['status'])}, "
        f"{len(shards)} status ConfigMaps of at most "
        f"{max((size(overflow.shard_content(r)) for r in shards.values()), default=0)} B"
    )


def records(count: int, reason: str | None) -> dict[str, Any]:
    rec = NodeState(State.ERROR, 4, T0 + 10, T0 + 20_000, 1, reason)
    one = node_record(rec, T0)
    return {str(i): dict(one or {}) for i in range(1, count + 1)}


def test_levels_rise_with_size_and_never_fall() -> None:
    small = {"phase": "Running", "nodes": records(10, "failed 4 times")}
    inline, shards = overflow.split(small, 1000)
    assert inline == small and shards == {}  # small pipelines: no ConfigMap at all

    reasons = {"phase": "Running", "nodes": records(9000, "x" * 200)}
    inline, shards = overflow.split(reasons, 1000)
    assert overflow.level_of(inline) == 1
    assert all("r" not in r for r in inline["nodes"].values())
    assert sorted(shards) == list(range(10)) == inline["overflow"]["shards"]
    assert overflow.join(inline, shards)["nodes"] == reasons["nodes"]

    huge = {"phase": "Running", "nodes": records(100_000, "failed 4 times")}
    inline, shards = overflow.split(huge, 1000)
    assert overflow.level_of(inline) == 2 and inline["nodes"] == {}
    assert size({"status": inline}) < 4000  # summary and a digest per ConfigMap
    assert len(shards) == 101
    assert max(size(overflow.shard_content(r)) for r in shards.values()) < 100_000
    assert overflow.join(inline, shards)["nodes"] == huge["nodes"]

    # Once records went out, they stay out: shards listed before stay listed (emptied).
    again, shards = overflow.split(small, 1000, prior=inline)
    assert overflow.level_of(again) == 2 and len(shards) == 101
    assert overflow.join(again, shards)["nodes"] == small["nodes"]


def test_reasons_are_clipped() -> None:
    long = "quota " * 1000
    record = node_record(NodeState(State.ERROR, 1, T0, T0 + 1, 1, long), T0)
    assert record is not None and size(record["r"]) <= overflow.REASON_MAX
    assert record["r"].endswith("...")
    assert overflow.clip_reason("short") == "short"
    assert size(overflow.clip_reason("\x01" * 1000)) <= overflow.REASON_MAX


def test_merge_patch_round_trip() -> None:
    old = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1]}
    new = {"a": 1, "b": {"c": 4}, "f": "x"}
    patch = overflow.merge_patch(old, new)
    assert patch == {"b": {"c": 4, "d": None}, "e": None, "f": "x"}
    assert overflow.apply_patch(old, patch) == new
