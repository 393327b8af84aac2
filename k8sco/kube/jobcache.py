"""What the controller keeps in memory of each Job it watches.

A Job as the API returns it is ~13 KB of Python objects, most of it the pod template and
``managedFields``, which no decision reads: at 100,000 nodes that would be more than a
gigabyte. client-go's informers offer a transform for this, applied to each object before
it is stored (staging/src/k8s.io/client-go/tools/cache/shared_informer.go,
``SetTransform``); controllers use it to drop managedFields and what else they never read
(Karmada's ``StripUnusedFields`` is one). What is kept:

- ``metadata`` but ``managedFields``, with only k8sco's own labels (the ones it selects
  and reads; labels others add are never read);
- the whole ``status`` (conditions, counts, times: what decisions read);
- no ``spec``: decisions never read a cached Job's spec (a Job is created from the tree).

The strings that many Jobs hold alike (owner references, condition types, reasons and
messages, the pipeline's uid) are stored once; the memo holding them is bounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_OURS = ("k8sco.io/", "app.kubernetes.io/")
_MEMO_MAX = 4096

_memo: dict[Any, Any] = {}


def _shared(value: Any) -> Any:
    """One object for equal, immutable values seen in many Jobs."""
    found = _memo.get(value)
    if found is not None:
        return found
    if len(_memo) >= _MEMO_MAX:  # many distinct values (failure messages): start afresh
        _memo.clear()
    _memo[value] = value
    return value


def _condition(cond: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _shared(v) if k != "lastProbeTime" else v for k, v in cond.items()}


def _owner(ref: Mapping[str, Any]) -> Any:
    items = tuple(sorted(ref.items()))
    try:
        return _shared(items)
    except TypeError:  # a value that cannot be a key: kept as it came
        return items


def slim(job: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``job`` the controller keeps (see the module's docstring); ``job`` is
    left as it is."""
    meta = job.get("metadata") or {}
    kept: dict[str, Any] = {k: v for k, v in meta.items() if k not in ("managedFields", "labels")}
    labels = meta.get("labels")
    if labels:
        kept["labels"] = {_shared(k): _shared(v) for k, v in labels.items() if k.startswith(_OURS)}
    if meta.get("ownerReferences"):
        kept["ownerReferences"] = [dict(_owner(r)) for r in meta["ownerReferences"]]
    if "namespace" in kept:
        kept["namespace"] = _shared(kept["namespace"])
    out: dict[str, Any] = {
        "apiVersion": _shared(job.get("apiVersion", "batch/v1")),
        "kind": _shared(job.get("kind", "Job")),
        "metadata": kept,
    }
    status = job.get("status")
    if status:
        out["status"] = {
            k: [_condition(c) for c in v] if k == "conditions" and isinstance(v, list) else v
            for k, v in status.items()
        }
    return out


__all__ = ["slim"]
