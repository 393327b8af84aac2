"""Getting a built image to a cluster: push it to a registry, or load it into kind.

Which one (:func:`decide`): a registry in the reference (``--registry`` or an Image name such
as ``registry.example.com/team/app``) means push; otherwise a kind cluster (``--load kind``,
or a kube context named ``kind-<cluster>``) means ``kind load docker-image``; otherwise the
image stays in the local engine (``k8sco run --docker``, a cluster that shares the engine).

Pushing is skipped when the engine already records a digest of the image in that repository
(it did the push before): same inputs, same tag, no push.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import docker
import docker.errors
import yaml

from k8sco.containers.progress import StreamDisplay
from k8sco.errors import BuildError

LOAD_MODES = ("auto", "kind", "none")


def registry_host(ref: str) -> str | None:
    """The registry a reference names, by Docker's rule: a first path component with a dot
    or a port, or ``localhost``. ``k8sco-app:1a2b`` and ``team/app`` name none (Docker Hub)."""
    first, sep, _ = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def kube_context(environ: Mapping[str, str] = os.environ) -> str | None:
    """The current context of the kubeconfig (``$KUBECONFIG``'s first file, else
    ``~/.kube/config``); None when there is none. Reads the file only: no API call."""
    paths = [p for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    path = paths[0] if paths else os.path.join(os.path.expanduser("~"), ".kube", "config")
    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f)
    except (OSError, yaml.YAMLError):
        return None
    context = config.get("current-context") if isinstance(config, dict) else None
    return context if isinstance(context, str) and context else None


def decide(ref: str, load: str = "auto", context: str | None = None) -> str:
    """``"push"``, ``"kind"`` or ``"none"`` for a built image. Pure."""
    if load not in LOAD_MODES:
        raise BuildError(f"--load {load!r}: choose one of {', '.join(LOAD_MODES)}")
    if registry_host(ref) is not None:
        return "push"
    if load == "kind" or (load == "auto" and context is not None and context.startswith("kind-")):
        return "kind"
    return "none"


def kind_cluster_name(context: str | None, given: str | None = None) -> str:
    """The kind cluster to load into: ``given``, else the one of a ``kind-<name>`` context,
    else kind's default, ``kind``."""
    if given:
        return given
    if context is not None and context.startswith("kind-"):
        return context[len("kind-") :]
    return "kind"


def pushed(client: docker.DockerClient, ref: str) -> bool:
    """Whether the engine records a push (or pull) of ``ref``'s image to its repository."""
    repository = ref.rpartition(":")[0] if "/" not in ref.rpartition(":")[2] else ref
    try:
        digests = client.api.inspect_image(ref).get("RepoDigests") or []
    except docker.errors.ImageNotFound:
        return False
    return any(d.partition("@")[0] == repository for d in digests)


def push(client: docker.DockerClient, ref: str, display: StreamDisplay) -> bool:
    """Push ``ref`` with progress; False when it was pushed before (nothing sent)."""
    if pushed(client, ref):
        return False
    repository, _, tag = ref.rpartition(":")
    display.title(f"pushing {ref}")
    error: str | None = None
    try:
        # Read to the end even after an error: a half-read stream keeps its connection.
        for event in client.api.push(repository, tag=tag, stream=True, decode=True):
            display.feed(event)
            if ("error" in event or "errorDetail" in event) and error is None:
                detail = event.get("errorDetail") or {}
                error = str(event.get("error") or detail.get("message"))
    except docker.errors.APIError as exc:
        raise BuildError(f"pushing {ref} failed: {exc}") from exc
    if error is not None:
        raise BuildError(
            f"pushing {ref} failed: {error}; log in with `docker login` if the registry needs it"
        )
    return True


Runner = Callable[..., "subprocess.CompletedProcess[Any]"]


def kind_load(
    ref: str,
    cluster: str,
    display: StreamDisplay,
    run: Runner = subprocess.run,
    kind: str | None = None,
) -> None:
    """``kind load docker-image REF --name CLUSTER`` (kind skips nodes that have it)."""
    binary = kind or shutil.which("kind")
    if binary is None:
        raise BuildError(
            f"loading {ref} into kind cluster {cluster!r} needs the `kind` command on PATH; "
            "install kind, or push to a registry with --registry"
        )
    argv: Sequence[str] = [binary, "load", "docker-image", ref, "--name", cluster]
    display.title(f"loading {ref} into kind cluster {cluster}")
    proc = run(list(argv), capture_output=True, text=True, check=False)
    for line in (proc.stdout + proc.stderr).splitlines():
        display.feed({"stream": line})
    if proc.returncode != 0:
        raise BuildError(f"`{' '.join(argv)}` exited {proc.returncode}:\n" + display.tail_text())


__all__ = [
    "LOAD_MODES",
    "decide",
    "kind_cluster_name",
    "kind_load",
    "kube_context",
    "push",
    "pushed",
    "registry_host",
]
