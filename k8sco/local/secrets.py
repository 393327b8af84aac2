"""The local secrets file: what ``k8sco run`` injects into nodes, and what
``k8sco secrets ... --local`` (and ``co.api.Secrets`` without a cluster) manage.

``$XDG_CONFIG_HOME/k8sco/secrets.json`` (``~/.config/k8sco/secrets.json`` by default), a
JSON object of Secret names to ``{key: value}``; the namespace Secret's name,
``k8sco-secrets``, holds what every node gets. It is written owner-only (0600, in a 0700
folder) and, as ssh does with a private key, a file that others may read or write is
refused rather than used: its values could have been read, or planted, by someone else.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from k8sco.errors import UsageError
from k8sco.secrets import SECRET_NAME, data_key_problem, secret_name_problem

FILE_NAME = "secrets.json"


def path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the file is (it may not exist)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or ""
    # The XDG spec: a relative XDG_CONFIG_HOME is invalid and must be ignored.
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "k8sco" / FILE_NAME


def load(file: Path | None = None) -> dict[str, dict[str, str]]:
    """Every Secret of the file; {} when there is no file. UsageError for a file that others
    may read or write, or that is not such a JSON object."""
    file = file or path()
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError(f"cannot read the secrets file {file}: {exc.strerror}") from None
    with os.fdopen(fd, "r", encoding="utf-8") as f:
        mode = os.fstat(f.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UsageError(
                f"the secrets file {file} is open to other users (mode "
                f"{stat.S_IMODE(mode):04o}); run `chmod 600 {file}` and check its values"
            )
        text = f.read()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"the secrets file {file} is not JSON ({exc}); fix or remove it") from None
    if not isinstance(data, dict) or not all(
        isinstance(name, str)
        and isinstance(values, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in values.items())
        for name, values in data.items()
    ):
        raise UsageError(
            f"the secrets file {file} must be a JSON object of Secret names to objects of "
            "strings; fix or remove it"
        )
    return data


def _save(file: Path, data: Mapping[str, Mapping[str, str]]) -> None:
    file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkstemp creates the file 0600 before a byte is written, and the rename replaces the
    # old file whole: no moment where a value is in a file others could read.
    fd, tmp = tempfile.mkstemp(prefix=".secrets-", dir=file.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({k: dict(v) for k, v in data.items() if v}, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, file)
    except BaseException:
        os.unlink(tmp)
        raise


def _check_name(name: str) -> None:
    problem = secret_name_problem(name)
    if problem:
        raise UsageError(f"--secret: {problem}")


def read(name: str = SECRET_NAME, file: Path | None = None) -> dict[str, str]:
    _check_name(name)
    return dict(load(file).get(name, {}))


def put(values: Mapping[str, str], name: str = SECRET_NAME, file: Path | None = None) -> None:
    _check_name(name)
    for key in values:
        problem = data_key_problem(key, name)
        if problem:
            raise UsageError(problem)
    file = file or path()
    data = load(file)
    data[name] = {**data.get(name, {}), **values}
    _save(file, data)


def delete(keys: Iterable[str], name: str = SECRET_NAME, file: Path | None = None) -> list[str]:
    """Remove ``keys``; the keys that were there."""
    _check_name(name)
    file = file or path()
    data = load(file)
    old = data.get(name, {})
    gone = sorted(set(keys) & set(old))
    if gone:
        data[name] = {k: v for k, v in old.items() if k not in gone}
        _save(file, data)
    return gone


__all__ = ["FILE_NAME", "delete", "load", "path", "put", "read"]
