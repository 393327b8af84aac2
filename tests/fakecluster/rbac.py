"""Authentication by bearer token and authorization by the stored RBAC objects.

A request without credentials is served as a cluster admin (the fake's historical
behaviour, so tests that do not care about RBAC keep working); a token from
:meth:`Rbac.issue` authenticates as its user, with the groups kube-apiserver adds
(staging/src/k8s.io/apiserver/pkg/authentication/group/authenticated_group_adder.go:
system:authenticated; pkg/serviceaccount/util.go: system:serviceaccounts and
system:serviceaccounts:<ns> for ``system:serviceaccount:<ns>:<name>``). An unknown token is
401 Unauthorized.

Such requests are authorized as plugin/pkg/auth/authorizer/rbac/rbac.go does: the rules of
every ClusterRoleBinding, then of every RoleBinding in the request's namespace, whose subjects
match (pkg/registry/rbac/validation/rule.go, appliesToUser), evaluated with RuleAllows and
pkg/apis/rbac/v1/evaluation_helpers.go (``*`` verbs/groups/resources, ``*/sub`` and
``res/sub`` resources, resourceNames, nonResourceURLs with a trailing ``*``). A ClusterRole
with an aggregationRule has the rules of every ClusterRole its selectors match, as the
clusterrole-aggregation controller (pkg/controller/clusterroleaggregation) writes them.
The bootstrap roles and bindings (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go)
let every authenticated user discover the API and review its own access. A denial is the
403 of staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go
(forbiddenMessage).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from . import errors
from .errors import ApiError
from .loops import Loop
from .resources import ResourceType
from .selectors import LabelSelector
from .store import Store, clone

RBAC = "rbac.authorization.k8s.io"
CLUSTER_ROLES = (RBAC, "clusterroles")
CLUSTER_BINDINGS = (RBAC, "clusterrolebindings")
ROLES = (RBAC, "roles")
BINDINGS = (RBAC, "rolebindings")


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Attributes:
    """authorizer.Attributes: a resource request, or a non-resource one (``path``)."""

    user: User
    verb: str
    resource_request: bool
    namespace: str = ""
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(attrs: Attributes, rt: ResourceType | None) -> ApiError:
    user = attrs.user.name
    if not attrs.resource_request:
        return ApiError(
            403,
            "Forbidden",
            f'forbidden: User "{user}" cannot {attrs.verb} path "{attrs.path}"',
            {},
        )
    resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    where = f' in the namespace "{attrs.namespace}"' if attrs.namespace else " at the cluster scope"
    problem = (
        f'User "{user}" cannot {attrs.verb} resource "{resource}" in API group '
        f'"{attrs.api_group}"{where}'
    )
    assert rt is not None
    return errors.forbidden(rt, attrs.name, problem)


class Rbac:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._tokens: dict[str, User] = {}

    # -- authentication -------------------------------------------------------------------

    def issue(self, user: str, groups: Sequence[str] = ()) -> str:
        all_groups = list(groups)
        if user.startswith("system:serviceaccount:"):
            namespace = user.split(":")[2]
            all_groups += ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
        all_groups.append("system:authenticated")
        token = "fake-" + secrets.token_hex(16)
        with self._lock:
            self._tokens[token] = User(user, tuple(dict.fromkeys(all_groups)))
        return token

    def authenticate(self, authorization: str | None) -> User | None:
        """None for a request without credentials (served as admin); 401 for a bad token."""
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        with self._lock:
            user = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise unauthorized()
        return user

    # -- authorization --------------------------------------------------------------------

    def allowed(self, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason), the reason naming the binding that allowed it."""
        with self.store.lock:
            for source, rules in self._rules_for(attrs.user, attrs.namespace):
                if any(rule_allows(attrs, rule) for rule in rules):
                    return True, f"RBAC: allowed by {source}"
        return False, ""

    def _rules_for(self, user: User, namespace: str) -> Iterator[tuple[str, list[Any]]]:
        for binding in self.store.objects(CLUSTER_BINDINGS):
            ref = binding.get("roleRef") or {}
            subject = _matching_subject(user, binding, "")
            if subject is None or ref.get("kind") != "ClusterRole":
                continue
            source = (
                f'ClusterRoleBinding "{binding["metadata"]["name"]}" of ClusterRole '
                f'"{ref.get("name")}" to {_describe(subject)}'
            )
            yield source, self.cluster_role_rules(ref.get("name", ""))
        if not namespace:
            return
        for binding in self.store.objects(BINDINGS, namespace):
            ref = binding.get("roleRef") or {}
            subject = _matching_subject(user, binding, namespace)
            if subject is None:
                continue
            if ref.get("kind") == "ClusterRole":
                rules = self.cluster_role_rules(ref.get("name", ""))
            elif ref.get("kind") == "Role":
                role = self.store.get(ROLES, namespace, ref.get("name", ""))
                rules = list((role or {}).get("rules") or [])
            else:
                continue
            source = (
                f'RoleBinding "{binding["metadata"]["name"]}/{namespace}" of {ref.get("kind")} '
                f'"{ref.get("name")}" to {_describe(subject)}'
            )
            yield source, rules

    def cluster_role_rules(self, name: str) -> list[Any]:
        role = self.store.get(CLUSTER_ROLES, "", name)
        if role is None:
            return []
        rules = list(role.get("rules") or [])
        selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
        if selectors:
            parsed = [LabelSelector.from_object(s) for s in selectors]
            for other in self.store.objects(CLUSTER_ROLES):
                if other["metadata"]["name"] == name:
                    continue
                labels = other["metadata"].get("labels") or {}
                if any(s.matches(labels) for s in parsed):
                    rules += [r for r in other.get("rules") or [] if r not in rules]
        return rules


class AggregationController:
    """Writes into every ClusterRole with an aggregationRule the rules of the ClusterRoles
    its selectors match (pkg/controller/clusterroleaggregation), so reads show them too."""

    def __init__(self, registry: Any, errors_out: list[str]) -> None:
        self.registry = registry
        self.store: Store = registry.store
        self.loop = Loop("fakecluster-rbac-aggregation", self._process, errors_out)

    def on_event(self, ev: Any) -> None:
        if ev.key == CLUSTER_ROLES:
            self.loop.add("all")

    def _process(self, item: Hashable) -> None:
        from .registry import WriteContext

        with self.store.lock:
            roles = self.store.objects(CLUSTER_ROLES)
            for role in roles:
                selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors")
                if not selectors:
                    continue
                parsed = [LabelSelector.from_object(s) for s in selectors]
                rules: list[Any] = []
                for other in roles:
                    if other is role:
                        continue
                    labels = other["metadata"].get("labels") or {}
                    if any(s.matches(labels) for s in parsed):
                        rules += [r for r in other.get("rules") or [] if r not in rules]
                if rules == (role.get("rules") or []):
                    continue
                new = clone(role)
                new["rules"] = rules
                rt = self.registry.rt(CLUSTER_ROLES)
                with contextlib.suppress(ApiError):
                    self.registry.update(
                        rt, "", role["metadata"]["name"], new, "", WriteContext(internal=True)
                    )


def _describe(subject: dict[str, Any]) -> str:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        return f'ServiceAccount "{name}/{subject.get("namespace", "")}"'
    return f'{kind} "{name}"'


def _matching_subject(user: User, binding: dict[str, Any], namespace: str) -> dict[str, Any] | None:
    for subject in binding.get("subjects") or []:
        kind, name = subject.get("kind"), subject.get("name")
        if kind == "User" and user.name == name:
            return dict(subject)
        if kind == "Group" and name in user.groups:
            return dict(subject)
        if kind == "ServiceAccount":
            sa_namespace = subject.get("namespace") or namespace
            if user.name == f"system:serviceaccount:{sa_namespace}:{name}":
                return dict(subject)
    return None


def rule_allows(attrs: Attributes, rule: dict[str, Any]) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if not attrs.resource_request:
        return any(
            u == "*" or u == attrs.path or (u.endswith("*") and attrs.path.startswith(u[:-1]))
            for u in rule.get("nonResourceURLs") or []
        )
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.api_group not in groups:
        return False
    combined = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    resources = rule.get("resources") or []
    if not any(
        r == "*" or r == combined or (attrs.subresource and r == f"*/{attrs.subresource}")
        for r in resources
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def _cluster_role(name: str, rules: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        },
        "rules": rules,
        **extra,
    }


def _binding(name: str, role: str, groups: Sequence[str]) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        },
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": g} for g in groups],
    }


def _aggregate(to: str) -> dict[str, Any]:
    return {
        "clusterRoleSelectors": [
            {"matchLabels": {f"rbac.authorization.k8s.io/aggregate-to-{to}": "true"}}
        ]
    }


def bootstrap_policy() -> list[dict[str, Any]]:
    """The bootstrap roles and bindings that matter here (bootstrappolicy/policy.go and
    controller_policy.go): cluster-admin for system:masters, discovery and self-review for
    every authenticated user, and the aggregated admin/edit/view roles (their own built-in
    rules are left out: only what is aggregated into them counts)."""
    get = ["get"]
    return [
        _cluster_role(
            "cluster-admin",
            [
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ],
        ),
        _cluster_role(
            "system:discovery",
            [
                {
                    "nonResourceURLs": [
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                        "/healthz",
                        "/livez",
                        "/openapi",
                        "/openapi/*",
                        "/readyz",
                        "/version",
                        "/version/",
                    ],
                    "verbs": get,
                }
            ],
        ),
        _cluster_role(
            "system:basic-user",
            [
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"],
                },
                {
                    "apiGroups": ["authentication.k8s.io"],
                    "resources": ["selfsubjectreviews"],
                    "verbs": ["create"],
                },
            ],
        ),
        _cluster_role(
            "system:public-info-viewer",
            [
                {
                    "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                    "verbs": get,
                }
            ],
        ),
        _cluster_role("admin", [], aggregationRule=_aggregate("admin")),
        _cluster_role("edit", [], aggregationRule=_aggregate("edit")),
        _cluster_role("view", [], aggregationRule=_aggregate("view")),
        _binding("cluster-admin", "cluster-admin", ["system:masters"]),
        _binding("system:discovery", "system:discovery", ["system:authenticated"]),
        _binding("system:basic-user", "system:basic-user", ["system:authenticated"]),
        _binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            ["system:authenticated", "system:unauthenticated"],
        ),
    ]
