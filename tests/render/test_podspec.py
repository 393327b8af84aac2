"""The pod_spec parameter: validated when set, naming the node and the field; the shipped
PodSpec schema current; the Pod Security "restricted" checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kube_schemas import REGEN, podspec_schema

import k8sco as co
from k8sco.errors import PipelineError, PipelineTypeError
from k8sco.render import podspec

SCHEMA_FILE = Path(podspec.__file__).with_name(podspec.SCHEMA_FILE)


def test_shipped_schema_is_kubernetes_1_30() -> None:
    expected = podspec_schema("1.30")
    if REGEN:
        SCHEMA_FILE.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    assert json.loads(SCHEMA_FILE.read_text()) == expected


def set_pod_spec(value: Any) -> co.Node:
    root = co.Serial()
    root["x"] = co.Exec("true")
    return root["x"].set(pod_spec=value)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"nodeselector": {"a": "b"}},
            r"nodeselector: unknown field \(did you mean 'nodeSelector'\?\)",
        ),
        ({"tolerations": {"key": "x"}}, r"tolerations: expected array, got dict"),
        (
            {"tolerations": [{"tolerationSeconds": "10"}]},
            r"tolerations\[0\]\.tolerationSeconds: expected integer",
        ),
        ({"overhead": {"cpu": "lots"}}, r"overhead\.cpu: 'lots' is not a Kubernetes quantity"),
        ({"volumes": [{"emptyDir": {}}]}, r"volumes\[0\]: missing required field 'name'"),
        (
            {"containers": [{"name": "sidecar", "image": "x"}]},
            r"the only container that can be patched is 'main'",
        ),
        (
            {"containers": [{"name": "main", "command": ["x"]}]},
            r"containers\[0\]\.command cannot be patched",
        ),
        (
            {"containers": [{"name": "main", "image": "x"}]},
            r"containers\[0\]\.image cannot be patched",
        ),
        ({"restartPolicy": "OnFailure"}, r"restartPolicy must be Never"),
        ({"containers": [{"name": "main", "env": [{"name": "K8SCO_X", "value": "1"}]}]}, r"K8SCO_"),
        ({"nodeSelector": {"a": {1, 2}}}, r"must be plain JSON data"),
        ({"activeDeadlineSeconds": float("nan")}, r"must be plain JSON data"),
    ],
)
def test_bad_patches_fail_when_set_naming_node_and_field(
    patch: dict[str, Any], message: str
) -> None:
    with pytest.raises(PipelineError, match=r"^/x: parameter 'pod_spec': .*" + message):
        set_pod_spec(patch)


def test_not_a_dict() -> None:
    with pytest.raises(PipelineTypeError, match=r"^/x: parameter 'pod_spec' expects a dict"):
        set_pod_spec([{"nodeSelector": {}}])


def test_valid_patches_are_copied_and_survive_serialisation() -> None:
    patch: dict[str, Any] = {
        "nodeSelector": {"kubernetes.io/arch": "arm64"},
        "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 30}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                    ]
                }
            }
        },
        "priorityClassName": "batch-low",
        "serviceAccountName": "runner",
        "automountServiceAccountToken": True,
        "imagePullSecrets": [{"name": "registry"}],
        "overhead": {"cpu": "250m", "memory": 1024},
    }
    node = set_pod_spec(patch)
    patch["nodeSelector"]["kubernetes.io/arch"] = "amd64"
    assert node.params["pod_spec"]["nodeSelector"] == {"kubernetes.io/arch": "arm64"}
    rebuilt = co.Node.deserialize(node.root.serialize())
    assert rebuilt["x"].params["pod_spec"] == node.params["pod_spec"]


def test_validate_accepts_a_whole_pod_spec() -> None:
    full = {
        "containers": [{"name": "main", "image": "x", "resources": {"limits": {"memory": "1Gi"}}}],
        "restartPolicy": "Never",
    }
    assert podspec.validate(full) == []


RESTRICTED_OK: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "main",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
            },
        }
    ],
    "volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "secret": {"secretName": "s"}}],
}


def test_restricted_accepts_the_minimum() -> None:
    assert podspec.restricted_violations(RESTRICTED_OK) == []


@pytest.mark.parametrize(
    ("patch", "problem"),
    [
        ({"hostNetwork": True}, "hostNetwork"),
        ({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}, "hostPath"),
        ({"securityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
        ({"securityContext": {"runAsNonRoot": True, "runAsUser": 0}}, "runAsUser is 0"),
        (
            {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "Unconfined"}}},
            "seccomp",
        ),
        (
            {
                "securityContext": {
                    "runAsNonRoot": True,
                    "sysctls": [{"name": "kernel.msgmax", "value": "1"}],
                }
            },
            "sysctl",
        ),
    ],
)
def test_restricted_pod_problems(patch: dict[str, Any], problem: str) -> None:
    pod = {**RESTRICTED_OK, **patch}
    if "securityContext" in patch:
        pod["securityContext"] = {
            "seccompProfile": {"type": "RuntimeDefault"},
            **patch["securityContext"],
        }
    problems = podspec.restricted_violations(pod)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("container_sc", "problem"),
    [
        (
            {"allowPrivilegeEscalation": True, "capabilities": {"drop": ["ALL"]}},
            "allowPrivilegeEscalation",
        ),
        ({"allowPrivilegeEscalation": False}, "drop ALL"),
        (
            {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]},
            },
            "SYS_ADMIN",
        ),
        (
            {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "privileged": True,
            },
            "privileged",
        ),
        (
            {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "procMount": "Unmasked",
            },
            "procMount",
        ),
    ],
)
def test_restricted_container_problems(container_sc: dict[str, Any], problem: str) -> None:
    pod = {**RESTRICTED_OK, "containers": [{"name": "main", "securityContext": container_sc}]}
    problems = podspec.restricted_violations(pod)
    assert any(problem in p for p in problems), problems


def test_restricted_checks_every_container() -> None:
    pod = {
        **RESTRICTED_OK,
        "initContainers": [{"name": "init", "ports": [{"containerPort": 1, "hostPort": 1}]}],
    }
    problems = podspec.restricted_violations(pod)
    assert any("initContainers['init']: allowPrivilegeEscalation" in p for p in problems)
    assert any("hostPort" in p for p in problems)
