"""What the controller keeps of a Job: small, and decided on exactly as the whole Job."""

from __future__ import annotations

import copy
import json
from typing import Any

import k8sco as co
from k8sco.engine import Graph
from k8sco.kube.jobcache import slim
from k8sco.reconcile import reconcile
from k8sco.render.pipeline import decode_tree, job_for, render_pipeline

T0 = 1_800_000_000.0
UID = "0f6d1c9e-1111-2222-3333-444455556666"


def pipeline() -> tuple[Graph, dict[str, Any], co.Node]:
    with co.Parallel() as root:
        for name in ("ok", "failing", "running", "deleting"):
            co.Exec("true", name=name)
    obj = json.loads(json.dumps(render_pipeline(root, "demo", "default", image="img:1")))
    obj["metadata"].update(uid=UID, generation=1)
    return Graph.from_tree(root), obj, decode_tree(obj["spec"])


def as_the_api_returns_it(obj: dict[str, Any], root: co.Node, path: str) -> dict[str, Any]:
    """The Job k8sco creates, with what the API server and the job controller add."""
    job = job_for(obj, root, path)
    meta = job["metadata"]
    meta.update(
        uid=f"job-{path[1:]}", resourceVersion="17", creationTimestamp="2027-01-15T08:00:00Z"
    )
    meta["labels"].update({"batch.kubernetes.io/job-name": meta["name"], "controller-uid": "x"})
    meta["managedFields"] = [{"manager": "kube-controller-manager", "fieldsV1": {"f:status": {}}}]
    when = "2027-01-15T08:00:05Z"
    done = {
        "type": "Complete",
        "status": "True",
        "reason": "CompletionsReached",
        "message": "Reached expected number of succeeded pods",
        "lastTransitionTime": when,
    }
    failed = {
        "type": "FailureTarget",
        "status": "True",
        "reason": "BackoffLimitExceeded",
        "message": "Job has reached the specified backoff limit",
        "lastTransitionTime": when,
    }
    job["status"] = {
        "/ok": {"succeeded": 1, "startTime": when, "completionTime": when, "conditions": [done]},
        "/failing": {"failed": 1, "startTime": when, "conditions": [failed]},
        "/running": {"active": 1, "ready": 1, "startTime": when},
        "/deleting": {"active": 1, "startTime": when},
    }[path]
    if path == "/deleting":
        meta["deletionTimestamp"] = when
    return job


def test_the_pod_template_managed_fields_and_foreign_labels_are_not_kept() -> None:
    _, obj, root = pipeline()
    job = as_the_api_returns_it(obj, root, "/ok")
    before = copy.deepcopy(job)
    kept = slim(job)
    assert job == before  # the object given is left alone
    assert "spec" not in kept and "managedFields" not in kept["metadata"]
    assert set(kept["metadata"]["labels"]) == {"app.kubernetes.io/managed-by", "k8sco.io/pipeline"}
    assert kept["metadata"]["ownerReferences"] == job["metadata"]["ownerReferences"]
    assert kept["metadata"]["annotations"] == job["metadata"]["annotations"]
    assert kept["status"] == job["status"]
    assert len(json.dumps(kept)) * 2 < len(json.dumps(job))


def test_what_is_kept_decides_as_the_whole_job_does() -> None:
    graph, obj, root = pipeline()
    paths = ("/ok", "/failing", "/running", "/deleting")
    whole = {p: as_the_api_returns_it(obj, root, p) for p in paths}
    kept = {p: slim(j) for p, j in whole.items()}
    assert reconcile(graph, obj, kept, T0) == reconcile(graph, obj, whole, T0)


def test_jobs_share_the_strings_they_hold_alike() -> None:
    _, obj, root = pipeline()
    a, b = (slim(json.loads(json.dumps(as_the_api_returns_it(obj, root, "/ok")))) for _ in "ab")
    owner_a, owner_b = (j["metadata"]["ownerReferences"][0]["uid"] for j in (a, b))
    assert owner_a is owner_b
    message_a, message_b = (j["status"]["conditions"][0]["message"] for j in (a, b))
    assert message_a is message_b
