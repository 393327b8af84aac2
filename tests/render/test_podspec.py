"""The pod_spec parameter: validated when set, naming the node and the field; the shipped
PodSpec schema current; the Pod Security "restricted" and "baseline" checks, one case per
field of the upstream standards."""

from __future__ import annotations

import copy
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
    assert podspec.baseline_violations(RESTRICTED_OK) == []


def _variant(pod: dict[str, Any] | None = None, **main: Any) -> dict[str, Any]:
    """RESTRICTED_OK with ``pod`` fields deep-merged into the pod spec and ``main`` fields
    deep-merged into its container (``sc=`` for the container's securityContext)."""
    out = copy.deepcopy(RESTRICTED_OK)
    if pod:
        out = podspec.deep_merge(out, pod)
    container = out["containers"][0]
    if "sc" in main:
        container["securityContext"] = podspec.deep_merge(
            container["securityContext"], main.pop("sc")
        )
    out["containers"][0] = podspec.deep_merge(container, main)
    return out


SC = "containers['main'].securityContext"
# One case per field of the Pod Security Standards, as kubernetes/pod-security-admission
# checks them (policy/check_<id>.go, the id first): the pod, the field the error must name,
# and the lowest level that forbids it ("baseline" fails both levels).
PSS_FIELDS = [
    ("hostNamespaces", _variant({"hostNetwork": True}), "hostNetwork is true", "baseline"),
    ("hostNamespaces", _variant({"hostPID": True}), "hostPID is true", "baseline"),
    ("hostNamespaces", _variant({"hostIPC": True}), "hostIPC is true", "baseline"),
    (
        "hostPathVolumes",
        _variant({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
        "volumes['root'].hostPath",
        "baseline",
    ),
    (
        "sysctls",
        _variant({"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}}),
        "securityContext.sysctls: 'kernel.msgmax'",
        "baseline",
    ),
    (  # safe only from Kubernetes 1.32 on
        "sysctls",
        _variant({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "1"}]}}),
        "'net.ipv4.tcp_rmem'",
        "baseline",
    ),
    (
        "seccompProfile_baseline",
        _variant({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}),
        "securityContext.seccompProfile.type is Unconfined",
        "baseline",
    ),
    (
        "seccompProfile_baseline",
        _variant(sc={"seccompProfile": {"type": "Unconfined"}}),
        f"{SC}.seccompProfile.type is Unconfined",
        "baseline",
    ),
    (
        "appArmorProfile",
        _variant({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}}),
        "securityContext.appArmorProfile.type is Unconfined",
        "baseline",
    ),
    (
        "appArmorProfile",
        _variant(sc={"appArmorProfile": {"type": "Unconfined"}}),
        f"{SC}.appArmorProfile.type is Unconfined",
        "baseline",
    ),
    (
        "seLinuxOptions",
        _variant({"securityContext": {"seLinuxOptions": {"type": "spc_t"}}}),
        "securityContext.seLinuxOptions.type is spc_t",
        "baseline",
    ),
    (
        "seLinuxOptions",
        _variant(sc={"seLinuxOptions": {"type": "spc_t"}}),
        f"{SC}.seLinuxOptions.type is spc_t",
        "baseline",
    ),
    (  # allowed only from Kubernetes 1.31 on
        "seLinuxOptions",
        _variant(sc={"seLinuxOptions": {"type": "container_engine_t"}}),
        f"{SC}.seLinuxOptions.type is container_engine_t",
        "baseline",
    ),
    (
        "seLinuxOptions",
        _variant({"securityContext": {"seLinuxOptions": {"user": "system_u"}}}),
        "securityContext.seLinuxOptions.user is set",
        "baseline",
    ),
    (
        "seLinuxOptions",
        _variant(sc={"seLinuxOptions": {"role": "system_r"}}),
        f"{SC}.seLinuxOptions.role is set",
        "baseline",
    ),
    (
        "windowsHostProcess",
        _variant({"securityContext": {"windowsOptions": {"hostProcess": True}}}),
        "securityContext.windowsOptions.hostProcess is true",
        "baseline",
    ),
    (
        "windowsHostProcess",
        _variant(sc={"windowsOptions": {"hostProcess": True}}),
        f"{SC}.windowsOptions.hostProcess is true",
        "baseline",
    ),
    ("privileged", _variant(sc={"privileged": True}), f"{SC}.privileged is true", "baseline"),
    (
        "capabilities_baseline",
        _variant(sc={"capabilities": {"add": ["SYS_ADMIN"]}}),
        f"{SC}.capabilities.add has SYS_ADMIN",
        "baseline",
    ),
    (
        "capabilities_baseline",
        _variant(sc={"capabilities": {"add": ["NET_RAW"]}}),
        f"{SC}.capabilities.add has NET_RAW",
        "baseline",
    ),
    (
        "procMount",
        _variant(sc={"procMount": "Unmasked"}),
        f"{SC}.procMount is Unmasked",
        "baseline",
    ),
    (
        "hostPorts",
        _variant(ports=[{"containerPort": 80, "hostPort": 80}]),
        "containers['main'].ports[0].hostPort is 80",
        "baseline",
    ),
    (
        "hostProbesAndhostLifecycle",
        _variant(livenessProbe={"httpGet": {"port": 80, "host": "10.0.0.1"}}),
        "containers['main'].livenessProbe.httpGet.host",
        "baseline",
    ),
    (
        "hostProbesAndhostLifecycle",
        _variant(readinessProbe={"tcpSocket": {"port": 80, "host": "db"}}),
        "containers['main'].readinessProbe.tcpSocket.host",
        "baseline",
    ),
    (
        "hostProbesAndhostLifecycle",
        _variant(lifecycle={"preStop": {"httpGet": {"port": 80, "host": "x"}}}),
        "containers['main'].lifecycle.preStop.httpGet.host",
        "baseline",
    ),
    (
        "restrictedVolumes",
        _variant({"volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}}]}),
        "volumes['n'].nfs",
        "restricted",
    ),
    (
        "runAsNonRoot",
        _variant({"securityContext": {"runAsNonRoot": False}}),
        "securityContext.runAsNonRoot is false",
        "restricted",
    ),
    (
        "runAsNonRoot",
        _variant(sc={"runAsNonRoot": False}),
        f"{SC}.runAsNonRoot is not true",
        "restricted",
    ),
    (
        "runAsUser",
        _variant({"securityContext": {"runAsUser": 0}}),
        "securityContext.runAsUser is 0",
        "restricted",
    ),
    ("runAsUser", _variant(sc={"runAsUser": 0}), f"{SC}.runAsUser is 0", "restricted"),
    (
        "allowPrivilegeEscalation",
        _variant(sc={"allowPrivilegeEscalation": True}),
        f"{SC}.allowPrivilegeEscalation is not false",
        "restricted",
    ),
    (
        "capabilities_restricted",
        _variant(sc={"capabilities": {"drop": ["NET_RAW"]}}),
        f"{SC}.capabilities.drop does not drop ALL",
        "restricted",
    ),
    (
        "capabilities_restricted",
        _variant(sc={"capabilities": {"add": ["CHOWN"]}}),
        f"{SC}.capabilities.add has CHOWN (only NET_BIND_SERVICE)",
        "restricted",
    ),
    (  # 1.35's baseline lets a user-namespace pod unmask /proc; 1.30-1.34's does not
        "procMount_restricted",
        _variant({"hostUsers": False}, sc={"procMount": "Unmasked"}),
        f"{SC}.procMount is Unmasked",
        "baseline",
    ),
]


def _without_pod_seccomp() -> dict[str, Any]:
    pod = copy.deepcopy(RESTRICTED_OK)
    del pod["securityContext"]["seccompProfile"]
    return pod


PSS_FIELDS.append(
    (
        "seccompProfile_restricted",
        _without_pod_seccomp(),
        f"{SC}.seccompProfile.type is not set",
        "restricted",
    )
)


def _without(field: str) -> dict[str, Any]:
    pod = copy.deepcopy(RESTRICTED_OK)
    del pod["containers"][0]["securityContext"][field]
    return pod


PSS_FIELDS.append(
    (
        "allowPrivilegeEscalation",
        _without("allowPrivilegeEscalation"),
        f"{SC}.allowPrivilegeEscalation is not false",
        "restricted",
    )
)


@pytest.mark.parametrize(
    ("check", "pod", "field", "level"),
    PSS_FIELDS,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(PSS_FIELDS)],
)
def test_every_pod_security_field(check: str, pod: dict[str, Any], field: str, level: str) -> None:
    del check
    restricted = podspec.restricted_violations(pod)
    assert any(field in p for p in restricted), restricted
    baseline = podspec.baseline_violations(pod)
    if level == "baseline":
        assert any(field in p for p in baseline), baseline
    else:
        assert not any(field in p for p in baseline), baseline


def test_every_upstream_check_has_a_case() -> None:
    # The check ids of kubernetes/pod-security-admission policy/ (check_<id>.go).
    upstream = {
        "allowPrivilegeEscalation",
        "appArmorProfile",
        "capabilities_baseline",
        "capabilities_restricted",
        "hostNamespaces",
        "hostPathVolumes",
        "hostPorts",
        "hostProbesAndhostLifecycle",
        "privileged",
        "procMount",
        "procMount_restricted",
        "restrictedVolumes",
        "runAsNonRoot",
        "runAsUser",
        "seLinuxOptions",
        "seccompProfile_baseline",
        "seccompProfile_restricted",
        "sysctls",
        "windowsHostProcess",
    }
    assert {case[0] for case in PSS_FIELDS} == upstream


@pytest.mark.parametrize(
    "pod",
    [
        _variant(sc={"seLinuxOptions": {"type": "container_t", "level": "s0:c1,c2"}}),
        _variant({"securityContext": {"appArmorProfile": {"type": "Localhost"}}}),
        _variant(sc={"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}),
        _variant(sc={"windowsOptions": {"hostProcess": False}}),
        _variant(
            {
                "securityContext": {
                    "sysctls": [{"name": "net.ipv4.tcp_keepalive_time", "value": "1"}]
                }
            }
        ),
        _variant(livenessProbe={"httpGet": {"port": 80, "path": "/"}}),
        _variant(ports=[{"containerPort": 80}]),
    ],
    ids=[
        "selinux container_t",
        "apparmor",
        "seccomp localhost",
        "hostProcess false",
        "sysctl",
        "probe",
        "port",
    ],
)
def test_allowed_values_pass_restricted(pod: dict[str, Any]) -> None:
    assert podspec.restricted_violations(pod) == []


def test_every_container_is_checked() -> None:
    pod = {
        **RESTRICTED_OK,
        "initContainers": [{"name": "init", "ports": [{"containerPort": 1, "hostPort": 1}]}],
        "ephemeralContainers": [{"name": "debug", "securityContext": {"privileged": True}}],
    }
    problems = podspec.restricted_violations(pod)
    assert (
        "initContainers['init'].securityContext.allowPrivilegeEscalation is not false" in problems
    )
    assert "initContainers['init'].ports[0].hostPort is 1 (0 or unset)" in problems
    assert (
        "ephemeralContainers['debug'].securityContext.privileged is true"
        in podspec.baseline_violations(pod)
    )


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="'privileged'"):
        podspec.pod_security_violations(RESTRICTED_OK, "privileged")
