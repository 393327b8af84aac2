"""JSON merge patch (RFC 7386), JSON patch (RFC 6902), a strategic merge patch for built-ins,
and a simplified server-side apply. Pure functions over JSON-like values."""

from __future__ import annotations

from typing import Any

from .store import clone

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)

# Lists of objects that strategic merge patches merge by a key (the patchMergeKey of the
# built-in types); every other list is replaced whole, as in a merge patch.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "readinessGates": "conditionType",
}
MERGED_PRIMITIVE_LISTS = {"finalizers"}


class PatchError(Exception):
    """The patch could not be applied (422), or is malformed (``bad_request``: 400)."""

    def __init__(self, message: str, bad_request: bool = False) -> None:
        super().__init__(message)
        self.bad_request = bad_request


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386. The result shares what the patch leaves alone with ``target`` (a stored
    object, never changed in place): only the dicts along the patched paths are new."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- RFC 6902 -------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}", bad_request=True)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str], path: str) -> Any:
    for part in parts:
        if isinstance(doc, dict):
            if part not in doc:
                raise PatchError(f"doc is missing path: {path}")
            doc = doc[part]
        elif isinstance(doc, list):
            try:
                doc = doc[int(part)]
            except (ValueError, IndexError) as e:
                raise PatchError(f"doc is missing path: {path}") from e
        else:
            raise PatchError(f"doc is missing path: {path}")
    return doc


def _add(doc: Any, parts: list[str], value: Any, path: str, replace: bool = False) -> Any:
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"replace operation does not apply: doc is missing key: {path}")
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(value)
            return doc
        try:
            index = int(last)
        except ValueError as e:
            raise PatchError(f"invalid array index {last!r} in {path}") from e
        if replace:
            if not 0 <= index < len(parent):
                raise PatchError(f"replace operation does not apply: {path}")
            parent[index] = value
        else:
            if not 0 <= index <= len(parent):
                raise PatchError(f"add operation does not apply: index out of range: {path}")
            parent.insert(index, value)
    else:
        raise PatchError(f"doc is missing path: {path}")
    return doc


def _remove(doc: Any, parts: list[str], path: str) -> Any:
    if not parts:
        raise PatchError("cannot remove the document root")
    parent = _resolve(doc, parts[:-1], path)
    last = parts[-1]
    try:
        if isinstance(parent, dict):
            return parent.pop(last)
        if isinstance(parent, list):
            return parent.pop(int(last))
    except (KeyError, ValueError, IndexError):
        pass
    raise PatchError(f"remove operation does not apply: doc is missing path: {path}")


def json_patch(doc: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise PatchError("json patch must be a list of operations", bad_request=True)
    doc = clone(doc)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid json patch operation: {op!r}", bad_request=True)
        kind, path = op["op"], op["path"]
        parts = _pointer(path)
        if kind == "add":
            doc = _add(doc, parts, clone(op.get("value")), path)
        elif kind == "remove":
            _remove(doc, parts, path)
        elif kind == "replace":
            doc = _add(doc, parts, clone(op.get("value")), path, replace=True)
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = clone(_resolve(doc, source, op.get("from", "")))
            if kind == "move":
                _remove(doc, source, op.get("from", ""))
            doc = _add(doc, parts, value, path)
        elif kind == "test":
            actual = _resolve(doc, parts, path)
            if actual != op.get("value"):
                raise PatchError(
                    f"testing value {path} failed: test operation does not apply: "
                    f"is {actual!r}, expected {op.get('value')!r}"
                )
        else:
            raise PatchError(f"unexpected json patch operation: {kind!r}", bad_request=True)
    return doc


# -- strategic merge ------------------------------------------------------------------------


def strategic_merge_patch(target: Any, patch: Any, field: str = "") -> Any:
    """Merge ``patch`` into ``target`` like kube-apiserver does for built-in types.

    Honours ``$patch: replace|delete``, ``$retainKeys``, ``$deleteFromPrimitiveList/<f>``
    and drops ``$setElementOrder/<f>`` (ordering is cosmetic here).
    """
    if isinstance(patch, list):
        return _merge_list(target if isinstance(target, list) else [], patch, field)
    if not isinstance(patch, dict):
        return clone(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: clone(v) for k, v in patch.items() if k != "$patch"}
    result = clone(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            if isinstance(result.get(name), list):
                result[name] = [v for v in result[name] if v not in value]
            continue
        if value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            result.pop(key, None)
        else:
            result[key] = strategic_merge_patch(result.get(key), value, key)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(target: list[Any], patch: list[Any], field: str) -> list[Any]:
    if field in MERGED_PRIMITIVE_LISTS:
        merged = list(target)
        merged.extend(v for v in patch if v not in merged)
        return merged
    key = MERGE_KEYS.get(field)
    if field == "ports" and any(isinstance(p, dict) and "containerPort" in p for p in patch):
        key = "containerPort"
    if key is None or not all(isinstance(p, dict) for p in patch):
        return [p for p in clone(patch) if not _is_directive(p)]
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [clone(p) for p in patch if not _is_directive(p)]
    result = clone(target)
    for item in patch:
        existing = next(
            (
                i
                for i, t in enumerate(result)
                if isinstance(t, dict) and t.get(key) == item.get(key)
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if existing is not None:
                result.pop(existing)
        elif existing is not None:
            result[existing] = strategic_merge_patch(result[existing], item)
        else:
            result.append(strategic_merge_patch({}, item))
    return result


def _is_directive(item: Any) -> bool:
    return isinstance(item, dict) and "$patch" in item and len(item) == 1


def apply_patch(current: Any, applied: dict[str, Any], strategic: bool) -> Any:
    """Server-side apply, simplified: the applied configuration is merged over the live
    object (lists of keyed objects merged for built-ins); fields are never removed."""
    if strategic:
        return strategic_merge_patch(current, _drop_nulls(applied))
    return merge_patch(current, _drop_nulls(applied))


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value
