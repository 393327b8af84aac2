"""The ``Pipeline`` object (``k8sco.io/v1alpha1``): spec from a tree, and the compact status
records the controller writes.

Pure. The spec carries everything the controller needs to render each Job exactly as
``k8sco render`` prints it: the serialised tree, the image override, the references of built
images, the code root and the k8sco version that wrote it.

The tree travels as JSON in ``spec.tree`` while it is at most :data:`TREE_INLINE_MAX` bytes,
readable with ``kubectl get -o yaml``; above that as gzip + base64 in ``spec.treeGzip``
(a 10,000-node pipeline of native-function calls is about 1.3 MB of JSON and about 90 KB
compressed); above :data:`~k8sco.render.overflow.TREE_SPEC_MAX` in tree ConfigMaps that
``spec.treeRef`` describes (:mod:`k8sco.render.overflow`: etcd refuses objects over
1.5 MiB, and the Pipeline keeps under 1 MiB, status included). Trees are read back within
the limits of :mod:`k8sco.render.limits`, and rendered only within them.

Versions: ``spec.schemaVersion`` is the lowest version of this format that can read the
spec: 1 for a tree in the spec (also when the field is absent: Pipelines written before it
existed), 2 for a tree in ConfigMaps. A reader that knows fewer versions
(:data:`SCHEMA_VERSION`) refuses the spec naming both, so an old controller fails such a
Pipeline with a clear message instead of misreading it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import gzip
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from k8sco._version import __version__
from k8sco.bulk import collector_paused
from k8sco.engine import EXEC, Graph, NodeState, State
from k8sco.errors import PipelineError
from k8sco.lazy import refuse_on_cluster
from k8sco.render import limits, names, overflow
from k8sco.render.constants import (
    API_VERSION,
    CODE_ROOT,
    KIND,
    LABEL_MANAGED_BY,
    MANAGED_BY,
)
from k8sco.render.group import group_job, member_heads
from k8sco.render.jobs import Parts, check_namespace, exec_settings, job, render_job
from k8sco.tree import SERIAL_FORMAT, Exec, Node

TREE_INLINE_MAX = 64 * 1024  # bytes of JSON above which the tree is compressed
SCHEMA_VERSION = 2  # the newest spec format this k8sco reads and writes (module docstring)


class Phase(str, Enum):
    """``status.phase``: what the root node's state means for the pipeline as a whole
    (``Killed`` also for a pipeline stopped with ``k8sco stop``)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    KILLED = "Killed"
    SKIPPED = "Skipped"

    def __str__(self) -> str:
        return self.value

    @property
    def finished(self) -> bool:
        return self not in (Phase.PENDING, Phase.RUNNING)


PHASES = tuple(p.value for p in Phase)
_PHASE = {
    State.PENDING: Phase.PENDING,
    State.QUEUED: Phase.PENDING,
    State.RUNNING: Phase.RUNNING,
    State.DONE: Phase.SUCCEEDED,
    State.ERROR: Phase.FAILED,
    State.KILLED: Phase.KILLED,
    State.SKIPPED: Phase.SKIPPED,
}


# --- spec -------------------------------------------------------------------------------------


def pack_tree(root: Node) -> tuple[str, bytes | None]:
    """The tree's JSON, checked against :mod:`~k8sco.render.limits`, and its gzip bytes when
    the JSON is over :data:`TREE_INLINE_MAX` (None otherwise)."""
    with collector_paused():  # half the time at 100,000 nodes otherwise (k8sco.bulk)
        text = root.serialize()
        return text, _packed(text)


@functools.lru_cache(maxsize=1)
def _packed(text: str) -> bytes | None:
    # Cached on the text: `k8sco apply` packs the same tree for the spec and again for its
    # tree ConfigMaps, and at 100,000 nodes the check and the gzip take seconds each.
    data = text.encode("utf-8")
    limits.parse_tree_json(data)
    if len(data) <= TREE_INLINE_MAX:
        return None
    # mtime=0 keeps the bytes a function of the tree alone (the same pipeline renders the
    # same object, and the golden files stay stable).
    return gzip.compress(data, compresslevel=9, mtime=0)


def encode_tree(root: Node, inline_max: int = TREE_INLINE_MAX) -> dict[str, Any]:
    """The spec's tree fields: ``{"tree": json}``, ``{"treeGzip": base64}`` when the JSON is
    over ``inline_max``, or ``{"treeRef": ...}`` with ``schemaVersion`` 2 when even that is
    over :data:`~k8sco.render.overflow.TREE_SPEC_MAX` (the bytes go into tree ConfigMaps:
    :func:`tree_configmaps`). PipelineError for a tree over the limits."""
    text, packed = pack_tree(root)
    if packed is None and len(text.encode("utf-8")) > inline_max:
        packed = gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)
    if packed is None:
        return {"tree": text}
    if (len(packed) + 2) // 3 * 4 <= overflow.TREE_SPEC_MAX:
        return {"treeGzip": base64.b64encode(packed).decode("ascii")}
    return {"schemaVersion": 2, "treeRef": overflow.tree_ref(packed)}


def tree_configmaps(pipeline: Mapping[str, Any], root: Node) -> list[dict[str, Any]]:
    """The tree ConfigMaps of a created ``pipeline`` (it has a uid) rendered from ``root``:
    none unless its spec has a ``treeRef``."""
    if "treeRef" not in pipeline["spec"]:
        return []
    _, packed = pack_tree(root)
    assert packed is not None  # a treeRef is only written for a packed tree
    return overflow.tree_configmaps(pipeline, packed)


def check_schema(spec: Mapping[str, Any]) -> int:
    """The spec's schema version; PipelineError naming both versions when this k8sco cannot
    read it."""
    version = spec.get("schemaVersion", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PipelineError(f"the Pipeline's spec.schemaVersion {version!r} is not a version")
    if version > SCHEMA_VERSION:
        raise PipelineError(
            f"the Pipeline's spec is schema version {version}, newer than this k8sco "
            f"({__version__}) reads (up to {SCHEMA_VERSION}): upgrade the k8sco controller "
            "(and CLI), or apply the pipeline with the k8sco version of the controller"
        )
    return version


def decode_tree(spec: Mapping[str, Any], parts: Sequence[bytes] | None = None) -> Node:
    """The tree in a Pipeline's spec (any form; ``parts`` are the gzip bytes of its tree
    ConfigMaps when it has a ``treeRef``); PipelineError if it is unreadable, of a newer
    schema, or over the limits of :mod:`~k8sco.render.limits`."""
    check_schema(spec)
    if isinstance(spec.get("tree"), str):
        return _tree_from_json(spec["tree"])
    packed = spec.get("treeGzip")
    ref = spec.get("treeRef")
    if isinstance(packed, str):
        if len(packed) > limits.MAX_TREE_GZIP * 4 // 3 + 4:
            raise PipelineError("the Pipeline's spec.treeGzip is over the size limit")
        try:
            raw = base64.b64decode(packed, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PipelineError(f"the Pipeline's spec.treeGzip is not gzip+base64: {exc}") from None
    elif isinstance(ref, Mapping):
        if parts is None:
            raise PipelineError("the Pipeline's tree is in ConfigMaps (spec.treeRef): read them")
        raw = overflow.tree_bytes(ref, parts)
    else:
        raise PipelineError("the Pipeline spec has neither 'tree', 'treeGzip' nor 'treeRef'")
    try:
        text = limits.gunzip(raw)
    except PipelineError as exc:
        if isinstance(packed, str) and "not valid gzip" in str(exc):
            raise PipelineError(f"the Pipeline's spec.treeGzip is not gzip+base64: {exc}") from None
        raise
    return _tree_from_json(text)


def _tree_from_json(text: str | bytes) -> Node:
    with collector_paused():  # a million JSON values, then the nodes (k8sco.bulk)
        return _tree_from_data(limits.parse_tree_json(text))


def _tree_from_data(data: dict[str, Any]) -> Node:
    if data.get("k8sco") != SERIAL_FORMAT or not isinstance(data.get("root"), Mapping):
        raise PipelineError(f"not a serialized k8sco tree (format {SERIAL_FORMAT} expected)")
    try:
        return Node.from_dict(data["root"])
    except RecursionError:
        raise PipelineError(f"the tree is nested deeper than {limits.MAX_DEPTH} levels") from None
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        if isinstance(exc, PipelineError):
            raise
        raise PipelineError(f"not a serialized k8sco tree: {exc!r}") from None


def render_pipeline(
    root: Node,
    name: str,
    namespace: str,
    image: str | None = None,
    uid: str | None = None,
    image_refs: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Pipeline object for the tree ``root``.

    ``image`` is the image of every node when given (otherwise each node's ``image``
    parameter); ``image_refs`` are built images by :func:`~k8sco.render.jobs.image_key`;
    ``uid`` goes into ``metadata.uid`` when the object exists already.
    """
    names.check_pipeline_name(name)
    check_namespace(namespace)
    refuse_on_cluster(root)
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {LABEL_MANAGED_BY: MANAGED_BY},
    }
    if uid is not None:
        metadata["uid"] = uid
    exec_nodes = sum(1 for node in root.stream() if isinstance(node, Exec))
    spec: dict[str, Any] = {
        "schemaVersion": 1,
        "k8scoVersion": __version__,
        "codeRoot": CODE_ROOT,
        "execNodes": exec_nodes,
    }
    if image is not None:
        spec["image"] = image
    if image_refs:
        spec["images"] = dict(sorted(image_refs.items()))
    spec.update(encode_tree(root))
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def job_for(
    pipeline: Mapping[str, Any],
    root: Node,
    node_path: str,
    secret_keys: Sequence[str] = (),
    *,
    allow_docker: bool = False,
) -> dict[str, Any]:
    """The Job of ``node_path`` for a Pipeline as read from the cluster (``root`` is
    :func:`decode_tree` of its spec, decoded once by the caller): what the controller
    creates, identical to what ``k8sco render`` printed for it but for one
    ``secretKeyRef`` entry per key of the namespace's Secret (``secret_keys``, which only
    the cluster knows: k8sco.secrets)."""
    meta, spec = pipeline["metadata"], pipeline["spec"]
    return render_job(
        root,
        node_path,
        meta["name"],
        meta["namespace"],
        image=spec.get("image"),
        owner_uid=meta.get("uid"),
        image_refs=spec.get("images"),
        secret_keys=secret_keys,
        allow_docker=allow_docker,
    )


def render_all(
    root: Node,
    name: str,
    namespace: str,
    image: str | None = None,
    uid: str | None = None,
    image_refs: Mapping[str, str] | None = None,
    *,
    allow_docker: bool = False,
) -> list[dict[str, Any]]:
    """The Pipeline, then the Job of every Exec node in tree order (the nodes of a shared
    container, ``container_reuse_context=NEW``: their group's one Job, after the others).

    The Jobs share the parts that are the same for many nodes (see
    :class:`~k8sco.render.jobs.Parts`): treat them as read-only. ``render_job`` gives a Job
    of its own.

    Skipped nodes (``skip=True`` on them or an ancestor) have no Job: the controller never
    creates one, so neither does the rendering. Every Job is rendered before anything is
    returned, so a bad node fails the whole rendering, naming the node.
    """
    with collector_paused():  # millions of small dicts (k8sco.bulk says why)
        docs = [render_pipeline(root, name, namespace, image, uid, image_refs)]
        refs = image_refs or {}
        nodes = list(exec_settings(root))
        grouped = member_heads(root, (path for _, path, _ in nodes))
        heads = list(dict.fromkeys(grouped.values()))  # in tree order
        if grouped:
            nodes = [n for n in nodes if n[1] not in grouped]
        job_names = names.check_unique(name, [*(path for _, path, _ in nodes), *heads])
        parts = Parts(share=True)
        docs.extend(
            job(
                node.command,
                path,
                job_names[path],
                s,
                name,
                namespace,
                image,
                uid,
                refs,
                parts,
                allow_docker=allow_docker,
            )
            for node, path, s in nodes
        )
        docs.extend(
            group_job(root, h, name, namespace, image, uid, refs, parts, allow_docker=allow_docker)
            for h in heads
        )
        return docs


# --- status -----------------------------------------------------------------------------------


def phase(root_state: State) -> Phase:
    """``status.phase`` for the state of the root node."""
    return _PHASE[root_state]


def timestamp(seconds: float) -> str:
    """RFC 3339 in UTC to the second, as Kubernetes writes times: ``2026-01-02T03:04:05Z``."""
    moment = dt.datetime.fromtimestamp(int(seconds), tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> float:
    """Seconds since the epoch of a Kubernetes time: ``2026-01-02T03:04:05Z``, also with
    fractional seconds (MicroTime) or an explicit offset."""
    value = text[:-1] + "+00:00" if text.endswith("Z") else text  # "Z" parses from 3.11 on
    return dt.datetime.fromisoformat(value).timestamp()


def node_record(rec: NodeState, t0: float) -> dict[str, Any] | None:
    """The compact ``status.nodes`` record of one Exec node; None for a node never touched.

    Keys (short because a 10,000-node pipeline has 10,000 of them): ``s`` state; ``a``
    attempts when more than one; ``t``/``f`` start and finish in whole seconds after
    ``status.startTime`` (``t0``); ``x`` exit code (left out when 0 for a done node and when
    unknown for the others); ``r`` reason; after retries by callback, ``c`` their count,
    ``h`` a summary of each earlier attempt and ``m`` the memory (bytes) of this one when
    changed. :func:`node_state` reads it back.
    """
    if rec == NodeState():
        return None
    out: dict[str, Any] = {"s": rec.state.value}
    if rec.attempts != (1 if rec.started is not None else 0):
        out["a"] = rec.attempts
    if rec.started is not None:
        out["t"] = round(rec.started - t0)
    if rec.finished is not None:
        out["f"] = round(rec.finished - t0)
    if rec.exit_code is not None and rec.exit_code != (0 if rec.state is State.DONE else None):
        out["x"] = rec.exit_code
    if rec.reason:
        out["r"] = overflow.clip_reason(rec.reason)
    if rec.retried:  # attempts by callback (k8sco.reconcile.callbacks): c, m, h
        out["c"] = rec.retried
        out["h"] = [
            {**h, "r": overflow.clip_reason(str(h["r"]))} if h.get("r") else dict(h)
            for h in rec.history
        ]
    if rec.mem is not None:
        out["m"] = rec.mem
    return out


def node_state(record: Mapping[str, Any], t0: float) -> NodeState:
    """The NodeState a :func:`node_record` stands for (times to the second)."""
    state = State(record["s"])
    started = t0 + record["t"] if "t" in record else None
    default_exit = 0 if state is State.DONE else None
    return NodeState(
        state=state,
        attempts=int(record.get("a", 1 if started is not None else 0)),
        started=started,
        finished=t0 + record["f"] if "f" in record else None,
        exit_code=record.get("x", default_exit),
        reason=record.get("r"),
        retried=int(record.get("c", 0)),
        mem=record.get("m"),
        history=tuple(h for h in record.get("h") or () if isinstance(h, Mapping)),
    )


def recorded_states(graph: Graph, status: Mapping[str, Any]) -> dict[str, NodeState]:
    """The Exec states a Pipeline's ``status`` records, by path (the inverse of
    :func:`render_status`'s ``nodes``). Records this version cannot read are left out: the
    Jobs still tell the truth about their nodes."""
    start = status.get("startTime")
    t0 = parse_timestamp(start) if start else 0.0
    out: dict[str, NodeState] = {}
    for key, record in (status.get("nodes") or {}).items():
        if key.isdigit() and int(key) < len(graph.paths) and isinstance(record, Mapping):
            try:
                out[graph.paths[int(key)]] = node_state(record, t0)
            except (KeyError, ValueError, TypeError):
                continue
    return out


def render_status(
    graph: Graph,
    recorded: Mapping[str, NodeState],
    states: Mapping[str, State],
    start_time: float | None,
    completion_time: float | None = None,
    observed_generation: int | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """The Pipeline's ``status`` from the engine's view: ``recorded`` Exec states by path,
    ``states`` every node's state (``Evaluation.states``), times in seconds since the epoch.

    ``status.nodes`` is keyed by the node's pre-order index in ``graph`` (root 0), which is
    fixed for a given spec; only Exec nodes that have been touched appear.
    """
    counts = {s.value: 0 for s in State}
    nodes: dict[str, Any] = {}
    t0 = start_time or 0.0
    for i, (path, kind) in enumerate(zip(graph.paths, graph.kinds)):
        if kind != EXEC:
            continue
        counts[states[path].value] += 1
        rec = recorded.get(path)
        record = node_record(rec, t0) if rec is not None else None
        if record is not None:
            nodes[str(i)] = record
    total = sum(counts.values())
    finished = sum(counts[s.value] for s in State if s.finished)
    out: dict[str, Any] = {
        "phase": phase(states["/"]),
        "progress": f"{finished}/{total}",
        "counts": counts,
    }
    if observed_generation is not None:
        out["observedGeneration"] = observed_generation
    if start_time is not None:
        out["startTime"] = timestamp(start_time)
    if completion_time is not None:
        out["completionTime"] = timestamp(completion_time)
    if message:
        out["message"] = message
    out["nodes"] = nodes
    return out


__all__ = [
    "PHASES",
    "TREE_INLINE_MAX",
    "Phase",
    "decode_tree",
    "encode_tree",
    "job_for",
    "node_record",
    "node_state",
    "pack_tree",
    "parse_timestamp",
    "phase",
    "recorded_states",
    "render_all",
    "render_pipeline",
    "render_status",
    "timestamp",
    "tree_configmaps",
]
