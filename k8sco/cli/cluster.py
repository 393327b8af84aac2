"""The cluster commands: ``apply``, ``list``, ``controller``, and the cluster side of
``status``, ``logs``, ``rerun``, ``stop`` and ``delete`` (those commands are in runs.py).

Thin: each command parses its flags, calls :mod:`k8sco.kube.pipelines` (the only I/O) and
prints with pure formatting functions.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from k8sco.cli import output
from k8sco.cli.statusview import View, tree_lines
from k8sco.engine import EXEC, Graph, NodeState, evaluate
from k8sco.errors import ClusterError, K8scoError, RunError, UsageError

F = TypeVar("F", bound=Callable[..., Any])
PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}
CONTROLLER_MODES = ("auto", "embedded", "cluster")
DEFAULT_VIEW = View()


def cluster_options(func: F) -> F:
    """kubectl's flags: --kubeconfig, --context, -n/--namespace."""
    func = click.option("-n", "--namespace", help="Namespace (default: the context's).")(func)
    func = click.option("--context", help="The kubeconfig context to use.")(func)
    func = click.option(
        "--kubeconfig", type=click.Path(dir_okay=False), help="Path to the kubeconfig file."
    )(func)
    return func


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Any:
    from k8sco.kube.client import Cluster

    return Cluster(kubeconfig, context, namespace, retries=2)


def _echo(text: str) -> None:
    click.echo(text)


# --- apply ----------------------------------------------------------------------------------


@click.command(context_settings=PASS_THROUGH)
@click.argument("target", metavar="FILE.py[:FUNC]")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[--param=value]...")
@cluster_options
@click.option("--name", help="The Pipeline's name (default: the function's, plus a suffix).")
@click.option("--image", help="The image of every node (overrides the nodes' own).")
@click.option("--wait", is_flag=True, help="Follow the pipeline until it ends; exit 1 if it fails.")
@click.option(
    "--controller",
    "mode",
    type=click.Choice(CONTROLLER_MODES),
    default="auto",
    show_default=True,
    help="Who runs the pipeline: the cluster's controller, one embedded in this command, "
    "or auto (the cluster's when its Lease is fresh).",
)
def apply(
    target: str,
    args: tuple[str, ...],
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    name: str | None,
    image: str | None,
    wait: bool,
    mode: str,
) -> None:
    """Submit a pipeline to a cluster: one Pipeline object, run by the k8sco controller."""
    from k8sco import loading

    loaded = loading.load(target, args)
    cluster = connect(kubeconfig, context, namespace)
    refs = None if image else built_images(loaded.root, loaded.code_root)
    sys.exit(apply_tree(cluster, loaded.root, loaded.func, name, image, wait, mode, refs))


def built_images(root: Any, code_root: str) -> dict[str, str] | None:
    """The references of the tree's images that need a build, built (and pushed or loaded
    into kind) first; None when no node's image needs one."""
    from k8sco.image import Image
    from k8sco.render.jobs import image_key, needs_build

    if not any(
        isinstance(n.params.get("image"), Image) and needs_build(n.params["image"])
        for n in root.stream()
    ):
        return None
    from k8sco.cli.build import build_and_distribute

    built = build_and_distribute(root, code_root, registry=os.environ.get("K8SCO_REGISTRY"))
    return {image_key(img): ref for img, ref, _, _ in built}


def apply_tree(
    cluster: Any,
    root: Any,
    func: str,
    name: str | None,
    image: str | None,
    wait: bool,
    mode: str,
    image_refs: dict[str, str] | None = None,
) -> int:
    """Create the Pipeline for ``root`` and, as asked, follow it; the exit code."""
    from k8sco.kube import access, lease, overflow, pipelines
    from k8sco.render import names
    from k8sco.render.constants import LEASE_NAME, SYSTEM_NAMESPACE
    from k8sco.render.pipeline import render_all
    from k8sco.render.podspec import ALLOW_DOCKER_ENV, docker_allowed

    if name is None:
        name = f"{names.pipeline_name_from(func)}-{secrets.token_hex(3)}"
    names.check_pipeline_name(name)
    # Every Job is rendered (and so checked) before anything reaches the cluster.
    # requires_docker=True nodes: refused unless K8SCO_ALLOW_DOCKER allows the namespace.
    docker = docker_allowed(os.environ.get(ALLOW_DOCKER_ENV), cluster.namespace)
    docs = render_all(
        root, name, cluster.namespace, image, image_refs=image_refs, allow_docker=docker
    )
    pipeline = docs[0]
    ns = cluster.namespace
    if mode == "auto":
        try:
            verdict = lease.find_controller(cluster, ns, SYSTEM_NAMESPACE, LEASE_NAME)
        except ClusterError as exc:
            if exc.status == 0:
                raise  # the API server is unreachable: nothing else will work either
            # e.g. not allowed to read it: assume no controller
            verdict = lease.Verdict(False, f"cannot read the controller Lease ({exc})")
        mode = "cluster" if verdict.alive else "embedded"
        if mode == "embedded":
            click.echo(
                f"k8sco: {verdict.reason}; running this pipeline with a controller embedded "
                "in this command",
                err=True,
            )
    if mode == "embedded":
        # Before anything is created: the embedded controller writes pipelines/status, which
        # only the opt-in role k8sco-embedded-controller gives (manifests/30-rbac.yaml).
        access.check_embedded(cluster, ns)
    created = pipelines.create(cluster, pipeline)
    overflow.create_tree(cluster, created, root)  # a tree too large for the spec, if any
    click.echo(f"pipeline/{name} created in namespace {ns}")
    click.echo(f"  kubectl get pipeline {name} -n {ns}")
    click.echo(f"  kubectl get jobs -n {ns} -l k8sco.io/pipeline={name}")
    click.echo(f"  k8sco status {name} -n {ns}")
    if mode == "embedded":
        return _run_embedded(cluster, name)
    if wait:
        return follow(cluster, name)
    return 0


def _run_embedded(cluster: Any, name: str) -> int:
    from k8sco.kube.controller import Controller

    controller = Controller(cluster, cluster.namespace, only=name)
    thread = threading.Thread(
        target=controller.run, kwargs={"until_finished": True}, daemon=True, name="controller"
    )
    thread.start()
    try:
        return follow(cluster, name, alive=thread.is_alive)
    finally:
        controller.stop.set()
        thread.join(timeout=5)


def follow(cluster: Any, name: str, alive: Callable[[], bool] | None = None) -> int:
    """Show the pipeline's progress, following a watch on it, until it ends: 0 when it
    succeeded, 1 otherwise."""
    from k8sco.kube.follow import PipelineWatch
    from k8sco.lazy import signature
    from k8sco.local.progress import LiveProgress, PlainProgress, Progress

    graph: Graph | None = None
    graph_shape: Any = None
    progress: Progress | None = None
    seen: dict[str, NodeState] = {}
    recorded: dict[str, NodeState] = {}
    obj: dict[str, Any] | None = None
    watch = PipelineWatch(cluster, name)
    try:
        while True:
            # A change arrives at once; without one, the display still ticks every second
            # (running durations) and the embedded controller is checked.
            update = watch.next(timeout=1.0)
            if update is not None:
                obj = update
                # co.Lazy: an expansion grows the tree, and status.nodes is keyed by it.
                shape = signature(obj.get("status"))
                if graph is None or shape != graph_shape:
                    graph, graph_shape = _graph(cluster, obj), shape
                    if progress is None:
                        live = sys.stdout.isatty()
                        progress = LiveProgress(graph) if live else PlainProgress(sys.stdout.write)
                    elif hasattr(progress, "regraph"):
                        progress.regraph(graph)
                recorded = recorded_states(cluster, graph, obj)
            if obj is None or graph is None or progress is None:
                continue
            now = time.time()
            for path, rec in recorded.items():
                if seen.get(path) != rec and rec.state != seen.get(path, NodeState()).state:
                    progress.event(path, rec, now)
            seen = recorded
            ev = evaluate(graph, recorded, now)
            progress.tick(ev, recorded, now)
            phase = (obj.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed", "Killed", "Skipped"):
                break
            if alive is not None and not alive():
                raise ClusterError(f"the embedded controller stopped before {name} finished")
    finally:
        watch.close()
        if progress is not None:
            progress.close()
    status = obj.get("status") or {}
    click.echo(f"\npipeline/{name}: {status.get('phase')} ({status.get('progress', '')})")
    if status.get("message"):
        click.echo(f"  {status['message']}")
    return 0 if status.get("phase") in ("Succeeded", "Skipped") else 1


def _graph(cluster: Any, obj: Mapping[str, Any]) -> Graph:
    """The Pipeline's tree (from its tree ConfigMaps when too large for the spec)."""
    from k8sco.kube.overflow import load_tree

    return Graph.from_tree(load_tree(cluster, obj))


def recorded_states(cluster: Any, graph: Graph, obj: Mapping[str, Any]) -> dict[str, NodeState]:
    """The Exec states the controller recorded in the Pipeline's status (and in the status
    ConfigMaps it overflows into)."""
    from k8sco.kube.overflow import read_status
    from k8sco.render.pipeline import recorded_states as from_status

    return from_status(graph, read_status(cluster, obj).get("status") or {})


# --- list, status, logs ---------------------------------------------------------------------


@click.command("list")
@cluster_options
def list_(kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """List the pipelines in a namespace."""
    from k8sco.kube import pipelines

    cluster = connect(kubeconfig, context, namespace)
    rows = [("NAME", "PHASE", "PROGRESS", "AGE")]
    now = time.time()
    for obj in pipelines.list_all(cluster):
        status = obj.get("status") or {}
        rows.append(
            (
                obj["metadata"]["name"],
                status.get("phase", "Pending"),
                status.get("progress", ""),
                _age(obj["metadata"].get("creationTimestamp"), now),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        click.echo("   ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _age(stamp: str | None, now: float) -> str:
    from k8sco.local.progress import duration
    from k8sco.render.pipeline import parse_timestamp

    if not stamp:
        return ""
    return duration(max(now - parse_timestamp(stamp), 0.0))


def cluster_status(
    name: str,
    kubeconfig: str | None,
    context: str | None,
    ns: str | None,
    view: View = DEFAULT_VIEW,
) -> None:
    """Print a pipeline's tree with each node's state, duration and Job name: every node of
    a small tree, a summary and the running and failed branches of a large one, as ``view``
    says (:mod:`k8sco.cli.statusview`)."""
    from k8sco.kube import pipelines
    from k8sco.kube.overflow import load_tree
    from k8sco.reconcile.callbacks import attempt_name
    from k8sco.sequence import job_path

    cluster = connect(kubeconfig, context, ns)
    obj = pipelines.get(cluster, name)
    root = load_tree(cluster, obj)
    graph = Graph.from_tree(root)
    recorded = recorded_states(cluster, graph, obj)
    status = obj.get("status") or {}
    now = time.time()
    ev = evaluate(graph, recorded, now)

    def job_and_doc(i: int) -> str:  # asked for the listed nodes only
        path = graph.paths[i]
        text = ""
        if graph.kinds[i] == EXEC:  # a shared container's nodes: their group's Job
            # After retries by callback, the current attempt's Job (reconcile/callbacks.py).
            retried = recorded.get(path, NodeState()).retried
            text = f"  job/{attempt_name(name, job_path(root, path), retried)}"
        doc = root[path].params.get("doc")
        return text + output.doc_note(doc if isinstance(doc, str) else None)

    lines = [
        f"pipeline/{name} in {cluster.namespace}: {status.get('phase', 'Pending')} "
        f"({status.get('progress', '')})",
        *tree_lines(graph, ev.states, recorded, now, view, job_and_doc),
    ]
    if status.get("message"):
        lines.append(f"message: {status['message']}")
    click.echo("\n".join(lines))  # one write: a large tree's --all is 100,000 lines


def cluster_logs(
    name: str,
    node_path: str,
    follow_log: bool,
    kubeconfig: str | None,
    context: str | None,
    ns: str | None,
) -> None:
    """Print the output of a node's pod."""
    from k8sco.kube import pipelines
    from k8sco.kube.overflow import load_tree
    from k8sco.reconcile.callbacks import attempt_name
    from k8sco.sequence import job_path, member_index, member_lines, slice_log

    cluster = connect(kubeconfig, context, ns)
    obj = pipelines.get(cluster, name)
    root = load_tree(cluster, obj)
    graph = Graph.from_tree(root)
    path = "/" + node_path.strip("/")
    if path not in graph.index:
        known = ", ".join(graph.paths[1:6])
        raise UsageError(f"pipeline {name} has no node {node_path!r} (nodes: {known}, ...)")
    if graph.kinds[graph.index[path]] != EXEC:
        raise UsageError(
            f"{path} is a {'Serial' if graph.kinds[graph.index[path]] == 0 else 'Parallel'}; "
            "give the path of an Exec node"
        )
    # The Job of the node's current attempt (co.callback retries: reconcile/callbacks.py).
    retried = recorded_states(cluster, graph, obj).get(path, NodeState()).retried
    job = attempt_name(name, job_path(root, path), retried)
    index = member_index(root, path)  # a shared container's node: its part of the log
    pods = pipelines.pods_of_job(cluster, job)
    if not pods:
        printed, note = _print_archived_log(obj, job, index)
        if printed:
            return  # the pod is gone; its log was archived when it ended (kube/archive.py)
        state = recorded_states(cluster, graph, obj).get(path, NodeState()).state.value
        raise UsageError(
            f"{path} has no pod (node {state}): it has not started yet, or its pod is gone "
            f"(job/{job}){note}"
        )
    pod = pods[0]
    why = pipelines.not_started(pod)
    if why is not None and not follow_log:
        # No log to read: say why instead (the API answers 400 or nothing at all).
        raise RunError(f"{path} has no log: {why} (pod/{pod['metadata']['name']})")
    from k8sco.cli.markdown import LogWriter

    # Markdown blocks are rendered on a terminal, kept as text in a pipe.
    writer = LogWriter(sys.stdout.buffer, terminal=sys.stdout.isatty())
    try:
        lines = pipelines.logs(cluster, pod["metadata"]["name"], follow=follow_log)
        if index is not None and not follow_log:
            part = slice_log(b"".join(line + b"\n" for line in lines), index)
            if part is None:
                state = recorded_states(cluster, graph, obj).get(path, NodeState()).state.value
                raise UsageError(
                    f"{path} has no log: it has not started in its shared container "
                    f"(node {state}, job/{job})"
                )
            lines = iter(part.splitlines())
        for line in lines if index is None or not follow_log else member_lines(lines, index):
            writer.write(line + b"\n")
    finally:
        writer.close()


def _print_archived_log(
    pipeline: dict[str, Any], job: str, index: int | None = None
) -> tuple[bool, str]:
    """Print the Job's archived log from the Pipeline's data store (S3 settings and
    credentials from this shell's environment). Whether it did, and when it could not read
    the archive, why (to append to the one-line error that follows)."""
    from k8sco.cli.markdown import LogWriter
    from k8sco.errors import DataNotFound
    from k8sco.kube.archive import read_archived_log

    try:
        data = read_archived_log(pipeline, job, os.environ)
    except DataNotFound:
        return False, ""
    except K8scoError as exc:
        return False, f"; its archived log cannot be read: {exc}"
    if index is not None:  # a shared container's node (k8sco/sequence.py)
        from k8sco.sequence import slice_log

        data = slice_log(data, index) or b""
    writer = LogWriter(sys.stdout.buffer, terminal=sys.stdout.isatty())
    writer.write(data)
    writer.close()
    return True, ""


# --- rerun, stop, delete --------------------------------------------------------------------


# The commands are in k8sco.cli.runs, which sends them here when given a pipeline's name.


def cluster_rerun(
    name: str, node_path: str, kubeconfig: str | None, context: str | None, namespace: str | None
) -> None:
    """Run a pipeline's failed and killed nodes under NODE_PATH again (done nodes stay done)."""
    from k8sco.kube import pipelines

    cluster = connect(kubeconfig, context, namespace)
    path = "/" + node_path.strip("/")
    graph = _graph(cluster, pipelines.get(cluster, name))
    if path not in graph.index:
        raise UsageError(f"pipeline {name} has no node {node_path!r}")
    pipelines.rerun(cluster, name, path)
    click.echo(f"pipeline/{name}: rerunning failed and killed nodes under {path}")


def cluster_stop(
    name: str, kubeconfig: str | None, context: str | None, namespace: str | None
) -> None:
    """Kill a pipeline's running nodes; the pipeline and its record stay."""
    from k8sco.kube import pipelines

    pipelines.stop(connect(kubeconfig, context, namespace), name)
    click.echo(f"pipeline/{name}: stopping")


def cluster_delete(
    name: str, kubeconfig: str | None, context: str | None, namespace: str | None
) -> None:
    """Delete a pipeline, its Jobs and their pods."""
    from k8sco.kube import pipelines

    pipelines.delete(connect(kubeconfig, context, namespace), name)
    click.echo(f"pipeline/{name} deleted")


# --- controller -----------------------------------------------------------------------------


@click.command()
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="Default: in-cluster.")
@click.option("--context")
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    help="Watch these namespaces (comma-separated, or '*' for all). Default: "
    "$K8SCO_WATCH_NAMESPACES (set but empty: all), else the context's namespace.",
)
@click.option("-A", "--all-namespaces", is_flag=True, help="Watch every namespace.")
@click.option(
    "--lease-namespace", envvar="K8SCO_CONTROLLER_NAMESPACE", help="Where the Lease lives."
)
@click.option("--lease-name", envvar="K8SCO_LEASE_NAME", help="The Lease's name.")
@click.option("--identity", envvar="K8SCO_CONTROLLER_ID", help="This replica's Lease identity.")
@click.option("--health-port", envvar="K8SCO_HEALTH_PORT", type=int, help="Serve /healthz here.")
def controller(
    kubeconfig: str | None,
    context: str | None,
    namespaces: str | None,
    all_namespaces: bool,
    lease_namespace: str | None,
    lease_name: str | None,
    identity: str | None,
    health_port: int | None,
) -> None:
    """Run the k8sco controller: it runs every Pipeline in its namespaces."""
    from k8sco.kube import process

    process.run(
        process.ControllerSettings(
            kubeconfig=kubeconfig,
            context=context,
            namespaces=process.watched_namespaces(namespaces, all_namespaces, os.environ),
            lease_namespace=lease_namespace,
            lease_name=lease_name,
            identity=identity,
            health_port=health_port,
            log_level=process.log_level(),
        )
    )


COMMANDS = (apply, list_, controller)
