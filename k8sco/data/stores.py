"""Where ``co.data`` keeps objects: a small store interface and the filesystem store.

A store maps names (``"a/b.txt"``: ``/``-separated, no ``..``, a leading ``/`` ignored as in
Conducto) to byte strings under one root. Every backend has the same semantics, so a
pipeline behaves the same on a laptop and on a cluster:

- ``list(prefix)`` returns every name that starts with ``prefix`` as a string, sorted, at any
  depth (S3's semantics; Conducto's local mode listed only one directory level instead);
- a missing name raises :class:`~k8sco.errors.DataNotFound` (a ``FileNotFoundError``);
- writes are atomic: a reader sees the old object or the new one, never a torn one.

Store URLs (the values of ``K8SCO_DATA_PIPELINE`` / ``K8SCO_DATA_USER``): an absolute path
or ``file:///path`` for the filesystem (also a ReadWriteMany volume mounted at that path),
``s3://bucket/prefix`` for an S3-compatible object store (:mod:`k8sco.data.s3`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

from k8sco.errors import DataError, DataNotFound


class Store(Protocol):
    """The operations ``co.data`` needs; ``name`` is a key checked by :func:`check_name`."""

    url: str

    def gets(self, name: str, byte_range: tuple[int, int] | None = None) -> bytes: ...
    def puts(self, name: str, data: bytes) -> None: ...
    def get(self, name: str, file: str) -> None: ...
    def put(self, name: str, file: str) -> None: ...
    def delete(self, name: str, recursive: bool = False) -> None: ...
    def exists(self, name: str) -> bool: ...
    def size(self, name: str) -> int: ...
    def list(self, prefix: str) -> list[str]: ...
    def object_url(self, name: str) -> str: ...


def check_name(name: str, allow_empty: bool = False) -> str:
    """The key for ``name``: leading ``/`` removed; ``..``, ``.`` and empty parts refused (a
    name must not leave its store's root, and two spellings of one object would not be
    one key on S3)."""
    if not isinstance(name, str):
        raise DataError(f"an object name must be a string, not {type(name).__name__}")
    key = name.lstrip("/")
    if not key:
        if allow_empty:
            return ""
        raise DataError(f"{name!r} is not an object name: give a name such as 'results/a.json'")
    parts = key.rstrip("/").split("/") if allow_empty else key.split("/")
    if any(p in ("", ".", "..") for p in parts) or "\0" in key:
        raise DataError(
            f"{name!r} is not a valid object name: use '/'-separated parts without '.', '..' "
            "or empty parts"
        )
    return key


def check_range(byte_range: object) -> tuple[int, int] | None:
    """``[begin, end)`` as a pair of ints, or None; anything else is refused."""
    if byte_range is None:
        return None
    try:
        first, last = cast("Sequence[Any]", byte_range)
        begin, end = int(first), int(last)
    except (TypeError, ValueError):
        raise DataError(f"byte_range must be [begin, end), got {byte_range!r}") from None
    if begin < 0 or end < begin:
        raise DataError(
            f"byte_range must be [begin, end) with 0 <= begin <= end, got {[begin, end]}"
        )
    return begin, end


class FileStore:
    """Objects as files under a directory (the local runner's, or a mounted volume)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.url = self.root.as_uri() if self.root.is_absolute() else str(self.root)

    def _path(self, name: str) -> Path:
        return self.root / check_name(name)

    def _missing(self, name: str) -> DataNotFound:
        return DataNotFound(f"no object {name!r} in {self.url}")

    def gets(self, name: str, byte_range: tuple[int, int] | None = None) -> bytes:
        try:
            with open(self._path(name), "rb") as f:
                if byte_range is None:
                    return f.read()
                f.seek(byte_range[0])
                return f.read(byte_range[1] - byte_range[0])
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise self._missing(name) from None
        except OSError as exc:
            raise DataError(f"cannot read {name!r} from {self.url}: {exc.strerror}") from exc

    def _write(self, name: str, fill: _Fill) -> None:
        import tempfile  # loads on a write only: every node imports co.data

        path = self._path(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".k8sco-tmp-")
        except OSError as exc:
            raise DataError(f"cannot write {name!r} to {self.url}: {exc.strerror}") from exc
        try:
            with open(fd, "wb") as f:
                fill(f)
            os.chmod(tmp, 0o644 & ~_umask())  # mkstemp's 0600 would hide it from other uids
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise DataError(f"cannot write {name!r} to {self.url}: {exc}") from exc
            raise

    def puts(self, name: str, data: bytes) -> None:
        self._write(name, lambda f: f.write(data))

    def get(self, name: str, file: str) -> None:
        try:
            shutil.copyfile(self._path(name), file)
        except (FileNotFoundError, IsADirectoryError) as exc:
            if exc.filename is not None and os.fspath(exc.filename) == os.fspath(file):
                raise DataError(f"cannot write {file}: {exc.strerror}") from exc
            raise self._missing(name) from None

    def put(self, name: str, file: str) -> None:
        try:
            with open(file, "rb") as src:
                self._write(name, lambda f: shutil.copyfileobj(src, f, 1 << 20))
        except DataError:
            raise
        except OSError as exc:
            raise DataError(f"cannot read {file}: {exc.strerror}") from exc

    def delete(self, name: str, recursive: bool = False) -> None:
        key = check_name(name, allow_empty=recursive)
        path = self.root / key if key else self.root
        if recursive:
            # Conducto's S3 mode deleted every key under the prefix; a directory is that.
            for found in self.list(key):
                _unlink(self.root / found)
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            return
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise self._missing(name) from None
        self._prune(path.parent)

    def _prune(self, directory: Path) -> None:
        """Remove the directories left empty up to the root: S3 has no directories, and an
        empty one would otherwise show up nowhere but here."""
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def size(self, name: str) -> int:
        path = self._path(name)
        try:
            if path.is_file():
                return path.stat().st_size
        except OSError as exc:
            raise DataError(f"cannot read {name!r} from {self.url}: {exc.strerror}") from exc
        raise self._missing(name)

    def list(self, prefix: str) -> list[str]:
        key = check_name(prefix, allow_empty=True)
        # Only the directory the prefix ends in can hold matches: walk it, not the root.
        base = key.rsplit("/", 1)[0] if "/" in key else ""
        top = self.root / base if base else self.root
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(top):
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            rel = "" if rel == "." else rel + "/"
            dirnames[:] = [d for d in dirnames if _may_match(rel + d + "/", key)]
            found.extend(rel + f for f in filenames if (rel + f).startswith(key) and not _is_tmp(f))
        return sorted(found)

    def object_url(self, name: str) -> str:
        return self._path(name).absolute().as_uri()


class _Fill(Protocol):
    def __call__(self, f: _Writable, /) -> object: ...


class _Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


def _may_match(directory: str, key: str) -> bool:
    return directory.startswith(key) or key.startswith(directory)


def _is_tmp(filename: str) -> bool:
    return filename.startswith(".k8sco-tmp-")


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def open_store(url: str, environ: Mapping[str, str] | None = None) -> Store:
    """The store a URL names: a path or ``file://`` URL, or ``s3://bucket/prefix`` (whose
    endpoint, region and credentials come from ``environ``, by default ``os.environ``)."""
    if url.startswith("s3://"):
        from k8sco.data import s3  # its signing code loads only for S3 stores

        return s3.S3Store.from_url(url, os.environ if environ is None else environ)
    if url.startswith("file://"):
        parsed = urllib.parse.urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise DataError(f"{url}: a file:// URL names a path on this machine (file:///path)")
        return FileStore(urllib.parse.unquote(parsed.path))
    if "://" in url:
        raise DataError(
            f"{url}: not a data store this k8sco knows; use a path, file:///path or "
            "s3://bucket/prefix"
        )
    return FileStore(os.path.expanduser(url))


def join_url(url: str, *parts: str) -> str:
    """``url`` with ``parts`` appended as path segments (a store root's sub-root)."""
    tail = "/".join(p.strip("/") for p in parts if p.strip("/"))
    return url.rstrip("/") + "/" + tail if tail else url
