"""Where the controller keeps the trees co.Lazy generates (k8sco/lazy.py): in the Pipeline's
``status.lazy`` while they fit, otherwise in ConfigMaps the Pipeline owns — the size rule of
:mod:`k8sco.render.overflow` (the Pipeline within :data:`~k8sco.render.overflow.
PIPELINE_BUDGET` at every write, each overflow object within 1 MiB).

- **Inline**, ``{"job": uid, "tree": base64 of the gzip bytes}``, while ``status.lazy`` with
  it stays within :data:`INLINE_MAX` and the Pipeline within its budget with
  :data:`RESERVE` left for the rest of its status. Small expansions cost no extra object,
  and ``kubectl get -o yaml`` shows them.
- **By reference**, ``{"job": uid, "ref": {"parts", "bytes", "sha256"}}`` otherwise: the
  gzip bytes in ``binaryData`` of ``<pipeline>-lazy-<uid tag>-<path tag>-<i>``, at most
  :data:`~k8sco.render.overflow.TREE_PART` bytes each, like the tree ConfigMaps of ``k8sco
  apply``. Readers accept a part only when it is owned by the Pipeline's uid, and the whole
  only when its sha256 is the one the status records.

Crash safety. The ConfigMaps are written in the reconciliation that decides the expansion,
before the status write that references them (Controller.sync writes the status after
Controller._expand returns), so a status never names a ConfigMap that is not there. A
controller killed between the two leaves ConfigMaps that nothing references yet; the next
one reads the same Generate log, compresses the same tree to the same bytes
(k8sco.lazy.compress is deterministic) under the same names, finds them (AlreadyExists),
keeps them when their content is already right and replaces it otherwise. No generated Job
exists before the status write (Controller.sync creates none in that reconciliation), so
none is created twice.

Reruns. Names depend on the Pipeline's uid and the Lazy node's path, not on the content:
a regenerated tree replaces the old one's ConfigMaps (PUT), and parts the new tree does not
use are emptied, so a Lazy node never holds more than its latest tree however often it is
rerun. A ConfigMap is rewritten only once the status no longer references it (the rerun's
write drops the expansion first and the new Generate Job runs after it). Left-overs of a
crash, and everything at the end, go with the Pipeline through their ownerReference, which
is why the controller needs no ``delete`` or ``list`` on ConfigMaps.

Cap. Every expansion costs ``status.lazy`` a reference at least (about 150 bytes), so
``status.lazy`` as a whole is capped at :data:`STATUS_MAX`; a tree that would pass it (or
the Pipeline's budget) fails its Generate node saying so, like a tree over the pipeline's
total node cap (k8sco.lazy.splice).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any, Protocol

from k8sco import lazy
from k8sco.errors import Conflict, NotFound, PipelineError
from k8sco.kube.client import CORE
from k8sco.render import overflow
from k8sco.render.limits import MAX_TREE_GZIP, MIB
from k8sco.tree import Node

# Bytes of status.lazy (as JSON) up to which generated trees are kept inline: the same
# threshold as the spec's tree (overflow.TREE_SPEC_MAX), so that a Pipeline holding both
# still leaves most of its budget to node records.
INLINE_MAX = 256 * 1024
# Bytes status.lazy may take in all (inline trees and references, about 150 bytes each).
STATUS_MAX = 384 * 1024
# What the rest of the status may need once node records have left for status ConfigMaps
# (phase, counts, a message of up to 1 KiB, status.overflow for 100 shards: under 8 KiB).
RESERVE = 32 * 1024
KIND = "lazy"  # the k8sco.io/overflow label of these ConfigMaps
KEY = "tree.gz"  # their binaryData key


class Api(Protocol):
    """The requests made here (:class:`k8sco.kube.client.Cluster` is one)."""

    def request(self, method: str, path: str, *, body: Any = None) -> Any: ...

    def ns_path(self, group_path: str, plural: str, namespace: str | None = None) -> str: ...


def _configmaps(cluster: Api, namespace: str) -> str:
    return cluster.ns_path(CORE, "configmaps", namespace)


def configmap_name(pipeline: str, uid: str, lazy_path: str, part: int) -> str:
    """The name of part ``part`` of the tree generated for the Lazy node at ``lazy_path``."""
    path_tag = hashlib.sha256(lazy_path.encode("utf-8")).hexdigest()[:10]
    return f"{pipeline}-lazy-{overflow.uid_tag(uid)}-{path_tag}-{part}"


def _ref(packed: bytes) -> dict[str, Any]:
    return {
        "parts": max(1, -(-len(packed) // overflow.TREE_PART)),
        "bytes": len(packed),
        "sha256": hashlib.sha256(packed).hexdigest(),
    }


def place(
    cluster: Api,
    pipeline: Mapping[str, Any],
    lazy_path: str,
    job_uid: str,
    tree: Node,
    entries: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The ``status.lazy`` entry for ``tree``, generated for the Lazy node at ``lazy_path``
    by the Generate Job ``job_uid`` of ``pipeline`` (as stored) whose ``status.lazy`` will
    hold ``entries`` besides it. A tree that does not fit inline is written to its
    ConfigMaps first. PipelineError when the expansion would put ``status.lazy`` or the
    Pipeline over its cap; ClusterError when a write fails (the caller tries again)."""
    packed = lazy.compress(tree)
    status = pipeline.get("status") or {}
    fixed = overflow.json_size({k: v for k, v in pipeline.items() if k != "status"})
    rest = overflow.json_size(
        {k: v for k, v in status.items() if k not in ("nodes", "overflow", lazy.STATUS_KEY)}
    )
    room = overflow.PIPELINE_BUDGET - fixed - rest - RESERVE
    inline: dict[str, Any] = {"job": job_uid, "tree": base64.b64encode(packed).decode("ascii")}
    if overflow.json_size({**entries, lazy_path: inline}) <= min(INLINE_MAX, room):
        return inline
    if len(packed) > MAX_TREE_GZIP:
        raise PipelineError(
            f"the generated tree is {len(packed) / MIB:.1f} MiB compressed, over the "
            f"cap of {MAX_TREE_GZIP // MIB} MiB for one tree: generate less"
        )
    ref = _ref(packed)
    entry: dict[str, Any] = {"job": job_uid, "ref": ref}
    used, cap = overflow.json_size({**entries, lazy_path: entry}), min(STATUS_MAX, room)
    if used > cap:
        raise PipelineError(
            f"the generated trees of this pipeline ({len(entries) + 1} expansions) would "
            f"take {used:,} bytes of its status, over the cap of {max(cap, 0):,} bytes that "
            "keeps the Pipeline within its size budget: use fewer Lazy nodes, each "
            "generating more"
        )
    _write(cluster, pipeline, lazy_path, packed, ref["parts"])
    return entry


def _write(
    cluster: Api, pipeline: Mapping[str, Any], lazy_path: str, packed: bytes, parts: int
) -> None:
    meta = pipeline["metadata"]
    ns, uid = meta["namespace"], meta.get("uid", "")
    collection = _configmaps(cluster, ns)
    part = overflow.TREE_PART
    for i in range(parts):
        name = configmap_name(meta["name"], uid, lazy_path, i)
        data = base64.b64encode(packed[i * part : (i + 1) * part]).decode("ascii")
        body = overflow.configmap(pipeline, name, KIND, {"binaryData": {KEY: data}})
        body["metadata"]["annotations"] = {"k8sco.io/lazy-path": lazy_path}
        try:
            cluster.request("POST", collection, body=body)
        except Conflict:  # an earlier life of this controller's, or an earlier run's
            _replace(cluster, ns, name, uid, body)
    # Parts of an earlier, longer tree of this Lazy node: emptied, so that a rerun leaves
    # no stale bytes behind (the status no longer references them).
    for i in range(parts, overflow.MAX_TREE_PARTS):
        name = configmap_name(meta["name"], uid, lazy_path, i)
        try:
            found = cluster.request("GET", f"{collection}/{name}")
        except NotFound:
            break
        if not overflow.owned_by(found, uid) or not (found.get("binaryData") or {}):
            break
        body = overflow.configmap(pipeline, name, KIND, {"binaryData": {}})
        body["metadata"]["resourceVersion"] = found["metadata"].get("resourceVersion", "")
        cluster.request("PUT", f"{collection}/{name}", body=body)


def _replace(cluster: Api, ns: str, name: str, uid: str, body: dict[str, Any]) -> None:
    collection = _configmaps(cluster, ns)
    found = cluster.request("GET", f"{collection}/{name}")
    if not overflow.owned_by(found, uid):
        raise PipelineError(
            f"the ConfigMap {name} exists and is not this Pipeline's: delete it, then rerun "
            "the Lazy node"
        )
    if found.get("binaryData") == body["binaryData"]:
        return  # written by a controller killed before its status write: the same bytes
    body["metadata"]["resourceVersion"] = found["metadata"].get("resourceVersion", "")
    cluster.request("PUT", f"{collection}/{name}", body=body)


def loader(cluster: Api, pipeline: Mapping[str, Any]) -> lazy.Loader:
    """Reads the gzip bytes of a tree that ``pipeline``'s ``status.lazy`` references, for
    k8sco.lazy.expand; PipelineError when a part is missing, not the Pipeline's, or the
    whole does not match the recorded sha256 (nodes would otherwise run from another tree
    than the one their records are keyed by)."""
    meta = pipeline["metadata"]
    ns, uid = meta["namespace"], meta.get("uid", "")

    def load(lazy_path: str, ref: Mapping[str, Any]) -> bytes:
        try:
            count, size, digest = int(ref["parts"]), int(ref["bytes"]), str(ref["sha256"])
        except (KeyError, TypeError, ValueError):
            raise PipelineError(f"status.lazy of {lazy_path}: its ref is malformed") from None
        if not 0 < count <= overflow.MAX_TREE_PARTS or not 0 < size <= MAX_TREE_GZIP:
            raise PipelineError(f"status.lazy of {lazy_path}: its ref is out of range")
        parts: list[bytes] = []
        for i in range(count):
            name = configmap_name(meta["name"], uid, lazy_path, i)
            try:
                cm = cluster.request("GET", f"{_configmaps(cluster, ns)}/{name}")
            except NotFound:
                cm = None
            if cm is None or not overflow.owned_by(cm, uid):
                raise PipelineError(
                    f"the ConfigMap {name} holding the tree generated for {lazy_path} is "
                    "gone: delete the pipeline and apply it again"
                )
            try:
                parts.append(base64.b64decode((cm.get("binaryData") or {}).get(KEY, "")))
            except (binascii.Error, ValueError):
                raise PipelineError(f"the ConfigMap {name} is not base64") from None
        packed = b"".join(parts)
        if len(packed) != size or hashlib.sha256(packed).hexdigest() != digest:
            raise PipelineError(
                f"the ConfigMaps holding the tree generated for {lazy_path} do not match "
                "status.lazy (changed by hand?): rerun the Lazy node"
            )
        return packed

    return load


__all__ = ["INLINE_MAX", "RESERVE", "STATUS_MAX", "configmap_name", "loader", "place"]
