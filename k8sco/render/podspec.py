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

from k8sco.errors import PipelineError, PipelineTypeError
from k8sco.render.constants import CONTAINER_NAME

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

_RESTRICTED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
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


def restricted_violations(pod: Mapping[str, Any]) -> list[str]:
    """Why a pod spec would not pass Pod Security "restricted" (empty if it would).

    The checks of the profile as of Kubernetes 1.30 (k8s-jobs.md §5), baseline ones included:
    non-root, seccomp, privilege escalation, capabilities, volume types, host namespaces,
    host ports, privileged containers, /proc mount, sysctls.
    """
    out: list[str] = []
    pod_sc = pod.get("securityContext") or {}
    containers = [
        (group, c)
        for group in ("initContainers", "containers", "ephemeralContainers")
        for c in pod.get(group) or []
    ]
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            out.append(f"{flag} is true")
    for volume in pod.get("volumes") or []:
        kinds = [k for k in volume if k != "name"]
        bad = [k for k in kinds if k not in _RESTRICTED_VOLUMES]
        if bad:
            out.append(f"volume {volume.get('name')!r} is of type {bad[0]}")
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in _SAFE_SYSCTLS:
            out.append(f"sysctl {sysctl.get('name')!r} is not in the safe set")
    if pod_sc.get("runAsUser") == 0:
        out.append("securityContext.runAsUser is 0 (root)")
    pod_nonroot = pod_sc.get("runAsNonRoot")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in ("RuntimeDefault", "Localhost"):
        out.append(f"securityContext.seccompProfile.type is {pod_seccomp}")
    for group, c in containers:
        name = f"{group}[{c.get('name')!r}]"
        sc = c.get("securityContext") or {}
        nonroot = sc.get("runAsNonRoot", pod_nonroot)
        if nonroot is not True:
            out.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser") == 0:
            out.append(f"{name}: runAsUser is 0 (root)")
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{name}: seccompProfile is not RuntimeDefault or Localhost")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{name}: capabilities do not drop ALL")
        added = [cap for cap in caps.get("add") or [] if cap != "NET_BIND_SERVICE"]
        if added:
            out.append(f"{name}: adds capability {added[0]}")
        if sc.get("privileged"):
            out.append(f"{name}: is privileged")
        if sc.get("procMount", "Default") != "Default":
            out.append(f"{name}: procMount is {sc['procMount']}")
        if any(port.get("hostPort") for port in c.get("ports") or []):
            out.append(f"{name}: uses a hostPort")
    return out


__all__ = ["check_patch", "deep_merge", "merge", "restricted_violations", "schema", "validate"]
