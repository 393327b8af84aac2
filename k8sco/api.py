"""Conducto's ``co.api``, as far as it has a meaning without Conducto's service: secrets.

``co.api.Secrets()`` keeps Conducto's ``get_user_secrets``/``put_user_secrets``/
``delete_user_secrets`` (conducto/api/secrets.py) over the store ``k8sco secrets`` manages:

- on a cluster, the namespace's Secret ``k8sco-secrets`` (the kubeconfig's current context
  and namespace, or ``kubeconfig=``/``context=``/``namespace=``);
- with ``local=True``, or when no kubeconfig exists (no ``$KUBECONFIG``, no
  ``~/.kube/config``, not in a pod), the local secrets file ``k8sco run`` reads.

Conducto's ``token`` argument is accepted and ignored: Kubernetes authenticates through the
kubeconfig. There are no org secrets: a namespace is the unit a team shares, so its Secret
is what Conducto's org and user secrets both were.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from k8sco.secrets import SECRET_NAME

# What get_user_secrets(obfuscate=True) shows instead of a value.
MASK = "********"


def _cluster_configured() -> bool:
    if os.environ.get("KUBECONFIG"):
        return True
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return True
    return (Path.home() / ".kube" / "config").is_file()


class Secrets:
    """The secrets every node gets, as Conducto's API offered them."""

    def __init__(
        self,
        *,
        local: bool | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        namespace: str | None = None,
    ) -> None:
        if local is None:
            local = kubeconfig is None and not _cluster_configured()
        self.local = local
        self._cluster: Any = None
        self._where = (kubeconfig, context, namespace)

    def _api(self) -> Any:
        if self._cluster is None:
            from k8sco.kube.client import Cluster

            self._cluster = Cluster(*self._where, retries=2)
        return self._cluster

    def get_user_secrets(
        self, token: object = None, include_org_secrets: bool = False, obfuscate: bool = False
    ) -> dict[str, str]:
        """Every secret's name and value (``MASK`` for each value with ``obfuscate``)."""
        del token, include_org_secrets
        if self.local:
            from k8sco.local import secrets as local_secrets

            found = local_secrets.read(SECRET_NAME)
        else:
            from k8sco.kube import secrets

            api = self._api()
            found = secrets.read(api, api.namespace)
        return {k: MASK for k in found} if obfuscate else dict(sorted(found.items()))

    def put_user_secrets(self, secrets: Mapping[str, object], token: object = None) -> None:
        """Set secrets, keeping the others (values as ``str(value)``, as Conducto does)."""
        del token
        values = {str(k): str(v) for k, v in secrets.items()}
        if self.local:
            from k8sco.local import secrets as local_secrets

            local_secrets.put(values, SECRET_NAME)
            return
        from k8sco.kube import secrets as kube_secrets

        api = self._api()
        kube_secrets.put(api, api.namespace, values)

    def delete_user_secrets(self, secret_names: Iterable[str], token: object = None) -> None:
        """Delete secrets by name; names that are not there are ignored."""
        del token
        names = [str(n) for n in secret_names]
        if self.local:
            from k8sco.local import secrets as local_secrets

            local_secrets.delete(names, SECRET_NAME)
            return
        from k8sco.kube import secrets as kube_secrets

        api = self._api()
        kube_secrets.delete(api, api.namespace, names)


__all__ = ["MASK", "Secrets"]
