"""Label and field selectors, parsed from query strings or LabelSelector objects (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import bad_request
from .resources import ResourceType

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                  r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")  # fmt: skip
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_SET_TERM = re.compile(r"^(\S+)\s+(in|notin)\s+\((.*)\)$")
_EQ_TERM = re.compile(r"^([^=!\s]+)\s*(==|=|!=)\s*(.*)$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op == "exists":
            return present
        return not present


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        """Parse ``a=b,c!=d,e in (f,g),!h``; raises a 400 ApiError when malformed."""
        reqs = []
        for term in _split_terms(text or ""):
            reqs.append(_parse_term(term))
        return cls(tuple(reqs))

    @classmethod
    def from_object(cls, selector: Mapping[str, Any] | None) -> LabelSelector:
        """Convert a metav1.LabelSelector (``matchLabels`` / ``matchExpressions``)."""
        selector = selector or {}
        reqs = [Requirement(k, "=", (v,)) for k, v in (selector.get("matchLabels") or {}).items()]
        ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
        for expr in selector.get("matchExpressions") or []:
            reqs.append(
                Requirement(expr["key"], ops[expr["operator"]], tuple(expr.get("values") or ()))
            )
        return cls(tuple(reqs))

    def __str__(self) -> str:
        parts = []
        for r in self.requirements:
            if r.op in ("=", "!="):
                parts.append(f"{r.key}{r.op}{r.values[0]}")
            elif r.op in ("in", "notin"):
                parts.append(f"{r.key} {r.op} ({','.join(r.values)})")
            else:
                parts.append(r.key if r.op == "exists" else f"!{r.key}")
        return ",".join(parts)


def _split_terms(text: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    terms.append(current)
    return [t.strip() for t in terms if t.strip()]


def _parse_term(term: str) -> Requirement:
    def check(key: str, values: tuple[str, ...]) -> None:
        if not _KEY.match(key):
            raise bad_request(f"unable to parse requirement: invalid label key {key!r}")
        for v in values:
            if len(v) > 63 or not _VALUE.match(v):
                raise bad_request(f"unable to parse requirement: invalid label value: {v!r}")

    if term.startswith("!"):
        key = term[1:].strip()
        check(key, ())
        return Requirement(key, "!exists")
    m = _SET_TERM.match(term)
    if m:
        values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
        check(m.group(1), values)
        return Requirement(m.group(1), m.group(2), values)
    m = _EQ_TERM.match(term)
    if m:
        op = "=" if m.group(2) == "==" else m.group(2)
        value = m.group(3).strip()
        check(m.group(1), (value,))
        return Requirement(m.group(1), op, (value,))
    check(term, ())
    return Requirement(term, "exists")


# -- field selectors ------------------------------------------------------------------------

_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "pods"): (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    ("", "events"): (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    ("batch", "jobs"): ("status.successful",),
    ("", "namespaces"): ("status.phase",),
    ("", "secrets"): ("type",),
    ("", "nodes"): ("spec.unschedulable",),
}


def supported_fields(rt: ResourceType) -> tuple[str, ...]:
    fields = _COMMON_FIELDS + _FIELDS.get(rt.key, ())
    if rt.crd is not None:
        for version in rt.crd.get("spec", {}).get("versions", []):
            if version.get("name") == rt.version:
                for sf in version.get("selectableFields") or []:
                    fields += (sf["jsonPath"].lstrip("."),)
    return fields


def field_value(rt: ResourceType, obj: Mapping[str, Any], name: str) -> str:
    if name == "status.successful":
        return str((obj.get("status") or {}).get("succeeded") or 0)
    if name == "source":
        return str((obj.get("source") or {}).get("component") or "")
    value: Any = obj
    for part in name.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[tuple[str, str, str], ...] = ()  # (field, "=" | "!=", value)

    @classmethod
    def parse(cls, text: str | None, rt: ResourceType) -> FieldSelector:
        """Parse ``metadata.name=x,status.phase!=Running``; 400 for unsupported fields."""
        terms = []
        allowed = supported_fields(rt)
        for term in _split_terms(text or ""):
            m = re.match(r"^([^=!]+)(==|=|!=)(.*)$", term)
            if not m:
                raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
            name = m.group(1).strip()
            if name not in allowed:
                raise bad_request(f"field label not supported: {name}")
            op = "!=" if m.group(2) == "!=" else "="
            terms.append((name, op, m.group(3).strip()))
        return cls(tuple(terms))

    def matches(self, rt: ResourceType, obj: Mapping[str, Any]) -> bool:
        for name, op, value in self.terms:
            actual = field_value(rt, obj, name)
            if (actual == value) != (op == "="):
                return False
        return True

    @property
    def empty(self) -> bool:
        return not self.terms


@dataclass(frozen=True)
class Filter:
    """What a list or watch asks for: one namespace (or all), labels and fields."""

    rt: ResourceType
    namespace: str | None = None
    labels: LabelSelector = LabelSelector()
    fields: FieldSelector = FieldSelector()

    def matches(self, obj: Mapping[str, Any] | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        if self.namespace is not None and (meta.get("namespace") or "") != self.namespace:
            return False
        return self.labels.matches(meta.get("labels")) and self.fields.matches(self.rt, obj)
