"""``k8sco secrets set/list/delete``: the secrets every node gets (k8sco.secrets).

On a cluster they are the keys of the namespace's Secret ``k8sco-secrets``; with ``--local``
they are the local secrets file ``k8sco run`` reads (k8sco.local.secrets). ``--secret NAME``
manages another Secret, for nodes that name its keys with ``co.SecretRef(NAME, KEY)``.
No command prints a value.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from k8sco.cli.cluster import cluster_options, connect
from k8sco.errors import K8scoError, UsageError
from k8sco.secrets import SECRET_NAME

F = TypeVar("F", bound=Callable[..., Any])


def _store_options(func: F) -> F:
    func = click.option(
        "--secret",
        "secret",
        default=SECRET_NAME,
        show_default=True,
        help="The Secret to manage; only k8sco-secrets reaches every node.",
    )(func)
    func = click.option(
        "--local",
        is_flag=True,
        help="The local secrets file (what `k8sco run` uses) instead of the cluster.",
    )(func)
    return cluster_options(func)


class _Store:
    """The cluster's Secret or the local file, and how to name it in messages."""

    def __init__(
        self,
        local: bool,
        secret: str,
        kubeconfig: str | None,
        context: str | None,
        namespace: str | None,
    ) -> None:
        self.secret = secret
        self.cluster: Any = None
        if local:
            from k8sco.local import secrets as local_secrets

            self.where = f"{local_secrets.path()} ({secret})"
        else:
            self.cluster = connect(kubeconfig, context, namespace)
            self.where = f"Secret {self.cluster.namespace}/{secret}"

    def read(self) -> dict[str, str]:
        if self.cluster is None:
            from k8sco.local import secrets as local_secrets

            return local_secrets.read(self.secret)
        from k8sco.kube import secrets

        return secrets.read(self.cluster, self.cluster.namespace, self.secret)

    def put(self, values: dict[str, str]) -> None:
        if self.cluster is None:
            from k8sco.local import secrets as local_secrets

            return local_secrets.put(values, self.secret)
        from k8sco.kube import secrets

        return secrets.put(self.cluster, self.cluster.namespace, values, self.secret)

    def delete(self, keys: list[str]) -> list[str]:
        if self.cluster is None:
            from k8sco.local import secrets as local_secrets

            return local_secrets.delete(keys, self.secret)
        from k8sco.kube import secrets

        return secrets.delete(self.cluster, self.cluster.namespace, keys, self.secret)


@click.group(name="secrets")
def secrets_group() -> None:
    """Secrets every node gets as environment variables (never shown, never in a Pipeline)."""


@secrets_group.command(name="set")
@click.argument("items", nargs=-1, required=True, metavar="KEY=VALUE... | KEY")
@_store_options
def set_(
    items: tuple[str, ...],
    local: bool,
    secret: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Set secrets: KEY=VALUE, or KEY alone to read its value without echo from the terminal
    (or, piped, from stdin), so that it stays out of shell history and process lists."""
    values: dict[str, str] = {}
    asked = [item for item in items if "=" not in item]
    if len(asked) > 1 and not sys.stdin.isatty():
        raise UsageError("only one KEY without =VALUE can read its value from stdin")
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            if sys.stdin.isatty():
                value = click.prompt(f"{key}", hide_input=True, err=True)
            else:
                value = sys.stdin.read().removesuffix("\n")
        if key in values:
            raise UsageError(f"secret {key!r} is given twice")
        values[key] = value
    store = _Store(local, secret, kubeconfig, context, namespace)
    store.put(values)
    click.echo(f"set {', '.join(sorted(values))} in {store.where}", err=True)


@secrets_group.command(name="list")
@_store_options
def list_(
    local: bool,
    secret: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Print the names of the secrets, one a line (never their values)."""
    store = _Store(local, secret, kubeconfig, context, namespace)
    for key in sorted(store.read()):
        click.echo(key)


@secrets_group.command(name="delete")
@click.argument("keys", nargs=-1, required=True)
@_store_options
def delete(
    keys: tuple[str, ...],
    local: bool,
    secret: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Delete secrets by name; a name that is not there is an error (the others go)."""
    store = _Store(local, secret, kubeconfig, context, namespace)
    gone = store.delete(list(keys))
    if gone:
        click.echo(f"deleted {', '.join(gone)} from {store.where}", err=True)
    missing = sorted(set(keys) - set(gone))
    if missing:
        raise K8scoError(f"no secret {', '.join(missing)} in {store.where}")


__all__ = ["secrets_group"]
