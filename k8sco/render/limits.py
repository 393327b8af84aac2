"""How large a pipeline may be, and reading a tree without trusting its size (pure).

Anyone allowed to create a Pipeline chooses the bytes the cluster-wide controller decodes,
so nothing in a spec is unpacked or parsed beyond these limits (the controller runs with a
512Mi memory limit; a 1.4 MB ``spec.treeGzip`` can inflate to 1 GiB). The same limits are
checked when a tree is rendered, so ``k8sco apply`` refuses in one line what a controller
would refuse later:

- :data:`MAX_NODES` nodes in a tree (Serial, Parallel and Exec together): 100,000;
- :data:`MAX_DEPTH` levels of nesting below the root: :data:`k8sco.tree.MAX_DEPTH` (100), the
  deepest tree that can be built (checked here first, without recursion, because Python's
  json module recurses once per level of a hostile document);
- :data:`MAX_STRING` bytes in any one string (a command, a name, an env value): 128 KiB, the
  kernel's limit on one argument (``MAX_ARG_STRLEN``, 32 pages: include/uapi/linux/binfmts.h),
  so a longer shell command could not be passed to ``/bin/sh -c`` anyway;
- :data:`MAX_TREE_JSON` bytes of serialised tree: 32 MiB (10,000 nodes with 2 KB commands
  are 21 MB, 100,000 native calls about 13 MB);
- :data:`MAX_TREE_GZIP` bytes of compressed tree: 16 MiB (at most 22 tree ConfigMaps of
  :mod:`k8sco.render.overflow`);
- :data:`MAX_JSON_VALUES` JSON values in the serialised tree: 2,000,000, counted before
  parsing as an upper bound (every ``,``, ``[`` and ``{``, also inside strings). Parsed, a
  value costs up to about 85 bytes (an empty object in a list), so 32 MiB of ``[{},{},...``
  would take 900 MB; real trees have 8-11 values per node (1.1 million at 100,000 nodes).

Decompression streams with a cap on its output and stops at the first byte past
:data:`MAX_TREE_JSON`, so a bomb costs at most that much memory; the JSON is then checked
without recursion before a tree is built from it.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any

from k8sco.errors import PipelineError
from k8sco.tree import MAX_DEPTH

MIB = 1024 * 1024
MAX_NODES = 100_000
MAX_STRING = 128 * 1024
MAX_TREE_JSON = 32 * MIB
MAX_TREE_GZIP = 16 * MIB
MAX_JSON_VALUES = 2_000_000

_CHUNK = 1 * MIB  # decompressed bytes produced per step


def _size(n: int) -> str:
    return f"{n / MIB:.1f} MiB" if n >= MIB else f"{n} bytes"


def gunzip(packed: bytes, limit: int = MAX_TREE_JSON) -> bytes:
    """The one gzip member in ``packed``, decompressed; PipelineError past ``limit`` bytes
    (never more than ``limit`` + 1 MiB is held), on corrupt data or on trailing bytes."""
    if len(packed) > MAX_TREE_GZIP:
        raise PipelineError(
            f"the Pipeline's compressed tree is {_size(len(packed))}, over the limit of "
            f"{_size(MAX_TREE_GZIP)}: split the pipeline"
        )
    inflater = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer, one member
    out = bytearray()
    data = packed
    try:
        while not inflater.eof:
            chunk = inflater.decompress(data, _CHUNK)
            data = inflater.unconsumed_tail
            out += chunk
            if len(out) > limit:
                raise PipelineError(
                    f"the Pipeline's tree decompresses to more than {_size(limit)} (the limit; "
                    f"{_size(len(packed))} compressed): refusing it"
                )
            if not chunk and not data:
                break  # input used up before the end of the stream
    except zlib.error as exc:
        raise PipelineError(f"the Pipeline's compressed tree is not valid gzip: {exc}") from None
    if not inflater.eof:
        raise PipelineError("the Pipeline's compressed tree is truncated")
    if inflater.unused_data:
        raise PipelineError("the Pipeline's compressed tree has data after its end")
    return bytes(out)


def parse_tree_json(text: str | bytes) -> dict[str, Any]:
    """The JSON of a serialised tree, checked against every limit; PipelineError otherwise."""
    if len(text) > MAX_TREE_JSON:
        raise PipelineError(
            f"the tree is {_size(len(text))} as JSON, over the limit of {_size(MAX_TREE_JSON)}: "
            "split the pipeline or shorten its commands"
        )
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    values = raw.count(b",") + raw.count(b"[") + raw.count(b"{")
    if values > MAX_JSON_VALUES:
        raise PipelineError(
            f"the tree has about {values:,} JSON values, over the limit of {MAX_JSON_VALUES:,}: "
            "split the pipeline"
        )
    try:
        data = json.loads(text)
    except RecursionError:
        raise PipelineError(f"the tree is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise PipelineError(f"not a serialized k8sco tree: {exc}") from None
    if not isinstance(data, dict):
        raise PipelineError("not a serialized k8sco tree (a JSON object expected)")
    check_tree_data(data.get("root"))
    return data


def check_tree_data(root: Any) -> None:
    """Count the nodes and check depth and string lengths of a tree as JSON data
    (``Node.to_dict``), iteratively: a hostile tree cannot exhaust the stack here."""
    nodes = 0
    # Strings are most of the values: each is checked where it is met instead of going
    # through the stack (a third of the time of `k8sco apply` at 100,000 nodes otherwise).
    short = MAX_STRING // 4  # a string of fewer characters is within the limit in any encoding
    # (value, node depth): node dicts are the values with a "type"; their children are
    # [name, node] pairs one level down.
    stack: list[tuple[Any, int]] = [(root, 0)]
    push = stack.append
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if len(value) > short:
                _check_string(value)
        elif isinstance(value, Mapping):
            if "type" in value:
                nodes += 1
                if nodes > MAX_NODES:
                    raise PipelineError(
                        f"the tree has more than {MAX_NODES:,} nodes (the limit of one "
                        "pipeline): split it into several pipelines"
                    )
                if depth > MAX_DEPTH:
                    raise PipelineError(
                        f"the tree is nested deeper than {MAX_DEPTH} levels (the limit)"
                    )
            for key, item in value.items():
                if not isinstance(key, str) or len(key) > short:
                    push((key, depth))
                if isinstance(item, str):
                    if len(item) > short:
                        _check_string(item)
                elif key == "children" and "type" in value and isinstance(item, list):
                    for pair in item:
                        if isinstance(pair, list):
                            for part in pair:
                                if not isinstance(part, str) or len(part) > short:
                                    push((part, depth + 1))
                        else:
                            push((pair, depth + 1))
                elif isinstance(item, (Mapping, list)):
                    push((item, depth))
        elif isinstance(value, list):
            for item in value:
                if not isinstance(item, str) or len(item) > short:
                    push((item, depth))


def _check_string(value: str) -> None:
    if len(value.encode("utf-8", "replace")) > MAX_STRING:
        raise PipelineError(
            f"a string in the tree is {_size(len(value.encode('utf-8', 'replace')))} "
            f"long, over the limit of {MAX_STRING // 1024} KiB (a command longer than "
            f"that cannot run): {value[:40]!r}..."
        )


__all__ = [
    "MAX_DEPTH",
    "MAX_JSON_VALUES",
    "MAX_NODES",
    "MAX_STRING",
    "MAX_TREE_GZIP",
    "MAX_TREE_JSON",
    "check_tree_data",
    "gunzip",
    "parse_tree_json",
]
