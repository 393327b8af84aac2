"""Images on the node and in the registry, and the kubelet's pull decision.

The API defaults ``imagePullPolicy`` (pkg/apis/core/v1/defaults.go, SetDefaults_Container):
Always for ``:latest`` or an untagged image, IfNotPresent otherwise. The kubelet then
(pkg/kubelet/images/image_manager.go, EnsureImageExists): uses a present image unless the
policy is Always; refuses a missing one under Never (ErrImageNeverPull, "Container image %q is
not present with pull policy of Never"); pulls otherwise, and a failed pull is ErrImagePull
with the runtime's error, then ImagePullBackOff ("Back-off pulling image %q") until the
per-image back-off ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

# The error containerd gives when no registry can be reached (this machine has no network).
PULL_ERROR = (
    'rpc error: code = Unknown desc = failed to pull and unpack image "{ref}": failed to '
    'resolve reference "{ref}": failed to do request: Head "https://{host}/v2/{repo}/manifests/'
    '{tag}": dial tcp: lookup {host}: no such host'
)


def normalize(image: str) -> str:
    """The fully qualified reference: "busybox" → "docker.io/library/busybox:latest"."""
    name, digest = image, ""
    if "@" in image:
        name, _, digest = image.partition("@")
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        name = f"docker.io/{name}" if rest else f"docker.io/library/{name}"
    elif first in ("index.docker.io",):
        name = f"docker.io/{rest}"
    if name.startswith("docker.io/") and name.count("/") == 1:
        name = "docker.io/library/" + name[len("docker.io/") :]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and not digest:
        name += ":latest"
    return f"{name}@{digest}" if digest else name


def default_pull_policy(image: str) -> str:
    """SetDefaults_Container: Always when the tag is latest or absent (and no digest)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    return "Always" if ":" not in last or last.endswith(":latest") else "IfNotPresent"


def pull_error(image: str) -> str:
    ref = normalize(image)
    name, _, tag = ref.rpartition(":") if "@" not in ref else (ref.partition("@")[0], "", "")
    host, _, repo = name.partition("/")
    host = "registry-1.docker.io" if host == "docker.io" else host
    return PULL_ERROR.format(ref=ref, host=host, repo=repo, tag=tag or "latest")


class ImageStore:
    """``node``: images present on the node (None: all of them); ``registry``: images a pull
    can fetch. A successful pull makes the image present."""

    def __init__(
        self,
        node: Iterable[str] | None = None,
        registry: Iterable[str] = (),
        pull_backoff: float = 1.0,
    ) -> None:
        self._lock = threading.Lock()
        self._node = None if node is None else {normalize(i) for i in node}
        self._registry = {normalize(i) for i in registry}
        self.pull_backoff = pull_backoff
        self.pull_backoff_max = max(pull_backoff * 30, pull_backoff)  # real: 10 s … 300 s

    def present(self, image: str) -> bool:
        with self._lock:
            return self._node is None or normalize(image) in self._node

    def pull(self, image: str) -> bool:
        with self._lock:
            ref = normalize(image)
            if ref not in self._registry:
                return False
            if self._node is not None:
                self._node.add(ref)
            return True

    def load(self, *images: str) -> None:
        """Put images on the node, as ``kind load docker-image`` does."""
        with self._lock:
            if self._node is not None:
                self._node.update(normalize(i) for i in images)

    def publish(self, *images: str) -> None:
        """Make images pullable from the registry."""
        with self._lock:
            self._registry.update(normalize(i) for i in images)
