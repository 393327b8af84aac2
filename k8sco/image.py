"""``co.Image``: what a node's container image is made of.

A description only (pure, no I/O): the builder shell turns it into an image. Relative paths
are kept as given here and resolved by the builder against the pipeline file's directory,
as Conducto did.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from k8sco.errors import PipelineError, PipelineTypeError

AUTO = "__auto__"  # Conducto's ``co.Image.AUTO``: the shell is picked from the image

# Conducto's deprecated names, still accepted (conducto/image/__init__.py, Image.__init__).
ALIASES = {
    "reqs_py": "install_pip",
    "reqs_npm": "install_npm",
    "reqs_packages": "install_packages",
    "reqs_docker": "install_docker",
}
# Accepted and dropped, as Conducto's Image.__init__ does ("pre_built back-compatibility").
_IGNORED = ("pre_built", "git_sha")

# What ``share_directory`` recorded: name -> absolute path. Conducto registers a named share
# in the user's profile for its web app; k8sco has no such app, so the mapping is only kept.
SHARED_DIRECTORIES: dict[str, str] = {}


@dataclass(frozen=True, init=False)
class Image:
    """A container image for nodes, with Conducto's arguments (see README, Images):

    - ``image``, ``dockerfile`` or ``dockerfile_text`` (at most one): the base; with none of
      them, a slim Python image of the client's minor version. ``context`` is the
      Dockerfile's build context (default: the Dockerfile's folder); ``docker_build_args``
      its build args.
    - ``copy_dir``, ``copy_url`` + ``copy_branch``, or ``copy_repo=True``: code copied into
      the image's code root, its working directory unless ``docker_auto_workdir=False``.
    - ``install_pip``, ``install_npm``, ``install_packages``, ``install_docker``: layers that
      install them (``reqs_*`` are the deprecated names).
    - ``shell``: the shell of string commands (default ``AUTO``: ``/bin/sh``).
    - ``name``, ``path_map``; ``env`` (k8sco's own): variables baked into the image.
    """

    AUTO: ClassVar[str] = AUTO

    image: str | None
    dockerfile: str | None
    dockerfile_text: str | None
    docker_build_args: Mapping[str, str]
    context: str | None
    copy_repo: bool
    copy_dir: str | None
    copy_url: str | None
    copy_branch: str | None
    docker_auto_workdir: bool
    install_pip: tuple[str, ...]
    install_npm: tuple[str, ...]
    install_packages: tuple[str, ...]
    install_docker: bool
    path_map: Mapping[str, str]
    shell: str
    name: str | None
    env: Mapping[str, str]

    def __init__(
        self,
        image: str | None = None,
        *,
        dockerfile: str | None = None,
        dockerfile_text: str | None = None,
        docker_build_args: Mapping[str, str] | None = None,
        context: str | None = None,
        copy_repo: bool | None = None,
        copy_dir: str | None = None,
        copy_url: str | None = None,
        copy_branch: str | None = None,
        docker_auto_workdir: bool = True,
        install_pip: Sequence[str] | str | None = None,
        install_npm: Sequence[str] | str | None = None,
        install_packages: Sequence[str] | str | None = None,
        install_docker: bool = False,
        path_map: Mapping[str, str] | None = None,
        shell: str = AUTO,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        given: dict[str, Any] = {
            "install_pip": install_pip,
            "install_npm": install_npm,
            "install_packages": install_packages,
            "install_docker": install_docker,
        }
        said = {k: k for k in given}  # the name the user used, for messages
        for old in _IGNORED:
            kwargs.pop(old, None)
        for old, new in ALIASES.items():
            if old not in kwargs:
                continue
            value = kwargs.pop(old)
            if value in (None, False, (), []):
                continue
            if given[new] not in (None, False, (), []):
                raise PipelineError(f"co.Image: give {new}= or its old name {old}=, not both")
            given[new], said[new] = value, old
        if kwargs:
            unknown = ", ".join(f"{k}=" for k in sorted(kwargs))
            raise PipelineTypeError(
                f"co.Image: unknown argument {unknown} (see the README's Images section)"
            )
        values: dict[str, Any] = {
            "image": image,
            "dockerfile": dockerfile,
            "dockerfile_text": dockerfile_text,
            "context": context,
            "copy_dir": copy_dir,
            "copy_url": copy_url,
            "copy_branch": copy_branch,
            "name": name,
        }
        shown_url = (
            re.sub(r"(?<=//)[^/@]+@", "***@", copy_url) if isinstance(copy_url, str) else None
        )
        label = f"co.Image({name or image or dockerfile or copy_dir or shown_url or ''!r})"
        for attr, value in values.items():
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise PipelineTypeError(f"{label}: {attr}= must be a non-empty string")
        bases = [k for k in ("image", "dockerfile", "dockerfile_text") if values[k] is not None]
        if len(bases) > 1:
            raise PipelineError(
                f"{label}: give at most one of image=, dockerfile= and dockerfile_text= "
                f"(got {' and '.join(b + '=' for b in bases)})"
            )
        if context is not None and dockerfile is None and dockerfile_text is None:
            raise PipelineError(f"{label}: context= needs dockerfile= or dockerfile_text=")
        for attr, flag in (
            ("copy_repo", copy_repo),
            ("docker_auto_workdir", docker_auto_workdir),
            (said["install_docker"], given["install_docker"]),
        ):
            if flag is not None and not isinstance(flag, bool):
                raise PipelineTypeError(f"{label}: {attr}= must be True or False")
        if copy_dir is not None and copy_url is not None:
            raise PipelineError(f"{label}: give copy_dir= or copy_url=, not both")
        if copy_repo and (copy_dir is not None or copy_url is not None):
            raise PipelineError(
                f"{label}: copy_repo=True copies the pipeline's git repository; "
                "drop copy_dir= and copy_url="
            )
        if copy_url is not None:
            if copy_url.startswith("s3://"):
                raise PipelineError(
                    f"{label}: copy_url= from S3 is not supported by k8sco; use a git URL "
                    "with copy_branch="
                )
            if copy_branch is None:
                raise PipelineError(f"{label}: copy_url= needs copy_branch= (the branch to clone)")
        elif copy_branch is not None and not copy_repo:
            raise PipelineError(f"{label}: copy_branch= needs copy_url= or copy_repo=True")
        if not isinstance(shell, str) or not shell.strip() or any(c.isspace() for c in shell):
            raise PipelineTypeError(f"{label}: shell= must be a shell's path, e.g. /bin/bash")
        set_ = object.__setattr__
        for attr, value in values.items():
            set_(self, attr, value)
        set_(self, "copy_repo", bool(copy_repo))
        set_(self, "docker_auto_workdir", docker_auto_workdir)
        set_(self, "install_docker", bool(given["install_docker"]))
        set_(self, "shell", shell)
        for attr in ("install_pip", "install_npm", "install_packages"):
            set_(self, attr, _items(label, said[attr], given[attr]))
        for attr, mapping in (
            ("docker_build_args", docker_build_args),
            ("env", env),
            ("path_map", path_map),
        ):
            set_(self, attr, _mapping(label, attr, mapping))
        if copy_dir is not None:
            set_(self, "copy_dir", os.path.normpath(copy_dir))

    # Conducto's deprecated names, read-only.
    @property
    def reqs_py(self) -> tuple[str, ...]:
        return self.install_pip

    @property
    def reqs_npm(self) -> tuple[str, ...]:
        return self.install_npm

    @property
    def reqs_packages(self) -> tuple[str, ...]:
        return self.install_packages

    @property
    def reqs_docker(self) -> bool:
        return self.install_docker

    @property
    def command_shell(self) -> str:
        """The shell that runs a string command: ``shell=``, or ``/bin/sh`` for ``AUTO``
        (Conducto probed the built image for bash; k8sco names the image before building)."""
        return "/bin/sh" if self.shell == AUTO else self.shell

    @property
    def copies_code(self) -> bool:
        return bool(self.copy_dir or self.copy_url or self.copy_repo)

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that differ from the defaults, as JSON-ready data."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value == _DEFAULTS.get(f.name) or value in (None, (), {}):
                continue
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Image:
        known = {f.name for f in fields(cls)} | set(ALIASES)
        unknown = set(data) - known
        if unknown:
            raise PipelineError(f"unknown Image fields: {', '.join(sorted(unknown))}")
        image = data.get("image")
        return cls(image, **{k: v for k, v in data.items() if k != "image"})

    def __hash__(self) -> int:
        return hash(repr(sorted(self.to_dict().items(), key=lambda kv: kv[0])))

    # --- Conducto's named shares ---------------------------------------------------------

    @staticmethod
    def share_directory(name: str, relative: str) -> None:
        """Conducto's named share: records ``name`` -> the folder ``relative`` (from the
        calling file's folder). Conducto registers it for its web app's live debugging;
        k8sco keeps the mapping (:data:`SHARED_DIRECTORIES`) and builds nothing from it."""
        if not isinstance(name, str) or not name.strip():
            raise PipelineTypeError("co.Image.share_directory: name must be a non-empty string")
        if not isinstance(relative, (str, os.PathLike)):
            raise PipelineTypeError(
                f"co.Image.share_directory({name!r}): the path must be a string, "
                f"not {type(relative).__name__}"
            )
        path = os.fspath(relative)
        if not os.path.isabs(path):
            path = os.path.join(_caller_dir(), path)
        SHARED_DIRECTORIES[name] = os.path.realpath(path)

    register_directory = share_directory  # Conducto's older name


def _caller_dir() -> str:
    """The folder of the first caller outside this module (Conducto's _non_conducto_dir)."""
    frame = inspect.currentframe()
    try:
        while frame is not None and frame.f_code.co_filename == __file__:
            frame = frame.f_back
        filename = frame.f_code.co_filename if frame is not None else ""
    finally:
        del frame
    if not filename or filename.startswith("<"):
        return os.getcwd()
    return os.path.dirname(os.path.abspath(filename))


def _items(label: str, attr: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Sequence) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PipelineTypeError(f"{label}: {attr}= must be a list of strings")
    for item in value:
        if "\n" in item or "\r" in item or "\0" in item:
            # Each item becomes part of a RUN line: a line break would start a new
            # Dockerfile instruction.
            raise PipelineError(
                f"{label}: co.Image({attr}=...) has an item {item!r} that contains a line "
                "break or NUL; give one package per item"
            )
    return tuple(value)


def _mapping(label: str, attr: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise PipelineTypeError(f"{label}: {attr}= must be a dict of str to str")
    return dict(value)


_DEFAULTS: dict[str, Any] = {
    "copy_repo": False,
    "docker_auto_workdir": True,
    "install_docker": False,
    "shell": AUTO,
}

__all__ = ["ALIASES", "AUTO", "SHARED_DIRECTORIES", "Image"]
