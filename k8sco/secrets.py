"""Secrets: what they are named, how a node names one, and which value wins (DESIGN.md §8).

Conducto injects the user's secrets into every Exec's environment, with the precedence
node env < secrets < variables set by the framework. k8sco keeps them in one Kubernetes
Secret per namespace, :data:`SECRET_NAME`, which ``k8sco secrets set/list/delete`` manage; on
the local runner they come from a file in the user's config directory (k8sco.localsecrets).
A node can also take one key of any Secret: ``env={"TOKEN": co.SecretRef("name", "key")}``.

Values never go into a Pipeline, a Job or a log: a Job names its Secret keys
(``valueFrom.secretKeyRef``) and the kubelet puts the values into the container.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from k8sco.errors import PipelineError

# The namespace's Secret whose keys reach every node of every pipeline there. Fixed, so that
# `kubectl get secret k8sco-secrets` finds it and RBAC can name it (resourceNames).
SECRET_NAME = "k8sco-secrets"
# The Secret's key names, comma-separated, kept up to date by `k8sco secrets set/delete`.
# The controller reads the Secret as metadata only (kube/secrets.py), which carries no data
# keys: this annotation is how it learns the names without ever receiving a value.
ANNOTATION_KEYS = "k8sco.io/secret-keys"
# Variables k8sco sets in every node; they beat node env and secrets (Conducto's framework
# variables do the same), so no secret may be named like them.
FRAMEWORK_PREFIX = "K8SCO_"

# A secret is an environment variable a shell must be able to read as $KEY.
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Secret data keys (kubernetes pkg/apis/core/validation: IsConfigMapKey) and object names
# (DNS-1123 subdomain, staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go).
_DATA_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def key_problem(key: object) -> str | None:
    """Why ``key`` cannot be a k8sco secret (an environment variable every node gets), or
    None."""
    if not isinstance(key, str) or not _KEY.fullmatch(key) or len(key) > 253:
        return (
            f"secret name {key!r} is not a variable name (letters, digits and '_', not "
            "starting with a digit, at most 253 characters)"
        )
    if key.startswith(FRAMEWORK_PREFIX):
        return f"secret name {key!r} is reserved: K8SCO_* variables are set by k8sco"
    return None


def data_key_problem(key: object, secret: str) -> str | None:
    """Why ``key`` cannot be a key of the Secret ``secret``, or None: the namespace's Secret
    holds variable names (:func:`key_problem`), others any Secret key."""
    if secret == SECRET_NAME:
        return key_problem(key)
    if not isinstance(key, str) or not _DATA_KEY.fullmatch(key) or len(key) > 253:
        return (
            f"{key!r} is not a Secret key (letters, digits, '-', '_' and '.', at most 253 "
            "characters)"
        )
    return None


def secret_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a Kubernetes Secret, or None."""
    if not isinstance(name, str) or len(name) > 253 or not _SUBDOMAIN.fullmatch(name):
        return (
            f"{name!r} is not a Secret name (lowercase letters, digits, '-' and '.', "
            "at most 253 characters)"
        )
    return None


@dataclass(frozen=True)
class SecretRef:
    """One key of a Kubernetes Secret in the pipeline's namespace, as a node's env value:
    ``co.Exec("deploy", env={"TOKEN": co.SecretRef("github", "token")})``.

    The Job gets ``valueFrom.secretKeyRef`` (the kubelet reads the value); the local runner
    reads it from the local secrets file. A missing Secret or key keeps the pod from starting
    (CreateContainerConfigError), as Kubernetes does, unless ``optional=True``.
    """

    name: str
    key: str
    optional: bool = False

    def __post_init__(self) -> None:
        problem = secret_name_problem(self.name)
        if problem:
            raise PipelineError(f"co.SecretRef: {problem}")
        if (
            not isinstance(self.key, str)
            or not _DATA_KEY.fullmatch(self.key)
            or len(self.key) > 253
        ):
            raise PipelineError(
                f"co.SecretRef: key {self.key!r} is not a Secret key (letters, digits, "
                "'-', '_' and '.', at most 253 characters)"
            )
        if not isinstance(self.optional, bool):
            raise PipelineError(f"co.SecretRef: optional={self.optional!r} is not a bool")

    def to_json(self) -> dict[str, Any]:
        ref: dict[str, Any] = {"name": self.name, "key": self.key}
        if self.optional:
            ref["optional"] = True
        return {"secretRef": ref}

    @staticmethod
    def from_json(value: object) -> SecretRef | None:
        """The SecretRef ``value`` (:meth:`to_json`'s output) stands for, or None."""
        if not isinstance(value, Mapping) or set(value) != {"secretRef"}:
            return None
        ref = value["secretRef"]
        if not isinstance(ref, Mapping) or not {"name", "key"} <= set(ref) <= {
            "name",
            "key",
            "optional",
        }:
            return None
        return SecretRef(ref["name"], ref["key"], bool(ref.get("optional", False)))

    def env_source(self) -> dict[str, Any]:
        """The ``valueFrom`` of a container env entry."""
        ref: dict[str, Any] = {"name": self.name, "key": self.key}
        if self.optional:
            ref["optional"] = True
        return {"secretKeyRef": ref}


def env_to_json(env: Mapping[str, Any]) -> dict[str, Any]:
    """An env dict as JSON (a SecretRef as :meth:`SecretRef.to_json`); the Pipeline carries
    the reference, never a value."""
    return {k: v.to_json() if isinstance(v, SecretRef) else v for k, v in env.items()}


def env_from_json(env: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in env.items():
        ref = SecretRef.from_json(v)
        out[k] = v if ref is None else ref
    return out


def keys_from_annotation(text: object) -> tuple[str, ...]:
    """The key names of :data:`ANNOTATION_KEYS`, sorted; names that could not be secrets
    (someone edited the annotation by hand) are left out."""
    if not isinstance(text, str):
        return ()
    return tuple(sorted({k for k in text.split(",") if k and key_problem(k) is None}))


def annotation_for(keys: Iterable[str]) -> str:
    return ",".join(sorted(set(keys)))


def container_env(
    env: Mapping[str, str | SecretRef],
    secret_keys: Iterable[str],
    framework: Iterable[dict[str, Any]],
) -> list[dict[str, Any]]:
    """A container's ``env`` list with Conducto's precedence: node ``env`` < the namespace's
    secrets (:data:`SECRET_NAME`) < the framework's variables.

    Kubernetes lets an explicit ``env`` entry beat ``envFrom`` and, for two entries of one
    name, the later one (kubelet kuberuntime: makeEnvironmentVariables fills a map in list
    order), but the API server warns about duplicates; so every secret is its own
    ``secretKeyRef`` entry and replaces the node's entry of the same name. The secrets are
    ``optional``: a key deleted after the Job was made leaves its variable unset instead of
    keeping the pod from starting.
    """
    frame = list(framework)
    reserved = {str(item["name"]) for item in frame}
    secrets = sorted({k for k in secret_keys if key_problem(k) is None and k not in reserved})
    taken = set(secrets)
    out: list[dict[str, Any]] = []
    for name, value in env.items():
        if name in taken:
            continue
        if isinstance(value, SecretRef):
            out.append({"name": name, "valueFrom": value.env_source()})
        else:
            out.append({"name": name, "value": value})
    out.extend(
        {
            "name": k,
            "valueFrom": {"secretKeyRef": {"name": SECRET_NAME, "key": k, "optional": True}},
        }
        for k in secrets
    )
    out.extend(frame)
    return out


def process_env(
    base: Mapping[str, str],
    env: Mapping[str, str | SecretRef],
    secrets: Mapping[str, Mapping[str, str]],
    framework: Mapping[str, str],
    node_path: str,
) -> dict[str, str]:
    """A local process's environment with the same precedence as :func:`container_env`:
    ``base`` (the caller's environment) < node ``env`` < the secrets of
    :data:`SECRET_NAME` < ``framework``. ``secrets`` maps Secret names to their data (the
    local secrets file). PipelineError naming the node for a SecretRef whose Secret or key is
    missing and not optional (a pod would not start either)."""
    out = dict(base)
    for name, value in env.items():
        if not isinstance(value, SecretRef):
            out[name] = value
            continue
        found = secrets.get(value.name, {}).get(value.key)
        if found is not None:
            out[name] = found
        elif not value.optional:
            raise PipelineError(
                f"{node_path}: env[{name!r}] names key {value.key!r} of Secret {value.name!r}, "
                f"which the local secrets file does not hold; add it with "
                f"`k8sco secrets set --local --secret {value.name} {value.key}=...`"
            )
    for key, value in secrets.get(SECRET_NAME, {}).items():
        if key_problem(key) is None and key not in framework:
            out[key] = value
    out.update(framework)
    return out


def secret_names(
    env: Mapping[str, str | SecretRef],
    secrets: Mapping[str, Mapping[str, str]],
    framework: Iterable[str],
) -> set[str]:
    """The variables of :func:`process_env`'s result whose values are secrets: the node's
    SecretRefs and the keys of :data:`SECRET_NAME` (not the framework's)."""
    names = {k for k, v in env.items() if isinstance(v, SecretRef)}
    names |= {k for k in secrets.get(SECRET_NAME, {}) if key_problem(k) is None}
    return names - set(framework)


__all__ = [
    "ANNOTATION_KEYS",
    "SECRET_NAME",
    "SecretRef",
    "annotation_for",
    "container_env",
    "data_key_problem",
    "env_from_json",
    "env_to_json",
    "key_problem",
    "keys_from_annotation",
    "process_env",
    "secret_name_problem",
    "secret_names",
]
