"""The Pipeline object: spec from the tree (compressed when large), valid against the CRD,
small enough for etcd at 10,000 nodes with a full status; status records round-trip."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kube_schemas import validate_k8s, validate_pipeline

import k8sco as co
from k8sco import engine
from k8sco.engine import Graph, NodeState, State
from k8sco.errors import PipelineError
from k8sco.render import (
    decode_tree,
    job_for,
    render_all,
    render_job,
    render_pipeline,
    render_status,
)
from k8sco.render.pipeline import (
    SCHEMA_VERSION,
    TREE_INLINE_MAX,
    node_record,
    node_state,
    parse_timestamp,
    timestamp,
)

MIB = 1024 * 1024
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def check(n: int, lo: int, hi: int) -> None:
    """A native function for the tests (never called)."""


def wide(stages: int, width: int) -> co.Serial:
    """A Serial of Parallels of native-function nodes, the benchmark's shape."""
    root = co.Serial()
    for s in range(stages):
        stage = co.Parallel()
        root[f"stage {s}"] = stage
        for i in range(width):
            stage[f"check {i}"] = co.Exec(check, 10_000, i * 100, (i + 1) * 100)
    return root


def test_small_tree_travels_as_json() -> None:
    root = wide(2, 3)
    obj = render_pipeline(root, "small", "team-a", image="repo/app:1")
    validate_pipeline(obj)
    assert obj["apiVersion"] == "k8sco.io/v1alpha1" and obj["kind"] == "Pipeline"
    assert obj["metadata"] == {
        "name": "small",
        "namespace": "team-a",
        "labels": {"app.kubernetes.io/managed-by": "k8sco"},
    }
    spec = obj["spec"]
    assert spec["tree"] == root.serialize() and "treeGzip" not in spec
    assert spec["image"] == "repo/app:1" and spec["codeRoot"] == "/app"
    assert spec["execNodes"] == 6 and spec["k8scoVersion"] == co.__version__
    assert decode_tree(spec).serialize() == root.serialize()


def test_large_tree_is_compressed_and_reads_back() -> None:
    root = wide(10, 100)
    assert len(root.serialize().encode()) > TREE_INLINE_MAX
    obj = render_pipeline(root, "large", "default")
    validate_pipeline(obj)
    assert "tree" not in obj["spec"]
    assert decode_tree(obj["spec"]).serialize() == root.serialize()
    again = render_pipeline(root, "large", "default")
    assert again == obj  # deterministic: no timestamp in the gzip header


def varied(stages: int, width: int) -> co.Serial:
    """Like :func:`wide`, with commands that differ the way real ones do (paths, hashes)."""
    root = co.Serial()
    for s in range(stages):
        stage = co.Parallel(env={"STAGE": str(s)})
        root[f"shard group {s}"] = stage
        for i in range(width):
            digest = hashlib.sha256(f"{s}/{i}".encode()).hexdigest()
            stage[f"shard-{digest[:8]}"] = co.Exec(
                f"python -m jobs.train --shard=s3://datasets/imagenet/{digest[:16]}.tar "
                f"--seed={s * width + i} --out=/results/run-{digest[16:28]}/model.pt",
                cpu=0.5 + (i % 4) / 2,
                mem=1 + i % 3,
            )
    return root


@pytest.mark.parametrize("shape", [wide, varied])
def test_ten_thousand_nodes_fit_etcd_with_a_full_status(shape: Any) -> None:
    root = shape(100, 100)
    obj = render_pipeline(root, "big", "default")
    spec_bytes = len(json.dumps(obj, separators=(",", ":")))
    graph = Graph.from_tree(root)
    recorded: dict[str, NodeState] = {}
    for k, path in enumerate(graph.exec_paths):
        started = T0 + k * 3.7
        if k % 10 == 0:  # every tenth failed once, with a reason, and was retried
            recorded[path] = NodeState(State.ERROR, 2, started, started + 61, 1, "exit code 1")
        else:
            recorded[path] = NodeState(State.DONE, 1, started, started + 42.4, 0)
    states = engine.evaluate(graph, recorded, T0 + 10**6).states
    obj["status"] = render_status(graph, recorded, states, T0, T0 + 40_000, 1, "done")
    validate_pipeline(obj)
    total = len(json.dumps(obj, separators=(",", ":")))
    raw = len(root.serialize().encode())
    print(
        f"\n10,000 nodes ({shape.__name__}): tree {raw} B as JSON, "
        f"Pipeline {spec_bytes} B, with full status {total} B"
    )
    assert total < MIB, f"{total} bytes; etcd's limit is 1.5 MiB and the goal 1 MiB"
    assert obj["status"]["progress"] == "10000/10000"
    assert obj["status"]["counts"]["error"] == 1000


def test_the_spec_carries_its_schema_version() -> None:
    small = render_pipeline(wide(1, 2), "small", "default")
    assert small["spec"]["schemaVersion"] == 1  # a tree in the spec: readable by version 1
    assert decode_tree({k: v for k, v in small["spec"].items() if k != "schemaVersion"})


@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1, 99])
def test_a_newer_schema_is_refused_naming_both_versions(version: int) -> None:
    spec = {**render_pipeline(wide(1, 2), "p", "default")["spec"], "schemaVersion": version}
    with pytest.raises(PipelineError) as info:
        decode_tree(spec)
    message = str(info.value)
    assert f"schema version {version}" in message
    assert f"(up to {SCHEMA_VERSION})" in message and "upgrade the k8sco controller" in message
    assert "\n" not in message


@pytest.mark.parametrize("version", ["2", 0, True, None])
def test_a_malformed_schema_version_is_refused(version: Any) -> None:
    spec = {**render_pipeline(wide(1, 2), "p", "default")["spec"], "schemaVersion": version}
    with pytest.raises(PipelineError, match="is not a version"):
        decode_tree(spec)


def test_job_for_a_pipeline_read_back_is_the_rendered_job() -> None:
    root = wide(2, 2)
    obj = render_pipeline(root, "p", "ns", image="img:1")
    obj["metadata"]["uid"] = "u-1"
    tree = decode_tree(obj["spec"])
    job = job_for(obj, tree, "/stage 1/check 0")
    assert job == render_job(root, "/stage 1/check 0", "p", "ns", image="img:1", owner_uid="u-1")
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u-1"


def test_render_all_skips_skipped_nodes_and_keeps_tree_order() -> None:
    with co.Serial() as root:
        co.Exec("echo 1", name="first")
        with co.Parallel(name="later", skip=True):
            co.Exec("echo 2", name="skipped")
        co.Exec("echo 3", name="last")
    docs = render_all(root, "demo", "default", uid="u")
    assert [d["kind"] for d in docs] == ["Pipeline", "Job", "Job"]
    assert [d["metadata"]["annotations"]["k8sco.io/path"] for d in docs[1:]] == ["/first", "/last"]
    validate_pipeline(docs[0])
    for doc in docs[1:]:
        validate_k8s(doc)
        assert doc["metadata"]["ownerReferences"][0]["name"] == "demo"


def test_a_bad_node_fails_the_whole_rendering() -> None:
    with co.Serial() as root:
        co.Exec("echo fine", name="fine")
        co.Exec("echo", name="bad", image=co.Image(copy_dir=".", name="code"))
    with pytest.raises(PipelineError, match=r"^/bad: image 'code'"):
        render_all(root, "demo", "default")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "neither 'tree', 'treeGzip' nor 'treeRef'"),
        ({"treeGzip": "not base64!"}, "not gzip\\+base64"),
        ({"treeGzip": "aGVsbG8="}, "not gzip\\+base64"),
        ({"tree": "{}"}, "not a serialized k8sco tree"),
    ],
)
def test_unreadable_trees(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        decode_tree(spec)


node_states = st.builds(
    lambda state, attempts, started, length, code, reason: NodeState(
        state=state,
        attempts=attempts if started is not None else 0,
        started=None if started is None else T0 + started,
        finished=None if started is None or length is None else T0 + started + length,
        exit_code=code,
        reason=reason,
    ),
    st.sampled_from(list(State)),
    st.integers(min_value=1, max_value=5),
    st.none() | st.integers(min_value=0, max_value=10**6),
    st.none() | st.integers(min_value=0, max_value=10**5),
    st.none() | st.integers(min_value=-64, max_value=255),
    st.none() | st.text(min_size=1, max_size=30),
)


@given(node_states)
def test_node_records_round_trip(rec: NodeState) -> None:
    if rec.state is State.DONE and rec.exit_code is None:
        rec = rec.with_(exit_code=0)  # the engine records a success's exit code
    record = node_record(rec, T0)
    if record is None:
        assert rec == NodeState()
        return
    assert node_state(record, T0) == rec
    assert len(json.dumps({k: v for k, v in record.items() if k != "r"})) < 80


def test_a_finished_node_is_short() -> None:
    record = node_record(NodeState(State.DONE, 1, T0 + 12, T0 + 73, 0), T0)
    assert record == {"s": "done", "t": 12, "f": 73}


def test_status_of_a_running_pipeline() -> None:
    root = wide(2, 2)
    graph = Graph.from_tree(root)
    recorded = {
        "/stage 0/check 0": NodeState(State.DONE, 1, T0, T0 + 5, 0),
        "/stage 0/check 1": NodeState(State.RUNNING, 1, T0 + 1),
    }
    ev = engine.evaluate(graph, recorded, T0 + 10)
    status = render_status(graph, recorded, ev.states, T0, observed_generation=1)
    assert status["phase"] == "Running"
    assert status["progress"] == "1/4"
    assert status["startTime"] == "2026-01-01T00:00:00Z"
    assert parse_timestamp(timestamp(T0 + 0.9)) == T0
    assert status["nodes"] == {
        str(graph.index["/stage 0/check 0"]): {"s": "done", "t": 0, "f": 5},
        str(graph.index["/stage 0/check 1"]): {"s": "running", "t": 1},
    }
    pipeline = render_pipeline(root, "p", "default")
    pipeline["status"] = status
    validate_pipeline(pipeline)
