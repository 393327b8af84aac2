"""Least-privilege RBAC: every API call of k8sco/kube is allowed by manifests/30-rbac.yaml to
the identity that makes it, and every rule there is used by a call (or says why it needs no
call). The inventory is static: an AST walk over k8sco/kube/*.py that resolves each
``cluster.request(VERB, path)``, ``cluster.watch(path)`` and ``cluster.stream(path)`` to a
URL and from it to (verb, API group, resource), as the API server's RequestInfoFactory does
(kubernetes staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go).
"""

from __future__ import annotations

import ast
import functools
import importlib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from k8sco.errors import ClusterError, NotFound, UsageError
from k8sco.kube import access

REPO = Path(__file__).resolve().parent.parent
KUBE = REPO / "k8sco" / "kube"
RBAC = REPO / "manifests" / "30-rbac.yaml"

CONTROLLER, EMBEDDED, USER = "controller", "embedded", "user"
# Who makes the calls of each module (or class): the controller's service account, the user
# running `k8sco` (who also runs kube/controller.py as the embedded controller).
IDENTITIES = {
    "client": set(),  # the transport itself: no call of its own
    "controller": {CONTROLLER, EMBEDDED},
    # The controllers' Events, from a thread of their own or from the worker (kube/recorder.py).
    "recorder": {CONTROLLER, EMBEDDED},
    # Log archives and the data finalizer: only a controller started with a data store
    # (kube/process.py reads K8SCO_DATA_STORE); the embedded one has none.
    "archive": {CONTROLLER},
    # Deleting finished Pipelines past their retention: only the cluster's controller has
    # a retention (kube/process.py); the embedded one never deletes a Pipeline.
    "retention": {CONTROLLER},
    "lease.LeaderElector": {CONTROLLER},
    "lease": {USER},
    "process": {CONTROLLER},
    "pipelines": {USER},
    "follow": {USER},
    "access": {USER},
    # ConfigMaps that hold what does not fit in a Pipeline (kube/overflow.py): `k8sco apply`
    # writes the tree ones, controllers the status ones; everyone reads them.
    "overflow.create_tree": {USER},
    "overflow.load_tree": {CONTROLLER, EMBEDDED, USER},
    "overflow.load_spec_tree": {CONTROLLER, EMBEDDED, USER},
    "overflow.StatusStore": {CONTROLLER, EMBEDDED, USER},
    "overflow.StatusStore.store": {CONTROLLER, EMBEDDED},
    "overflow.StatusStore._write": {CONTROLLER, EMBEDDED},  # store's and store_changes' writes
    # Generated trees of co.Lazy that do not fit in status.lazy (kube/lazystore.py):
    # controllers write them, everyone who reads a Pipeline's tree reads them.
    "lazystore": {CONTROLLER, EMBEDDED},
    "lazystore.loader": {CONTROLLER, EMBEDDED, USER},
    # `k8sco secrets` and co.api.Secrets manage the namespace's Secret; controllers read
    # its key names (as metadata) before creating Jobs.
    "secrets": {USER},
    "secrets.key_names": {CONTROLLER, EMBEDDED},
    # Shared containers' outcomes: a group Job's pod's termination message, or its log
    # (kube/groups.py), read by controllers with the rights co.Lazy needs already.
    "groups": {CONTROLLER, EMBEDDED},
}
# The roles each identity holds, from manifests/30-rbac.yaml.
ROLES = {
    CONTROLLER: {("ClusterRole", "k8sco-controller"), ("Role", "k8sco-controller-leader")},
    EMBEDDED: {("ClusterRole", "k8sco-embedded-controller")},
    USER: {
        ("ClusterRole", "k8sco-user"),
        ("ClusterRole", "k8sco-viewer"),
        ("Role", "k8sco-lease-reader"),
    },
}
# What a user running `k8sco` has without k8sco's roles (kubernetes
# plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go): "view" reads Jobs, pods and
# their logs, and system:basic-user lets everyone ask what they may do.
BUILT_IN_USER = {
    ("list", "batch", "jobs"),
    ("list", "", "pods"),
    ("get", "", "pods/log"),
    ("get", "", "configmaps"),
    ("create", "", "configmaps"),  # "edit"
    ("create", "authorization.k8s.io", "selfsubjectaccessreviews"),
    # "edit" reads and writes Secrets; `k8sco secrets` needs no role of k8sco's for it.
    ("get", "", "secrets"),
    ("create", "", "secrets"),
    ("update", "", "secrets"),
    ("delete", "", "secrets"),
}
# Rules that no API call uses, and why they are needed all the same.
NO_CALL = {
    # OwnerReferencesPermissionEnforcement (kubernetes plugin/pkg/admission/gc/
    # gc_admission.go) lets an object set blockOwnerDeletion on its Pipeline only with this:
    # Jobs and status ConfigMaps (controllers), tree ConfigMaps (`k8sco apply`).
    ("update", "k8sco.io", "pipelines/finalizers"): {CONTROLLER, EMBEDDED, USER},
}


@dataclass(frozen=True)
class Call:
    where: str  # file:line
    identities: frozenset[str]
    verb: str
    group: str
    resource: str


class Unresolved(Exception):
    pass


# --- the inventory -------------------------------------------------------------------------


class _Module:
    def __init__(self, path: Path) -> None:
        self.name = path.stem
        self.path = path
        self.tree = ast.parse(path.read_text(), filename=str(path))
        self.module = importlib.import_module(f"k8sco.kube.{self.name}")
        self.functions: dict[str, ast.FunctionDef] = {}
        self.classes: dict[str, dict[str, ast.FunctionDef]] = {}
        for node in self.tree.body:
            if isinstance(node, ast.FunctionDef):
                self.functions[node.name] = node
            elif isinstance(node, ast.ClassDef):
                self.classes[node.name] = {
                    n.name: n for n in node.body if isinstance(n, ast.FunctionDef)
                }


@dataclass
class _Ctx:
    module: _Module
    cls: str | None
    func: ast.FunctionDef | None
    env: dict[str, list[str]]


def _returns(func: ast.FunctionDef) -> list[ast.expr]:
    return [n.value for n in ast.walk(func) if isinstance(n, ast.Return) and n.value is not None]


def _inline(func: ast.FunctionDef, args: list[ast.expr], ctx: _Ctx, cls: str | None) -> list[str]:
    params = [a.arg for a in func.args.args]
    if params and params[0] == "self":
        params = params[1:]
    env = {p: _resolve(a, ctx) for p, a in zip(params, args, strict=False)}
    inner = _Ctx(ctx.module, cls, func, env)
    return [t for r in _returns(func) for t in _resolve(r, inner)]


def _resolve(expr: ast.expr, ctx: _Ctx, depth: int = 0) -> list[str]:
    """The URL templates ``expr`` may evaluate to, ``{}`` standing for a variable part."""
    if depth > 20:
        raise Unresolved(ast.unparse(expr))
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return [expr.value]
    if isinstance(expr, ast.JoinedStr):
        parts: list[list[str]] = []
        for i, v in enumerate(expr.values):
            if not isinstance(v, ast.FormattedValue):
                parts.append([str(v.value)])  # type: ignore[attr-defined]
            elif i == 0:
                parts.append(_resolve(v.value, ctx, depth + 1))  # the collection's path
            else:
                try:  # after the collection: an object's name, whatever computes it
                    parts.append(_resolve(v.value, ctx, depth + 1))
                except Unresolved:
                    parts.append(["{}"])
        return ["".join(p) for p in itertools.product(*parts)]
    if isinstance(expr, ast.Name):
        if expr.id in ctx.env:
            return ctx.env[expr.id]
        if ctx.func is not None:
            assigned = [
                n.value
                for n in ast.walk(ctx.func)
                if isinstance(n, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == expr.id for t in n.targets)
            ]
            if assigned:
                return [t for a in assigned for t in _resolve(a, ctx, depth + 1)]
        value = getattr(ctx.module.module, expr.id, None)
        return [value] if isinstance(value, str) else ["{}"]
    if isinstance(expr, ast.Attribute):
        if isinstance(expr.value, ast.Name) and expr.value.id == "self" and ctx.cls:
            methods = ctx.module.classes[ctx.cls]
            if expr.attr in methods:  # a property
                return _inline(methods[expr.attr], [], ctx, ctx.cls)
            assigned = [
                (m, n.value)
                for m in methods.values()
                for n in ast.walk(m)
                if isinstance(n, ast.Assign)
                and any(
                    isinstance(t, ast.Attribute)
                    and t.attr == expr.attr
                    and isinstance(t.value, ast.Name)
                    and t.value.id == "self"
                    for t in n.targets
                )
            ]
            if assigned:
                return [
                    t
                    for m, a in assigned
                    for t in _resolve(a, _Ctx(ctx.module, ctx.cls, m, {}), depth + 1)
                ]
        return ["{}"]  # another object's attribute: a name, a namespace
    if isinstance(expr, ast.Subscript):
        return ["{}"]  # meta["name"]
    if isinstance(expr, ast.Call):
        func = expr.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name == "ns_path":  # Cluster.ns_path(group_path, plural, namespace)
            groups = _resolve(expr.args[0], ctx, depth + 1)
            plurals = _resolve(expr.args[1], ctx, depth + 1)
            return [f"{g}/namespaces/{{}}/{p}" for g in groups for p in plurals]
        if name == "quote":
            return ["{}"]
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "self"
            and ctx.cls
            and name in ctx.module.classes[ctx.cls]
        ):
            return _inline(ctx.module.classes[ctx.cls][name], expr.args, ctx, ctx.cls)
        if isinstance(func, ast.Name) and name in ctx.module.functions:
            return _inline(ctx.module.functions[name], expr.args, ctx, None)
    raise Unresolved(ast.unparse(expr))


def _parse_url(template: str) -> tuple[str, str, bool]:
    """(group, resource with subresource, names an object) of a URL template."""
    parts = template.strip("/").split("/")
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[0] == "apis" and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        raise Unresolved(template)
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    if not rest or rest[0] == "{}":
        raise Unresolved(template)
    resource, named = rest[0], len(rest) >= 2
    if len(rest) >= 3:
        resource += "/" + rest[2]
    return group, resource, named


_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def _verb(method: str, named: bool, watch: bool) -> str:
    # requestinfo.go: GET of a collection is list, of an object get; DELETE of a
    # collection is deletecollection; ?watch=true (Cluster.watch) is watch.
    if watch:
        return "watch"
    if method == "GET":
        return "get" if named else "list"
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return _VERBS[method]


def _identities(module: _Module, cls: str | None, func: str) -> set[str]:
    keys = [f"{module.name}.{cls}.{func}", f"{module.name}.{cls}"] if cls else []
    keys += [f"{module.name}.{func}", module.name]
    for key in keys:
        if key in IDENTITIES:
            return IDENTITIES[key]
    raise AssertionError(f"k8sco/kube/{module.name}.py {func}: say who runs it in IDENTITIES")


def _functions(module: _Module) -> Iterator[tuple[str | None, ast.FunctionDef]]:
    for name, func in module.functions.items():
        del name
        yield None, func
    for cls, methods in module.classes.items():
        for func in methods.values():
            yield cls, func


def inventory() -> list[Call]:
    calls: list[Call] = []
    for path in sorted(KUBE.glob("*.py")):
        module = _Module(path)
        for cls, func in _functions(module):
            for node in ast.walk(func):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("request", "watch", "stream")
                ):
                    continue
                receiver = ast.unparse(node.func.value)
                if not receiver.endswith("cluster"):
                    continue  # the transport calling itself
                where = f"k8sco/kube/{path.name}:{node.lineno}"
                ctx = _Ctx(module, cls, func, {})
                try:
                    if node.func.attr == "request":
                        method = node.args[0]
                        assert isinstance(method, ast.Constant), where
                        method_name, path_expr = str(method.value), node.args[1]
                    else:
                        method_name, path_expr = "GET", node.args[0]
                    templates = _resolve(path_expr, ctx)
                except Unresolved as exc:
                    raise AssertionError(f"{where}: cannot tell which URL {exc} is") from None
                who = frozenset(_identities(module, cls, func.name))
                for template in templates:
                    group, resource, named = _parse_url(template)
                    verb = _verb(method_name, named, node.func.attr == "watch")
                    calls.append(Call(where, who, verb, group, resource))
    return calls


# --- the rules -----------------------------------------------------------------------------


def roles() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (d["kind"], d["metadata"]["name"]): d
        for d in yaml.safe_load_all(RBAC.read_text())
        if d and d["kind"] in ("Role", "ClusterRole")
    }


def grants(identity: str) -> set[tuple[str, str, str]]:
    found = roles()
    return {
        (verb, group, resource)
        for key in ROLES[identity]
        for rule in found[key]["rules"]
        for verb in rule["verbs"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }


@functools.cache
def calls() -> tuple[Call, ...]:
    return tuple(inventory())


def test_the_inventory_sees_the_calls_it_must() -> None:
    # A check of the walk itself: calls known to exist are found with the right identity.
    seen = {(c.verb, c.group, c.resource, c.identities) for c in calls()}
    assert ("patch", "k8sco.io", "pipelines/status", frozenset({CONTROLLER, EMBEDDED})) in seen
    assert ("watch", "batch", "jobs", frozenset({CONTROLLER, EMBEDDED})) in seen
    assert ("update", "coordination.k8s.io", "leases", frozenset({CONTROLLER})) in seen
    assert ("get", "coordination.k8s.io", "leases", frozenset({USER})) in seen
    assert ("watch", "k8sco.io", "pipelines", frozenset({USER})) in seen
    assert ("get", "", "pods/log", frozenset({USER})) in seen


@pytest.mark.parametrize("identity", [CONTROLLER, EMBEDDED, USER])
def test_every_call_is_allowed(identity: str) -> None:
    allowed = grants(identity) | (BUILT_IN_USER if identity == USER else set())
    missing = sorted(
        {
            f"{c.where}: {c.verb} {c.group or 'core'}/{c.resource}"
            for c in calls()
            if identity in c.identities and (c.verb, c.group, c.resource) not in allowed
        }
    )
    assert missing == [], f"no rule of {sorted(ROLES[identity])} allows these calls"


@pytest.mark.parametrize("identity", [CONTROLLER, EMBEDDED, USER])
def test_every_rule_is_used(identity: str) -> None:
    used = {(c.verb, c.group, c.resource) for c in calls() if identity in c.identities}
    used |= {rule for rule, who in NO_CALL.items() if identity in who}
    unused = sorted(grants(identity) - used)
    assert unused == [], f"rules of {sorted(ROLES[identity])} that no call of k8sco uses"


def test_editors_cannot_write_a_pipelines_result() -> None:
    for key, role in roles().items():
        labels = role["metadata"].get("labels", {})
        if any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in labels):
            resources = {r for rule in role["rules"] for r in rule["resources"]}
            assert "pipelines/status" not in resources, key
    embedded = roles()[("ClusterRole", access.EMBEDDED_ROLE)]
    assert not any("aggregate" in k for k in embedded["metadata"].get("labels", {}))


def test_every_rule_says_why() -> None:
    lines = RBAC.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("- apiGroups:"):
            assert lines[i - 1].startswith("#"), f"manifests/30-rbac.yaml:{i + 1}: say why"


# --- the embedded mode's check -------------------------------------------------------------


class _Reviews:
    """A cluster that answers SelfSubjectAccessReviews (or fails them with ``error``)."""

    def __init__(self, allowed: bool | None, error: ClusterError | None = None) -> None:
        self.allowed, self.error = allowed, error
        self.asked: list[dict[str, Any]] = []

    def request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        assert (method, path) == ("POST", f"{access.AUTHORIZATION}/selfsubjectaccessreviews")
        self.asked.append(kw["body"]["spec"]["resourceAttributes"])
        if self.error is not None:
            raise self.error
        return {"status": {} if self.allowed is None else {"allowed": self.allowed}}


def test_embedded_mode_names_the_role_it_lacks() -> None:
    cluster = _Reviews(False)
    with pytest.raises(UsageError) as err:
        access.check_embedded(cluster, "team-a")  # type: ignore[arg-type]
    message = str(err.value)
    assert "\n" not in message
    assert re.search(r"ClusterRole k8sco-embedded-controller in namespace team-a", message)
    assert "--clusterrole=k8sco-embedded-controller" in message
    assert cluster.asked == [
        {
            "namespace": "team-a",
            "verb": "patch",
            "group": "k8sco.io",
            "resource": "pipelines",
            "subresource": "status",
        }
    ]


@pytest.mark.parametrize(
    "cluster", [_Reviews(True), _Reviews(None), _Reviews(None, NotFound("no such API"))]
)
def test_embedded_mode_goes_ahead_when_allowed_or_unknown(cluster: _Reviews) -> None:
    access.check_embedded(cluster, "team-a")  # type: ignore[arg-type]


def test_apply_in_embedded_mode_stops_before_creating_anything() -> None:
    import k8sco as co
    from k8sco.cli.cluster import apply_tree

    class Cluster(_Reviews):
        namespace = "team-a"

    cluster = Cluster(False)
    root = co.Serial()
    root["x"] = co.Exec("true")
    with pytest.raises(UsageError, match="k8sco-embedded-controller"):
        apply_tree(cluster, root, "pipe", "pipe-1", "busybox:1", False, "embedded")
    assert len(cluster.asked) == 1  # the review, and no Pipeline created (_Reviews asserts)
