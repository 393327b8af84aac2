"""``co.data.pipeline`` and ``co.data.user``: Conducto's data API over k8sco's stores.

Which store a scope uses is read from the environment at each call (cheaply: the store is
cached per URL), so the same code works in a node of ``k8sco run``, in a Job's pod and in a
shell:

- ``K8SCO_DATA_PIPELINE``: the store URL of the current pipeline run's data, set by the local
  runner (``<run dir>/data``) and by the controller (one prefix per Pipeline uid). Unset
  outside a node: ``co.data.pipeline`` then raises, as Conducto's did without a pipeline.
- ``K8SCO_DATA_USER``: the store URL of the user's data, set by the controller (one prefix per
  namespace, unless configured); unset, ``$K8SCO_HOME/data`` (default ``~/.k8sco/data``).

See :mod:`k8sco.data.stores` for names, URLs and the semantics shared by every backend.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from k8sco.data.stores import Store, check_range, open_store
from k8sco.errors import DataError, DataNotFound

ENV_PIPELINE = "K8SCO_DATA_PIPELINE"
ENV_USER = "K8SCO_DATA_USER"
ENV_HOME = "K8SCO_HOME"
CACHE_PREFIX = "conducto-cache"  # Conducto's key layout, so caches carry over

_lock = threading.Lock()
_stores: dict[tuple[str, tuple[tuple[str, str], ...]], Store] = {}
_STORE_ENV = (
    "K8SCO_S3_ENDPOINT",
    "K8SCO_S3_REGION",
    "K8SCO_S3_ADDRESSING",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)


def user_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$K8SCO_HOME``, by default ``~/.k8sco``: where a user's local data lives."""
    env = os.environ if environ is None else environ
    home = env.get(ENV_HOME)
    return Path(home) if home else Path.home() / ".k8sco"


def store(url: str, environ: Mapping[str, str] | None = None) -> Store:
    """The store for ``url``, made once per URL and S3 settings."""
    env = os.environ if environ is None else environ
    key = (url, tuple((k, env[k]) for k in _STORE_ENV if k in env))
    with _lock:
        found = _stores.get(key)
        if found is None:
            found = _stores[key] = open_store(url, env)
        return found


class _Data:
    """The operations of one scope; the subclasses say where its store is."""

    _scope: ClassVar[str]

    @classmethod
    def _url(cls) -> str:
        raise NotImplementedError

    @classmethod
    def _store(cls) -> Store:
        return store(cls._url())

    @classmethod
    def gets(cls, name: str, *, byte_range: Any = None) -> bytes:
        """The object at ``name``; ``byte_range=[begin, end)`` restricts it to those bytes."""
        return cls._store().gets(name, check_range(byte_range))

    @classmethod
    def puts(cls, name: str, obj: bytes) -> None:
        """Store the bytes ``obj`` at ``name`` (anything but bytes: ValueError, as Conducto)."""
        if not isinstance(obj, bytes):
            raise ValueError(f"Expected object of type bytes, but got {obj!r}")
        cls._store().puts(name, obj)

    @classmethod
    def get(cls, name: str, file: str) -> None:
        """Copy the object at ``name`` into the local ``file``."""
        cls._store().get(name, os.fspath(file))

    @classmethod
    def put(cls, name: str, file: str) -> None:
        """Store the content of the local ``file`` at ``name``."""
        cls._store().put(name, os.fspath(file))

    @classmethod
    def delete(cls, name: str, recursive: bool = False) -> None:
        """Delete the object at ``name``; ``recursive``: every object under the prefix."""
        cls._store().delete(name, recursive)

    @classmethod
    def exists(cls, name: str) -> bool:
        """Whether there is an object at ``name``."""
        return cls._store().exists(name)

    @classmethod
    def size(cls, name: str) -> int:
        """The size of the object at ``name``, in bytes."""
        return cls._store().size(name)

    @classmethod
    def list(cls, prefix: str) -> list[str]:
        """The names that start with ``prefix``, at any depth, sorted."""
        return cls._store().list(prefix)

    @classmethod
    def url(cls, name: str, path_only: bool = True) -> str:
        """Where the object at ``name`` is: ``file:///...`` or ``s3://bucket/key``.
        (Conducto's pointed into its web app; ``path_only`` is accepted and ignored.)"""
        return cls._store().object_url(name)

    # --- caches: a directory tarred to conducto-cache/<name>/<checksum>.tar.gz ------------

    @staticmethod
    def _cache_key(name: str, checksum: str) -> str:
        return f"{CACHE_PREFIX}/{name}/{checksum}.tar.gz"

    @classmethod
    def clear_cache(cls, name: str, checksum: str | None = None) -> None:
        """Clear the cache ``name`` at ``checksum``, or every checksum of it."""
        if checksum is None:
            cls._store().delete(f"{CACHE_PREFIX}/{name}/", recursive=True)
        else:
            cls._store().delete(cls._cache_key(name, checksum))

    @classmethod
    def cache_exists(cls, name: str, checksum: str) -> bool:
        """Whether the cache ``name`` has an entry for ``checksum``."""
        return cls._store().exists(cls._cache_key(name, checksum))

    @classmethod
    def save_cache(cls, name: str, checksum: str, save_dir: str) -> None:
        """Save the directory ``save_dir`` to the cache ``name`` under ``checksum``."""
        if not os.path.isdir(save_dir):
            raise DataError(f"save_cache: {save_dir} is not a directory")
        import tarfile  # loads only for caches: every node imports co.data

        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(save_dir, arcname=os.path.basename(os.path.normpath(save_dir)))
        cls._store().puts(cls._cache_key(name, checksum), buffer.getvalue())

    @classmethod
    def restore_cache(cls, name: str, checksum: str, restore_dir: str) -> None:
        """Extract the cache ``name`` at ``checksum`` into ``restore_dir`` (the saved
        directory lands inside it, under its own name)."""
        try:
            data = cls._store().gets(cls._cache_key(name, checksum))
        except DataNotFound:
            raise DataNotFound(f"Cache not found: {name!r} at checksum {checksum!r}") from None
        import tarfile

        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            # The "data" filter refuses members that would land outside restore_dir.
            if hasattr(tarfile, "data_filter"):
                tar.extractall(restore_dir, filter="data")
            else:  # pragma: no cover: Python < 3.10.12 / 3.11.4
                tar.extractall(restore_dir)


class pipeline(_Data):  # lower case: Conducto's name
    """Data of the current pipeline run: every node of the run sees it, no other run does,
    and it is deleted with the run's Pipeline (``co.temp_data``)."""

    _scope = "pipeline"

    @classmethod
    def _url(cls) -> str:
        url = os.environ.get(ENV_PIPELINE)
        if not url:
            raise DataError(
                "co.data.pipeline needs a pipeline: use it in a node of a pipeline (k8sco sets "
                f"{ENV_PIPELINE} there), or from a shell: k8sco data pipeline --run ID ..."
            )
        return url


class user(_Data):  # lower case: Conducto's name
    """Data of the user, kept across pipelines (``co.perm_data``): on a cluster, of the
    namespace unless the controller is configured otherwise."""

    _scope = "user"

    @classmethod
    def _url(cls) -> str:
        return os.environ.get(ENV_USER) or str(user_home() / "data")


temp_data = pipeline
perm_data = user
