"""The controller's decisions, pure: a Pipeline and its Jobs in, actions out."""

from __future__ import annotations

from typing import Any

import k8sco as co
from k8sco.engine import Graph
from k8sco.reconcile import reconcile
from k8sco.render.pipeline import render_pipeline

T0 = 1_800_000_000.0


def stamp(seconds: float) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def job(
    path: str,
    *,
    done: bool = False,
    failed: str | None = None,
    running: bool = False,
    deleting: bool = False,
    owner: str = "u-1",
) -> dict[str, Any]:
    status: dict[str, Any] = {"startTime": stamp(T0)}
    if running:
        status.update(active=1, ready=1)
    if done:
        status.update(succeeded=1, completionTime=stamp(T0 + 5))
        status["conditions"] = [
            {"type": "SuccessCriteriaMet", "status": "True"},
            {"type": "Complete", "status": "True", "lastTransitionTime": stamp(T0 + 5)},
        ]
    if failed:
        status.update(failed=1)
        status["conditions"] = [
            {"type": "FailureTarget", "status": "True", "reason": failed},
            {
                "type": "Failed",
                "status": "True",
                "reason": failed,
                "lastTransitionTime": stamp(T0 + 5),
            },
        ]
    meta: dict[str, Any] = {
        "name": f"demo-{path.strip('/').replace('/', '-')}",
        "annotations": {"k8sco.io/path": path},
        "uid": f"uid{path}",
        "creationTimestamp": stamp(T0),
        "ownerReferences": [{"kind": "Pipeline", "name": "demo", "uid": owner}],
    }
    if deleting:
        meta["deletionTimestamp"] = stamp(T0 + 6)
    return {"metadata": meta, "status": status}


def merged(old: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """What the API server stores after a JSON merge patch (RFC 7386)."""
    out = dict(old)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def pipeline_of(root: co.Node, status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    obj = render_pipeline(root, "demo", "default", image="img:1", uid="u-1")
    obj["metadata"]["generation"] = 1
    obj["spec"].update(spec)
    if status is not None:
        obj["status"] = status
    return obj


def tree() -> co.Serial:
    with co.Serial() as root:
        co.Exec("echo a", name="a")
        with co.Parallel(name="p"):
            co.Exec("echo b", name="b")
            co.Exec("echo c", name="c")
        co.Exec("echo d", name="d")
    return root


def test_first_reconcile_creates_only_the_first_job_and_writes_status() -> None:
    root = tree()
    result = reconcile(Graph.from_tree(root), pipeline_of(root), {}, T0)
    assert result.create == ["/a"]
    assert result.status is not None
    assert result.status["phase"] == "Pending"
    assert result.status["progress"] == "0/4"
    assert result.status["nodes"] == {"1": {"s": "queued"}}


def test_a_completed_job_unblocks_the_next_ones() -> None:
    root = tree()
    graph = Graph.from_tree(root)
    first = reconcile(graph, pipeline_of(root), {}, T0)
    obj = pipeline_of(root, first.status)
    result = reconcile(graph, obj, {"/a": job("/a", done=True)}, T0 + 6)
    assert result.create == ["/p/b", "/p/c"]
    assert result.status is not None
    assert result.status["progress"] == "1/4"
    assert any(e.reason == "NodesSucceeded" for e in result.events)


def test_reconciling_again_with_the_same_inputs_creates_nothing_new() -> None:
    root = tree()
    graph = Graph.from_tree(root)
    first = reconcile(graph, pipeline_of(root), {}, T0)
    obj = pipeline_of(root, first.status)
    jobs = {"/a": job("/a", running=True)}
    again = reconcile(graph, obj, jobs, T0 + 1)
    assert again.create == []
    assert again.status is not None and again.status["phase"] == "Running"
    obj2 = pipeline_of(root, merged(first.status, again.status))
    assert reconcile(graph, obj2, jobs, T0 + 1).status is None  # nothing changed


def test_a_created_job_not_yet_seen_is_created_again_which_is_harmless() -> None:
    """The cache may lag the create; AlreadyExists then answers the second create."""
    root = tree()
    graph = Graph.from_tree(root)
    first = reconcile(graph, pipeline_of(root), {}, T0)
    result = reconcile(graph, pipeline_of(root, first.status), {}, T0 + 1)
    assert result.create == ["/a"]


def test_a_failed_job_fails_the_pipeline_and_stops_the_serial() -> None:
    root = tree()
    graph = Graph.from_tree(root)
    result = reconcile(graph, pipeline_of(root), {"/a": job("/a", failed="DeadlineExceeded")}, T0)
    assert result.create == []
    assert result.finished
    assert result.status is not None
    assert result.status["phase"] == "Failed"
    assert result.status["message"] == "/a: max time exceeded"
    assert [e.reason for e in result.events] == ["NodeFailed", "PipelineFailed"]


def test_stop_deletes_running_jobs_and_records_them_killed() -> None:
    root = tree()
    graph = Graph.from_tree(root)
    jobs = {"/a": job("/a", done=True), "/p/b": job("/p/b", running=True)}
    result = reconcile(graph, pipeline_of(root, stop=True), jobs, T0 + 10)
    assert result.delete == ["/p/b"]
    assert result.create == []
    assert result.status is not None
    assert result.status["nodes"]["3"]["s"] == "killed"
    assert result.status["phase"] == "Killed"


def test_rerun_deletes_failed_jobs_then_recreates_them_once_gone() -> None:
    root = tree()
    graph = Graph.from_tree(root)
    jobs = {"/a": job("/a", failed="BackoffLimitExceeded")}
    failed = reconcile(graph, pipeline_of(root), jobs, T0)
    assert failed.status is not None
    obj = pipeline_of(root, failed.status, rerun={"path": "/", "token": "t1"})
    result = reconcile(graph, obj, jobs, T0 + 10)
    assert result.delete == ["/a"]
    assert result.create == []  # the old Job is still there
    assert result.status is not None and result.status["rerunToken"] == "t1"
    obj = pipeline_of(
        root, merged(failed.status, result.status), rerun={"path": "/", "token": "t1"}
    )
    assert obj["status"]["nodes"] == {}
    deleting = {"/a": job("/a", failed="BackoffLimitExceeded", deleting=True)}
    assert reconcile(graph, obj, deleting, T0 + 11).create == []
    assert reconcile(graph, obj, {}, T0 + 12).create == ["/a"]
