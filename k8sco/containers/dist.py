"""k8sco itself, as the image gets it: a wheel of this checkout, or ``k8sco==<version>``.

Running from a checkout (an editable install, the case while k8sco is developed), the image
must hold the same k8sco as the client, which PyPI does not have: ``pip wheel --no-deps``
builds one. Wheels are not byte-reproducible, so each is cached under a hash of the sources it
was built from: the same sources give the same wheel file, and so the same image tag.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import k8sco
from k8sco.containers.context import K8scoDist
from k8sco.errors import BuildError

_PACKAGE_DIR = os.path.dirname(os.path.abspath(k8sco.__file__))
_KEEP_WHEELS = 8  # wheels of older source states kept in the cache
_TOP_FILES = ("pyproject.toml", "README.md", "LICENSE", "setup.cfg", "setup.py")


def checkout_root() -> str | None:
    """The source checkout k8sco runs from, or None when it is installed as a package."""
    root = os.path.dirname(_PACKAGE_DIR)
    try:
        with open(os.path.join(root, "pyproject.toml"), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    return root if 'name = "k8sco"' in text else None


def _source_files(root: str) -> list[str]:
    """The files a wheel is built from, relative to ``root``, sorted."""
    files = [name for name in _TOP_FILES if os.path.isfile(os.path.join(root, name))]
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, "k8sco")):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in filenames:
            if not name.endswith((".pyc", ".pyo")):
                files.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(files)


def source_digest(root: str) -> str:
    """A hash of the checkout's package sources (paths, modes and contents)."""
    digest = hashlib.sha256()
    for rel in _source_files(root):
        path = os.path.join(root, rel)
        with open(path, "rb") as f:
            content = hashlib.sha256(f.read()).digest()
        mode = os.stat(path).st_mode & 0o777
        digest.update(f"{rel}\0{mode:o}\0".encode() + content)
    return digest.hexdigest()


def default_cache_dir() -> str:
    """``.cache/k8sco`` of the checkout (gitignored), else the user's cache directory."""
    root = checkout_root()
    if root is not None:
        return os.path.join(root, ".cache", "k8sco")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "k8sco")


def k8sco_dist(cache_dir: str | None = None) -> K8scoDist:
    """How this k8sco is installed in an image; builds (once) a wheel of a checkout."""
    root = checkout_root()
    if root is None:
        return K8scoDist(requirement=f"k8sco=={k8sco.__version__}")
    wheel_dir = os.path.join(cache_dir or default_cache_dir(), "wheels", source_digest(root)[:24])
    wheels = sorted(n for n in _listdir(wheel_dir) if n.endswith(".whl"))
    if not wheels:
        _build_wheel(root, wheel_dir)
        _prune(os.path.dirname(wheel_dir), keep=_KEEP_WHEELS)
        wheels = sorted(n for n in _listdir(wheel_dir) if n.endswith(".whl"))
    return K8scoDist.from_wheel(os.path.join(wheel_dir, wheels[0]))


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _prune(wheels_dir: str, keep: int) -> None:
    """Drop all but the ``keep`` newest wheel directories (each checkout edit makes one)."""
    paths = [os.path.join(wheels_dir, name) for name in _listdir(wheels_dir)]
    dirs = sorted((p for p in paths if os.path.isdir(p)), key=os.path.getmtime, reverse=True)
    for old in dirs[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def _build_wheel(root: str, wheel_dir: str) -> None:
    # Built from a copy holding only the sources: an in-tree build would package whatever a
    # stale build/ directory still holds.
    os.makedirs(os.path.dirname(wheel_dir), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(wheel_dir)) as tmp:
        src, out = os.path.join(tmp, "src"), os.path.join(tmp, "out")
        for rel in _source_files(root):
            os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
            shutil.copy2(os.path.join(root, rel), os.path.join(src, rel))
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, src]
        # A fixed zip timestamp makes the wheel byte-for-byte the same in every checkout of the
        # same sources, so the engine's layer cache is shared between them (SOURCE_DATE_EPOCH
        # is honoured by the wheel builder: reproducible-builds.org).
        env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800"}
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
            raise BuildError(
                f"building a wheel of the k8sco checkout {root} failed "
                f"(`{' '.join(cmd)}` exited {proc.returncode}):\n{tail}"
            )
        # Renamed into place whole, so a concurrent build never sees half a directory.
        try:
            os.rename(out, wheel_dir)
        except OSError:
            if not _listdir(wheel_dir):
                raise


__all__ = ["checkout_root", "default_cache_dir", "k8sco_dist", "source_digest"]
