"""The namespace's Secret of k8sco secrets (k8sco.secrets.SECRET_NAME) on the cluster.

The user's side (``k8sco secrets set/list/delete``, ``co.api.Secrets``) reads and writes it
with the rights of the built-in "edit" role. The controller's side, :func:`key_names`, reads
metadata only, so a controller never receives a secret's value (DESIGN.md §8).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from k8sco.errors import ClusterError, Conflict, NotFound, UsageError
from k8sco.kube.client import ACCEPT_METADATA, CORE
from k8sco.render.constants import LABEL_MANAGED_BY, MANAGED_BY
from k8sco.secrets import (
    ANNOTATION_KEYS,
    SECRET_NAME,
    annotation_for,
    data_key_problem,
    keys_from_annotation,
    secret_name_problem,
)

log = logging.getLogger("k8sco.secrets")

# Read-modify-write rounds before a concurrent writer wins (each write names the
# resourceVersion it read, so no update is lost: a 409 means read again).
_ATTEMPTS = 5


class Api(Protocol):
    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        retry: bool = True,
        accept: str = "application/json",
    ) -> Any: ...

    def ns_path(self, group_path: str, plural: str, namespace: str | None = None) -> str: ...


def key_names(cluster: Api, namespace: str) -> tuple[str, ...]:
    """The key names of the namespace's Secret, from its metadata alone (the
    :data:`~k8sco.secrets.ANNOTATION_KEYS` annotation); () when there is no such Secret,
    which means no secrets. Other errors are raised: the caller decides whether to wait."""
    path = f"{cluster.ns_path(CORE, 'secrets', namespace)}/{SECRET_NAME}"
    try:
        found = cluster.request("GET", path, accept=ACCEPT_METADATA, retry=False)
    except NotFound:
        return ()
    meta = (found.get("metadata") or {}) if isinstance(found, Mapping) else {}
    return keys_from_annotation((meta.get("annotations") or {}).get(ANNOTATION_KEYS))


def _check_name(name: str) -> str:
    problem = secret_name_problem(name)
    if problem:
        raise UsageError(f"--secret: {problem}")
    return name


def _read(cluster: Api, namespace: str, name: str) -> dict[str, Any] | None:
    path = f"{cluster.ns_path(CORE, 'secrets', namespace)}/{name}"
    try:
        found = cluster.request("GET", path)
    except NotFound:
        return None
    labels = (found.get("metadata") or {}).get("labels") or {}
    if labels.get(LABEL_MANAGED_BY) != MANAGED_BY:
        # Someone else's Secret: k8sco must not rewrite (or delete) it.
        raise UsageError(
            f"Secret {namespace}/{name} exists but is not managed by k8sco; label it "
            f"{LABEL_MANAGED_BY}={MANAGED_BY} to let k8sco change it, or choose another "
            "--secret"
        )
    return dict(found)


def _decode(secret: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            out[key] = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise ClusterError(
                f"Secret key {key!r} does not hold UTF-8 text; an environment variable "
                "must be text: rewrite it with `k8sco secrets set`"
            ) from None
    return out


def _body(
    namespace: str, name: str, data: Mapping[str, str], old: Mapping[str, Any] | None
) -> dict[str, Any]:
    # The old metadata (resourceVersion included) goes back: the update is refused with a
    # 409 if the Secret changed since it was read.
    meta: dict[str, Any] = dict((old or {}).get("metadata") or {})
    meta["name"], meta["namespace"] = name, namespace
    meta["labels"] = {**(meta.get("labels") or {}), LABEL_MANAGED_BY: MANAGED_BY}
    annotations = {**(meta.get("annotations") or {}), ANNOTATION_KEYS: annotation_for(data)}
    meta["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in data.items()},
    }


def read(cluster: Api, namespace: str, name: str = SECRET_NAME) -> dict[str, str]:
    """The Secret's keys and values; {} when it does not exist."""
    secret = _read(cluster, namespace, _check_name(name))
    return {} if secret is None else _decode(secret)


def put(cluster: Api, namespace: str, values: Mapping[str, str], name: str = SECRET_NAME) -> None:
    """Set ``values`` in the Secret (creating it), keeping its other keys."""
    _check_name(name)
    for key, value in values.items():
        problem = data_key_problem(key, name)
        if problem:
            raise UsageError(problem)
        if not isinstance(value, str):
            raise UsageError(f"the value of secret {key!r} is not a string")
    collection = cluster.ns_path(CORE, "secrets", namespace)
    for _ in range(_ATTEMPTS):
        old = _read(cluster, namespace, name)
        data = {**({} if old is None else _decode(old)), **values}
        body = _body(namespace, name, data, old)
        try:
            if old is None:
                cluster.request("POST", collection, body=body)
            else:
                cluster.request("PUT", f"{collection}/{name}", body=body)
            return
        except Conflict:
            continue  # created or changed meanwhile: read it again
    raise ClusterError(f"Secret {namespace}/{name} kept changing while k8sco wrote it; try again")


def delete(cluster: Api, namespace: str, keys: Iterable[str], name: str = SECRET_NAME) -> list[str]:
    """Remove ``keys`` from the Secret (deleting the Secret when none is left); the keys
    that were there."""
    _check_name(name)
    wanted = set(keys)
    collection = cluster.ns_path(CORE, "secrets", namespace)
    for _ in range(_ATTEMPTS):
        old = _read(cluster, namespace, name)
        if old is None:
            return []
        data = _decode(old)
        gone = sorted(wanted & set(data))
        if not gone:
            return []
        left = {k: v for k, v in data.items() if k not in wanted}
        version = (old.get("metadata") or {}).get("resourceVersion")
        try:
            if left:
                cluster.request(
                    "PUT", f"{collection}/{name}", body=_body(namespace, name, left, old)
                )
            else:
                # The precondition keeps a key set meanwhile from going with the Secret.
                cluster.request(
                    "DELETE",
                    f"{collection}/{name}",
                    body={
                        "kind": "DeleteOptions",
                        "apiVersion": "v1",
                        "preconditions": {"resourceVersion": version},
                    },
                )
            return gone
        except Conflict:
            continue
        except NotFound:
            return []
    raise ClusterError(f"Secret {namespace}/{name} kept changing while k8sco wrote it; try again")


__all__ = ["delete", "key_names", "put", "read"]
