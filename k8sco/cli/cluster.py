"""The cluster commands: ``apply``, ``list``, ``rerun``, ``stop``, ``delete``, ``controller``,
and the cluster side of ``status`` and ``logs``.

Thin: each command parses its flags, calls :mod:`k8sco.kube.pipelines` (the only I/O) and
prints with pure formatting functions.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from k8sco.cli import output
from k8sco.engine import EXEC, Graph, NodeState, evaluate
from k8sco.errors import ClusterError, UsageError

F = TypeVar("F", bound=Callable[..., Any])
PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}
CONTROLLER_MODES = ("auto", "embedded", "cluster")


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
    from k8sco.kube import lease, pipelines
    from k8sco.render import names
    from k8sco.render.constants import LEASE_NAME, SYSTEM_NAMESPACE
    from k8sco.render.pipeline import render_all

    if name is None:
        name = f"{names.pipeline_name_from(func)}-{secrets.token_hex(3)}"
    names.check_pipeline_name(name)
    # Every Job is rendered (and so checked) before anything reaches the cluster.
    docs = render_all(root, name, cluster.namespace, image, image_refs=image_refs)
    pipeline = docs[0]
    if mode == "auto":
        try:
            found = lease.read(cluster, SYSTEM_NAMESPACE, LEASE_NAME)
        except ClusterError as exc:
            if exc.status == 0:
                raise  # the API server is unreachable: nothing else will work either
            found = None  # e.g. not allowed to read it: assume no controller
        mode = "cluster" if found is not None and lease.is_fresh(found, time.time()) else "embedded"
        if mode == "embedded":
            click.echo(
                "k8sco: no controller is running in the cluster (its Lease "
                f"{SYSTEM_NAMESPACE}/{LEASE_NAME} is not fresh); running this pipeline with a "
                "controller embedded in this command",
                err=True,
            )
    pipelines.create(cluster, pipeline)
    ns = cluster.namespace
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
    """Show the pipeline's progress until it ends: 0 when it succeeded, 1 otherwise."""
    from k8sco.kube import pipelines
    from k8sco.local.progress import LiveProgress, PlainProgress, Progress

    graph: Graph | None = None
    progress: Progress | None = None
    seen: dict[str, NodeState] = {}
    try:
        while True:
            obj = pipelines.get(cluster, name)
            if graph is None:
                graph = _graph(obj)
                live = sys.stdout.isatty()
                progress = LiveProgress(graph) if live else PlainProgress(sys.stdout.write)
            assert progress is not None
            recorded = recorded_states(graph, obj)
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
            time.sleep(0.5)
    finally:
        if progress is not None:
            progress.close()
    status = obj.get("status") or {}
    click.echo(f"\npipeline/{name}: {status.get('phase')} ({status.get('progress', '')})")
    if status.get("message"):
        click.echo(f"  {status['message']}")
    return 0 if status.get("phase") in ("Succeeded", "Skipped") else 1


def _graph(obj: Mapping[str, Any]) -> Graph:
    from k8sco.render.pipeline import decode_tree

    return Graph.from_tree(decode_tree(obj["spec"]))


def recorded_states(graph: Graph, obj: Mapping[str, Any]) -> dict[str, NodeState]:
    """The Exec states the controller recorded in the Pipeline's status."""
    from k8sco.render.pipeline import recorded_states as from_status

    return from_status(graph, obj.get("status") or {})


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


def cluster_status(name: str, kubeconfig: str | None, context: str | None, ns: str | None) -> None:
    """Print a pipeline's tree with each node's state, duration and Job name."""
    from k8sco.kube import pipelines
    from k8sco.render.names import job_name

    cluster = connect(kubeconfig, context, ns)
    obj = pipelines.get(cluster, name)
    graph = _graph(obj)
    recorded = recorded_states(graph, obj)
    status = obj.get("status") or {}
    now = time.time()
    ev = evaluate(graph, recorded, now)
    click.echo(
        f"pipeline/{name} in {cluster.namespace}: {status.get('phase', 'Pending')} "
        f"({status.get('progress', '')})"
    )
    lines = output.status_text(graph, ev.states, recorded, now).splitlines()
    for i, line in enumerate(lines):
        if graph.kinds[i] == EXEC:
            line = f"{line}  job/{job_name(name, graph.paths[i])}"
        click.echo(line)
    if status.get("message"):
        click.echo(f"message: {status['message']}")


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
    from k8sco.render.names import job_name

    cluster = connect(kubeconfig, context, ns)
    obj = pipelines.get(cluster, name)
    graph = _graph(obj)
    path = "/" + node_path.strip("/")
    if path not in graph.index:
        known = ", ".join(graph.paths[1:6])
        raise UsageError(f"pipeline {name} has no node {node_path!r} (nodes: {known}, ...)")
    if graph.kinds[graph.index[path]] != EXEC:
        raise UsageError(
            f"{path} is a {'Serial' if graph.kinds[graph.index[path]] == 0 else 'Parallel'}; "
            "give the path of an Exec node"
        )
    job = job_name(name, path)
    pods = pipelines.pods_of_job(cluster, job)
    if not pods:
        state = recorded_states(graph, obj).get(path, NodeState()).state.value
        raise UsageError(
            f"{path} has no pod (node {state}): it has not started yet, or its pod is gone "
            f"(job/{job})"
        )
    out = sys.stdout.buffer
    for line in pipelines.logs(cluster, pods[0]["metadata"]["name"], follow=follow_log):
        out.write(line + b"\n")
        out.flush()


# --- rerun, stop, delete --------------------------------------------------------------------


@click.command()
@click.argument("name")
@click.argument("node_path", default="/", required=False)
@cluster_options
def rerun(
    name: str, node_path: str, kubeconfig: str | None, context: str | None, namespace: str | None
) -> None:
    """Run a pipeline's failed and killed nodes under NODE_PATH again (done nodes stay done)."""
    from k8sco.kube import pipelines

    cluster = connect(kubeconfig, context, namespace)
    path = "/" + node_path.strip("/")
    graph = _graph(pipelines.get(cluster, name))
    if path not in graph.index:
        raise UsageError(f"pipeline {name} has no node {node_path!r}")
    pipelines.rerun(cluster, name, path)
    click.echo(f"pipeline/{name}: rerunning failed and killed nodes under {path}")


@click.command()
@click.argument("name")
@cluster_options
def stop(name: str, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """Kill a pipeline's running nodes; the pipeline and its record stay."""
    from k8sco.kube import pipelines

    pipelines.stop(connect(kubeconfig, context, namespace), name)
    click.echo(f"pipeline/{name}: stopping")


@click.command()
@click.argument("name")
@cluster_options
def delete(name: str, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
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
    envvar="K8SCO_WATCH_NAMESPACES",
    help="Watch these namespaces (comma-separated; default: the context's).",
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
    """Run the k8sco controller: it runs every Pipeline in its namespaces.

    In the Deployment an empty K8SCO_WATCH_NAMESPACES means every namespace.
    """
    import logging
    import signal

    from k8sco.kube.controller import Controller
    from k8sco.kube.lease import LeaderElector
    from k8sco.render.constants import LEASE_NAME, SYSTEM_NAMESPACE

    logging.basicConfig(
        level=os.environ.get("K8SCO_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    cluster = connect(kubeconfig, context, None)
    cluster.retries = 8
    wanted = [ns.strip() for ns in (namespaces or "").split(",") if ns.strip()]
    everywhere = all_namespaces or (namespaces is not None and not wanted)
    watched: list[str] | None = None if everywhere else (wanted or [cluster.namespace])
    me = identity or f"{socket.gethostname()}-{secrets.token_hex(3)}"
    elector = LeaderElector(
        cluster, lease_namespace or SYSTEM_NAMESPACE, lease_name or LEASE_NAME, me
    )
    ctl = Controller(cluster, watched)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: ctl.stop.set())
    if health_port is not None:
        _serve_health(health_port, ctl, elector)
    where = "all namespaces" if watched is None else "namespaces " + ", ".join(watched)
    click.echo(f"k8sco controller {me} watching {where}", err=True)
    ctl.run(elector=elector)


def _serve_health(port: int, ctl: Any, elector: Any) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = not ctl.stop.is_set()
            self.send_response(200 if ok else 503)
            self.end_headers()
            role = "leader" if elector.leading.is_set() else "standby"
            self.wfile.write(f"{'ok' if ok else 'stopping'} ({role})\n".encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("0.0.0.0", port), Health)
    threading.Thread(target=server.serve_forever, daemon=True, name="health").start()


COMMANDS = (apply, list_, rerun, stop, delete, controller)
