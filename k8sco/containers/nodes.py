"""The image each node of a tree runs in, building what needs a build.

Used by ``k8sco run --docker`` (an image per Exec node) and by ``k8sco apply``/``render``
(the built references, by :func:`k8sco.render.jobs.image_key`, that go into the Pipeline).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from k8sco.containers.build import Builder
from k8sco.image import Image
from k8sco.render.constants import DEFAULT_IMAGE
from k8sco.render.jobs import image_key, needs_build
from k8sco.render.names import pipeline_name_from
from k8sco.tree import Exec, Node


def local_default(code_root: str) -> Image:
    """What a node that names no image runs in locally: the pipeline's directory in a
    Python image with k8sco (its code must be there for ``k8sco call``)."""
    return Image(copy_dir=".", name=pipeline_name_from(os.path.basename(code_root)) or "pipeline")


def node_images(
    root: Node, code_root: str, builder: Builder, default: Image | None = None
) -> dict[str, str]:
    """The image reference of every Exec node, building each distinct ``co.Image`` once.

    A node's ``image`` as a string is used as given; a node without one gets ``default``
    (built like any other), or k8sco's default image when ``default`` is None.
    """
    built: dict[Image, str] = {}
    refs: dict[str, str] = {}
    for node in root.stream():
        if not isinstance(node, Exec):
            continue
        declared = node.get("image") or default
        if declared is None:
            refs[node.path] = DEFAULT_IMAGE
        elif isinstance(declared, str):
            refs[node.path] = declared
        else:
            if declared not in built:
                built[declared] = builder.build(declared, code_root).ref
            refs[node.path] = built[declared]
    return refs


def built_refs(root: Node, code_root: str, builder: Builder) -> Mapping[str, str]:
    """The references of the tree's images that need a build, by ``image_key``: what
    ``render_all(..., image_refs=...)`` and the Pipeline's ``spec.images`` take."""
    refs: dict[str, str] = {}
    for node in root.stream():
        image = node.params.get("image")
        if isinstance(image, Image) and needs_build(image) and image_key(image) not in refs:
            refs[image_key(image)] = builder.build(image, code_root).ref
    return refs


def planned_refs(root: Node, code_root: str) -> dict[str, str] | None:
    """The references ``k8sco render --build`` (``k8sco build``) gives the tree's images, by
    ``image_key``, computed from their inputs without a Docker engine and without building;
    None when no node's image needs a build (then none is built). The same images as
    ``k8sco.cli.build.images_of``, with the settings of the environment (K8SCO_BASE_IMAGE,
    K8SCO_REGISTRY) as ``k8sco build`` reads them."""
    declared = [n.params.get("image") for n in root.stream()]
    if not any(isinstance(i, Image) and needs_build(i) for i in declared):
        return None
    refs: dict[str, str] = {}
    with Builder.from_env(os.environ, registry=os.environ.get("K8SCO_REGISTRY")) as builder:
        for node in root.stream():
            image = node.get("image") if isinstance(node, Exec) else None
            if isinstance(image, Image) and image_key(image) not in refs:
                refs[image_key(image)] = builder.plan(image, code_root).ref
    return refs
