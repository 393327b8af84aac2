"""Kubernetes names for pipelines and their Jobs: deterministic, DNS-1123, at most 63 chars.

Pure. A Job's name is a function of the pipeline's name and the node's path alone, so a
controller that restarts computes the same name and finds the Job it created before
(DESIGN.md §2). The layout is ``<pipeline>-<slug of the path>-<hash>``:

- the slug makes ``kubectl get jobs`` readable: the path lowercased, accents stripped, every
  other run of characters turned into ``-``; when too long its tail (the leaf) is kept;
- the hash is 10 base32 characters (50 bits) of SHA-256 over the pipeline name and the exact
  path, so paths that slug alike (``/A`` and ``/a``, ``/x y`` and ``/x-y``, ``/日本`` and
  ``/中国``) still get different names, and two pipelines whose long names truncate alike do
  not share Job names. A collision among the 10,000 nodes of one pipeline has a chance of
  about 4e-8; :func:`check_unique` turns even that into an error rather than a shared Job.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

from k8sco.errors import PipelineError
from k8sco.render.constants import LABEL_PIPELINE

MAX_NAME = 63  # a DNS-1123 label; also the limit of the label values that carry the name
HASH_LEN = 10
_BUDGET = MAX_NAME - HASH_LEN - 1  # what "<pipeline>-<slug>" may use
_PIPELINE_PART_MIN = 26  # a long pipeline name keeps this much when the slug needs room
DERIVED_MAX = 40  # names derived from a function name stay short enough to read in job names

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def is_dns_label(text: str) -> bool:
    """True if ``text`` is a DNS-1123 label: ≤63 lowercase alphanumerics or ``-``, alnum ends."""
    return len(text) <= MAX_NAME and bool(_DNS_LABEL.match(text))


def check_pipeline_name(name: str) -> str:
    """``name`` if it can name a Pipeline, else a PipelineError saying why and what would do.

    A pipeline's name is also the value of the ``k8sco.io/pipeline`` label on its Jobs and
    pods, so it must be a DNS-1123 label (the stricter of the two rules).
    """
    if not isinstance(name, str) or not is_dns_label(name):
        hint = slug(name) if isinstance(name, str) else ""
        fix = f", e.g. {hint[:MAX_NAME].strip('-')!r}" if hint else ""
        raise PipelineError(
            f"pipeline name {name!r} is not valid: it becomes the value of the label "
            f"{LABEL_PIPELINE} and must be at most {MAX_NAME} lowercase letters, digits or "
            f"'-', starting and ending with a letter or digit{fix}"
        )
    return name


def pipeline_name_from(text: str) -> str:
    """A DNS-safe pipeline name derived from a function or file name: ``run_primes`` ->
    ``run-primes``, ``MyPipeline`` -> ``mypipeline``; ``pipeline`` if nothing is left."""
    name = slug(text)[:DERIVED_MAX].strip("-")
    return name or "pipeline"


def slug(text: str) -> str:
    """``text`` lowercased, accents stripped, other runs of characters as ``-``, trimmed."""
    if not text.isascii():  # nothing to fold in ASCII (most paths)
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NON_ALNUM.sub("-", text.lower()).strip("-")


_B32 = "abcdefghijklmnopqrstuvwxyz234567"  # base32's alphabet (RFC 4648), lowercased
_HASH_BYTES = -(-5 * HASH_LEN // 8)  # the digest's bytes that hold HASH_LEN characters


def path_hash(pipeline: str, path: str) -> str:
    """10 base32 characters of SHA-256 over the pipeline name and the exact node path."""
    data = f"{pipeline}\0{path}".encode("utf-8", "surrogatepass")
    # The first 50 bits of the digest, 5 per character: base32 of its first bytes, as
    # base64.b32encode(digest)[:10].lower() gives (once per Job, so without its loops).
    bits = int.from_bytes(hashlib.sha256(data).digest()[:_HASH_BYTES], "big")
    bits >>= _HASH_BYTES * 8 - 5 * HASH_LEN
    return "".join(_B32[(bits >> shift) & 31] for shift in range(5 * HASH_LEN - 5, -1, -5))


def job_name(pipeline: str, path: str) -> str:
    """The Job of node ``path`` in pipeline ``pipeline``: ``primes-stage-1-check-3-<hash>``.

    ``pipeline`` must be a valid pipeline name (:func:`check_pipeline_name`).
    """
    tail = slug(path)
    if not tail:
        head = pipeline[:_BUDGET].rstrip("-")
    elif len(pipeline) + 1 + len(tail) <= _BUDGET:
        head = f"{pipeline}-{tail}"
    else:
        prefix = pipeline[: max(_PIPELINE_PART_MIN, _BUDGET - 1 - len(tail))].rstrip("-")
        room = _BUDGET - 1 - len(prefix)
        kept = tail[-room:].lstrip("-")
        head = f"{prefix}-{kept}" if kept else prefix
    return f"{head}-{path_hash(pipeline, path)}"


def check_unique(pipeline: str, paths: Iterable[str]) -> dict[str, str]:
    """Job names by path; a PipelineError in the (about 4e-8 per 10,000 nodes) event that two
    paths hash alike, because two nodes must never share one Job."""
    names: dict[str, str] = {}
    seen: dict[str, str] = {}
    for path in paths:
        name = job_name(pipeline, path)
        other = seen.setdefault(name, path)
        if other != path:
            raise PipelineError(
                f"{path}: its Job name {name!r} is also that of {other}; rename one of the "
                "two nodes"
            )
        names[path] = name
    return names


__all__ = [
    "MAX_NAME",
    "check_pipeline_name",
    "check_unique",
    "is_dns_label",
    "job_name",
    "path_hash",
    "pipeline_name_from",
    "slug",
]
