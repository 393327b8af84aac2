"""The Job of a shared container (``container_reuse_context=NEW``): one Job for the group,
named after its head's path, whose container runs ``k8sco sequence`` (:mod:`k8sco.sequence`).

Pure. The members must agree on what makes a container (image, pod_spec, run_as_root, pull
policy, requires_docker): a group runs in one. Its resources are the largest any member
asks for; its deadline is the sum of the members' ``max_time`` (each member's own is enforced
by the runner); its ``backoffLimit`` is 0, since the runner retries each member itself
(``retries``) in the same container.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from k8sco import sequence
from k8sco.callback import RETRIES, entries
from k8sco.errors import PipelineError
from k8sco.params import cpu_cores, mem_bytes
from k8sco.render import names
from k8sco.render.jobs import Parts, Settings, command_argv, image_key, job
from k8sco.secrets import SecretRef
from k8sco.tree import Exec, Node
from k8sco.validate import INT64_MAX, MAX_ARG_BYTES

# What must be the same for every member: it is the one container's.
_SHARED = ("image", "pod_spec", "run_as_root", "image_pull_policy", "requires_docker")


def member_heads(root: Node, paths: Iterable[str]) -> dict[str, str]:
    """Of ``paths`` (Exec nodes), those in a group, each with its group's head path."""
    grouped = sequence.groups(root)
    if not grouped:
        return {}
    heads = {p: head for head, members in grouped.items() for p in members}
    return {p: heads[p] for p in paths if p in heads}


def _same(value: Any) -> Any:
    from k8sco.image import Image

    return ("image", image_key(value)) if isinstance(value, Image) else value


def group_settings(root: Node, head: str, members: list[str]) -> Settings:
    """The settings of the group's one container (see the module's docstring)."""
    nodes = [root[p] for p in members]
    first = Settings.of(nodes[0])
    found = [first]
    for node in nodes[1:]:
        s = Settings.of(node)
        for name in _SHARED:
            if _same(getattr(s, name)) != _same(getattr(first, name)):
                raise PipelineError(
                    f"{node.path}: its {name} differs from {nodes[0].path}'s, but both run "
                    f"in the one container of {head} (container_reuse_context=NEW): set "
                    f"{name} on {head} instead"
                )
        found.append(s)
    head_settings = Settings.of(root[head])
    # Each member's own values are set by the runner; a co.SecretRef has no value there, so
    # every member's references are the container's (the container is shared anyway).
    refs = {k: v for s in found for k, v in s.env.items() if isinstance(v, SecretRef)}
    return dataclasses.replace(
        first,
        env={**head_settings.env, **refs},
        cpu=max((s.cpu for s in found), key=cpu_cores),
        mem=max((s.mem for s in found), key=mem_bytes),
        gpu=max(s.gpu for s in found),
        retries=0,
        max_time=min(sum(s.max_time for s in found), INT64_MAX),
    )


# Callbacks that act on one node's run: on a cluster it would need a Job for part of the
# group (the controller names Jobs per node attempt, and a group's pod runs all its nodes).
_PER_NODE = RETRIES | {"skip_some_errors"}


def _refuse_member_callbacks(root: Node, head: str, members: list[str]) -> None:
    """PipelineError naming the first member that a retry or skip callback reaches (set on
    it, or on a node above it: as :class:`k8sco.reconcile.callbacks.Table` passes them)."""
    for path in members:
        node: Node | None = root[path]
        while node is not None:
            for _event, cb in entries(node.params.get("callbacks")):
                reaches = node.path == path or cb.inherited or not isinstance(node, Exec)
                if cb.name in _PER_NODE and reaches:
                    where = "" if node.path == path else f" (set on {node.path})"
                    raise PipelineError(
                        f"{path}: co.callback.{cb.name}{where} cannot act on one node of the "
                        f"shared container of {head} on a cluster (its nodes run in one Job): "
                        "use retries= there (each node retried in the same container), or "
                        "set the callback outside the shared container"
                    )
            node = node.parent


def group_job(
    root: Node,
    head: str,
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
    """The Job of the group headed at ``head``."""
    members = sequence.members(root, head)
    if not members or not all(isinstance(root[p], Exec) for p in members):
        raise PipelineError(f"{head}: no Exec node shares its container")
    for node in root[head].stream():
        if node.path != head and "container_reuse_context" in node.params:
            # Its nodes would run in other Jobs, which the group's pod cannot wait for.
            raise PipelineError(
                f"{node.path}: a container_reuse_context inside the shared container of "
                f"{head} runs only locally (k8sco run); on a cluster, set it on nodes that "
                "are not below one another"
            )
    _refuse_member_callbacks(root, head, members)
    settings = group_settings(root, head, members)
    spec = sequence.spec(root, head)
    size = len(command_argv(spec)[-1].encode())  # as the container receives it, escaped
    if size > MAX_ARG_BYTES:
        raise PipelineError(
            f"{head}: its shared container's {len(members)} nodes take "
            f"{size:,} bytes to describe; a container's argument takes at most "
            f"{MAX_ARG_BYTES:,}: split the group (container_reuse_context=NEW on smaller parts)"
        )
    out = job(
        ["k8sco", "sequence", spec],
        head,
        names.job_name(pipeline, head),
        settings,
        pipeline,
        namespace,
        image,
        owner_uid,
        image_refs,
        parts,
        secret_keys,
        allow_docker=allow_docker,
    )
    count = str(len(members))
    out["metadata"]["annotations"][sequence.ANNOTATION_SEQUENCE] = count
    template = out["spec"]["template"]
    template["metadata"]["annotations"][sequence.ANNOTATION_SEQUENCE] = count
    pod = template["spec"]
    main = dict(pod["containers"][0])
    main["terminationMessagePath"] = sequence.TERMINATION_LOG
    main["env"] = [
        *main["env"],
        {"name": sequence.TERMINATION_ENV, "value": sequence.TERMINATION_LOG},
    ]
    pod["containers"] = [main, *pod["containers"][1:]]
    return out


__all__ = ["group_job", "group_settings", "member_heads"]
