"""``co.Image``: what a node's container image is made of.

A description only (pure, no I/O): the builder shell turns it into an image. Relative paths
are kept as given here and resolved by the builder against the pipeline file's directory,
as Conducto did.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from k8sco.errors import PipelineError, PipelineTypeError


@dataclass(frozen=True)
class Image:
    """A container image for nodes: a base image, optionally with the pipeline's code copied in
    and Python or apt packages installed.

    - ``image``: the base image (default: a slim Python image of the client's minor version).
    - ``dockerfile`` + ``context`` + ``docker_build_args``: build from a Dockerfile instead.
    - ``copy_dir``: a directory copied into the image's working directory, the code root.
    - ``reqs_py``: pip requirements; ``reqs_packages``: apt packages.
    - ``env``: environment variables baked into the image.
    - ``name``: a name for logs and tags; ``path_map``: local path -> path in the image.
    """

    image: str | None = None
    dockerfile: str | None = None
    context: str | None = None
    docker_build_args: Mapping[str, str] = field(default_factory=dict)
    copy_dir: str | None = None
    reqs_py: Sequence[str] = ()
    reqs_packages: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    name: str | None = None
    path_map: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        label = f"Image({self.name or self.image or self.dockerfile or ''!r})"
        if self.image is not None and self.dockerfile is not None:
            raise PipelineError(f"{label}: give either image= or dockerfile=, not both")
        if self.context is not None and self.dockerfile is None:
            raise PipelineError(f"{label}: context= needs dockerfile=")
        for attr in ("image", "dockerfile", "context", "copy_dir", "name"):
            value = getattr(self, attr)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise PipelineTypeError(f"{label}: {attr}= must be a non-empty string")
        for attr in ("reqs_py", "reqs_packages"):
            value = getattr(self, attr)
            if isinstance(value, str):
                value = (value,)
            if not all(isinstance(v, str) and v.strip() for v in value):
                raise PipelineTypeError(f"{label}: {attr}= must be a list of strings")
            object.__setattr__(self, attr, tuple(value))
        for attr in ("docker_build_args", "env", "path_map"):
            value = getattr(self, attr)
            if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise PipelineTypeError(f"{label}: {attr}= must be a dict of str to str")
            object.__setattr__(self, attr, dict(value))
        if self.copy_dir is not None:
            object.__setattr__(self, "copy_dir", os.path.normpath(self.copy_dir))

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that differ from the defaults, as JSON-ready data."""
        data = asdict(self)
        out: dict[str, Any] = {}
        for key, value in data.items():
            if value in (None, (), {}):
                continue
            out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Image:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise PipelineError(f"unknown Image fields: {', '.join(sorted(unknown))}")
        return cls(**data)

    def __hash__(self) -> int:
        return hash(repr(sorted(self.to_dict().items(), key=lambda kv: kv[0])))
