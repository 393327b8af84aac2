"""manifests/optional/ui.yaml: the in-cluster UI, installed only when asked (not by
``kubectl apply -f manifests/``), read-only in its rights and in its flags, reachable only
through ``kubectl port-forward``, and its pod within Pod Security "restricted"."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kube_schemas import REPO, validate_k8s

from k8sco.render.podspec import restricted_violations

FILE = REPO / "manifests" / "optional" / "ui.yaml"


def objects() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(FILE.read_text()) if doc]


def by_kind(kind: str) -> dict[str, Any]:
    (obj,) = [o for o in objects() if o["kind"] == kind]
    return obj


def test_kubectl_apply_of_manifests_does_not_install_it() -> None:
    # `kubectl apply -f DIR` reads DIR's files, not its subdirectories (without -R).
    top = [p for p in (REPO / "manifests").iterdir() if p.is_file()]
    assert not any("k8sco-ui" in p.read_text() for p in top)


@pytest.mark.parametrize("obj", objects(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_every_object_validates(obj: dict[str, Any]) -> None:
    validate_k8s(obj)


def test_its_rights_only_read() -> None:
    rules = by_kind("ClusterRole")["rules"]
    verbs = {v for rule in rules for v in rule["verbs"]}
    assert verbs <= {"get", "list", "watch"}
    resources = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    assert resources == {
        ("k8sco.io", "pipelines"),
        ("", "configmaps"),
        ("", "pods"),
        ("", "pods/log"),
    }
    binding = by_kind("ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "k8sco-ui", "namespace": "k8sco-system"}
    ]


def test_it_listens_on_loopback_read_only_and_apart_from_the_controller() -> None:
    deployment = by_kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert restricted_violations(pod) == []
    (container,) = pod["containers"]
    command = container["command"]
    assert command[:2] == ["k8sco", "ui"]
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert "--read-only" in command and "-A" in command
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "ui"
    service = by_kind("Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"].items() <= labels.items()
    policy = by_kind("NetworkPolicy")
    assert "ingress" not in policy["spec"] and "Ingress" in policy["spec"]["policyTypes"]
