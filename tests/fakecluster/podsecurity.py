"""Pod Security Standards "baseline" and "restricted" checks (k8s-jobs.md §5), pure.

Returns messages in the format of kube-apiserver's PodSecurity admission, e.g.
``allowPrivilegeEscalation != false (container "main" must set
securityContext.allowPrivilegeEscalation=false)``.
"""

from __future__ import annotations

import json
from typing import Any

_BASELINE_CAPS = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip
_RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip


def _names(containers: list[dict[str, Any]]) -> str:
    quoted = [f'"{c.get("name")}"' for c in containers]
    noun = "container" if len(quoted) == 1 else "containers"
    return f"{noun} {', '.join(quoted)}"


def _volumes(names: list[Any]) -> str:
    noun = "volume" if len(names) == 1 else "volumes"
    return f"{noun} {', '.join(json.dumps(str(n)) for n in names)}"


def check_pod_security(spec: dict[str, Any], level: str) -> list[str]:
    containers = [
        c
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
        if isinstance(c, dict)
    ]
    pod_sc = spec.get("securityContext") or {}
    out: list[str] = []

    def sc(c: dict[str, Any]) -> dict[str, Any]:
        return c.get("securityContext") or {}

    # -- baseline --
    privileged = [c for c in containers if sc(c).get("privileged")]
    if privileged:
        out.append(
            f"privileged ({_names(privileged)} must not set securityContext.privileged=true)"
        )
    hosts = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    if hosts:
        out.append(f"host namespaces ({', '.join(hosts)})")
    host_paths = [v.get("name") for v in spec.get("volumes") or [] if "hostPath" in v]
    if host_paths:
        out.append(f"hostPath volumes ({_volumes(host_paths)})")
    host_ports = [c for c in containers if any(p.get("hostPort") for p in c.get("ports") or [])]
    if host_ports:
        out.append(f"hostPort ({_names(host_ports)} uses hostPort)")
    added = [
        c
        for c in containers
        if set((sc(c).get("capabilities") or {}).get("add") or []) - _BASELINE_CAPS
    ]
    if added:
        out.append(
            f"non-default capabilities ({_names(added)} must not include capabilities beyond "
            "the default set in securityContext.capabilities.add)"
        )
    if level != "restricted":
        return out
    # -- restricted --
    escalation = [c for c in containers if sc(c).get("allowPrivilegeEscalation") is not False]
    if escalation:
        out.append(
            f"allowPrivilegeEscalation != false ({_names(escalation)} must set "
            "securityContext.allowPrivilegeEscalation=false)"
        )
    caps = [
        c
        for c in containers
        if "ALL" not in ((sc(c).get("capabilities") or {}).get("drop") or [])
        or set((sc(c).get("capabilities") or {}).get("add") or []) - {"NET_BIND_SERVICE"}
    ]
    if caps:
        out.append(
            f"unrestricted capabilities ({_names(caps)} must set "
            'securityContext.capabilities.drop=["ALL"])'
        )
    volumes = [v for v in spec.get("volumes") or [] if not set(v) - {"name"} <= _RESTRICTED_VOLUMES]
    if volumes:
        out.append(f"restricted volume types ({_volumes([v.get('name') for v in volumes])})")
    non_root = [
        c
        for c in containers
        if sc(c).get("runAsNonRoot") is False
        or (sc(c).get("runAsNonRoot") is None and not pod_sc.get("runAsNonRoot"))
    ]
    if non_root:
        out.append(
            f"runAsNonRoot != true (pod or {_names(non_root)} must set "
            "securityContext.runAsNonRoot=true)"
        )
    root_user = [c for c in containers if sc(c).get("runAsUser") == 0]
    if pod_sc.get("runAsUser") == 0:
        out.append("runAsUser=0 (pod must not set runAsUser=0)")
    elif root_user:
        out.append(f"runAsUser=0 ({_names(root_user)} must not set runAsUser=0)")
    ok_seccomp = ("RuntimeDefault", "Localhost")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    seccomp = [
        c
        for c in containers
        if ((sc(c).get("seccompProfile") or {}).get("type") or pod_seccomp) not in ok_seccomp
    ]
    if seccomp:
        out.append(
            f"seccompProfile (pod or {_names(seccomp)} must set "
            'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
        )
    return out
