"""``k8sco render``: the Kubernetes objects of a pipeline, as YAML on stdout."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import click

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


@click.command(context_settings=PASS_THROUGH)
@click.argument("target", metavar="FILE.py[:FUNC]")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[--param=value]...")
@click.option(
    "--name",
    metavar="NAME",
    help="The Pipeline's name (default: from the pipeline function, e.g. 'primes').",
)
@click.option(
    "-n",
    "--namespace",
    default="default",
    show_default=True,
    help="The namespace of the Pipeline and its Jobs.",
)
@click.option(
    "--image",
    metavar="IMAGE",
    help="Run every node in IMAGE instead of the image each node names "
    "(nodes that name none use ghcr.io/k8sco/k8sco:<version>).",
)
@click.option(
    "--build",
    "build_first",
    is_flag=True,
    help="Build the images first (and push or load them, as `k8sco build`); without it the "
    "tags are computed from the images' inputs and nothing needs a Docker engine.",
)
@click.option(
    "--pipeline-only",
    is_flag=True,
    help="Print only the Pipeline: what to 'kubectl apply' for the controller to run.",
)
def render(
    target: str,
    args: tuple[str, ...],
    name: str | None,
    namespace: str,
    image: str | None,
    build_first: bool,
    pipeline_only: bool,
) -> None:
    """Print the Pipeline and the Job of every Exec node as a YAML stream.

    The Jobs are the ones the controller creates, one at a time as the tree allows, each
    owned by the Pipeline once it exists. They are printed to be read and checked
    (`kubectl apply --dry-run=server -f -` accepts them); applying them yourself starts them
    all at once, out of order. To run the pipeline, apply the Pipeline alone
    (--pipeline-only) or use `k8sco apply`. Skipped nodes have no Job.

    Arguments after the file are the pipeline function's (--n=30); put them after `--` if
    they are called name, namespace or image. Nothing is printed unless every object
    renders: a bad node fails the command, naming the node.
    """
    from k8sco import loading
    from k8sco.errors import UsageError
    from k8sco.render import dump_all, pipeline_name_from, render_all
    from k8sco.render.podspec import ALLOW_DOCKER_ENV, docker_allowed
    from k8sco.validate import image_reference_problem

    problem = image and image_reference_problem(image)
    if problem:
        raise UsageError(f"--image: {problem}")
    # stdout carries only the objects: what the pipeline file (or a build) prints while the
    # tree is built goes to stderr.
    with _stdout_to_stderr():
        loaded = loading.load(target, args)
        pipeline = name if name is not None else pipeline_name_from(loaded.func)
        # Every Job is rendered even for --pipeline-only: a node that cannot become a valid
        # Job must fail now, not when the controller reaches it.
        refs = None
        if image is None and build_first:
            from k8sco.cli.cluster import built_images

            refs = built_images(loaded.root, loaded.code_root)
        elif image is None:
            # An image's tag is a hash of its inputs: named without building.
            from k8sco.containers.nodes import planned_refs

            refs = planned_refs(loaded.root, loaded.code_root)
        # requires_docker=True nodes: refused unless K8SCO_ALLOW_DOCKER allows the namespace.
        docker = docker_allowed(os.environ.get(ALLOW_DOCKER_ENV), namespace)
        docs = render_all(
            loaded.root, pipeline, namespace, image, image_refs=refs, allow_docker=docker
        )
    click.echo(dump_all(docs[:1] if pipeline_only else docs), nl=False)


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Sends stdout to stderr, Python's and file descriptor 1's (subprocesses, C code)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
