"""manifests/: every object valid, the CRD equal to k8sco.render.crd, RBAC least privilege,
the controller Deployment restricted and probed, the Dockerfile non-root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_schemas import REPO, golden, validate_k8s

from k8sco.render import emit
from k8sco.render.constants import LEASE_NAME, SYSTEM_NAMESPACE
from k8sco.render.crd import crd
from k8sco.secrets import SECRET_NAME

MANIFESTS = REPO / "manifests"
CRD_FILE = MANIFESTS / "10-crd.yaml"
CRD_HEADER = (
    "# Generated from k8sco/render/crd.py by tests/test_manifests.py; do not edit.\n"
    "# Regenerate with: K8SCO_REGEN_GOLDEN=1 pytest tests/test_manifests.py\n"
)


def crd_text() -> str:
    return CRD_HEADER + emit.dump(crd())


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def objects() -> list[dict[str, Any]]:
    return [doc for path in sorted(MANIFESTS.glob("*.yaml")) for doc in load(path)]


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects() if o["kind"] == kind}


def test_crd_file_is_the_crd() -> None:
    golden(CRD_FILE, crd_text())
    assert load(CRD_FILE) == [crd()]


def test_files_apply_in_dependency_order() -> None:
    # kubectl apply -f DIR goes by file name: the namespace and the CRD before what uses them.
    kinds = [o["kind"] for o in objects()]
    assert kinds.index("Namespace") < kinds.index("ServiceAccount") < kinds.index("Deployment")
    assert kinds.index("CustomResourceDefinition") < kinds.index("ClusterRole")
    assert all(p.name[:2].isdigit() for p in MANIFESTS.glob("*.yaml"))


@pytest.mark.parametrize("obj", objects(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_every_object_validates(obj: dict[str, Any]) -> None:
    validate_k8s(obj)


def test_namespaced_objects_are_in_the_system_namespace() -> None:
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
    for o in objects():
        if o["kind"] not in cluster_scoped:
            assert o["metadata"]["namespace"] == SYSTEM_NAMESPACE, o["metadata"]["name"]


def test_crd_shape() -> None:
    spec = crd()["spec"]
    assert crd()["metadata"]["name"] == "pipelines.k8sco.io"
    assert spec["scope"] == "Namespaced"
    assert set(spec["names"]["shortNames"]) == {"pl", "pipe"}
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["storage"] and version["served"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c for c in version["additionalPrinterColumns"] if "priority" not in c}
    assert columns["Phase"]["jsonPath"] == ".status.phase"
    assert columns["Progress"]["jsonPath"] == ".status.progress"
    assert columns["Age"] == {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
    }


def _structural_problems(node: Any, where: str = "") -> list[str]:
    """Where a schema is not structural: a node without a type (outside value-only
    oneOf/anyOf/allOf branches), or properties together with additionalProperties."""
    out: list[str] = []
    if "type" not in node and not node.get("x-kubernetes-int-or-string"):
        out.append(f"{where or '/'}: no type")
    if "properties" in node and "additionalProperties" in node:
        out.append(f"{where}: properties and additionalProperties")
    for key in ("oneOf", "anyOf", "allOf"):
        for branch in node.get(key, []):
            if set(branch) - {"required"}:
                out.append(f"{where}.{key}: a branch may only list required fields")
    for name, sub in node.get("properties", {}).items():
        out.extend(_structural_problems(sub, f"{where}.{name}"))
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            out.extend(_structural_problems(node[key], f"{where}.{key}"))
    return out


def test_crd_schema_is_structural() -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _structural_problems(schema) == []


def _rules(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_controller_rbac_is_least_privilege() -> None:
    cluster = _rules(by_kind("ClusterRole")["k8sco-controller"])
    # Each rule's use in the code: tests/test_rbac.py.
    expected = {
        *(("k8sco.io", "pipelines", v) for v in ("get", "list", "watch")),
        ("k8sco.io", "pipelines/status", "patch"),
        ("k8sco.io", "pipelines/finalizers", "update"),
        *(("batch", "jobs", v) for v in ("create", "get", "list", "watch", "delete")),
        ("", "pods", "list"),
        ("", "pods/log", "get"),  # co.Lazy: a Generate node's log holds its tree
        *(("", "events", v) for v in ("create", "list")),
        *(("", "configmaps", v) for v in ("create", "get", "update")),
        ("", "secrets", "get"),  # one Secret's key names: see the next assertion
    }
    # Only the cluster's controller has a data store (kube/archive.py): its finalizer and
    # the log-archived annotation (and it reads the logs it archives: pods/log, above).
    data_store = {
        ("k8sco.io", "pipelines", "patch"),
        ("batch", "jobs", "patch"),
    }
    # Only the cluster's controller deletes finished Pipelines (kube/retention.py).
    retention = {("k8sco.io", "pipelines", "delete")}
    assert cluster == expected | data_store | retention
    assert _rules(by_kind("ClusterRole")["k8sco-embedded-controller"]) == expected
    for name in ("k8sco-controller", "k8sco-embedded-controller"):
        secret_rules = [
            r for r in by_kind("ClusterRole")[name]["rules"] if "secrets" in r["resources"]
        ]
        assert [r.get("resourceNames") for r in secret_rules] == [[SECRET_NAME]], name
    leader = by_kind("Role")["k8sco-controller-leader"]
    assert leader["metadata"]["namespace"] == SYSTEM_NAMESPACE
    assert _rules(leader) == {
        ("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")
    }
    for role in (*by_kind("ClusterRole").values(), *by_kind("Role").values()):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], role
            if "secrets" in rule["resources"]:  # only the key names of k8sco's own Secret
                assert rule == {
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "resourceNames": [SECRET_NAME],
                    "verbs": ["get"],
                }, role


def test_bindings_point_at_the_service_account() -> None:
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        for name, binding in by_kind(kind).items():
            if name == "k8sco-lease-reader":
                assert binding["subjects"] == [
                    {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Group",
                        "name": "system:authenticated",
                    }
                ]
                continue
            assert binding["subjects"] == [
                {
                    "kind": "ServiceAccount",
                    "name": "k8sco-controller",
                    "namespace": SYSTEM_NAMESPACE,
                }
            ]


def test_user_roles_aggregate_into_edit_and_view() -> None:
    roles = by_kind("ClusterRole")
    user = roles["k8sco-user"]
    assert user["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert ("k8sco.io", "pipelines", "create") in _rules(user)
    # No status: an editor cannot forge a result (finalizers: see tests/test_rbac.py).
    assert {r for _, r, _ in _rules(user)} == {"pipelines", "pipelines/finalizers"}
    viewer = roles["k8sco-viewer"]
    assert viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert {v for _, _, v in _rules(viewer)} == {"get", "list", "watch"}
    reader = by_kind("Role")["k8sco-lease-reader"]
    assert reader["rules"][0]["resourceNames"] == [LEASE_NAME]
    assert _rules(reader) == {("coordination.k8s.io", "leases", "get")}


def test_controller_deployment() -> None:
    from k8sco.render.podspec import restricted_violations

    deployment = by_kind("Deployment")["k8sco-controller"]
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "k8sco-controller"
    assert restricted_violations(pod) == []
    (container,) = pod["containers"]
    assert container["command"] == ["k8sco", "controller"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    # What checkov asks of it (scripts/test.sh runs checkov on manifests/ too).
    assert container["resources"]["limits"]["cpu"]
    assert pod["securityContext"]["runAsUser"] >= 10000
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # Not :latest and not Always: an image loaded into kind exists on the node only.
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert not container["image"].endswith(":latest")
    env = {e["name"]: e for e in container["env"]}
    assert env["K8SCO_LEASE_NAME"]["value"] == LEASE_NAME
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    (policy,) = by_kind("NetworkPolicy").values()
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_dockerfile_runs_the_controller_as_non_root() -> None:
    lines = [
        line.strip()
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    assert any(line.startswith("CMD") and '"controller"' in line for line in lines)
    assert "WORKDIR /app" in lines
