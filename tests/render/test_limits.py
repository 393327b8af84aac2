"""A Pipeline's tree is decoded within limits: a decompression bomb, a huge or deeply
nested tree, or an overlong string fails that Pipeline with one line, and costs the
reader no more memory than the limits allow (issue 9, item 1)."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

import k8sco as co
from k8sco.errors import PipelineError
from k8sco.render import limits
from k8sco.render.pipeline import decode_tree, render_pipeline

MIB = 1024 * 1024
SMALL_TREE = b'{"k8sco":1,"root":{"type":"Exec","command":"true"}}'


def bomb_spec() -> dict[str, Any]:
    """The bomb of the issue: 1.4 MB of base64 that inflates to 1 GiB. It is valid JSON (a
    small tree followed by 1 GiB of whitespace), so only a size cap stops it."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(SMALL_TREE)]
    blank = b" " * MIB
    parts.extend(packer.compress(blank) for _ in range(1024))
    parts.append(packer.flush())
    return {"k8scoVersion": "0.1.0", "treeGzip": base64.b64encode(b"".join(parts)).decode()}


def values_bomb_spec() -> dict[str, Any]:
    """Under the size cap, but 10 million empty objects: about 900 MB once parsed."""
    doc = b'{"k8sco":1,"root":{"type":"Exec","command":"true","x":[' + b"{}," * 10_000_000
    packed = gzip.compress(doc + b"{}]}}", compresslevel=9)
    return {"k8scoVersion": "0.1.0", "treeGzip": base64.b64encode(packed).decode()}


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "spec.json"
    path.write_text(json.dumps(bomb_spec()))
    return path


@pytest.fixture(scope="module")
def values_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "values.json"
    path.write_text(json.dumps(values_bomb_spec()))
    return path


# The child decodes the bomb under a 1 GiB address-space limit (what unbounded decoding
# needs just for the inflated bytes), as the controller's 512Mi limit would stop it, and
# reports its outcome and its peak resident memory.
CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1024 * 1024 * 1024, 1024 * 1024 * 1024))
from k8sco.errors import PipelineError
from k8sco.render.pipeline import decode_tree
spec = json.load(open(sys.argv[1]))
try:
    decode_tree(spec)
    outcome = "decoded"
except PipelineError as exc:
    outcome = "refused: " + str(exc)
except MemoryError:
    outcome = "MemoryError"
# VmHWM is this process's own peak: ru_maxrss would also count the parent's resident memory
# (Linux keeps the larger of the two across exec), which is a whole test session's here.
with open("/proc/self/status") as status:
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"outcome": outcome, "peak_mib": peak_kib / 1024}))
"""


def decode_in_child(spec: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(spec)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    assert "\n" not in report["outcome"]
    return report


def test_the_bomb_is_refused_with_bounded_memory(bomb: Path) -> None:
    size = len(json.loads(bomb.read_text())["treeGzip"])
    assert 1_300_000 < size < 1_500_000  # the 1.4 MB
    report = decode_in_child(bomb)
    assert report["outcome"].startswith("refused: the Pipeline's tree decompresses to more than")
    # Python and k8sco take 20-40 MiB, the inflated tree at most 32 MiB plus the bytearray's
    # growth; unbounded decoding needs over 1 GiB (it hits the child's address-space cap).
    assert report["peak_mib"] < 160, report


def test_a_tree_of_many_tiny_values_is_refused_before_parsing(values_bomb: Path) -> None:
    report = decode_in_child(values_bomb)
    assert report["outcome"].startswith("refused: the tree has about 20,000,00"), report
    assert "over the limit of 2,000,000" in report["outcome"]
    assert report["peak_mib"] < 160, report


def test_gunzip_stops_at_the_limit() -> None:
    packed = gzip.compress(b"x" * (2 * MIB))
    assert limits.gunzip(packed, limit=2 * MIB) == b"x" * (2 * MIB)
    with pytest.raises(PipelineError, match=r"decompresses to more than 1\.0 MiB"):
        limits.gunzip(packed, limit=1 * MIB)


@pytest.mark.parametrize(
    ("packed", "message"),
    [
        (gzip.compress(SMALL_TREE)[:-10], "truncated"),
        (gzip.compress(SMALL_TREE) + gzip.compress(SMALL_TREE), "data after its end"),
        (b"\x1f\x8b" + b"\x00" * 20, "not valid gzip"),
    ],
)
def test_corrupt_gzip(packed: bytes, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        limits.gunzip(packed)


def tree_json(root: dict[str, Any]) -> str:
    return json.dumps({"k8sco": 1, "root": root})


def nested(depth: int) -> str:
    """A tree ``depth`` Serials deep, as JSON text (built as text: json.dumps recurses)."""
    head = '{"type":"Serial","children":[["n",' * depth
    tail = "]]}" * depth
    return f'{{"k8sco":1,"root":{head}{{"type":"Exec","command":"true"}}{tail}}}'


def test_too_many_nodes() -> None:
    children = [[f"n{i}", {"type": "Exec", "command": "true"}] for i in range(limits.MAX_NODES)]
    with pytest.raises(PipelineError, match=r"more than 100,000 nodes"):
        decode_tree({"tree": tree_json({"type": "Parallel", "children": children})})
    children.pop()
    assert decode_tree({"tree": tree_json({"type": "Parallel", "children": children})})


@pytest.mark.parametrize("depth", [limits.MAX_DEPTH + 1, 100_000])
def test_too_deep(depth: int) -> None:
    # 100,000 levels: json itself recurses too deep; still one line, no RecursionError.
    with pytest.raises(PipelineError, match=f"deeper than {limits.MAX_DEPTH} levels"):
        decode_tree({"tree": nested(depth)})
    assert decode_tree({"tree": nested(limits.MAX_DEPTH - 1)})


def test_too_long_a_string() -> None:
    long = "x" * (limits.MAX_STRING + 1)
    with pytest.raises(PipelineError, match="over the limit of 128 KiB"):
        decode_tree({"tree": tree_json({"type": "Exec", "command": long})})
    name_too_long = {"type": "Serial", "children": [[long, {"type": "Exec", "command": "true"}]]}
    with pytest.raises(PipelineError, match="over the limit of 128 KiB"):
        decode_tree({"tree": tree_json(name_too_long)})


def test_too_large_as_json_before_parsing() -> None:
    with pytest.raises(PipelineError, match=r"over the limit of 32\.0 MiB"):
        limits.parse_tree_json(b" " * (limits.MAX_TREE_JSON + 1))


def test_render_refuses_what_decoding_would(monkeypatch: pytest.MonkeyPatch) -> None:
    with co.Parallel() as root:
        for i in range(12):
            co.Exec("true", name=f"n{i}")
    monkeypatch.setattr(limits, "MAX_NODES", 10)
    with pytest.raises(PipelineError, match=r"^the tree has more than 10 nodes") as info:
        render_pipeline(root, "big", "default")
    assert "\n" not in str(info.value)
