"""The resource types the fake serves: built-ins, plus one entry per CRD version once created."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str]  # (group, plural): objects are stored once per key, whatever the version

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = {
    "status": ("get", "patch", "update"),
    "log": ("get",),
    "eviction": ("create",),
    "scale": ("get", "patch", "update"),
}


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    tracks_generation: bool = False
    allow_create_on_update: bool = False
    # For custom resources: the CRD object (spec) this type was made from.
    crd: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def key(self) -> Key:
        return (self.group, self.plural)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``jobs.batch`` or ``pods``: how apiserver messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """``Job.batch`` or ``Pod``: how 422 messages name the kind."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def is_custom(self) -> bool:
        return self.crd is not None

    def discovery_entries(self) -> list[dict[str, Any]]:
        main: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            main["shortNames"] = list(self.short_names)
        if self.categories:
            main["categories"] = list(self.categories)
        entries = [main]
        for sub in self.subresources:
            kind = {"log": "Pod", "eviction": "Eviction", "scale": "Scale"}.get(sub, self.kind)
            entry = {
                "name": f"{self.plural}/{sub}",
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": kind,
                "verbs": list(SUBRESOURCE_VERBS.get(sub, ("get",))),
            }
            if sub == "eviction":
                entry["group"] = "policy"
                entry["version"] = "v1"
            entries.append(entry)
        return entries


def _rt(gv: str, plural: str, kind: str, namespaced: bool = True, **kw: Any) -> ResourceType:
    group, _, version = gv.rpartition("/")
    return ResourceType(group, version, plural, kind, namespaced, kind.lower(), **kw)


BUILTINS: tuple[ResourceType, ...] = (
    _rt("v1", "namespaces", "Namespace", False, short_names=("ns",), subresources=("status",)),
    _rt(
        "v1",
        "pods",
        "Pod",
        short_names=("po",),
        categories=("all",),
        subresources=("status", "log", "eviction"),
    ),
    _rt("v1", "events", "Event", short_names=("ev",), allow_create_on_update=True),
    _rt("v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    _rt("v1", "configmaps", "ConfigMap", short_names=("cm",)),
    _rt("v1", "secrets", "Secret"),
    _rt("v1", "services", "Service", short_names=("svc",), categories=("all",)),
    _rt("v1", "persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",)),
    _rt("v1", "resourcequotas", "ResourceQuota", short_names=("quota",), subresources=("status",)),
    _rt("v1", "limitranges", "LimitRange", short_names=("limits",)),
    _rt("v1", "nodes", "Node", False, short_names=("no",), subresources=("status",)),
    _rt(
        "batch/v1",
        "jobs",
        "Job",
        categories=("all",),
        subresources=("status",),
        tracks_generation=True,
    ),
    _rt(
        "batch/v1",
        "cronjobs",
        "CronJob",
        short_names=("cj",),
        categories=("all",),
        subresources=("status",),
        tracks_generation=True,
    ),
    _rt("coordination.k8s.io/v1", "leases", "Lease", allow_create_on_update=True),
    _rt("rbac.authorization.k8s.io/v1", "roles", "Role"),
    _rt("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding"),
    _rt("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", False),
    _rt("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _rt(
        "apps/v1",
        "deployments",
        "Deployment",
        short_names=("deploy",),
        categories=("all",),
        subresources=("status", "scale"),
        tracks_generation=True,
    ),
    _rt(
        "apps/v1",
        "replicasets",
        "ReplicaSet",
        short_names=("rs",),
        categories=("all",),
        subresources=("status",),
        tracks_generation=True,
    ),
    _rt(
        "apps/v1",
        "statefulsets",
        "StatefulSet",
        short_names=("sts",),
        categories=("all",),
        subresources=("status",),
        tracks_generation=True,
    ),
    _rt("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy", short_names=("netpol",)),
    _rt("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", short_names=("pdb",)),
    _rt(
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        short_names=("crd", "crds"),
        subresources=("status",),
        tracks_generation=True,
    ),
    _rt(
        "authorization.k8s.io/v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        False,
        verbs=("create",),
    ),
)

# Group order as kube-apiserver lists it in /apis (built-ins first, CRD groups after).
GROUP_ORDER = (
    "",
    "apps",
    "events.k8s.io",
    "authorization.k8s.io",
    "batch",
    "coordination.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "apiextensions.k8s.io",
)


def types_from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of a CustomResourceDefinition."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    types = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = tuple(sorted((version.get("subresources") or {}).keys()))
        types.append(
            ResourceType(
                group=spec.get("group", ""),
                version=version["name"],
                plural=names.get("plural", ""),
                kind=names.get("kind", ""),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular") or names.get("kind", "").lower(),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=subresources,
                tracks_generation=True,
                crd=crd,
            )
        )
    return types


class Resources:
    """Thread-safe registry of served resource types (built-ins plus CRD-defined ones)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        for rt in BUILTINS:
            self._types[(rt.group, rt.version, rt.plural)] = rt

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            return self._types.get((group, version, plural))

    def preferred(self, key: Key) -> ResourceType | None:
        """The storage (or first) version of a resource, for internal callers."""
        group, plural = key
        with self._lock:
            matches = [rt for (g, _, p), rt in self._types.items() if (g, p) == (group, plural)]
        for rt in matches:
            for version in (rt.crd or {}).get("spec", {}).get("versions", []):
                if version.get("storage") and version.get("name") == rt.version:
                    return rt
        return matches[0] if matches else None

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        with self._lock:
            for rt in self._types.values():
                if (rt.group, rt.version, rt.kind) == (group, version, kind):
                    return rt
        return None

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def groups(self) -> dict[str, list[str]]:
        """Group name → served versions, in discovery order."""
        out: dict[str, list[str]] = {}
        types = self.all()
        order = {g: i for i, g in enumerate(GROUP_ORDER)}
        for rt in sorted(types, key=lambda t: (order.get(t.group, len(order)), t.group)):
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self.all() if (rt.group, rt.version) == (group, version)]

    def register_crd(self, crd: dict[str, Any]) -> None:
        new = types_from_crd(crd)
        spec = crd.get("spec") or {}
        key = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        with self._lock:
            for k in [k for k, rt in self._types.items() if rt.key == key and rt.is_custom]:
                del self._types[k]
            for rt in new:
                self._types[(rt.group, rt.version, rt.plural)] = rt

    def unregister(self, key: Key) -> None:
        with self._lock:
            for k in [k for k, rt in self._types.items() if rt.key == key and rt.is_custom]:
                del self._types[k]
