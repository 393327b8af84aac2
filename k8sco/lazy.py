"""``co.Lazy``: a node whose subtree is built while the pipeline runs.

``co.Lazy(func_or_command, *args, **kwargs)`` is, as in Conducto, a ``Serial`` of two nodes::

    Serial                       (the Lazy node)
        Generate  Exec(func_or_command, *args, **kwargs)
        Execute   Parallel()     (empty until Generate has run)

Generate runs the function (through ``k8sco call``, like any native-function node) or the
shell command. It carries ``K8SCO_LAZY=1`` in its env, which tells ``k8sco call`` (and
``co.main``, for a shell command such as ``python gen.py``) to print the returned tree as
one marker line, ``<__k8sco_tree>`` + base64 of its gzipped JSON + ``</__k8sco_tree>``
(Conducto printed ``<__conducto_serialization>...``; compressed, a 10,000-node tree is a
line of about 150 KB instead of 1.5 MB of log). When Generate succeeds, the runner reads
the last such line of its output and *splices* the tree into Execute: Execute takes the
returned node's kind (a returned ``Serial`` runs its children in order) and parameters, and
its children. Generated nodes then inherit image, env and resources from the Lazy node's
ancestors like any other node; a generated tree may hold Lazy nodes of its own.

The marker env var is a node parameter, so the Generate node is recognised in a tree read
back from disk or from a Pipeline (:func:`is_generate`) without any format change.

Where: the local runner expands Lazy nodes (k8sco/local/runner.py), and so does the
Kubernetes controller (k8sco/kube/controller.py ``_expand``): it reads the tree from the
succeeded Generate pod's log, records it in ``status.lazy`` (:func:`pack`; by Lazy path,
with the Generate Job's uid) and works on the spec's tree with the recorded expansions
spliced in, parents first (:func:`expand`: every reader of the Pipeline builds the same tree,
and ``status.nodes``, keyed by pre-order index, is re-keyed in the write that records the
expansion; no generated Job is created before that write has landed). A rerun covering a
Lazy node with a failed or killed node under it drops its expansion and runs its Generate
again. A recorded expansion holds its tree inline (``"tree"``: :func:`pack`) while it fits
in the Pipeline, or a reference (``"ref"``: parts, bytes, sha256 of the gzip bytes) to
ConfigMaps the Pipeline owns (k8sco/kube/lazystore.py says when and how); :func:`expand`
takes a loader for those. ``K8SCO_LAZY_CLUSTER=0`` gives back the refusal of ``k8sco
apply``/``render`` and of the controller (:func:`refuse_on_cluster`).

Pure but for :func:`emit` (which prints): splicing builds a new tree (:func:`splice`), from
which the caller builds a new :class:`k8sco.engine.Graph`; node records are keyed by path,
which splicing does not change for any existing node.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from k8sco.engine import EXEC, Graph
from k8sco.errors import PipelineError, PipelineTypeError, UsageError
from k8sco.tree import SERIAL_FORMAT, Exec, Node, Parallel, Serial

GENERATE, EXECUTE = "Generate", "Execute"
ENV_FLAG = "K8SCO_LAZY"  # in a Generate node's env: print the returned tree
OPEN, CLOSE = "<__k8sco_tree>", "</__k8sco_tree>"
ENV_CLUSTER = "K8SCO_LAZY_CLUSTER"  # "0": the controller refuses Lazy nodes
# status.lazy: {Lazy path: {"job": Generate Job uid, "tree": packed} or {"job": ..., "ref":
# {"parts": n, "bytes": size, "sha256": hex}} (the tree in ConfigMaps: kube/lazystore.py)}
STATUS_KEY = "lazy"
# How much of the end of a Generate node's output is searched for the marker line: the
# largest compressed tree (render.limits.MAX_TREE_GZIP, 16 MiB) as base64, and some.
TAIL_BYTES = 16 * 1024 * 1024 * 4 // 3 + 64 * 1024


def Lazy(
    command_or_func: str | list[str] | Callable[..., Any], *args: Any, **kwargs: Any
) -> Serial:
    """A Serial whose ``Generate`` node runs ``command_or_func(*args, **kwargs)`` and whose
    ``Execute`` node then runs the tree it returned (a ``co.Serial`` or ``co.Parallel``).

    A function must return a Serial or Parallel; a shell command must print one the way
    ``co.main`` does (``python gen.py`` with ``co.main(default=gen)`` does). Node parameters
    of Generate: as for ``co.Exec`` (keywords for a shell command, ``.set()`` otherwise).
    """
    generate = Exec(command_or_func, *args, **kwargs)
    generate.set(env={ENV_FLAG: "1"})
    output = Serial()
    output[GENERATE] = generate
    output[EXECUTE] = Parallel()
    return output


def lazy_py(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Serial:
    """Conducto's name for :func:`Lazy` of a function."""
    if not callable(func):
        raise PipelineTypeError(f"lazy_py: {func!r} is not a function; use lazy_shell")
    return Lazy(func, *args, **kwargs)


def lazy_shell(command: str, env: Mapping[str, str] | None = None, **exec_args: Any) -> Serial:
    """Conducto's name for :func:`Lazy` of a shell command; ``env`` goes on the Lazy node."""
    if callable(command):
        raise PipelineTypeError("lazy_shell: give a shell command; for a function use lazy_py")
    output = Lazy(command, **exec_args)
    if env:
        output.set(env=dict(env))
    return output


# --- recognising ---------------------------------------------------------------------------


def is_lazy(node: Node) -> bool:
    """Whether ``node`` is a Lazy node (a Serial holding a Generate node and its Execute)."""
    kids = node.children
    if not isinstance(node, Serial) or list(kids) != [GENERATE, EXECUTE]:
        return False
    generate = kids[GENERATE]
    env = generate.params.get("env") or {}
    return isinstance(generate, Exec) and env.get(ENV_FLAG) == "1"


def is_generate(root: Node, path: str) -> bool:
    """Whether the node at ``path`` of ``root`` is the Generate node of a Lazy node."""
    if not path.endswith("/" + GENERATE):
        return False
    parent = path[: -len(GENERATE) - 1] or "/"
    return parent in root and is_lazy(root[parent])


def lazy_paths(root: Node) -> list[str]:
    """The paths of the Lazy nodes of ``root``, in tree order."""
    return [node.path for node in root.stream() if is_lazy(node)]


def cluster_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the controller expands Lazy nodes, and ``k8sco apply``/``render`` accept
    them: yes unless ``K8SCO_LAZY_CLUSTER=0`` (which gives the refusal back)."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_CLUSTER, "").strip()
    if value not in ("", "0", "1"):
        raise UsageError(f"{ENV_CLUSTER}={value!r}: give 1 (expand Lazy nodes) or 0 (refuse them)")
    return value != "0"


def refuse_on_cluster(root: Node, enabled: bool | None = None) -> None:
    """PipelineError for a tree with a Lazy node when the cluster does not expand them
    (``enabled``; None: :func:`cluster_enabled`): a Lazy node whose Execute stayed empty
    would pass for done."""
    if cluster_enabled() if enabled is None else enabled:
        return
    found = next((node.path for node in root.stream() if is_lazy(node)), None)
    if found is not None:
        raise PipelineError(
            f"{found}: co.Lazy runs on the local runner only (k8sco run); the Kubernetes "
            "controller does not expand Lazy nodes yet"
        )


# --- the generator's side -------------------------------------------------------------------


def marker(root: Node) -> str:
    """The marker line for the tree ``root``."""
    return OPEN + base64.b64encode(compress(root)).decode("ascii") + CLOSE


def emit(result: object, out: TextIO | None = None) -> str | None:
    """Print the marker line of a generator's ``result``; the problem (one line) instead
    when it is not a Serial or Parallel."""
    if not isinstance(result, (Serial, Parallel)):
        what = type(result).__name__ if not isinstance(result, Node) else result.kind
        return (
            f"the Lazy generator returned {what}, not a co.Serial or co.Parallel: return "
            "the tree to run (annotate the function -> co.Serial)"
        )
    count = sum(1 for _ in result.stream()) - 1
    stream = out or sys.stdout
    stream.write(f"k8sco: generated {count:,} node(s)\n\n{marker(result)}\n")
    stream.flush()
    return None


# --- the runner's side ---------------------------------------------------------------------


def read_tree(output: bytes) -> Node:
    """The tree a Generate node printed (the last marker line of ``output``, the tail of its
    log); PipelineError naming what is wrong, within the limits of render.limits."""
    end = output.rfind(CLOSE.encode())
    start = output.rfind(OPEN.encode(), 0, end if end >= 0 else None)
    if start < 0 or end < 0:
        raise PipelineError(
            "the Lazy generator printed no tree: a function must return a co.Serial or "
            "co.Parallel; a shell command must print one (co.main does, under K8SCO_LAZY=1)"
        )
    body = output[start + len(OPEN) : end]
    try:
        packed = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise PipelineError(
            "the Lazy generator's tree is not base64 (its output is garbled)"
        ) from None
    return from_gzip(packed)


def from_gzip(packed: bytes) -> Node:
    """The tree whose gzipped JSON is ``packed`` (:func:`compress`), checked as
    :func:`read_tree` checks a generator's."""
    from k8sco.render import limits  # the dispatcher never comes here

    try:
        text = limits.gunzip(packed)
        data = limits.parse_tree_json(text)
    except PipelineError as exc:
        raise PipelineError(f"the Lazy generator's tree: {exc}") from None
    if data.get("k8sco") != SERIAL_FORMAT or not isinstance(data.get("root"), Mapping):
        raise PipelineError(
            f"the Lazy generator's tree is not a k8sco tree (format {SERIAL_FORMAT})"
        )
    try:
        tree = Node.from_dict(data["root"])
    except PipelineError as exc:
        raise PipelineError(f"the Lazy generator's tree: {exc}") from None
    except (KeyError, TypeError, AttributeError, ValueError, RecursionError) as exc:
        raise PipelineError(f"the Lazy generator's tree is not valid: {exc!r}") from None
    if not isinstance(tree, (Serial, Parallel)):
        raise PipelineError(
            f"the Lazy generator returned {tree.kind}, not a co.Serial or co.Parallel"
        )
    return tree


def splice(root: Node, lazy_path: str, generated: Node) -> Node:
    """A new tree: ``root`` with ``generated`` put into the Execute node of the Lazy node at
    ``lazy_path``. PipelineError when the result would be over the pipeline's limits (the
    total cap: render.limits) or cannot be built (a name clash, too deep)."""
    from k8sco.render import limits

    lazy = root[lazy_path]
    if not is_lazy(lazy):
        raise PipelineError(f"{lazy_path}: not a Lazy node")
    whole = root.to_dict()
    target = _find(whole, _join(lazy_path, EXECUTE))
    gen = generated.to_dict()
    have = target.get("children", [])
    clash = {n for n, _ in have} & {n for n, _ in gen.get("children", [])}
    if clash:
        raise PipelineError(
            f"{_join(lazy_path, EXECUTE)}: the generated tree has a child named "
            f"{sorted(clash)[0]!r}, and Execute already has one"
        )
    target["type"] = gen["type"]
    params = {**target.get("params", {}), **gen.get("params", {})}
    if params:
        target["params"] = params
    children = have + gen.get("children", [])
    if children:
        target["children"] = children
    data = {"k8sco": SERIAL_FORMAT, "root": whole}
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    added = sum(1 for _ in generated.stream()) - 1
    total = sum(1 for _ in root.stream()) + added
    if total > limits.MAX_NODES:
        raise PipelineError(
            f"the generated tree ({added:,} nodes) would make the pipeline {total:,} nodes, "
            f"over the total cap of {limits.MAX_NODES:,} nodes of one pipeline: generate less"
        )
    size = len(text.encode("utf-8"))
    if size > limits.MAX_TREE_JSON:
        raise PipelineError(
            f"the generated tree would make the pipeline {size / limits.MIB:.1f} MiB as JSON, "
            f"over the total cap of {limits.MAX_TREE_JSON // limits.MIB} MiB of one pipeline: "
            "generate less or shorten its commands"
        )
    limits.check_tree_data(whole)
    return Node.from_dict(whole)


def generated_images(
    images: Mapping[str, str], root: Node, graph: Graph, lazy_path: str
) -> dict[str, str]:
    """``k8sco run --docker``: ``images`` (image by Exec path) with the Lazy node's image for
    each Exec node generated under it, in the spliced ``root`` (``graph`` is its graph).
    Images are built before the run, so a generated node that sets its own is refused."""
    out = dict(images)
    inherited = out[_join(lazy_path, GENERATE)]
    for i in graph.subtree(_join(lazy_path, EXECUTE)):
        path = graph.paths[i]
        if "image" in root[path].params:
            raise PipelineError(
                f"{path}: a generated node sets its own image, and `k8sco run --docker` "
                "builds images before the run: set the image on the Lazy node or above"
            )
        if graph.kinds[i] == EXEC:
            out.setdefault(path, inherited)
    return out


def unexpand(root: Node, lazy_path: str) -> Node:
    """A new tree: ``root`` with the Lazy node at ``lazy_path`` as before its Generate ran
    (Execute an empty Parallel again), for regenerating it."""
    whole = root.to_dict()
    target = _find(whole, _join(lazy_path, EXECUTE))
    target.clear()
    target["type"] = "Parallel"
    return Node.from_dict(whole)


# --- the controller's side -----------------------------------------------------------------


def compress(tree: Node) -> bytes:
    """The gzipped JSON of a generated tree (deterministic: the same tree gives the same
    bytes, so a restarted controller writes the same ConfigMaps again)."""
    return gzip.compress(tree.serialize().encode("utf-8"), compresslevel=6, mtime=0)


def pack(tree: Node) -> str:
    """How a generated tree is kept inline in ``status.lazy``: base64 of its gzipped JSON
    (the marker line's body)."""
    return base64.b64encode(compress(tree)).decode("ascii")


def unpack(text: str) -> Node:
    """The tree :func:`pack` gave, checked as :func:`read_tree` checks a generator's."""
    return read_tree((OPEN + text + CLOSE).encode("ascii", "replace"))


def is_expanded(entry: Mapping[str, Any]) -> bool:
    """Whether a ``status.lazy`` entry records a tree (inline or by reference), rather than
    a Generate Job being deleted (``held``)."""
    return isinstance(entry.get("tree"), str) or isinstance(entry.get("ref"), Mapping)


def expansions(status: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    """``status.lazy``: the recorded expansions by Lazy path (malformed entries left out)."""
    found = (status or {}).get(STATUS_KEY)
    if not isinstance(found, Mapping):
        return {}
    return {
        path: entry
        for path, entry in found.items()
        if isinstance(path, str) and isinstance(entry, Mapping) and is_expanded(entry)
    }


def signature(status: Mapping[str, Any] | None) -> tuple[tuple[str, str, str], ...]:
    """What identifies the working tree besides the spec: each expansion's Lazy path, the
    uid of the Generate Job that printed it and, for a tree kept in ConfigMaps, its hash."""
    return tuple(
        sorted(
            (p, str(e.get("job", "")), str((e.get("ref") or {}).get("sha256", "")))
            for p, e in expansions(status).items()
        )
    )


# Reads the gzip bytes of the tree a status.lazy entry's "ref" names (Lazy path, ref).
Loader = Callable[[str, Mapping[str, Any]], bytes]


def expand(root: Node, status: Mapping[str, Any] | None, load: Loader | None = None) -> Node:
    """The working tree: the spec's ``root`` with the expansions recorded in ``status``
    spliced in, parents first (a nested Lazy node exists only once its parent's expansion is
    in), siblings in path order, so the same status always gives the same tree and the
    same pre-order indices (``status.nodes`` is keyed by them). ``load`` reads the trees
    kept in ConfigMaps (k8sco/kube/lazystore.py ``loader``)."""
    for path, entry in sorted(expansions(status).items(), key=lambda kv: (kv[0].count("/"), kv[0])):
        if path not in root or not is_lazy(root[path]):
            raise PipelineError(
                f"status.lazy names {path}, which is not a Lazy node of the pipeline: "
                "delete the pipeline and apply it again"
            )
        if isinstance(entry.get("tree"), str):
            generated = unpack(str(entry["tree"]))
        elif load is None:
            raise PipelineError(
                f"{path}: its generated tree is in ConfigMaps, and none are read here"
            )
        else:
            generated = from_gzip(load(path, entry["ref"]))
        root = splice(root, path, generated)
    return root


def _find(data: dict[str, Any], path: str) -> dict[str, Any]:
    node = data
    for part in path.split("/"):
        if not part:
            continue
        for name, child in node.get("children", []):
            if name == part:
                node = child
                break
        else:
            raise PipelineError(f"{path}: no such node")
    return node


def _join(path: str, name: str) -> str:
    return path.rstrip("/") + "/" + name


__all__ = [
    "CLOSE",
    "ENV_CLUSTER",
    "ENV_FLAG",
    "EXECUTE",
    "GENERATE",
    "OPEN",
    "STATUS_KEY",
    "Lazy",
    "cluster_enabled",
    "compress",
    "emit",
    "expand",
    "expansions",
    "from_gzip",
    "generated_images",
    "is_expanded",
    "is_generate",
    "is_lazy",
    "lazy_paths",
    "lazy_py",
    "lazy_shell",
    "marker",
    "pack",
    "read_tree",
    "refuse_on_cluster",
    "signature",
    "splice",
    "unexpand",
    "unpack",
]
