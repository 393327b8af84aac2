"""CustomResourceDefinitions: CRD validation, and for custom resources the structural-schema
pruning, a small OpenAPI type check, and the JSONPath subset used by printer columns."""

from __future__ import annotations

import re
from typing import Any

from .errors import FieldError

_ROOT_KEYS = ("apiVersion", "kind", "metadata")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def validate_crd(crd: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    if not group:
        errors.append(FieldError.required("spec.group"))
    elif "." not in group:
        errors.append(
            FieldError.invalid("spec.group", group, "should be a domain with at least one dot")
        )
    for field in ("plural", "kind"):
        if not names.get(field):
            errors.append(FieldError.required(f"spec.names.{field}"))
    plural = names.get("plural") or ""
    if plural and not _DNS_LABEL.match(plural):
        errors.append(
            FieldError.invalid(
                "spec.names.plural", plural, "a lowercase RFC 1123 label is required"
            )
        )
    name = (crd.get("metadata") or {}).get("name", "")
    if plural and group and name != f"{plural}.{group}":
        errors.append(
            FieldError.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group')
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errors.append(
            FieldError.unsupported("spec.scope", spec.get("scope"), ["Cluster", "Namespaced"])
        )
    versions = spec.get("versions") or []
    if not versions:
        errors.append(
            FieldError.required(
                "spec.versions", "must have exactly one version marked as storage version"
            )
        )
    storage = [v for v in versions if v.get("storage")]
    if versions and len(storage) != 1:
        errors.append(
            FieldError.invalid(
                "spec.versions",
                len(storage),
                "must have exactly one version marked as storage version",
            )
        )
    for i, version in enumerate(versions):
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            errors.append(
                FieldError.required(
                    f"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required"
                )
            )
        for j, col in enumerate(version.get("additionalPrinterColumns") or []):
            if col.get("type") not in ("integer", "number", "string", "boolean", "date"):
                errors.append(
                    FieldError.unsupported(
                        f"spec.versions[{i}].additionalPrinterColumns[{j}].type",
                        col.get("type"),
                        ["boolean", "date", "integer", "number", "string"],
                    )
                )
    return errors


def version_schema(crd: dict[str, Any], version: str) -> dict[str, Any] | None:
    for v in (crd.get("spec") or {}).get("versions") or []:
        if v.get("name") == version:
            return (v.get("schema") or {}).get("openAPIV3Schema")
    return None


def printer_columns(crd: dict[str, Any], version: str) -> list[dict[str, Any]]:
    for v in (crd.get("spec") or {}).get("versions") or []:
        if v.get("name") == version:
            return list(v.get("additionalPrinterColumns") or [])
    return []


# -- pruning --------------------------------------------------------------------------------


def prune(
    obj: dict[str, Any], schema: dict[str, Any] | None, done: Any = None
) -> tuple[dict[str, Any], list[str]]:
    """Drop fields the structural schema does not declare; returns (pruned, dropped paths).
    ``done``: an object already pruned by this schema (the stored one, on an update); what
    ``obj`` shares with it (the very same dicts and lists, as a patch leaves them) is kept
    without being walked again, so a patch costs what it changes, not the object's size."""
    if schema is None:
        return obj, []
    dropped: list[str] = []
    props = schema.get("properties") or {}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key in _ROOT_KEYS:
            out[key] = value
        elif key in props:
            out[key] = _prune(value, props[key], key, dropped, _child(done, key))
        elif schema.get("x-kubernetes-preserve-unknown-fields"):
            out[key] = value
        else:
            dropped.append(key)
    return out, dropped


_NOTHING: Any = object()  # no counterpart in the already-checked object


def _child(done: Any, key: str) -> Any:
    return done.get(key, _NOTHING) if isinstance(done, dict) else _NOTHING


def _prune(
    value: Any, schema: dict[str, Any], path: str, dropped: list[str], done: Any = _NOTHING
) -> Any:
    if value is done and isinstance(value, dict | list):
        return value  # already pruned by this schema, where the stored object has it
    if isinstance(value, dict):
        if schema.get("x-kubernetes-embedded-resource"):
            keep = {k: value[k] for k in _ROOT_KEYS if k in value}
        else:
            keep = {}
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
        out = dict(keep)
        was = done if isinstance(done, dict) else {}
        for key, item in value.items():
            if key in keep:
                continue
            before = was.get(key, _NOTHING)
            if item is before and isinstance(item, dict | list):
                out[key] = item  # inline: a status map of 100,000 entries costs one loop
                continue
            sub = f"{path}.{key}"
            if props is not None and key in props:
                out[key] = _prune(item, props[key], sub, dropped, before)
            elif isinstance(additional, dict):
                out[key] = _prune(item, additional, sub, dropped, before)
            elif additional is True or preserve:
                out[key] = item
            else:
                dropped.append(sub)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_prune(v, schema["items"], f"{path}[{i}]", dropped) for i, v in enumerate(value)]
    return value


# -- validation -----------------------------------------------------------------------------

_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def validate(
    obj: dict[str, Any], schema: dict[str, Any] | None, done: Any = None
) -> list[FieldError]:
    """Type, required and enum checks of the openAPIV3Schema (a subset of the real rules).
    ``done``: an object already validated by this schema (the stored one, on an update);
    what ``obj`` shares with it is not checked again (the same dicts and lists: unchanged,
    so valid, as kube-apiserver's validation ratcheting also lets unchanged values pass)."""
    errors: list[FieldError] = []
    if schema is None:
        return errors
    props = schema.get("properties") or {}
    for key in schema.get("required") or []:
        if key not in obj:
            errors.append(FieldError.required(key))
    for key, sub in props.items():
        if key in obj and key not in _ROOT_KEYS:
            _validate(obj[key], sub, key, errors, _child(done, key))
    return errors


def _validate(
    value: Any, schema: dict[str, Any], path: str, errors: list[FieldError], done: Any = _NOTHING
) -> None:
    if value is done and isinstance(value, dict | list):
        return
    if value is None:
        if not schema.get("nullable"):
            errors.append(
                FieldError.invalid(
                    path,
                    None,
                    f'{path} in body must be of type {schema.get("type", "object")}: "null"',
                )
            )
        return
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, int | str) or isinstance(value, bool):
            errors.append(
                FieldError.invalid(path, value, f"{path} in body must be of type integer or string")
            )
        return
    expected = schema.get("type")
    if expected in _TYPES:
        ok = isinstance(value, _TYPES[expected]) and not (
            isinstance(value, bool) and expected in ("integer", "number")
        )
        if expected == "integer" and isinstance(value, float) and value.is_integer():
            ok = True
        if not ok:
            actual = _json_type(value)
            errors.append(
                FieldError.invalid(
                    path, actual, f'{path} in body must be of type {expected}: "{actual}"'
                )
            )
            return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(FieldError.unsupported(path, value, [str(v) for v in schema["enum"]]))
    if isinstance(value, dict):
        for key in schema.get("required") or []:
            if key not in value:
                errors.append(FieldError.required(f"{path}.{key}"))
        props = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        was = done if isinstance(done, dict) else {}
        for key, item in value.items():
            before = was.get(key, _NOTHING)
            if item is before and isinstance(item, dict | list):
                continue
            if key in props:
                _validate(item, props[key], f"{path}.{key}", errors, before)
            elif isinstance(additional, dict):
                _validate(item, additional, f"{path}.{key}", errors, before)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _validate(item, schema["items"], f"{path}[{i}]", errors)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# -- JSONPath (the subset printer columns use) ------------------------------------------------

_TOKEN = re.compile(
    r"\.([A-Za-z0-9_\-$]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_.\-]+)\s*==\s*['\"]([^'\"]*)['\"]\)\]|\['([^']+)'\]"
)


def jsonpath(obj: Any, expr: str) -> Any:
    """Evaluate ``.a.b``, ``.a[0]``, ``.a['x.y']`` and ``.a[?(@.k=="v")].b``; None if absent."""
    expr = expr.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1]
    pos, value = 0, obj
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            return None
        pos = m.end()
        name, index, fkey, fval, quoted = m.groups()
        if name is not None or quoted is not None:
            value = (
                value.get(name if name is not None else quoted) if isinstance(value, dict) else None
            )
        elif index is not None:
            value = (
                value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
            )
        else:
            found = None
            for item in value if isinstance(value, list) else []:
                if str(jsonpath(item, "." + fkey)) == fval:
                    found = item
                    break
            value = found
        if value is None:
            return None
    return value
