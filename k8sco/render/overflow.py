"""What does not fit into the Pipeline object goes into ConfigMaps it owns (pure).

etcd refuses a write over 1.5 MiB (``--max-request-bytes``), and a Pipeline is rewritten on
every status change, so k8sco holds the Pipeline (spec + status + metadata) to
:data:`PIPELINE_BUDGET` at every moment (DESIGN.md §3) and keeps each overflow ConfigMap
under :data:`OBJECT_MAX` (its data is capped at 1 MiB by the API's validation too:
kubernetes/kubernetes pkg/apis/core/validation ``ValidateConfigMap``, ``MaxSecretSize``).
Every overflow ConfigMap carries the Pipeline's labels and an ownerReference to its uid, so
deleting the Pipeline deletes them; its name holds a tag of that uid, so a Pipeline of the
same name applied again while the garbage collector still deletes the old one's ConfigMaps
(asynchronously) never meets them.

Two kinds, and why they are split this way:

- **Tree ConfigMaps**, written once by ``k8sco apply`` right after the Pipeline (the uid is
  needed for the ownerReference). A tree whose compressed form is over
  :data:`TREE_SPEC_MAX` (256 KiB of base64) travels as ``spec.treeRef`` — the number of
  parts, their total size and the sha256 of the gzip bytes — and its gzip bytes in
  ``binaryData`` of ``<pipeline>-tree-<uid tag>-<i>`` (at most :data:`TREE_PART` bytes
  each). The controller waits for them, accepts them only when owned by the Pipeline's uid,
  and checks the hash before decompressing (with the caps of :mod:`k8sco.render.limits`).
  Trees under the budget stay in the spec, readable with ``kubectl get -o yaml``.
- **Status ConfigMaps**, written by the controller only when their content changes. The
  part of the status that grows with the number of nodes is ``status.nodes``; compact
  records (state, attempts, times, exit code: 25-60 bytes) stay in the Pipeline while it
  fits, and the unbounded part, the reasons (API messages, up to :data:`REASON_MAX` bytes),
  leaves first. Levels, chosen by the size the Pipeline would have, and never lowered during
  a run (so a record is never in transit between two objects that are written separately):

  0. everything inline (every small pipeline: no ConfigMap at all);
  1. reasons in status ConfigMaps, compact records inline;
  2. every record in status ConfigMaps; the Pipeline keeps phase, counts, progress, times
     and a message (about 1 KB, plus 30 bytes per status ConfigMap).

  Shard ``k`` holds the records of the nodes with pre-order index in
  ``[k * SHARD_NODES, (k + 1) * SHARD_NODES)``: at most 1,000 records of at most
  :data:`RECORD_MAX` bytes, so a shard stays under 700 KB by construction, and a change to
  one node rewrites one shard. ``status.overflow`` lists the level and the shards written;
  a reader merges ``status.nodes[i]`` with the shard's entry for ``i``. ``status.overflow``
  also holds a digest of each shard, so that the controller's copy in memory is used only
  while it is the one the Pipeline refers to.

How it scales (records of nodes that have started; reasons of "failed 4 times" length): the
Pipeline holds about 45 bytes per node at level 0 and 1 (10,000 finished nodes: 450 KB),
nothing per node at level 2 (1-4 KB in all); the status ConfigMaps hold about 25 bytes
per node at level 1 (the reason) and 45-70 at level 2. With the limits of
:mod:`k8sco.render.limits` (100,000 nodes) that is at most 100 status ConfigMaps and 22 tree
ConfigMaps per pipeline.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from k8sco.errors import PipelineError
from k8sco.render.constants import LABEL_PIPELINE
from k8sco.render.jobs import owner_reference
from k8sco.render.limits import MAX_TREE_GZIP, MIB

OBJECT_MAX = 1 * MIB  # the size every object k8sco writes stays under, as JSON
# What the controller lets the Pipeline grow to: 64 KiB below OBJECT_MAX leaves room for
# what others add to the object (managedFields entries, labels, annotations).
PIPELINE_BUDGET = OBJECT_MAX - 64 * 1024
TREE_SPEC_MAX = 256 * 1024  # bytes of spec.treeGzip (base64) above which the tree overflows
# Raw bytes of gzip per tree ConfigMap: base64 makes them 4/3 larger in the object's JSON.
TREE_PART = (OBJECT_MAX - 16 * 1024) * 3 // 4
MAX_TREE_PARTS = -(-MAX_TREE_GZIP // TREE_PART)  # tree ConfigMaps of the largest tree
SHARD_NODES = 1000  # pre-order indexes per status ConfigMap
REASON_MAX = 512  # bytes of a node's reason, as JSON, kept in its record
MESSAGE_MAX = 1024  # characters of status.message
# A record's JSON without its reason is at most about 90 bytes (an index key and six
# integer fields); with it, this much.
RECORD_MAX = 100 + REASON_MAX
LABEL_OVERFLOW = "k8sco.io/overflow"
TREE_KEY = "tree.gz"  # the binaryData key of a tree ConfigMap
NODES_KEY = "nodes"  # the data key of a status ConfigMap: JSON {index: record}

assert SHARD_NODES * RECORD_MAX < OBJECT_MAX - 64 * 1024  # a shard always fits


def json_size(obj: Any) -> int:
    """Bytes of ``obj`` as compact JSON, as the API server receives it."""
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def clip_reason(reason: str) -> str:
    """``reason`` cut to at most :data:`REASON_MAX` bytes of JSON (API messages can be long)."""
    if len(reason) * 6 + 2 <= REASON_MAX or json_size(reason) <= REASON_MAX:
        return reason
    lo, hi = 0, len(reason)
    while lo < hi:  # the longest prefix that fits with its ellipsis
        mid = (lo + hi + 1) // 2
        if json_size(reason[:mid] + "...") <= REASON_MAX:
            lo = mid
        else:
            hi = mid - 1
    return reason[:lo] + "..."


def uid_tag(uid: str) -> str:
    """A short DNS-safe tag of a Pipeline's uid for its overflow ConfigMaps' names."""
    return hashlib.sha256(uid.encode()).hexdigest()[:10]


def configmap(
    pipeline: Mapping[str, Any], name: str, kind: str, content: Mapping[str, Any]
) -> dict[str, Any]:
    """An overflow ConfigMap of ``pipeline`` (as read back, with its uid): its labels plus
    ``k8sco.io/pipeline`` and ``k8sco.io/overflow: kind``; ``content`` is ``data`` and/or
    ``binaryData``."""
    meta = pipeline["metadata"]
    labels = dict(meta.get("labels") or {})
    labels.update({LABEL_PIPELINE: meta["name"], LABEL_OVERFLOW: kind})
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(meta["name"], meta["uid"])],
        },
        **content,
    }


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    """Whether one of ``obj``'s ownerReferences is the object with ``uid``."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or ()
    return any(ref.get("uid") == uid for ref in refs)


# --- the tree ----------------------------------------------------------------------------


def tree_ref(packed: bytes) -> dict[str, Any]:
    """``spec.treeRef`` for a tree whose gzip bytes are ``packed``."""
    if len(packed) > MAX_TREE_GZIP:
        raise PipelineError(
            f"the tree is {len(packed) / MIB:.1f} MiB compressed, over the limit of "
            f"{MAX_TREE_GZIP // MIB} MiB: split the pipeline or shorten its commands"
        )
    return {
        "parts": max(1, -(-len(packed) // TREE_PART)),
        "bytes": len(packed),
        "sha256": hashlib.sha256(packed).hexdigest(),
    }


def tree_configmap_name(pipeline: str, uid: str, part: int) -> str:
    return f"{pipeline}-tree-{uid_tag(uid)}-{part}"


def tree_configmaps(pipeline: Mapping[str, Any], packed: bytes) -> list[dict[str, Any]]:
    """The tree ConfigMaps of ``pipeline`` (created, with its uid) for the gzip bytes
    ``packed`` its ``spec.treeRef`` describes."""
    ref = pipeline["spec"]["treeRef"]
    if hashlib.sha256(packed).hexdigest() != ref["sha256"]:
        raise PipelineError("the tree does not match the Pipeline's spec.treeRef")
    meta = pipeline["metadata"]
    return [
        configmap(
            pipeline,
            tree_configmap_name(meta["name"], meta["uid"], i),
            "tree",
            {
                "binaryData": {
                    TREE_KEY: base64.b64encode(packed[i * TREE_PART : (i + 1) * TREE_PART]).decode()
                }
            },
        )
        for i in range(ref["parts"])
    ]


def tree_bytes(ref: Mapping[str, Any], parts: Sequence[bytes]) -> bytes:
    """The gzip bytes from the tree ConfigMaps' parts, checked against ``spec.treeRef``."""
    try:
        count, size, digest = int(ref["parts"]), int(ref["bytes"]), str(ref["sha256"])
    except (KeyError, TypeError, ValueError):
        raise PipelineError("the Pipeline's spec.treeRef is malformed") from None
    if not 0 < count <= MAX_TREE_PARTS or not 0 < size <= MAX_TREE_GZIP:
        raise PipelineError(f"the Pipeline's spec.treeRef is out of range ({count} parts)")
    if len(parts) != count or sum(len(p) for p in parts) != size:
        raise PipelineError("the Pipeline's tree ConfigMaps do not add up to spec.treeRef.bytes")
    packed = b"".join(parts)
    if hashlib.sha256(packed).hexdigest() != digest:
        raise PipelineError(
            "the Pipeline's tree ConfigMaps do not match spec.treeRef.sha256 (changed after "
            "apply?): delete the pipeline and apply it again"
        )
    return packed


# --- the status --------------------------------------------------------------------------


def status_configmap_name(pipeline: str, uid: str, shard: int) -> str:
    return f"{pipeline}-status-{uid_tag(uid)}-{shard}"


def level_of(status: Mapping[str, Any]) -> int:
    over = status.get("overflow")
    return int(over.get("level", 0)) if isinstance(over, Mapping) else 0


def shards_of(status: Mapping[str, Any]) -> list[int]:
    """The status ConfigMaps ``status.overflow`` lists, by shard number."""
    over = status.get("overflow")
    shards = over.get("shards") if isinstance(over, Mapping) else None
    return [int(k) for k in shards or () if isinstance(k, int) and k >= 0]


def digest(records: Mapping[str, Any]) -> str:
    """A short digest of a status ConfigMap's records, kept in ``status.overflow.digests``:
    a reader whose copy has another digest reads the ConfigMap again (another controller,
    briefly leading too, may have written it)."""
    text = json.dumps(records, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def digests_of(status: Mapping[str, Any]) -> dict[int, str]:
    """``status.overflow.digests`` by shard number."""
    over = status.get("overflow")
    found = over.get("digests") if isinstance(over, Mapping) else None
    if not isinstance(found, Mapping):
        return {}
    return {int(k): str(v) for k, v in found.items() if isinstance(k, str) and k.isdigit()}


def join(status: Mapping[str, Any], shards: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """The whole status: ``status.nodes`` merged with the records of the status ConfigMaps
    (``shards``: shard number -> ``{index: record or part of one}``), ``overflow`` dropped."""
    out = {k: v for k, v in status.items() if k != "overflow"}
    nodes: dict[str, Any] = dict(status.get("nodes") or {})
    for records in shards.values():
        for index, record in records.items():
            if isinstance(record, Mapping):
                nodes[index] = {**nodes.get(index, {}), **record}
    out["nodes"] = nodes
    return out


def split(
    full: Mapping[str, Any], fixed: int, prior: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """The status to store in the Pipeline and the content of every status ConfigMap, for the
    whole status ``full`` (as :func:`join` gives it) of a Pipeline whose other parts take
    ``fixed`` bytes. The level is the lowest at or above the ``prior`` stored status's that
    keeps the Pipeline within :data:`PIPELINE_BUDGET`; shards it listed stay listed (emptied
    when they hold nothing now)."""
    prior = prior or {}
    prior_level, prior_shards = level_of(prior), shards_of(prior)
    base = {k: v for k, v in full.items() if k not in ("nodes", "overflow")}
    message = base.get("message")
    if isinstance(message, str) and len(message) > MESSAGE_MAX:
        base["message"] = message[: MESSAGE_MAX - 3] + "..."
    nodes: Mapping[str, Mapping[str, Any]] = full.get("nodes") or {}
    for level in range(max(0, min(prior_level, 2)), 3):
        inline, shards = _at_level(nodes, level)
        for k in prior_shards:
            shards.setdefault(k, {})
        status = {**base, "nodes": inline}
        if level:
            status["overflow"] = {
                "level": level,
                "shards": sorted(shards),
                "digests": {str(k): digest(shards[k]) for k in sorted(shards)},
            }
        if level == 2 or fixed + json_size({"status": status}) <= PIPELINE_BUDGET:
            return status, shards
    raise AssertionError("unreachable: level 2 always fits")


def _at_level(
    nodes: Mapping[str, Mapping[str, Any]], level: int
) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    if level == 0:
        return dict(nodes), {}  # records are never changed in place: no copies
    inline: dict[str, Any] = {}
    shards: dict[int, dict[str, Any]] = {}
    for index, record in nodes.items():
        shard = shards.setdefault(int(index) // SHARD_NODES, {})
        if level == 2:
            shard[index] = dict(record)
            continue
        inline[index] = {k: v for k, v in record.items() if k != "r"}
        if "r" in record:
            shard[index] = {"r": record["r"]}
    return inline, shards


class Layout:
    """:func:`split`'s answer for one Pipeline, kept current one changed record at a time:
    the status to store in the Pipeline and the status ConfigMaps' content, with running
    totals of their sizes, so that a reconciliation that changes a few records costs those
    records, not a walk (and a JSON dump) of every one. Built with :func:`split` (``full``:
    the whole status, ``prior``: the status the Pipeline stores); :meth:`update` returns
    None when the level must go up, and the caller builds a new Layout then."""

    def __init__(self, full: Mapping[str, Any], fixed: int, prior: Mapping[str, Any]) -> None:
        self.inline, self.shards = split(full, fixed, prior)
        self.level = level_of(self.inline)
        nodes: dict[str, Any] = self.inline["nodes"]
        self._bytes = sum(_entry_bytes(k, v) for k, v in nodes.items())
        self._digests: dict[int, str] = digests_of(self.inline)

    def update(
        self, full: Mapping[str, Any], changed: Iterable[str], fixed: int
    ) -> tuple[dict[str, Any], dict[str, Any], set[int]] | None:
        """The status to store for ``full`` (the whole status, in which the records of
        ``changed``'s keys changed since the last call), its merge patch from the last one,
        and the shards whose content changed; None when it no longer fits at this level."""
        nodes: dict[str, Any] = self.inline["nodes"]
        whole: Mapping[str, Any] = full.get("nodes") or {}
        node_patch: dict[str, Any] = {}
        dirty: set[int] = set()
        for key in changed:
            record = whole.get(key)
            inline, part = _parts(record, self.level)
            old = nodes.get(key)
            if old != inline:
                if old is not None:
                    self._bytes -= _entry_bytes(key, old)
                if inline is None:
                    del nodes[key]
                    node_patch[key] = None
                else:
                    nodes[key] = inline
                    self._bytes += _entry_bytes(key, inline)
                    node_patch[key] = (
                        merge_patch(old, inline) if isinstance(old, Mapping) else inline
                    )
            if self.level:
                k = int(key) // SHARD_NODES
                if k not in self.shards:  # listed from its first record on, as split does
                    if record is None:
                        continue
                    self.shards[k] = {}
                    dirty.add(k)
                shard = self.shards[k]
                if shard.get(key) != part:
                    if part is None:
                        shard.pop(key, None)
                    else:
                        shard[key] = part
                    dirty.add(k)
        for k in dirty:
            self._digests[k] = digest(self.shards[k])
        base = {k: v for k, v in full.items() if k not in ("nodes", "overflow")}
        message = base.get("message")
        if isinstance(message, str) and len(message) > MESSAGE_MAX:
            base["message"] = message[: MESSAGE_MAX - 3] + "..."
        if self.level:
            base["overflow"] = {
                "level": self.level,
                "shards": sorted(self.shards),
                "digests": {str(k): self._digests[k] for k in sorted(self.shards)},
            }
        nodes_size = 2 + self._bytes + max(len(nodes) - 1, 0)
        size = json_size(base) + len('"nodes":') + nodes_size + (1 if base else 0)
        if self.level < 2 and fixed + len('{"status":}') + size > PIPELINE_BUDGET:
            return None
        old_base = {k: v for k, v in self.inline.items() if k != "nodes"}
        patch = merge_patch(old_base, base)
        if node_patch:
            patch["nodes"] = node_patch
        self.inline = {**base, "nodes": nodes}
        return self.inline, patch, dirty


def _parts(record: Any, level: int) -> tuple[Any, Any]:
    """What of one record stays in the Pipeline and what goes to its shard (None: none)."""
    if not isinstance(record, Mapping):
        return None, None
    if level == 0:
        return record, None
    if level == 2:
        return None, dict(record)
    return {k: v for k, v in record.items() if k != "r"}, (
        {"r": record["r"]} if "r" in record else None
    )


def _entry_bytes(key: str, value: Any) -> int:
    """JSON bytes of one ``"key":value`` entry of an object."""
    return json_size(key) + 1 + json_size(value)


def fixed_size(pipeline: Mapping[str, Any], spec_bytes: int) -> int:
    """JSON bytes of ``pipeline`` without its status (what :func:`split` calls ``fixed``),
    given its spec's (which is the same for a whole generation)."""
    rest = {k: v for k, v in pipeline.items() if k not in ("status", "spec")}
    size = json_size(rest)
    if "spec" in pipeline:
        size += len('"spec":') + spec_bytes + (1 if rest else 0)
    return size


_MISSING = object()


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) from ``old`` to ``new``."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        prev = old.get(key, _MISSING)
        if prev == value:  # most records of a large status: compared in C, not walked
            continue
        if isinstance(value, Mapping) and isinstance(prev, Mapping):
            inner = merge_patch(prev, value)
            if inner:
                patch[key] = inner
        else:
            patch[key] = value
    patch.update((key, None) for key in old if key not in new)
    return patch


def apply_patch(old: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``old`` with the JSON merge patch ``patch`` applied (RFC 7386)."""
    out = dict(old)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            prev = out.get(key)
            out[key] = apply_patch(prev if isinstance(prev, Mapping) else {}, value)
        else:
            out[key] = value
    return out


def shard_content(records: Mapping[str, Any]) -> dict[str, Any]:
    """The ``data`` of a status ConfigMap holding ``records``."""
    return {"data": {NODES_KEY: json.dumps(records, ensure_ascii=False, separators=(",", ":"))}}


def shard_records(cm: Mapping[str, Any]) -> dict[str, Any]:
    """The records a status ConfigMap holds (empty when unreadable)."""
    text = (cm.get("data") or {}).get(NODES_KEY)
    try:
        records = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    return records if isinstance(records, dict) else {}


__all__ = [
    "OBJECT_MAX",
    "PIPELINE_BUDGET",
    "SHARD_NODES",
    "TREE_SPEC_MAX",
    "Layout",
    "apply_patch",
    "clip_reason",
    "configmap",
    "digest",
    "digests_of",
    "fixed_size",
    "join",
    "json_size",
    "level_of",
    "merge_patch",
    "owned_by",
    "shard_content",
    "shard_records",
    "shards_of",
    "split",
    "status_configmap_name",
    "tree_bytes",
    "tree_configmap_name",
    "tree_configmaps",
    "tree_ref",
]
