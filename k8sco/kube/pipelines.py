"""Pipelines on a cluster: create, read, list, stop, rerun, control, delete; pods and logs.

What the CLI does to a cluster, one function per verb, each one request or a short
sequence of them. Errors arrive as k8sco exceptions from :mod:`k8sco.kube.client` and are
given a user's words here when the context says more (a missing CRD, a missing pipeline).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

from k8sco import controls
from k8sco.controls import Control
from k8sco.errors import ClusterError, Conflict, NotFound, UsageError
from k8sco.kube.client import BACKGROUND, CORE, JOBS, MERGE_PATCH, PIPELINES, Cluster
from k8sco.render.constants import CRD_NAME, LABEL_PIPELINE, PLURAL

CONTROL_TRIES = 5  # reads and writes of spec.controls before giving up on a busy Pipeline
INSTALL_HINT = (
    "install k8sco into the cluster first: kubectl apply -f manifests/ "
    "(or helm install k8sco charts/k8sco)"
)


def _missing_type(exc: NotFound) -> bool:
    """A 404 that means the Pipeline kind is unknown, not that an object is missing."""
    text = str(exc)
    return "could not find the requested resource" in text or "page not found" in text.lower()


def _pipelines(cluster: Cluster, namespace: str | None = None) -> str:
    return cluster.ns_path(PIPELINES, PLURAL, namespace)


def create(cluster: Cluster, pipeline: dict[str, Any]) -> dict[str, Any]:
    """Create the Pipeline (the one object ``k8sco apply`` creates)."""
    ns = pipeline["metadata"]["namespace"]
    name = pipeline["metadata"]["name"]
    try:
        created: dict[str, Any] = cluster.request("POST", _pipelines(cluster, ns), body=pipeline)
        return created
    except NotFound as exc:
        if _missing_type(exc):
            raise ClusterError(
                f"the cluster at {cluster.host} has no Pipeline resource ({CRD_NAME}): "
                + INSTALL_HINT
            ) from None
        raise ClusterError(f"cannot create pipeline {name} in namespace {ns}: {exc}") from None
    except Conflict:
        existing = _existing(cluster, name)
        if existing is not None and existing.get("spec") == pipeline["spec"]:
            return existing  # our own create, answered with an error after it was applied
        raise UsageError(
            f"pipeline {name} already exists in namespace {ns}: choose another --name, or "
            f"remove it first with k8sco delete {name}"
        ) from None
    except ClusterError as exc:
        raise _explain(exc, f"create pipeline {name} in namespace {ns}") from None


def _existing(cluster: Cluster, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = cluster.request("GET", f"{_pipelines(cluster)}/{name}")
        return found
    except ClusterError:
        return None


def _explain(exc: ClusterError, doing: str) -> ClusterError:
    if exc.status == 403:
        err = ClusterError(f"not allowed to {doing}: {exc}")
    else:
        err = ClusterError(f"cannot {doing}: {exc}")
    err.status, err.reason = exc.status, exc.reason
    return err


def get(cluster: Cluster, name: str) -> dict[str, Any]:
    try:
        found: dict[str, Any] = cluster.request("GET", f"{_pipelines(cluster)}/{name}")
        return found
    except NotFound as exc:
        if _missing_type(exc):
            raise ClusterError(f"the cluster has no Pipeline resource: {INSTALL_HINT}") from None
        raise UsageError(
            f"no pipeline {name!r} in namespace {cluster.namespace} (see k8sco list)"
        ) from None
    except ClusterError as exc:
        raise _explain(exc, f"read pipeline {name}") from None


def list_all(cluster: Cluster) -> list[dict[str, Any]]:
    try:
        items: list[dict[str, Any]] = cluster.request("GET", _pipelines(cluster)).get("items", [])
        return items
    except NotFound as exc:
        if _missing_type(exc):
            raise ClusterError(f"the cluster has no Pipeline resource: {INSTALL_HINT}") from None
        raise
    except ClusterError as exc:
        raise _explain(exc, f"list pipelines in namespace {cluster.namespace}") from None


def listing(cluster: Cluster, everywhere: bool = False) -> dict[str, Any]:
    """The list answer (items and the resourceVersion to watch from) of the namespace's
    Pipelines, or of every namespace's (``k8sco ui``)."""
    try:
        if everywhere:
            found: dict[str, Any] = cluster.request("GET", f"{PIPELINES}/{PLURAL}")
        else:
            found = cluster.request("GET", _pipelines(cluster))
        return found
    except NotFound as exc:
        if _missing_type(exc):
            raise ClusterError(f"the cluster has no Pipeline resource: {INSTALL_HINT}") from None
        raise
    except ClusterError as exc:
        where = "all namespaces" if everywhere else f"namespace {cluster.namespace}"
        raise _explain(exc, f"list pipelines in {where}") from None


def watch(
    cluster: Cluster, resource_version: str, everywhere: bool = False, timeout: int = 60
) -> Iterator[dict[str, Any]]:
    """Changes to the Pipelines :func:`listing` listed, after its ``resource_version``."""
    if everywhere:
        yield from cluster.watch(
            f"{PIPELINES}/{PLURAL}", resource_version=resource_version, selector={}, timeout=timeout
        )
    else:
        yield from cluster.watch(
            _pipelines(cluster), resource_version=resource_version, selector={}, timeout=timeout
        )


def _patch_spec(cluster: Cluster, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    get(cluster, name)  # a clear error for a missing pipeline
    patched: dict[str, Any] = cluster.request(
        "PATCH",
        f"{_pipelines(cluster)}/{name}",
        body={"spec": spec},
        content_type=MERGE_PATCH,
    )
    return patched


def stop(cluster: Cluster, name: str) -> dict[str, Any]:
    """Ask the controller to kill the running nodes; the record stays."""
    return _patch_spec(cluster, name, {"stop": True})


def rerun(cluster: Cluster, name: str, path: str = "/") -> dict[str, Any]:
    """Ask the controller to run failed and killed nodes under ``path`` again."""
    return _patch_spec(
        cluster, name, {"stop": False, "rerun": {"path": path, "token": uuid.uuid4().hex}}
    )


def control(cluster: Cluster, name: str, ctl: Control) -> dict[str, Any]:
    """Append a live control (reset, skip, unskip, modify; k8sco.controls) to the Pipeline's
    ``spec.controls``, which its controller applies once. Checked first against the tree as
    the controller will see it (a bad path or parameter: UsageError, nothing written). The
    list is replaced whole by a merge patch, so the patch carries the resourceVersion it
    was read at: a control appended meanwhile by someone else gives 409, and it is read
    again (kubernetes apimachinery: a resourceVersion in an update is a precondition)."""
    from k8sco.kube.overflow import load_tree

    for _ in range(CONTROL_TRIES):
        found = get(cluster, name)
        controls.check(load_tree(cluster, found), ctl, cluster=True)
        items = controls.spec_controls(found.get("spec") or {})
        if len(items) >= controls.MAX_CONTROLS:
            raise UsageError(
                f"pipeline {name} holds {len(items)} controls already, the most it takes: "
                "apply the pipeline again under a new name"
            )
        entry = dataclasses.replace(ctl, token=ctl.token or uuid.uuid4().hex).to_dict()
        spec: dict[str, Any] = {"controls": [*items, entry]}
        if ctl.action == controls.RESET:
            spec["stop"] = False  # a stopped pipeline's subtree runs again, as with rerun
        body = {"metadata": {"resourceVersion": found["metadata"].get("resourceVersion")}}
        body["spec"] = spec
        try:
            patched: dict[str, Any] = cluster.request(
                "PATCH", f"{_pipelines(cluster)}/{name}", body=body, content_type=MERGE_PATCH
            )
            return patched
        except Conflict:
            continue
        except ClusterError as exc:
            raise _explain(exc, f"change pipeline {name}") from None
    raise ClusterError(
        f"pipeline {name} kept changing while the control was written ({CONTROL_TRIES} "
        "tries): try again"
    )


def delete(cluster: Cluster, name: str) -> None:
    """Delete the Pipeline; its Jobs and their pods follow through ownerReferences."""
    try:
        cluster.request("DELETE", f"{_pipelines(cluster)}/{name}", body=BACKGROUND)
    except NotFound:
        raise UsageError(f"no pipeline {name!r} in namespace {cluster.namespace}") from None


def jobs(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.request(
        "GET",
        cluster.ns_path(JOBS, "jobs"),
        query={"labelSelector": f"{LABEL_PIPELINE}={name}"},
    ).get("items", [])
    return items


def pods_of_job(cluster: Cluster, job: str) -> list[dict[str, Any]]:
    """The Job's pods, newest first."""
    items: list[dict[str, Any]] = cluster.request(
        "GET", cluster.ns_path(CORE, "pods"), query={"labelSelector": f"job-name={job}"}
    ).get("items", [])
    items.sort(key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
    return items


def logs(cluster: Cluster, pod: str, follow: bool = False) -> Iterator[bytes]:
    """The pod's log, line by line (following it until the pod ends when ``follow``)."""
    path = f"{cluster.ns_path(CORE, 'pods')}/{pod}/log"
    if follow:
        yield from cluster.stream(path, {"follow": "true"})
        return
    text = cluster.request("GET", path, raw=True)
    for line in str(text or "").splitlines():
        yield line.encode()


def not_started(pod: dict[str, Any]) -> str | None:
    """Why the pod's container has no log: it is waiting to start (ErrImagePull,
    ContainerCreating...) or could not start at all (StartError: its command is not in the
    image). None when it ran."""
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or ():
        state = cs.get("state") or {}
        waiting = state.get("waiting")
        if waiting and not (cs.get("lastState") or {}).get("terminated"):
            return _reason(waiting, "its container has not started")
        ended = state.get("terminated") or {}
        if ended.get("reason") in ("StartError", "ContainerCannotRun"):
            return _reason(ended, "its container could not start")
    if not status.get("containerStatuses"):
        for cond in status.get("conditions") or ():
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                return _reason(cond, "its pod is not scheduled")
        return "its container has not started"
    return None


def _reason(state: dict[str, Any], what: str) -> str:
    reason, message = state.get("reason") or "", " ".join(str(state.get("message") or "").split())
    detail = ": ".join(x for x in (reason, message) if x)
    return f"{what} ({detail})" if detail else what
