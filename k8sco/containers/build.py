"""The image builder: turns a ``co.Image`` into an image in the local Docker engine.

``Builder.build(image, base_dir)`` resolves the image's inputs (the base image's id, the copied
files, k8sco's wheel), derives the tag from them (:mod:`k8sco.containers.context`) and builds
only when the engine has no image with that tag. A ``dockerfile=`` image is built in two
stages: the user's Dockerfile as it is, then k8sco's layers on top of it.

Builds use the classic builder with host networking (``pip`` and ``apt`` reach their indexes
through the host) and never pull implicitly: a base image missing from the engine is pulled
once, on purpose, so that its id can go into the tag.

Build-time settings, read by :meth:`Builder.from_env` (the CLI's defaults):

- ``K8SCO_BASE_IMAGE``: the base of images that name none (default ``python:<X.Y>-slim``).
- ``K8SCO_BUILD_CA_BUNDLE``: a PEM file of CA certificates pip and apt trust during the build
  (a TLS-intercepting proxy, a private index). It is removed before the image's last layers
  and is no input of the tag.
- ``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY`` (and lower-case): passed as build args, which
  Docker keeps out of the image's history and its layer cache.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors

from k8sco.containers import context, sources
from k8sco.containers.dist import k8sco_dist
from k8sco.containers.engine import connect
from k8sco.containers.progress import StreamDisplay
from k8sco.errors import BuildError
from k8sco.image import Image

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


@dataclass(frozen=True)
class BuildResult:
    """An image the builder made or found: ``ref`` is ``repository:tag`` in the engine."""

    image: Image
    ref: str
    image_id: str
    built: bool  # False when an image with this tag was already there
    plan: context.BuildPlan = field(repr=False)


@dataclass(frozen=True)
class BuildSettings:
    """How images are built on this machine (not what they are made of)."""

    base_image: str = field(default_factory=context.default_base)
    ca_bundle: str | None = None  # path of a PEM file
    proxies: Mapping[str, str] = field(default_factory=dict)
    registry: str | None = None  # repository prefix, e.g. "registry.example.com:5000/team"
    cache_dir: str | None = None  # where k8sco's wheel is cached
    no_cache: bool = False  # build every layer again (the tag still decides whether to build)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> BuildSettings:
        values: dict[str, Any] = {
            "base_image": environ.get("K8SCO_BASE_IMAGE") or context.default_base(),
            "ca_bundle": environ.get("K8SCO_BUILD_CA_BUNDLE") or None,
            "proxies": {k: environ[k] for k in PROXY_VARS if environ.get(k)},
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class Builder:
    """Builds ``co.Image`` descriptions with one Docker engine."""

    def __init__(
        self,
        settings: BuildSettings,
        client: docker.DockerClient | None = None,
        display: StreamDisplay | None = None,
    ) -> None:
        self.settings = settings
        self._own_client = client is None
        # Connected on first use: planning (the tag) needs no engine, building does.
        self._client = client
        self.display = display or StreamDisplay(quiet=True)
        self._ca: bytes | None = None
        # Resolved once: every image of one build gets the same k8sco, even if the checkout
        # is edited meanwhile.
        self._dist: context.K8scoDist | None = None
        if settings.ca_bundle:
            try:
                with open(settings.ca_bundle, "rb") as f:
                    self._ca = f.read()
            except OSError as exc:
                raise BuildError(
                    f"K8SCO_BUILD_CA_BUNDLE={settings.ca_bundle}: cannot read it: {exc}"
                ) from exc

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = connect(BuildError)
        return self._client

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> Builder:
        display = overrides.pop("display", None)
        return cls(BuildSettings.from_env(environ, **overrides), display=display)

    def close(self) -> None:
        """Close the engine client, if this builder opened it."""
        if self._own_client and self._client is not None:
            self._client.close()

    def __enter__(self) -> Builder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- inputs ------------------------------------------------------------------------

    def plan(
        self,
        image: Image,
        base_dir: str,
        clone: str | None = None,
        commit: str | None = None,
    ) -> context.BuildPlan:
        """The build plan of ``image`` (relative paths from ``base_dir``, the folder of the
        pipeline file). Needs no Docker engine and builds nothing: its ``ref`` is the tag
        :meth:`build` gives. Code from git is named by its commit (``git ls-remote``); with
        ``clone`` (a checkout of ``commit``) its files are listed too, for the build."""
        source = sources.resolve(image, base_dir, commit)
        files: tuple[context.FileEntry, ...] = ()
        if source.copy_dir is not None:
            files = self._scan(image, source.copy_dir)
        elif clone is not None:
            files = self._scan(image, clone)
        user = _user_dockerfile(image, base_dir, source.context)
        base = image.image or self.settings.base_image
        return context.plan(
            image,
            base=base,
            files=files,
            dist=self.dist(),
            user=user,
            registry=self.settings.registry,
            ca_bundle=self._ca,
            source=source.git.key() if source.git is not None else (),
        )

    def _scan(self, image: Image, root: str) -> tuple[context.FileEntry, ...]:
        if not os.path.isdir(root):
            raise BuildError(f"{_label(image)}: copy_dir {root} is not a directory")
        scanned = context.scan(root)
        if scanned.left_out:
            self.display.say(context.left_out_line(_label(image), scanned.left_out))
        return scanned.files

    def dist(self) -> context.K8scoDist:
        """How k8sco goes into this builder's images (a wheel of a checkout is built once)."""
        if self._dist is None:
            self._dist = k8sco_dist(self.settings.cache_dir)
        return self._dist

    def _ensure_base(self, base: str) -> None:
        """Pulls ``base`` once if the engine lacks it (builds never pull implicitly)."""
        try:
            self.client.api.inspect_image(base)
            return
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            raise BuildError(f"inspecting base image {base}: {exc}") from exc
        self.display.title(f"pulling {base}")
        repo, tag = _split_tag(base)
        try:
            self._consume(self.client.api.pull(repo, tag=tag, stream=True, decode=True))
            self.client.api.inspect_image(base)
        except (docker.errors.APIError, BuildError) as exc:
            raise BuildError(
                f"base image {base} is not in the Docker engine and cannot be pulled ({exc}). "
                "Pull or load it, or set K8SCO_BASE_IMAGE to an image the engine has "
                "(scripts/base-image.sh builds one without a registry)."
            ) from exc

    # --- building ----------------------------------------------------------------------

    def build(self, image: Image, base_dir: str) -> BuildResult:
        """The image for ``image``: found by its tag, or built. Raises BuildError."""
        planned = self.plan(image, base_dir)
        existing = self._image_id(planned.ref)
        if existing is not None:
            return BuildResult(image, planned.ref, existing, built=False, plan=planned)
        if not planned.source:
            return self._build(planned)
        # The commit the tag was made for is cloned, even if the branch moved meanwhile.
        commit = planned_commit(planned)
        git = sources.resolve(image, base_dir, commit).git
        assert git is not None
        with tempfile.TemporaryDirectory(prefix="k8sco-clone-") as tmp:
            checkout = sources.clone(git, os.path.join(tmp, "code"))
            build = self.plan(image, base_dir, clone=checkout, commit=commit)
            assert build.ref == planned.ref  # the files of a git source are not hashed
            return self._build(build)

    def _build(self, build: context.BuildPlan) -> BuildResult:
        base = build.base
        if build.user is not None:
            base = self._build_user_stage(build)
        else:
            self._ensure_base(base)
        self.display.title(f"building {build.ref}")
        with tempfile.TemporaryFile() as tar:
            context.write_context(build, tar, base=base)
            tar.seek(0)
            stream = self.client.api.build(
                fileobj=tar,
                custom_context=True,
                tag=build.ref,
                buildargs=dict(self.settings.proxies),
                network_mode="host",  # no bridge network exists on these engines
                nocache=self.settings.no_cache,
                pull=False,
                rm=True,
                forcerm=True,
                decode=True,
            )
            image_id = self._run_build(stream, build.ref)
        return BuildResult(build.image, build.ref, image_id, built=True, plan=build)

    def build_all(self, images: Iterable[Image], base_dir: str) -> list[BuildResult]:
        """Each distinct image once, in the order given."""
        results: dict[Image, BuildResult] = {}
        for image in images:
            if image not in results:
                results[image] = self.build(image, base_dir)
        return list(results.values())

    def _build_user_stage(self, build: context.BuildPlan) -> str:
        user = build.user
        assert user is not None
        common: dict[str, Any] = {
            "buildargs": {**self.settings.proxies, **user.build_args},
            "network_mode": "host",
            "nocache": self.settings.no_cache,
            "pull": False,
            "rm": True,
            "forcerm": True,
            "decode": True,
        }
        if user.dockerfile:
            self.display.title(f"building {os.path.relpath(user.dockerfile)} for {build.ref}")
            stream = self.client.api.build(path=user.context, dockerfile=user.dockerfile, **common)
            return self._run_build(stream, f"{build.ref} (stage {user.dockerfile})")
        self.display.title(f"building dockerfile_text for {build.ref}")
        with tempfile.TemporaryFile() as tar:
            context.write_user_context(user, tar)
            tar.seek(0)
            stream = self.client.api.build(
                fileobj=tar, custom_context=True, dockerfile=context.USER_DOCKERFILE, **common
            )
            return self._run_build(stream, f"{build.ref} (stage dockerfile_text)")

    def _run_build(self, stream: Iterator[dict[str, Any]], what: str) -> str:
        try:
            return self._consume(stream) or _fail(what, "the engine reported no image id", "")
        except docker.errors.APIError as exc:
            _fail(what, str(exc), self.display.tail_text(), exc)
        except BuildError as exc:
            _fail(what, str(exc), self.display.tail_text(), exc)
        raise AssertionError("unreachable")

    def _consume(self, stream: Iterator[dict[str, Any]]) -> str | None:
        """Feeds a stream to the display; the image id it ends with, if any.

        Read to its end even after an error (the engine ends it then): a stream left
        half-read keeps its connection open.
        """
        image_id: str | None = None
        error: str | None = None
        for event in stream:
            self.display.feed(event)
            if ("error" in event or "errorDetail" in event) and error is None:
                detail = event.get("errorDetail") or {}
                error = str(event.get("error") or detail.get("message") or event)
            aux = event.get("aux")
            if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
                image_id = aux["ID"]
        if error is not None:
            raise BuildError(error)
        return image_id

    def _image_id(self, ref: str) -> str | None:
        try:
            return str(self.client.api.inspect_image(ref)["Id"])
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            raise BuildError(f"inspecting {ref}: {exc}") from exc


def _fail(what: str, reason: str, tail: str, cause: BaseException | None = None) -> str:
    message = f"building image {what} failed: {reason}"
    if tail and tail.strip() not in reason:
        message += "\n--- last lines of the build ---\n" + tail
    if "certificate" in tail.lower() and "pip" in tail:
        message += (
            "\n(pip could not verify a certificate: behind a TLS-intercepting proxy, set "
            "K8SCO_BUILD_CA_BUNDLE to the proxy's CA bundle)"
        )
    raise BuildError(message) from cause


def _label(image: Image) -> str:
    return f"Image({image.name or image.image or image.dockerfile or image.copy_dir or ''!r})"


def _split_tag(ref: str) -> tuple[str, str | None]:
    if "@" in ref:
        return ref, None
    name, _, tag = ref.rpartition(":")
    if name and "/" not in tag:
        return name, tag
    return ref, "latest"


def planned_commit(build: context.BuildPlan) -> str:
    """The commit a plan of code from git was made for (the last item of its source)."""
    assert build.source, "not a plan of code from git"
    return build.source[-1]


def _user_dockerfile(
    image: Image, base_dir: str, default_context: str | None
) -> context.UserDockerfile | None:
    """The first stage of a ``dockerfile=`` or ``dockerfile_text=`` image, else None. The
    context defaults to the Dockerfile's folder, or to the repository with ``copy_repo``
    (Conducto's rules); a ``dockerfile_text`` without ``context`` has none."""
    if image.dockerfile is None and image.dockerfile_text is None:
        return None
    ctx: str | None = None
    if image.context is not None:
        ctx = os.path.abspath(os.path.join(base_dir, image.context))
    elif default_context is not None:
        ctx = default_context
    if image.dockerfile is not None:
        dockerfile = os.path.abspath(os.path.join(base_dir, image.dockerfile))
        ctx = ctx or os.path.dirname(dockerfile)
        try:
            with open(dockerfile, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise BuildError(
                f"{_label(image)}: cannot read dockerfile {dockerfile}: {exc}"
            ) from exc
    else:
        assert image.dockerfile_text is not None
        dockerfile, text = "", image.dockerfile_text
    # Docker itself drops only .dockerignore'd paths from this context; hash the same set.
    files = context.scan_dir(ctx, excludes=(), secrets=False) if ctx else ()
    return context.UserDockerfile(dockerfile, ctx or "", text, dict(image.docker_build_args), files)


__all__ = ["PROXY_VARS", "BuildResult", "BuildSettings", "Builder"]
