"""A container's environment as the kubelet builds it: env and envFrom (values, fieldRefs,
ConfigMap and Secret keys) and Kubernetes $(VAR) expansion."""

from __future__ import annotations

import base64
import re
from typing import Any

from .registry import Registry


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes $(VAR) expansion of a container's command, args and env values, as
    kubernetes/kubernetes third_party/forked/golang/expansion/expand.go does it: ``$$`` is
    ``$``; ``$(`` up to the next ``)`` is a reference, whatever its characters, replaced by
    the variable's value or kept as written when the variable is not defined; an unclosed
    ``$(`` is kept; ``$`` and any other character are kept, both (``$VAR``, ``${VAR}``)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "$" or i + 1 == n:
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close == -1:
                out.append("$(")
                i += 2
            else:
                name = text[i + 2 : close]
                out.append(env.get(name, f"$({name})"))
                i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


def resolve_env(
    registry: Registry, pod: dict[str, Any], container: dict[str, Any]
) -> dict[str, str]:
    """The container's environment from env and envFrom; KeyError(message) when a
    referenced ConfigMap or Secret key is missing (CreateContainerConfigError)."""
    meta = pod["metadata"]
    ns = meta["namespace"]
    env: dict[str, str] = {"HOSTNAME": meta["name"]}

    def lookup(kind: str, ref: dict[str, Any]) -> dict[str, str] | None:
        key = ("", "configmaps" if kind == "configmap" else "secrets")
        obj = registry.store.get(key, ns, ref.get("name", ""))
        if obj is None:
            if ref.get("optional"):
                return None
            raise KeyError(f'{kind} "{ref.get("name")}" not found')
        if kind == "secret":
            return {
                k: base64.b64decode(v).decode(errors="replace")
                for k, v in (obj.get("data") or {}).items()
            } | dict(obj.get("stringData") or {})
        return dict(obj.get("data") or {})

    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, field_name in (("configmap", "configMapRef"), ("secret", "secretRef")):
            if field_name in source:
                for k, v in (lookup(kind, source[field_name]) or {}).items():
                    env[prefix + k] = v
    for item in container.get("env") or []:
        name = item.get("name", "")
        if "valueFrom" not in item:
            env[name] = expand(str(item.get("value", "")), env)
            continue
        src = item["valueFrom"]
        if "fieldRef" in src:
            env[name] = _field_ref(pod, src["fieldRef"].get("fieldPath", ""))
        elif "configMapKeyRef" in src or "secretKeyRef" in src:
            kind = "configmap" if "configMapKeyRef" in src else "secret"
            ref = src.get("configMapKeyRef") or src.get("secretKeyRef") or {}
            data = lookup(kind, ref)
            if data is None:
                continue
            if ref.get("key") not in data:
                if ref.get("optional"):
                    continue
                raise KeyError(
                    f"couldn't find key {ref.get('key')} in {kind.capitalize()} "
                    f"{ns}/{ref.get('name')}"
                )
            env[name] = data[ref["key"]]
        else:
            env[name] = ""
    return env


def _field_ref(pod: dict[str, Any], path: str) -> str:
    meta = pod["metadata"]
    m = re.match(r"^metadata\.(labels|annotations)\['(.+)'\]$", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": (pod.get("spec") or {}).get("nodeName"),
        "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName"),
        "status.hostIP": "127.0.0.1",
        "status.podIP": (pod.get("status") or {}).get("podIP"),
    }
    return str(simple.get(path) or "")
