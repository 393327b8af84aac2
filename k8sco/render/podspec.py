"""The ``pod_spec`` escape hatch: validating a patch, merging it into a node's pod spec, and
checking the result against the Pod Security "restricted" profile.

Pure. The patch is validated against the PodSpec schema of Kubernetes 1.30 (the oldest
version k8sco supports), shipped with k8sco as ``podspec.schema.json`` (generated from
``kubernetes-validate``'s strict schemas without descriptions; a test keeps it current). The
validator here knows the handful of JSON-schema keywords those schemas use, so k8sco needs no
schema library at run time.

How a patch is merged (documented for users in ``params.SPECS``):

- fields k8sco does not set (``nodeSelector``, ``tolerations``, ``affinity``, ``volumes``,
  ``serviceAccountName``, ``priorityClassName``, ``imagePullSecrets``...) are taken as given;
- ``securityContext`` is merged key by key over k8sco's defaults;
- ``containers`` may hold one entry, named ``main``: it is merged into the node's container
  (``volumeMounts``, ``envFrom``, ``ports``... as given; ``env`` appended to the node's;
  ``securityContext`` merged over the defaults). ``command``, ``args`` and ``image`` come from
  the node and may not be patched. Sidecars go in ``initContainers`` with
  ``restartPolicy: Always`` (a plain second container would keep the Job from finishing);
- ``initContainers`` get k8sco's container security defaults under their own settings;
- ``restartPolicy`` may only be ``Never`` (the Job's podFailurePolicy requires it).
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from k8sco.errors import PipelineError, PipelineTypeError, UsageError
from k8sco.render.constants import CONTAINER_NAME
from k8sco.render.names import is_dns_label

SCHEMA_FILE = "podspec.schema.json"
_ROOT = "io.k8s.api.core.v1.PodSpec"
_QUANTITY_DEF = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$")
_NOT_PATCHABLE = ("command", "args", "image")


@cache
def schema() -> dict[str, Any]:
    """``{"kubernetes": "1.30", "definitions": {...}}``: the PodSpec schema and its parts."""
    text = resources.files("k8sco.render").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def check_patch(path: str, value: Any) -> dict[str, Any]:
    """The ``pod_spec`` parameter set at ``path``, as plain JSON data, or an error naming the
    node and the field: not a dict, not JSON, not a PodSpec field, a wrong type, or a field
    k8sco owns."""

    def fail(message: str) -> PipelineError:
        return PipelineError(f"{path}: parameter 'pod_spec': {message}")

    if not isinstance(value, Mapping):
        raise PipelineTypeError(
            f"{path}: parameter 'pod_spec' expects a dict of PodSpec fields, "
            f"got {type(value).__name__} {value!r}"
        )
    try:
        # A round trip through JSON is both the check that the patch can travel in the
        # Pipeline object and a deep copy the user can no longer change behind our back.
        patch: dict[str, Any] = json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise fail(f"must be plain JSON data (dicts, lists, str, numbers, bools): {exc}") from None
    problems = validate(patch)
    if problems:
        raise fail(
            "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" * (len(problems) > 5))
        )
    if patch.get("restartPolicy", "Never") != "Never":
        raise fail("restartPolicy must be Never: a node's Job retries through 'retries'")
    for i, container in enumerate(patch.get("containers") or []):
        if container.get("name") != CONTAINER_NAME:
            raise fail(
                f"containers[{i}] is named {container.get('name')!r}; the only container that "
                f"can be patched is {CONTAINER_NAME!r} (the node's own). Put sidecars in "
                "initContainers with restartPolicy: Always"
            )
        for key in _NOT_PATCHABLE:
            if key in container:
                raise fail(
                    f"containers[{i}].{key} cannot be patched: it comes from the node "
                    "(its command and its 'image' parameter)"
                )
    for group in ("containers", "initContainers"):
        for i, container in enumerate(patch.get(group) or []):
            for j, env in enumerate(container.get("env") or []):
                if str(env.get("name", "")).startswith("K8SCO_"):
                    raise fail(f"{group}[{i}].env[{j}]: K8SCO_* variables are set by k8sco")
    return patch


def validate(patch: Mapping[str, Any]) -> list[str]:
    """Problems of ``patch`` as a (partial) PodSpec: unknown fields, wrong types, malformed
    quantities. A patch need not repeat required fields of the PodSpec itself (containers)."""
    problems: list[str] = []
    defs = schema()["definitions"]
    _check(patch, defs[_ROOT], "", defs, problems, partial=True)
    return problems


_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _check(
    value: Any,
    node: Mapping[str, Any],
    where: str,
    defs: Mapping[str, Any],
    problems: list[str],
    partial: bool = False,
) -> None:
    ref = node.get("$ref")
    if ref is not None:
        name = ref.rsplit("/", 1)[-1]
        if name == _QUANTITY_DEF and isinstance(value, str) and not _QUANTITY.match(value):
            problems.append(f"{where or 'pod_spec'}: {value!r} is not a Kubernetes quantity")
            return
        _check(value, defs[name], where, defs, problems, partial)
        return
    if "oneOf" in node:
        if not any(_matches(value, option, defs) for option in node["oneOf"]):
            problems.append(f"{where}: {value!r} has the wrong type")
        return
    types = node.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else list(types)
        if not any(_TYPES[t](value) for t in allowed):
            wanted = " or ".join(t for t in allowed if t != "null")
            problems.append(
                f"{where or 'pod_spec'}: expected {wanted}, got {type(value).__name__} {value!r}"
            )
            return
    if isinstance(value, dict):
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        for key, item in value.items():
            sub = f"{where}.{key}" if where else key
            if key in props:
                _check(item, props[key], sub, defs, problems)
            elif isinstance(extra, dict):
                _check(item, extra, sub, defs, problems)
            elif props:
                close = difflib.get_close_matches(key, list(props), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"{sub}: unknown field{hint}")
        if not partial:
            for key in node.get("required", ()):
                if key not in value:
                    problems.append(f"{where}: missing required field {key!r}")
    elif isinstance(value, list) and "items" in node:
        for i, item in enumerate(value):
            _check(item, node["items"], f"{where}[{i}]", defs, problems)


def _matches(value: Any, node: Mapping[str, Any], defs: Mapping[str, Any]) -> bool:
    problems: list[str] = []
    _check(value, node, "", defs, problems)
    return not problems


# --- merging ------------------------------------------------------------------------------


def merge(pod: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``pod`` (a pod spec k8sco built, with one container) with ``patch`` merged in as the
    module docstring says. ``pod`` is not changed; nothing in the result aliases ``patch``."""
    out = dict(pod)
    defaults = pod["containers"][0].get("securityContext", {})
    for key, value in patch.items():
        if key == "securityContext":
            out[key] = deep_merge(pod.get(key, {}), value)
        elif key == "containers":
            main = dict(out["containers"][0])
            for container in value:
                for field, item in container.items():
                    if field == "env":
                        main["env"] = [*main.get("env", []), *copy.deepcopy(item)]
                    elif field == "securityContext":
                        main[field] = deep_merge(main.get(field, {}), item)
                    elif field != "name":
                        main[field] = copy.deepcopy(item)
            out["containers"] = [main]
        elif key == "initContainers":
            out[key] = [
                {
                    **copy.deepcopy(c),
                    "securityContext": deep_merge(defaults, c.get("securityContext", {})),
                }
                for c in value
            ]
        else:
            out[key] = copy.deepcopy(value)
    return out


def deep_merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Dicts merged key by key (recursively), anything else in ``patch`` replacing ``base``."""
    out = copy.deepcopy(dict(base))
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# --- Pod Security ---------------------------------------------------------------------------
#
# The Pod Security Standards as kubernetes/pod-security-admission checks them (policy/
# check_*.go, at 8f84a87c7f617f64a4ddc1aea24aeeb7a2e07cb8), for every cluster k8sco supports
# (1.30 and later): where a check changed across versions, the strictest version is kept, so
# a pod passing here passes on any of them. That means: the sysctls and SELinux types of
# 1.30 (later versions allow a few more), the probe/lifecycle host check of 1.34, no
# relaxation for user-namespace pods (hostUsers: false, 1.35) and no exemption for pods with
# os.name windows (1.25): k8sco's nodes are Linux pods. The AppArmor annotations of
# check_appArmorProfile.go are pod metadata, which a pod_spec cannot set.

# restrictedVolumes: the inline volume sources "restricted" allows.
_RESTRICTED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
# sysctls: the "safe" set of Kubernetes 1.29/1.30 (sysctlsAllowedV1Dot29).
_SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
# capabilities_baseline: what a container may add (the container runtime's default set).
_BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
# seLinuxOptions: selinuxAllowedTypes1_0 (1.31 adds container_engine_t).
_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
_PROFILE_TYPES = ("RuntimeDefault", "Localhost")  # seccompProfile and appArmorProfile
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
LEVELS = ("baseline", "restricted")


def restricted_violations(pod: Mapping[str, Any]) -> list[str]:
    """Why a pod spec would not pass Pod Security "restricted" (empty if it would)."""
    return pod_security_violations(pod, "restricted")


def baseline_violations(pod: Mapping[str, Any]) -> list[str]:
    """Why a pod spec would not pass Pod Security "baseline" (empty if it would)."""
    return pod_security_violations(pod, "baseline")


def pod_security_violations(pod: Mapping[str, Any], level: str) -> list[str]:
    """Why a pod spec would not pass Pod Security ``level`` ("baseline" or "restricted"),
    each problem naming its field (``containers['main'].securityContext.privileged``)."""
    if level not in LEVELS:
        raise ValueError(f"Pod Security level {level!r} is not one of {LEVELS}")
    out: list[str] = []
    pod_sc = pod.get("securityContext") or {}
    _baseline_pod(pod, pod_sc, out)
    containers = [
        (f"{group}[{c.get('name')!r}]", c)
        for group in ("initContainers", "containers", "ephemeralContainers")
        for c in pod.get(group) or []
    ]
    for name, c in containers:
        _baseline_container(name, c, out)
    if level == "restricted":
        _restricted_pod(pod, pod_sc, out)
        for name, c in containers:
            _restricted_container(name, c, pod_sc, out)
    return out


def _security_options(where: str, sc: Mapping[str, Any], out: list[str]) -> None:
    """The fields a pod and a container share: seccomp, AppArmor, SELinux, Windows."""
    seccomp = (sc.get("seccompProfile") or {}).get("type")
    if seccomp is not None and seccomp not in _PROFILE_TYPES:
        out.append(f"{where}.seccompProfile.type is {seccomp} (RuntimeDefault or Localhost)")
    apparmor = (sc.get("appArmorProfile") or {}).get("type")
    if apparmor is not None and apparmor not in _PROFILE_TYPES:
        out.append(f"{where}.appArmorProfile.type is {apparmor} (RuntimeDefault or Localhost)")
    selinux = sc.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in _SELINUX_TYPES:
        out.append(
            f"{where}.seLinuxOptions.type is {selinux['type']} "
            "(container_t, container_init_t or container_kvm_t)"
        )
    for key in ("user", "role"):
        if selinux.get(key):
            out.append(f"{where}.seLinuxOptions.{key} is set (it may not be)")
    if (sc.get("windowsOptions") or {}).get("hostProcess") is True:
        out.append(f"{where}.windowsOptions.hostProcess is true")


def _baseline_pod(pod: Mapping[str, Any], pod_sc: Mapping[str, Any], out: list[str]) -> None:
    for flag in ("hostNetwork", "hostPID", "hostIPC"):  # hostNamespaces
        if pod.get(flag) is True:
            out.append(f"{flag} is true")
    for volume in pod.get("volumes") or []:  # hostPathVolumes
        if volume.get("hostPath") is not None:
            out.append(f"volumes[{volume.get('name')!r}].hostPath is set")
    for sysctl in pod_sc.get("sysctls") or []:  # sysctls
        if sysctl.get("name") not in _SAFE_SYSCTLS:
            out.append(f"securityContext.sysctls: {sysctl.get('name')!r} is not in the safe set")
    _security_options("securityContext", pod_sc, out)


def _baseline_container(name: str, c: Mapping[str, Any], out: list[str]) -> None:
    sc = c.get("securityContext") or {}
    where = f"{name}.securityContext"
    if sc.get("privileged") is True:  # privileged
        out.append(f"{where}.privileged is true")
    added = [cap for cap in (sc.get("capabilities") or {}).get("add") or []]
    for cap in added:  # capabilities_baseline
        if cap not in _BASELINE_CAPABILITIES:
            out.append(f"{where}.capabilities.add has {cap}")
    if sc.get("procMount", "Default") != "Default":  # procMount
        out.append(f"{where}.procMount is {sc['procMount']} (Default)")
    _security_options(where, sc, out)
    for i, port in enumerate(c.get("ports") or []):  # hostPorts
        if port.get("hostPort"):
            out.append(f"{name}.ports[{i}].hostPort is {port['hostPort']} (0 or unset)")
    handlers = [(p, c.get(p) or {}) for p in _PROBES] + [
        (f"lifecycle.{h}", (c.get("lifecycle") or {}).get(h) or {})
        for h in ("postStart", "preStop")
    ]
    for field, handler in handlers:  # hostProbesAndhostLifecycle (1.34)
        for kind in ("httpGet", "tcpSocket"):
            if (handler.get(kind) or {}).get("host"):
                out.append(f"{name}.{field}.{kind}.host is set (it may not be)")


def _restricted_pod(pod: Mapping[str, Any], pod_sc: Mapping[str, Any], out: list[str]) -> None:
    for volume in pod.get("volumes") or []:  # restrictedVolumes
        kinds = [k for k in volume if k != "name" and k != "hostPath"]
        bad = [k for k in kinds if k not in _RESTRICTED_VOLUMES]
        if bad:
            out.append(f"volumes[{volume.get('name')!r}].{bad[0]} is not an allowed volume type")
    if pod_sc.get("runAsUser") == 0:  # runAsUser
        out.append("securityContext.runAsUser is 0 (root)")
    if pod_sc.get("runAsNonRoot") is False:  # runAsNonRoot
        out.append("securityContext.runAsNonRoot is false")


def _restricted_container(
    name: str, c: Mapping[str, Any], pod_sc: Mapping[str, Any], out: list[str]
) -> None:
    sc = c.get("securityContext") or {}
    where = f"{name}.securityContext"
    if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:  # runAsNonRoot
        out.append(f"{where}.runAsNonRoot is not true (nor the pod's)")
    if sc.get("runAsUser") == 0:  # runAsUser
        out.append(f"{where}.runAsUser is 0 (root)")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if (sc.get("seccompProfile") or {}).get("type", pod_seccomp) is None:  # seccompProfile
        out.append(f"{where}.seccompProfile.type is not set (nor the pod's)")
    if sc.get("allowPrivilegeEscalation") is not False:  # allowPrivilegeEscalation
        out.append(f"{where}.allowPrivilegeEscalation is not false")
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):  # capabilities_restricted
        out.append(f"{where}.capabilities.drop does not drop ALL")
    for cap in caps.get("add") or []:
        if cap != "NET_BIND_SERVICE" and cap in _BASELINE_CAPABILITIES:
            out.append(f"{where}.capabilities.add has {cap} (only NET_BIND_SERVICE)")


# --- requires_docker=True: a Docker-in-Docker sidecar ------------------------------------

# The setting that allows it: "*" or a comma-separated list of namespaces, in the
# controller's environment (the chart's `allowDocker`) and in the environment of
# `k8sco render` and `k8sco apply`, which refuse such nodes without it.
ALLOW_DOCKER_ENV = "K8SCO_ALLOW_DOCKER"
DIND_IMAGE = "docker:27-dind"
DIND_CONTAINER = "docker"
DIND_VOLUME = "k8sco-docker-graph"
# dockerd listens on the pod's loopback only: the node's containers share the pod's network
# namespace, other pods do not. Without TLS, so --tls=false must be said (docker-library's
# dockerd-entrypoint.sh, with DOCKER_TLS_CERTDIR empty, passes arguments starting with "-"
# to dockerd).
DOCKER_HOST = "tcp://127.0.0.1:2375"


def docker_namespaces(setting: str | None) -> frozenset[str]:
    """The namespaces ``K8SCO_ALLOW_DOCKER`` (its value, or None when unset) names, ``"*"``
    for all; UsageError for anything else, which would otherwise never match and refuse
    every requires_docker node with a message blaming the namespace."""
    allowed = frozenset(part.strip() for part in (setting or "").split(",") if part.strip())
    for name in allowed:
        if name != "*" and not is_dns_label(name):
            raise UsageError(
                f"{ALLOW_DOCKER_ENV}={setting!r}: {name!r} is not a namespace name "
                "(a DNS-1123 label) or '*'"
            )
    return allowed


def docker_allowed(setting: str | None, namespace: str) -> bool:
    """Whether ``K8SCO_ALLOW_DOCKER`` allows Docker-in-Docker pods in ``namespace``."""
    allowed = docker_namespaces(setting)
    return "*" in allowed or namespace in allowed


def with_docker(pod: dict[str, Any], path: str, allowed: bool) -> dict[str, Any]:
    """The node's pod with a Docker engine beside it: a privileged ``docker:dind`` native
    sidecar (an init container with ``restartPolicy: Always``, started and found ready before
    the node's container, stopped when it ends, so the Job still completes) and
    ``DOCKER_HOST`` pointing the node's container at it. The node's own container keeps its
    restricted security context; the pod as a whole is Pod Security "privileged", so the
    namespace must enforce that level. Refused unless ``allowed`` (``K8SCO_ALLOW_DOCKER``)."""
    if not allowed:
        raise PipelineError(
            f"{path}: requires_docker=True needs a privileged Docker-in-Docker sidecar on a "
            f"cluster; set {ALLOW_DOCKER_ENV}=<namespace> (or '*') for k8sco and its "
            "controller, in a namespace whose Pod Security level is 'privileged'"
        )
    out = dict(pod)
    sidecar = {
        "name": DIND_CONTAINER,
        "image": DIND_IMAGE,
        "restartPolicy": "Always",
        "args": [f"--host={DOCKER_HOST}", "--tls=false"],
        "env": [{"name": "DOCKER_TLS_CERTDIR", "value": ""}],
        # dockerd runs as root with every privilege; privileged=true with
        # allowPrivilegeEscalation=false is invalid (pkg/apis/core/validation, "cannot set
        # `allowPrivilegeEscalation` to false and `privileged` to true").
        "securityContext": {
            "privileged": True,
            "runAsUser": 0,
            "runAsNonRoot": False,
            "allowPrivilegeEscalation": True,
            "seccompProfile": {"type": "Unconfined"},
        },
        # The kubelet starts the node's container once a sidecar's startupProbe succeeds.
        "startupProbe": {
            "exec": {"command": ["docker", f"--host={DOCKER_HOST}", "version"]},
            "periodSeconds": 1,
            "failureThreshold": 120,
        },
        "volumeMounts": [{"name": DIND_VOLUME, "mountPath": "/var/lib/docker"}],
    }
    out["initContainers"] = [*(pod.get("initContainers") or []), sidecar]
    out["volumes"] = [*(pod.get("volumes") or []), {"name": DIND_VOLUME, "emptyDir": {}}]
    containers = [dict(c) for c in pod["containers"]]
    main = containers[0]
    main["env"] = [*(main.get("env") or []), {"name": "DOCKER_HOST", "value": DOCKER_HOST}]
    out["containers"] = containers
    return out


def without_docker(pod: Mapping[str, Any]) -> dict[str, Any]:
    """``pod`` without the sidecar :func:`with_docker` added: what must still pass the
    node's Pod Security level."""
    out = dict(pod)
    inits = [c for c in pod.get("initContainers") or [] if c.get("name") != DIND_CONTAINER]
    if inits:
        out["initContainers"] = inits
    else:
        out.pop("initContainers", None)
    return out


__all__ = [
    "ALLOW_DOCKER_ENV",
    "DIND_IMAGE",
    "DOCKER_HOST",
    "LEVELS",
    "baseline_violations",
    "check_patch",
    "deep_merge",
    "docker_allowed",
    "docker_namespaces",
    "merge",
    "pod_security_violations",
    "restricted_violations",
    "schema",
    "validate",
    "with_docker",
    "without_docker",
]
