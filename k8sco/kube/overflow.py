"""Reading and writing a Pipeline's overflow ConfigMaps (:mod:`k8sco.render.overflow` says
what goes there and why).

- :func:`create_tree`: ``k8sco apply`` writes the tree ConfigMaps right after the Pipeline;
  when that fails it deletes the Pipeline again, so nothing is left half-created.
- :func:`load_tree`: the tree of a Pipeline, reading its tree ConfigMaps when it has some.
  Only ConfigMaps owned by the Pipeline's uid count (an older Pipeline's may still exist);
  while one is missing the tree is :class:`TreePending`, for at most :data:`TREE_WAIT`
  seconds after the Pipeline's creation.
- :class:`StatusStore`: the controller's side of the status ConfigMaps: :meth:`view` gives
  the Pipeline with its whole status (what :func:`k8sco.reconcile.reconcile` reads),
  :meth:`store` turns the reconciliation's status patch into writes of the ConfigMaps whose
  content changed and the patch of the Pipeline itself (guarded by the ConfigMaps'
  resourceVersions, so two controllers briefly leading at once cannot lose a record).
- :func:`read_status`: the same whole status for readers (``k8sco status``, ``--wait``).

A status ConfigMap that the Pipeline lists but that cannot be found means node records
are lost; the Pipeline is then failed (PipelineError) rather than run again from a partial
record, since a node whose record is lost could run a second time.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from k8sco import controls, lazy
from k8sco.errors import ClusterError, Conflict, NotFound, PipelineError
from k8sco.kube.client import BACKGROUND, CORE, PIPELINES
from k8sco.render import overflow
from k8sco.render.constants import PLURAL
from k8sco.render.pipeline import check_schema, decode_tree, parse_timestamp, tree_configmaps
from k8sco.tree import Node

TREE_WAIT = 600.0  # seconds after its creation a Pipeline's tree ConfigMaps may be missing
_CACHE_MAX = 2000  # status ConfigMaps the controller keeps in memory, least recently used out


class Api(Protocol):
    """The requests made here (:class:`k8sco.kube.client.Cluster` is one)."""

    def request(self, method: str, path: str, *, body: Any = None) -> Any: ...

    def ns_path(self, group_path: str, plural: str, namespace: str | None = None) -> str: ...


class TreePending(ClusterError):
    """The Pipeline's tree ConfigMaps are not all there yet (``k8sco apply`` is writing
    them); retried."""

    retryable = True


def _configmaps(cluster: Api, namespace: str) -> str:
    return cluster.ns_path(CORE, "configmaps", namespace)


def create_tree(cluster: Api, created: Mapping[str, Any], root: Node) -> int:
    """Create the tree ConfigMaps of the Pipeline ``created`` (as the API returned it);
    how many. On failure the Pipeline is deleted (its ConfigMaps follow it) and the error
    raised."""
    meta = created["metadata"]
    bodies = tree_configmaps(created, root)
    try:
        for body in bodies:
            try:
                cluster.request("POST", _configmaps(cluster, meta["namespace"]), body=body)
            except Conflict:  # ours when an earlier try got an error after it was written
                name = body["metadata"]["name"]
                found = cluster.request("GET", f"{_configmaps(cluster, meta['namespace'])}/{name}")
                if not overflow.owned_by(found, meta["uid"]):
                    raise
    except ClusterError as exc:
        with contextlib.suppress(ClusterError):  # the first error is the one to report
            cluster.request(
                "DELETE",
                f"{cluster.ns_path(PIPELINES, PLURAL, meta['namespace'])}/{meta['name']}",
                body=BACKGROUND,
            )
        raise ClusterError(
            f"cannot create the tree ConfigMaps of pipeline {meta['name']} (so it was deleted "
            f"again): {exc}; the user needs 'create' on configmaps in {meta['namespace']}"
        ) from None
    return len(bodies)


def load_tree(cluster: Api, pipeline: Mapping[str, Any], now: float | None = None) -> Node:
    """The tree of ``pipeline`` (as read from the cluster), with the co.Lazy expansions its
    status records spliced in (k8sco.lazy.expand: ``status.nodes`` is keyed by this tree).
    TreePending while a tree ConfigMap is missing, PipelineError once it has been missing
    for :data:`TREE_WAIT` seconds or when the tree is invalid."""
    from k8sco.kube import lazystore  # reads the generated trees kept in ConfigMaps

    root = lazy.expand(
        load_spec_tree(cluster, pipeline, now),
        pipeline.get("status"),
        lazystore.loader(cluster, pipeline),
    )
    # The live controls' skips and modifications (k8sco.controls), for every reader alike.
    return controls.overridden(root, controls.spec_controls(pipeline.get("spec") or {}))


def load_spec_tree(cluster: Api, pipeline: Mapping[str, Any], now: float | None = None) -> Node:
    """The tree of ``pipeline``'s spec, without its Lazy expansions (:func:`load_tree`)."""
    spec = pipeline.get("spec") or {}
    check_schema(spec)  # a newer spec may keep its tree elsewhere: say so, read nothing
    ref = spec.get("treeRef")
    if not isinstance(ref, Mapping) or "tree" in spec or "treeGzip" in spec:
        return decode_tree(spec)
    meta = pipeline["metadata"]
    uid = meta.get("uid", "")
    count = ref.get("parts")
    if not isinstance(count, int) or not 0 < count <= overflow.MAX_TREE_PARTS:
        raise PipelineError("the Pipeline's spec.treeRef.parts is out of range")
    parts: list[bytes] = []
    for i in range(count):
        name = overflow.tree_configmap_name(meta["name"], uid, i)
        try:
            cm = cluster.request("GET", f"{_configmaps(cluster, meta['namespace'])}/{name}")
        except NotFound:
            cm = None
        if cm is None or not overflow.owned_by(cm, uid):
            created = meta.get("creationTimestamp")
            age = (now if now is not None else time.time()) - (
                parse_timestamp(created) if created else 0.0
            )
            if age > TREE_WAIT:
                raise PipelineError(
                    f"the Pipeline's tree ConfigMap {name} is missing "
                    f"{int(age)}s after its creation: delete the pipeline and apply it again"
                ) from None
            raise TreePending(f"waiting for the tree ConfigMap {name}")
        try:
            parts.append(base64.b64decode((cm.get("binaryData") or {}).get(overflow.TREE_KEY, "")))
        except (binascii.Error, ValueError):
            raise PipelineError(f"the tree ConfigMap {name} is not base64") from None
    return decode_tree(spec, parts)


class StatusStore:
    """The status ConfigMaps as the controller sees them: read once, then kept in memory
    (bounded) with their resourceVersions, and written only when their content changes."""

    def __init__(self, cluster: Api) -> None:
        self.cluster = cluster
        # (namespace, ConfigMap name) -> (resourceVersion, records)
        self._cache: OrderedDict[tuple[str, str], tuple[str, dict[str, Any]]] = OrderedDict()
        # The controller's workers use it for different Pipelines at once: one LRU for all.
        self._lock = threading.Lock()
        self.writes = 0

    def _get(
        self, namespace: str, name: str, uid: str, want: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """The ConfigMap's resourceVersion and records: the copy in memory unless the
        Pipeline's status records another digest (``want``) for it."""
        key = (namespace, name)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
        if found is not None and (want is None or overflow.digest(found[1]) == want):
            return found
        try:
            cm = self.cluster.request("GET", f"{_configmaps(self.cluster, namespace)}/{name}")
        except NotFound:
            cm = None
        if cm is None or not overflow.owned_by(cm, uid):
            raise PipelineError(
                f"the Pipeline's status ConfigMap {name} is gone, and with it the record of "
                "some of its nodes: delete the pipeline and apply it again"
            )
        found = (cm["metadata"].get("resourceVersion", ""), overflow.shard_records(cm))
        self._put(key, found)
        return found

    def _put(self, key: tuple[str, str], value: tuple[str, dict[str, Any]]) -> None:
        with self._lock:
            self._cache[key] = value
            self._cache.move_to_end(key)
            while len(self._cache) > _CACHE_MAX:
                self._cache.popitem(last=False)

    def _shards(self, pipeline: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
        meta = pipeline["metadata"]
        status = pipeline.get("status") or {}
        digests = overflow.digests_of(status)
        return {
            k: self._get(
                meta["namespace"],
                overflow.status_configmap_name(meta["name"], meta.get("uid", ""), k),
                meta.get("uid", ""),
                digests.get(k, ""),
            )[1]
            for k in overflow.shards_of(status)
        }

    def view(self, pipeline: Mapping[str, Any]) -> dict[str, Any]:
        """``pipeline`` with its whole status: ``status.nodes`` holds every record."""
        status = pipeline.get("status")
        if not status or not overflow.level_of(status):
            return dict(pipeline)
        return {**pipeline, "status": overflow.join(status, self._shards(pipeline))}

    def store(self, pipeline: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
        """Write what ``patch`` (a merge patch of the whole status, as :meth:`view` shows it)
        changes in the status ConfigMaps; the merge patch for the Pipeline's own status
        (empty when it does not change)."""
        stored = pipeline.get("status") or {}
        full = overflow.apply_patch(overflow.join(stored, self._shards(pipeline)), patch)
        fixed = overflow.json_size({k: v for k, v in pipeline.items() if k != "status"})
        inline, shards = overflow.split(full, fixed, stored)
        for k, records in sorted(shards.items()):
            self._write(pipeline, k, records, stored)
        return overflow.merge_patch(stored, inline)

    def store_changes(
        self,
        pipeline: Mapping[str, Any],
        full: Mapping[str, Any],
        changed: Iterable[str],
        layout: overflow.Layout | None,
        spec_bytes: int,
    ) -> tuple[dict[str, Any], overflow.Layout]:
        """:meth:`store` for a caller that keeps the whole new status (``full``), which
        records changed in it since the last call (``changed``, by index) and the
        :class:`~k8sco.render.overflow.Layout` this returned then (None the first time), all
        of it for ``pipeline`` as it stands now (``spec_bytes``: its spec's JSON size): the
        merge patch for the Pipeline's status, and the layout to pass next time. Costs the
        changed records and their shards, except when the layout is built (or the level
        goes up)."""
        stored = pipeline.get("status") or {}
        fixed = overflow.fixed_size(pipeline, spec_bytes)
        answer = layout.update(full, changed, fixed) if layout is not None else None
        if layout is None or answer is None:
            layout = overflow.Layout(full, fixed, stored)
            patch, dirty = overflow.merge_patch(stored, layout.inline), set(layout.shards)
        else:
            _, patch, dirty = answer
        for k in sorted(dirty):
            self._write(pipeline, k, layout.shards[k], stored)
        return patch, layout

    def _write(
        self,
        pipeline: Mapping[str, Any],
        k: int,
        records: dict[str, Any],
        stored: Mapping[str, Any],
    ) -> None:
        """Write status shard ``k`` unless the copy in memory already holds ``records``."""
        meta = pipeline["metadata"]
        ns, uid = meta["namespace"], meta.get("uid", "")
        name = overflow.status_configmap_name(meta["name"], uid, k)
        with self._lock:
            cached = self._cache.get((ns, name))
        if cached is None or cached[1] != records:
            body = overflow.configmap(pipeline, name, "status", overflow.shard_content(records))
            try:
                if cached is None and k not in overflow.shards_of(stored):
                    try:
                        done = self.cluster.request(
                            "POST", _configmaps(self.cluster, ns), body=body
                        )
                    except Conflict:  # written by an earlier life of this controller
                        rv, _ = self._get(ns, name, uid)
                        body["metadata"]["resourceVersion"] = rv
                        done = self.cluster.request(
                            "PUT", f"{_configmaps(self.cluster, ns)}/{name}", body=body
                        )
                else:
                    rv = cached[0] if cached is not None else self._get(ns, name, uid)[0]
                    body["metadata"]["resourceVersion"] = rv
                    done = self.cluster.request(
                        "PUT", f"{_configmaps(self.cluster, ns)}/{name}", body=body
                    )
            except Conflict:
                with self._lock:
                    self._cache.pop((ns, name), None)  # read again on the next reconciliation
                raise
            with self._lock:
                self.writes += 1
            self._put((ns, name), (done["metadata"].get("resourceVersion", ""), dict(records)))


def read_status(cluster: Api, pipeline: Mapping[str, Any]) -> dict[str, Any]:
    """``pipeline`` with its whole status, status ConfigMaps read (for ``k8sco status``)."""
    return StatusStore(cluster).view(pipeline)


__all__ = [
    "TREE_WAIT",
    "StatusStore",
    "TreePending",
    "create_tree",
    "load_spec_tree",
    "load_tree",
    "read_status",
]
