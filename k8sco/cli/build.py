"""``k8sco build FILE.py[:FUNC]``: build, then push or load, every image of a pipeline."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

import click

from k8sco.image import Image
from k8sco.tree import Exec, Node

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


def images_of(root: Node) -> dict[Image, list[str]]:
    """Each distinct ``co.Image`` of the tree's Exec nodes, with the paths that use it, in
    tree order. Image names given as strings are used as they are and need no build."""
    found: dict[Image, list[str]] = {}
    for node in root.stream():
        if isinstance(node, Exec):
            image = node.get("image")
            if isinstance(image, Image):
                found.setdefault(image, []).append(node.path)
    return found


def build_and_distribute(
    root: Node,
    code_root: str,
    *,
    registry: str | None = None,
    load: str = "auto",
    kind_cluster: str | None = None,
    base_image: str | None = None,
    ca_bundle: str | None = None,
    quiet: bool = False,
) -> list[tuple[Image, str, str, list[str]]]:
    """Build each ``co.Image`` of the tree, then push it or load it into kind as the
    context says: ``(image, reference, what was done, node paths)`` per image. Raises
    BuildError (exit 2) before anything reaches a cluster when a build fails."""
    from k8sco.containers import distribute
    from k8sco.containers.build import Builder
    from k8sco.containers.progress import StreamDisplay

    context = distribute.kube_context()
    out = []
    with (
        StreamDisplay(quiet=quiet) as display,
        Builder.from_env(
            os.environ,
            display=display,
            registry=registry,
            base_image=base_image,
            ca_bundle=ca_bundle,
        ) as builder,
    ):
        for image, paths in images_of(root).items():
            result = builder.build(image, code_root)
            done = ["built" if result.built else "up to date"]
            how = distribute.decide(result.ref, load, context)
            if how == "push":
                sent = distribute.push(builder.client, result.ref, display)
                done.append("pushed" if sent else "already pushed")
            elif how == "kind":
                cluster = distribute.kind_cluster_name(context, kind_cluster)
                distribute.kind_load(result.ref, cluster, display)
                done.append(f"loaded into kind {cluster}")
            out.append((image, result.ref, ", ".join(done), paths))
    return out


def result_lines(rows: Iterable[tuple[str, str, str]]) -> list[str]:
    """``REFERENCE  what happened  (nodes)`` lines, aligned. Pure."""
    rows = list(rows)
    width = max((len(ref) for ref, _, _ in rows), default=0)
    return [f"{ref:<{width}}  {what}  {nodes}".rstrip() for ref, what, nodes in rows]


def _nodes_text(paths: list[str]) -> str:
    shown = ", ".join(paths[:3])
    return f"({shown}{f' and {len(paths) - 3} more' if len(paths) > 3 else ''})"


@click.command(context_settings=PASS_THROUGH)
@click.argument("target", metavar="FILE.py[:FUNC]")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[--param=value]...")
@click.option(
    "--registry",
    envvar="K8SCO_REGISTRY",
    metavar="HOST[/PATH]",
    help="Push images to this registry (env K8SCO_REGISTRY).",
)
@click.option(
    "--load",
    type=click.Choice(["auto", "kind", "none"]),
    default="auto",
    show_default=True,
    help="Load images into kind (auto: when the kube context is kind-*).",
)
@click.option("--kind-cluster", metavar="NAME", help="The kind cluster (default: from context).")
@click.option(
    "--base-image",
    envvar="K8SCO_BASE_IMAGE",
    metavar="IMAGE",
    help="Base of images that name none (env K8SCO_BASE_IMAGE; default python:X.Y-slim).",
)
@click.option(
    "--ca-bundle",
    envvar="K8SCO_BUILD_CA_BUNDLE",
    type=click.Path(exists=True, dir_okay=False),
    help="CA certificates pip and apt trust while building (env K8SCO_BUILD_CA_BUNDLE).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the final references.")
def build(
    target: str,
    args: tuple[str, ...],
    registry: str | None,
    load: str,
    kind_cluster: str | None,
    base_image: str | None,
    ca_bundle: str | None,
    quiet: bool,
) -> None:
    """Build every image of a pipeline and push it (--registry) or load it into kind.

    Applies nothing. Each image is tagged with a hash of its inputs, so an unchanged image
    is neither rebuilt nor pushed again. Prints one line per image: its reference, what was
    done and the nodes that use it. Exit status 2 when a build fails.
    """
    from k8sco import loading

    loaded = loading.load(target, args)
    if not images_of(loaded.root):
        click.echo(f"{target}: no node has a co.Image; nothing to build", err=True)
        return
    built = build_and_distribute(
        loaded.root,
        loaded.code_root,
        registry=registry,
        load=load,
        kind_cluster=kind_cluster,
        base_image=base_image,
        ca_bundle=ca_bundle,
        quiet=quiet,
    )
    rows = [(ref, done, _nodes_text(paths)) for _, ref, done, paths in built]
    click.echo("\n".join(result_lines(rows)))
    sys.stdout.flush()


__all__ = ["build", "build_and_distribute", "images_of", "result_lines"]
