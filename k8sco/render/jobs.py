"""A node's batch/v1 Job, as a plain dict (DESIGN.md §2).

Pure: the tree in, a dict out; no cluster, no clock, no environment. The controller creates
each Job with :func:`render_job`, and ``k8sco render`` prints the same dicts, so what a user
reads is what runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from k8sco import sequence
from k8sco.errors import PipelineError
from k8sco.image import Image
from k8sco.params import SPECS, Inherit
from k8sco.render import names, podspec
from k8sco.render.constants import (
    ANNOTATION_PATH,
    API_VERSION,
    CODE_ROOT,
    CONTAINER_NAME,
    DEFAULT_IMAGE,
    KIND,
    LABEL_MANAGED_BY,
    LABEL_PIPELINE,
    MANAGED_BY,
    RUN_AS_USER,
)
from k8sco.secrets import SecretRef, container_env
from k8sco.tree import Exec, Node

GPU_RESOURCE = "nvidia.com/gpu"
T = TypeVar("T")

# The parameters a Job is made of, in the order Settings lists them.
_JOB_PARAMS = (
    "image",
    "env",
    "cpu",
    "mem",
    "gpu",
    "retries",
    "max_time",
    "run_as_root",
    "pod_spec",
    "image_pull_policy",
    "requires_docker",
)


@dataclass(frozen=True)
class Settings:
    """The effective parameters of one Exec node that its Job is made of (read-only: the
    dicts may be shared with other nodes' Settings)."""

    image: Any  # str, co.Image or None
    env: Mapping[str, str | SecretRef]
    cpu: float | str
    mem: float | str
    gpu: int
    retries: int
    max_time: float
    run_as_root: bool
    pod_spec: Mapping[str, Any]
    image_pull_policy: str | None
    requires_docker: bool

    @classmethod
    def of(cls, node: Node) -> Settings:
        """The node's settings, each looked up through its ancestors."""
        return cls(*(node.get(name) for name in _JOB_PARAMS))


def exec_settings(root: Node) -> Iterator[tuple[Exec, str, Settings]]:
    """Every Exec node that is not skipped, with its path and settings, in tree order.

    One walk carries the inherited values down (the way ``Node.get`` resolves them: the
    nearest value, or dicts merged root first), instead of a walk up the ancestors for each
    parameter of each node: this is most of what makes 10,000 Jobs render in well under a
    second.
    """
    inherit = [SPECS[name].inherit for name in _JOB_PARAMS]
    start = [
        {} if kind is Inherit.MERGE else SPECS[name].default
        for name, kind in zip(_JOB_PARAMS, inherit)
    ]
    stack: list[tuple[Node, str, list[Any], bool]] = [(root, "/", start, False)]
    while stack:
        node, path, values, skipped = stack.pop()
        own = node.params
        skipped = skipped or bool(own.get("skip", False))
        if any(name in own for name in _JOB_PARAMS):
            values = list(values)
            for i, name in enumerate(_JOB_PARAMS):
                if name in own:
                    values[i] = (
                        {**values[i], **own[name]} if inherit[i] is Inherit.MERGE else own[name]
                    )
        if isinstance(node, Exec):
            if not skipped:
                yield node, path, Settings(*values)
            continue
        prefix = path.rstrip("/") + "/"
        stack.extend(
            (child, prefix + name, values, skipped)
            for name, child in reversed(list(node.children.items()))
        )


def _disruptions_ignored() -> dict[str, Any]:
    # Evictions, preemptions and node drains mark a pod DisruptionTarget; those are not the
    # node's fault, so they must not use up its retries (backoffLimit).
    return {
        "rules": [
            {
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            }
        ]
    }


def render_job(
    root: Node,
    node_path: str,
    pipeline_name: str,
    namespace: str,
    image: str | None = None,
    owner_uid: str | None = None,
    image_refs: Mapping[str, str] | None = None,
    secret_keys: Iterable[str] = (),
    *,
    allow_docker: bool = False,
) -> dict[str, Any]:
    """The Job that runs the Exec node at ``node_path`` of the tree ``root``.

    - ``image``: when given, the image of every node (``k8sco render --image``); otherwise
      the node's ``image`` parameter (see :func:`image_reference`).
    - ``owner_uid``: the Pipeline's uid; when known, the Job is owned by the Pipeline, so
      deleting the Pipeline deletes its Jobs.
    - ``image_refs``: references of built images by :func:`image_key`.
    - ``secret_keys``: the key names of the namespace's Secret (the controller reads them
      when it creates the Job; ``k8sco render`` knows none).
    - ``allow_docker``: nodes with ``requires_docker=True`` may get their privileged
      Docker-in-Docker sidecar (``K8SCO_ALLOW_DOCKER``; else they are refused).

    A node in a shared container (``container_reuse_context=NEW``) gets its group's Job
    (:mod:`k8sco.render.group`).

    Raises PipelineError naming the node when the Job could not be valid: not an Exec node,
    an image that must be built first, a ``pod_spec`` that breaks the restricted profile.
    """
    names.check_pipeline_name(pipeline_name)
    check_namespace(namespace)
    try:
        node = root[node_path]
    except KeyError as exc:
        raise PipelineError(f"{node_path}: no such node ({exc.args[0]})") from None
    if not isinstance(node, Exec):
        raise PipelineError(f"{node_path}: a {node.kind} node has no Job; only Exec nodes do")
    head = sequence.head_of(node)
    if head is not None:
        from k8sco.render.group import group_job

        return group_job(
            root,
            head,
            pipeline_name,
            namespace,
            image,
            owner_uid,
            image_refs or {},
            secret_keys=secret_keys,
            allow_docker=allow_docker,
        )
    return job(
        node.command,
        node_path,
        names.job_name(pipeline_name, node_path),
        Settings.of(node),
        pipeline_name,
        namespace,
        image,
        owner_uid,
        image_refs or {},
        secret_keys=secret_keys,
        allow_docker=allow_docker,
    )


def check_namespace(namespace: str) -> str:
    if not isinstance(namespace, str) or not names.is_dns_label(namespace):
        raise PipelineError(
            f"namespace {namespace!r} is not valid: a DNS-1123 label (at most 63 lowercase "
            "letters, digits or '-') is expected"
        )
    return namespace


class Parts:
    """The parts of a pipeline's Jobs that are the same for many nodes (labels, owner
    reference, security contexts, failure policy, resources).

    By default every Job gets objects of its own. ``share=True`` hands the same objects to
    every Job (what :func:`~k8sco.render.pipeline.render_all` does): 10,000 Jobs then build
    in less time and memory and print faster, since the emitter writes a shared part once; such
    Jobs must be treated as read-only (``copy.deepcopy`` one before changing it).
    """

    def __init__(self, share: bool = False) -> None:
        self.share = share
        self._cache: dict[object, Any] = {}

    def get(self, key: object, build: Callable[[], T]) -> T:
        if not self.share:
            return build()
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = build()
        return cast(T, found)


def job(
    command: str | list[str],
    path: str,
    name: str,
    settings: Settings,
    pipeline: str,
    namespace: str,
    image: str | None,
    owner_uid: str | None,
    image_refs: Mapping[str, str],
    parts: Parts | None = None,
    secret_keys: Iterable[str] = (),
    *,
    allow_docker: bool = False,
) -> dict[str, Any]:
    """The Job of one node, its name and settings known (arguments checked by the caller)."""
    parts = parts or Parts()
    labels = parts.get("labels", lambda: {LABEL_MANAGED_BY: MANAGED_BY, LABEL_PIPELINE: pipeline})
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": labels,
        "annotations": {ANNOTATION_PATH: path},
    }
    if owner_uid is not None:
        metadata["ownerReferences"] = parts.get(
            "owner", lambda: [owner_reference(pipeline, owner_uid)]
        )
    pod = pod_spec(command, path, settings, pipeline, image, image_refs, parts, secret_keys)
    if settings.requires_docker:  # its pod is "privileged" (render/podspec.py with_docker)
        pod = podspec.with_docker(pod, path, allow_docker)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": settings.retries,
            "activeDeadlineSeconds": max(1, math.ceil(settings.max_time)),
            "podFailurePolicy": parts.get("failure", _disruptions_ignored),
            "template": {
                "metadata": {
                    "labels": labels if parts.share else dict(labels),
                    "annotations": {ANNOTATION_PATH: path},
                },
                "spec": pod,
            },
        },
    }


def owner_reference(pipeline: str, uid: str) -> dict[str, Any]:
    """The reference that makes a Job a dependent of its Pipeline."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": pipeline,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_spec(
    command: str | list[str],
    path: str,
    settings: Settings,
    pipeline: str,
    image: str | None = None,
    image_refs: Mapping[str, str] | None = None,
    parts: Parts | None = None,
    secret_keys: Iterable[str] = (),
) -> dict[str, Any]:
    """The pod spec of the node's Job: one container, restricted by default, ``pod_spec``
    merged in. ``secret_keys`` are the key names of the namespace's Secret
    (:data:`k8sco.secrets.SECRET_NAME`), each a ``secretKeyRef`` entry that beats the node's
    env (:func:`k8sco.secrets.container_env`)."""
    parts = parts or Parts()
    declared = settings.image
    # An Image's env is baked into the image when it is built; it is set on the container
    # too so that it holds for an Image used as a plain reference.
    env: dict[str, str | SecretRef] = dict(declared.env) if isinstance(declared, Image) else {}
    env.update(settings.env)
    framework = [
        parts.get("env", lambda: {"name": "K8SCO_PIPELINE", "value": pipeline}),
        {"name": "K8SCO_NODE_PATH", "value": path},
    ]
    if not env and not secret_keys:
        env_list = framework  # what container_env gives then, at a fraction of the cost
    else:
        # A variable the pod_spec sets itself stays the pod_spec's: a secret of the same
        # name must not make a valid node's Job fail the duplicate check below.
        patched = {
            item.get("name")
            for container in settings.pod_spec.get("containers") or []
            for item in container.get("env") or []
        }
        env_list = container_env(env, (k for k in secret_keys if k not in patched), framework)
    root = settings.run_as_root
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image or image_reference(declared, path, image_refs or {}),
        "command": command_argv(
            command, declared.command_shell if isinstance(declared, Image) else "/bin/sh"
        ),
        "workingDir": CODE_ROOT,
        "env": env_list,
        "resources": parts.get(
            ("resources", settings.cpu, settings.mem, settings.gpu), lambda: resources(settings)
        ),
        "securityContext": parts.get(("container", root), lambda: container_security(root)),
        # A failed node's last log lines become the pod's termination message, which the
        # controller can show without reading logs.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if settings.image_pull_policy is not None:
        # Unset, the API server defaults it from the tag (pkg/apis/core/v1/defaults.go,
        # SetDefaults_Container): Always for ":latest" or no tag, else IfNotPresent.
        container["imagePullPolicy"] = settings.image_pull_policy
    if isinstance(declared, Image) and not declared.docker_auto_workdir:
        # Conducto's docker_auto_workdir=False: the image's own WORKDIR, not the code root.
        del container["workingDir"]
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        # Nodes do not talk to the Kubernetes API unless a pod_spec says so (with a
        # serviceAccountName and automountServiceAccountToken: true).
        "automountServiceAccountToken": False,
        "securityContext": parts.get(("pod", root), lambda: pod_security(root)),
        "containers": [container],
    }
    patch = settings.pod_spec
    if not patch:
        return pod  # k8sco's own pod passes "restricted" (a test holds it to that)
    pod = podspec.merge(pod, patch)
    _check_env_names(pod["containers"][0]["env"], path)
    # run_as_root leaves "restricted" but stays within "baseline", as its doc promises.
    level = "baseline" if root else "restricted"
    problems = podspec.pod_security_violations(pod, level)
    if problems:
        if root:
            hint = "Change the pod_spec: even run_as_root=True pods must pass 'baseline'"
        elif podspec.baseline_violations(pod):
            hint = "Change the pod_spec (run_as_root=True would not help: 'baseline' forbids it)"
        else:
            hint = "Change the pod_spec, or set run_as_root=True to run outside that profile"
        raise PipelineError(
            f"{path}: the pod would not pass Pod Security '{level}': "
            + "; ".join(problems)
            + f". {hint}"
        )
    return pod


def _check_env_names(env: list[dict[str, Any]], path: str) -> None:
    seen: set[str] = set()
    for item in env:
        name = item.get("name")
        if name in seen:
            raise PipelineError(
                f"{path}: environment variable {name!r} is set both by 'env' and by "
                "pod_spec containers[main].env; set it in one place"
            )
        seen.add(str(name))


def pod_security(run_as_root: bool) -> dict[str, Any]:
    """The pod securityContext: non-root with a numeric uid (Pod Security "restricted"), or
    uid 0 with the runtime's default seccomp profile (still "baseline") for ``run_as_root``."""
    if run_as_root:
        return {"runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}}
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security(run_as_root: bool) -> dict[str, Any]:
    if run_as_root:
        # Root keeps the runtime's default capabilities: images that need root usually
        # need them too (chown, setuid for apt's sandbox user).
        return {"allowPrivilegeEscalation": False}
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def command_argv(command: str | list[str], shell: str = "/bin/sh") -> list[str]:
    """The container command: a shell string through ``shell -c`` (a co.Image's ``shell=``),
    an argv list (the native-function dispatcher ``k8sco call ...`` included), each with
    escaped for the kubelet's variable expansion.

    The kubelet expands ``$(VAR)`` in a container's command and args with the container's
    env and turns ``$$`` into ``$`` (kubernetes/kubernetes
    third_party/forked/golang/expansion/expand.go, through
    kubecontainer.ExpandContainerCommandAndArgs). Unescaped, ``echo $$`` would print ``$``
    and ``'$(K8SCO_PIPELINE)'`` the pipeline's name. A ``$`` becomes ``$$`` unless what
    follows it reaches the container unchanged anyway (``$VAR``, ``${VAR}``, ``$1``), so
    the shell or the dispatcher receives exactly what the user wrote, as in a local run,
    and the Job stays readable in ``kubectl describe``."""
    argv = [shell, "-c", command] if isinstance(command, str) else command
    return [_UNSAFE_DOLLAR.sub("$$", arg) for arg in argv]


# A $ the kubelet would change or consume: before "$", "(", the end, or any other character
# (expand.go copies the byte after a lone "$" as a rune, which would mangle UTF-8).
_UNSAFE_DOLLAR = re.compile(r"\$(?![A-Za-z0-9_{])")


def resources(settings: Settings) -> dict[str, Any]:
    """Requests from ``cpu`` and ``mem``, the memory limit equal to its request (memory is
    incompressible: over the limit is an OOM kill, not a slowdown), GPUs as a limit."""
    memory = memory_quantity(settings.mem)
    out: dict[str, Any] = {
        "requests": {"cpu": cpu_quantity(settings.cpu), "memory": memory},
        "limits": {"memory": memory},
    }
    gpu = settings.gpu
    if gpu:
        out["limits"][GPU_RESOURCE] = str(gpu)
    return out


def cpu_quantity(value: float | str) -> str:
    """Cores as a quantity: 1 -> ``"1"``, 0.5 -> ``"500m"``; below a millicore rounds up to
    ``"1m"`` (the API's resolution). Strings are quantities already and stay as given."""
    if isinstance(value, str):
        return value
    if value == int(value):
        return str(int(value))
    return f"{max(1, math.ceil(round(value * 1000, 6)))}m"


def memory_quantity(value: float | str) -> str:
    """GB (as Conducto counts them: GiB) as a quantity: 2 -> ``"2Gi"``, 0.5 -> ``"512Mi"``,
    else the largest binary unit that is exact, else bytes rounded up. Strings stay as given."""
    if isinstance(value, str):
        return value
    for unit, scale in (("Gi", 1), ("Mi", 2**10), ("Ki", 2**20)):
        amount = value * scale
        if amount == int(amount):
            return f"{int(amount)}{unit}"
    return str(math.ceil(value * 2**30))


def image_key(image: Image) -> str:
    """A stable key for an Image description: how ``image_refs`` (and the Pipeline's
    ``spec.images``) name the reference the builder pushed for it."""
    text = json.dumps(image.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def needs_build(image: Image) -> bool:
    """True if the image has contents beyond a base reference (code, packages, a
    Dockerfile), so that only the builder can say what to run."""
    return bool(
        image.image is None
        or image.dockerfile
        or image.dockerfile_text
        or image.copies_code
        or image.install_pip
        or image.install_packages
        or image.install_npm
        or image.install_docker
    )


def image_reference(declared: Any, path: str, image_refs: Mapping[str, str]) -> str:
    """The image a node runs: its ``image`` parameter as a reference (a str as given; a
    ``co.Image`` by its built reference in ``image_refs``, else its ``image=`` when it needs
    no build), or :data:`DEFAULT_IMAGE` (Python with k8sco) when it names none."""
    if declared is None:
        return DEFAULT_IMAGE
    if isinstance(declared, str):
        return declared
    assert isinstance(declared, Image)
    ref = image_refs.get(image_key(declared))
    if ref is not None:
        return ref
    if not needs_build(declared):
        assert declared.image is not None
        return declared.image
    label = declared.name or declared.image or declared.dockerfile or "co.Image"
    raise PipelineError(
        f"{path}: image {label!r} has to be built before it can run in a cluster "
        "(it copies code, installs packages or uses a Dockerfile); build and push it, "
        "or pass --image REF to use an image that is already in a registry"
    )


__all__ = [
    "Parts",
    "Settings",
    "check_namespace",
    "command_argv",
    "container_security",
    "cpu_quantity",
    "exec_settings",
    "image_key",
    "image_reference",
    "job",
    "memory_quantity",
    "needs_build",
    "owner_reference",
    "pod_security",
    "pod_spec",
    "render_job",
    "resources",
]
