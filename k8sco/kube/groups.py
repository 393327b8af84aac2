"""The controller's side of shared containers (:mod:`k8sco.sequence`): one group Job, one
record per member.

A group Job's members are decided on as if each had a Job of its own
(:func:`k8sco.sequence.member_jobs`); their outcomes come from the pod's termination
message, or, when it could not hold them (over 4 KiB, or never written because the pod was
killed), from the delimiter lines of its log. Both are read once per finished Job (its uid)
with the rights the controller has for co.Lazy already: ``pods`` list, ``pods/log`` get.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from k8sco import sequence
from k8sco.errors import ClusterError
from k8sco.kube.client import CORE
from k8sco.render.constants import ANNOTATION_PATH, CONTAINER_NAME, POD_JOB_UID_LABEL
from k8sco.tree import Node

log = logging.getLogger(__name__)

MAX_CACHED = 4096  # finished group Jobs whose report is kept (a report never changes)


class _Api(Protocol):
    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = ...,
        raw: bool = ...,
    ) -> Any: ...
    def ns_path(self, group_path: str, plural: str, namespace: str | None = None) -> str: ...


class GroupReports:
    """Reports of finished group Jobs, read from their pods once and kept by Job uid."""

    def __init__(self, cluster: _Api) -> None:
        self.cluster = cluster
        self._reports: dict[str, sequence.Report | None] = {}
        self._lock = threading.Lock()  # the controller's workers share it

    def present(self, jobs: Mapping[str, Mapping[str, Any]]) -> bool:
        """Whether any of ``jobs`` is a group's (decided from scratch: the incremental path
        follows Jobs by their own node path)."""
        return any(sequence.is_group_job(job) for job in jobs.values())

    def expand(
        self, root: Node, jobs: Mapping[str, Mapping[str, Any]]
    ) -> Mapping[str, Mapping[str, Any]]:
        """``jobs`` by node path, each group Job turned into its members' (unchanged, and
        not copied, when the Pipeline has none)."""
        if not self.present(jobs):
            return jobs
        by_head: dict[str, Mapping[str, Any]] = {}
        rest: dict[str, Mapping[str, Any]] = {}
        for path, job in jobs.items():
            if not sequence.is_group_job(job):
                rest[path] = job
                continue
            # Filed under its head's path by the watch, under a member's by a create.
            head = ((job.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_PATH)
            if isinstance(head, str) and (head not in by_head or path == head):
                by_head[head] = job
        return {**rest, **sequence.member_jobs(root, by_head, self.report)}

    def rekey(self, root: Node, by_path: Mapping[str, Any]) -> Mapping[str, Any]:
        """``by_path`` (what the controller learnt of Jobs' pods by the Job's node path:
        why a pod cannot start) with a group's entry moved to its first node, the one that
        waits for that pod (unchanged when no entry is a group's)."""
        heads = {p for p in by_path if p in root and sequence.head_of(root[p]) == p}
        if not heads:
            return by_path
        out = dict(by_path)
        for head in heads:
            members = sequence.members(root, head)
            if members:
                out[members[0]] = out.pop(head)
        return out

    def report(self, job: Mapping[str, Any]) -> sequence.Report | None:
        meta = job.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        with self._lock:
            if uid in self._reports:
                return self._reports[uid]
        try:
            found = self._read(meta)
        except ClusterError as exc:  # asked again at the next reconciliation
            log.info("group job %s: cannot read its pod yet (%s)", meta.get("name"), exc)
            return None
        if found is None:
            return None  # no pod (yet, or any more): looked for again, not remembered
        with self._lock:
            if len(self._reports) >= MAX_CACHED:
                self._reports.pop(next(iter(self._reports)))
            self._reports[uid] = found
        return found

    def _read(self, meta: Mapping[str, Any]) -> sequence.Report | None:
        pods_path = self.cluster.ns_path(CORE, "pods", meta.get("namespace"))
        listed = self.cluster.request(
            "GET", pods_path, query={"labelSelector": f"{POD_JOB_UID_LABEL}={meta.get('uid')}"}
        )
        pods = (listed or {}).get("items") or []
        if not pods:
            return None  # gone with its outcomes: the members show the Job's end
        pods.sort(key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
        pod = pods[0]
        report = sequence.pod_report(pod)
        if report is not None:
            return report
        text = self.cluster.request(
            "GET",
            f"{pods_path}/{pod['metadata']['name']}/log",
            query={"container": CONTAINER_NAME},
            raw=True,
        )
        data = text.encode() if isinstance(text, str) else bytes(text or b"")
        return sequence.log_report(data)


__all__ = ["GroupReports"]
