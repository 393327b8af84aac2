"""``k8sco run``, ``logs``, ``status``, ``rerun``, ``stop`` and ``delete``: local runs, what they
left on disk and the controls of a run in progress; given a pipeline's name, the last five act
on the cluster (k8sco.cli.cluster)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import click

from k8sco.cli import output
from k8sco.cli.cluster import (
    cluster_delete,
    cluster_logs,
    cluster_options,
    cluster_rerun,
    cluster_status,
    cluster_stop,
)
from k8sco.cli.markdown import LogWriter
from k8sco.cli.statusview import View
from k8sco.engine import EXEC, Graph, State, evaluate
from k8sco.errors import UsageError
from k8sco.local.rundir import RUNS_DIR, RunDir
from k8sco.tree import Node

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


def run_local(
    root: Node,
    file: str,
    func: str,
    args: Sequence[str],
    file_arg: str | None = None,
    plain: bool = False,
    docker: bool = False,
) -> int:
    """Run a tree on the local runner, show its progress and summary; the exit code.

    With ``docker``, every Exec node runs in its image (built first where it is a
    ``co.Image``, the build's output on stderr; a node naming none gets the pipeline's
    directory in a Python image). A failed build raises BuildError before anything runs."""
    from k8sco.local import runner
    from k8sco.local.progress import LiveProgress, PlainProgress, Progress

    code_root = os.path.dirname(os.path.abspath(file))
    images = None
    if docker:
        try:
            images = _build_images(root, code_root)
        except KeyboardInterrupt:  # nothing runs yet: as an interrupted run, without one
            click.echo("k8sco: interrupted while building the images", err=True)
            return runner.EXIT_INTERRUPTED
    spec = runner.RunSpec(
        root=root,
        images=images,
        code_root=code_root,
        meta={
            "file": os.path.abspath(file),
            "file_arg": file_arg or os.path.basename(file),
            "func": func,
            "args": list(args),
            "cwd": os.getcwd(),
        },
    )
    graph = Graph.from_tree(root)
    live = sys.stdout.isatty() and not plain
    progress: Progress = LiveProgress(graph) if live else PlainProgress(_write)
    result = runner.run(spec, progress)
    tails = {
        path: output.tail(_read(result.run.log_path(path)))
        for path, state in result.states.items()
        if state in (State.ERROR, State.KILLED) and path in result.run.logs
    }
    click.echo(
        "\n"
        + output.summary_text(
            result.run.run_id,
            result.graph,
            result.states,
            result.recorded,
            result.finished - result.started,
            result.interrupted,
            tails,
        )
    )
    return result.exit_code


def _build_images(root: Node, code_root: str) -> dict[str, str]:
    """Every Exec node's image reference, built where needed, before anything runs: a build
    that fails stops here with exit 2 (a BuildError)."""
    from k8sco.containers.build import Builder
    from k8sco.containers.nodes import local_default, node_images
    from k8sco.containers.progress import StreamDisplay

    with (
        StreamDisplay() as display,
        Builder.from_env(os.environ, display=display) as builder,
    ):
        return node_images(root, code_root, builder, default=local_default(code_root))


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _read(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - 64 * 1024, 0))  # the tail is all the summary shows
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


@click.command(context_settings=PASS_THROUGH)
@click.argument("target", metavar="FILE.py[:FUNC]")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[--param=value]...")
@click.option("--plain", is_flag=True, help="Plain lines instead of a live tree.")
@click.option(
    "--docker",
    is_flag=True,
    help="Run each Exec node in a container of its image (needs a Docker engine).",
)
def run(target: str, args: tuple[str, ...], plain: bool, docker: bool) -> None:
    """Run a pipeline on this machine, each Exec node a child process.

    State and logs go to .k8sco/runs/<run id>/ in the current directory. Exit status: 0 when
    the pipeline is done, 1 when it failed, 2 for bad input or a failed image build, 130 when
    interrupted.

    With --docker each Exec node runs in a container, as its Job would: the same command,
    its env (plus K8SCO_PIPELINE and K8SCO_NODE_PATH), the code root /app as working
    directory, uid 1000 (0 with run_as_root=True), cpu and mem as limits, and no network
    unless the node sets network=True. A co.Image is built first (a failed build exits 2
    before any node runs); a string image is used as it is, from the engine; a node with no
    image runs in co.Image(copy_dir="."), the pipeline's directory on the default base image
    (K8SCO_BASE_IMAGE). Containers are removed when their node ends, Ctrl-C included.
    """
    from k8sco import loading

    loaded = loading.load(target, args)
    path, _ = loading.split_target(target)
    code = run_local(loaded.root, loaded.file, loaded.func, loaded.args, path, plain, docker)
    sys.exit(code)


@click.command()
@click.argument("args", nargs=-1, required=True, metavar="[PIPELINE] NODE_PATH")
@click.option("--run", "run_id", metavar="ID", help="A local run id (default: the latest run).")
@click.option("-f", "--follow", is_flag=True, help="Cluster: follow the pod's log.")
@cluster_options
def logs(
    args: tuple[str, ...],
    run_id: str | None,
    follow: bool,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Print a node's output (stdout and stderr).

    \b
    k8sco logs NODE_PATH            from the latest local run (or --run ID)
    k8sco logs PIPELINE NODE_PATH   from the node's pod on the cluster

    Locally, for a Serial or Parallel, the logs of every Exec node below it.
    """
    if len(args) == 2:
        cluster_logs(args[0], args[1], follow, kubeconfig, context, namespace)
        return
    if len(args) != 1:
        raise UsageError("give NODE_PATH (a local run) or PIPELINE NODE_PATH (a cluster)")
    node_path = args[0]
    run = RunDir.open(RUNS_DIR, run_id)
    graph = Graph.from_tree(run.tree())
    path = "/" + node_path.strip("/") if node_path != "/" else "/"
    if path not in graph.index:
        raise UsageError(output.unknown_node_text(node_path, run.run_id, list(graph.paths[1:])))
    below = [graph.paths[i] for i in graph.subtree(path) if graph.kinds[i] == EXEC]
    out = sys.stdout.buffer
    terminal = sys.stdout.isatty()  # markdown blocks are rendered there, kept as text in a pipe
    for exec_path in below:
        log = run.log_path(exec_path)
        if len(below) > 1:
            out.write(f"==> {exec_path} <==\n".encode())
        try:
            data = log.read_bytes()
        except FileNotFoundError:
            if len(below) == 1:
                click.echo(f"k8sco: {exec_path} has not run in run {run.run_id}", err=True)
            continue
        writer = LogWriter(out, terminal=terminal)  # one per log: a block never spans two
        writer.write(data)
        writer.close()
    out.flush()


@click.command()
@click.argument("pipeline", required=False)
@click.option("--run", "run_id", metavar="ID", help="A local run id (default: the latest run).")
@click.option("--all", "all_nodes", is_flag=True, help="List every node, however many.")
@click.option(
    "--depth",
    type=click.IntRange(min=0),
    metavar="N",
    help="List every node down to N levels below the root.",
)
@click.option(
    "--expand",
    multiple=True,
    metavar="PATH",
    help="List every child of the node at PATH (repeatable).",
)
@cluster_options
def status(
    pipeline: str | None,
    run_id: str | None,
    all_nodes: bool,
    depth: int | None,
    expand: tuple[str, ...],
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Print a tree with each node's state, duration and, for failures, the reason.

    \b
    k8sco status            the latest local run (or --run ID)
    k8sco status PIPELINE   a pipeline on the cluster, with each node's Job

    A tree of more than 100 nodes is summarised: the counts per state, when it started and
    how long it ran, the root's children and the branches with running or failed nodes;
    --all, --depth and --expand list more.
    """
    view = View(all_nodes=all_nodes, depth=depth, expand=expand)
    if pipeline is not None:
        cluster_status(pipeline, kubeconfig, context, namespace, view)
        return
    run = RunDir.open(RUNS_DIR, run_id)
    root = run.tree()
    graph = Graph.from_tree(root)
    recorded, info = run.states()
    finished = info.get("finished")
    from k8sco.local import control

    # Not alive(pid) alone: a dead runner's pid may belong to another process by now.
    running = finished is None and control.runner_pid(run, info) is not None
    now = float(finished) if finished is not None else time.time()
    if finished is None and not running:
        now = float(info.get("updated") or now)
    ev = evaluate(graph, recorded, now)
    outcome = "interrupted" if info.get("interrupted") else ev.root.value
    header = f"run {run.run_id}: {output.target_line(run.meta)}  {outcome}"
    if finished is None:
        header += " (running)" if running else " (the runner is gone; the run did not finish)"
    click.echo(header)
    click.echo(output.status_text(graph, ev.states, recorded, now, output.node_docs(root), view))
    waiting = control.unanswered(run.path)
    if waiting:  # a request its runner never took (it ended, or died, first)
        click.echo(
            f"{len(waiting)} request(s) not taken by the runner: "
            + ", ".join(str(run.path / control.REQUESTS / w) for w in waiting)
        )


# --- controls: a local run in progress, or a cluster's Pipeline -----------------------------


@click.command()
@click.argument("args", nargs=-1, metavar="[PIPELINE] [NODE_PATH]")
@click.option("--run", "run_id", metavar="ID", help="A local run id (default: the latest running).")
@cluster_options
def rerun(
    args: tuple[str, ...],
    run_id: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Run the failed and killed nodes under NODE_PATH (default /) again; done nodes stay done.

    \b
    k8sco rerun [/NODE_PATH]             the latest local run in progress (or --run ID)
    k8sco rerun PIPELINE [/NODE_PATH]    a pipeline on the cluster

    A local NODE_PATH starts with '/' (a pipeline's name never has one). A local run that
    has finished is not run again: this says so and exits 2 (start a new one with k8sco run).
    """
    from k8sco.local import control

    local = run_id is not None or not args or (len(args) == 1 and "/" in args[0])
    if not local:
        if len(args) > 2:
            raise UsageError("give PIPELINE [NODE_PATH] (a cluster) or [/NODE_PATH] (a local run)")
        cluster_rerun(args[0], args[1] if len(args) == 2 else "/", kubeconfig, context, namespace)
        return
    if len(args) > 1:
        raise UsageError("a local run takes one NODE_PATH (--run picks the run)")
    run = control.running_run(RUNS_DIR, run_id)
    click.echo(control.rerun(run, args[0] if args else "/"))


@click.command()
@click.argument("pipeline", required=False)
@click.option("--run", "run_id", metavar="ID", help="A local run id (default: the latest running).")
@cluster_options
def stop(
    pipeline: str | None,
    run_id: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Kill the running nodes and end the run; the record stays.

    \b
    k8sco stop            the latest local run in progress (or --run ID): as Ctrl-C in it
    k8sco stop PIPELINE   a pipeline on the cluster
    """
    if pipeline is not None:
        if run_id is not None:
            raise UsageError("give PIPELINE (a cluster) or --run ID (a local run), not both")
        cluster_stop(pipeline, kubeconfig, context, namespace)
        return
    from k8sco.local import control

    click.echo(control.stop(control.running_run(RUNS_DIR, run_id)))


@click.command()
@click.argument("pipeline", required=False)
@click.option("--run", "run_id", metavar="ID", help="A local run to delete (stopped first).")
@cluster_options
def delete(
    pipeline: str | None,
    run_id: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Delete a pipeline, its Jobs and their pods; or, with --run ID, a local run's directory.

    \b
    k8sco delete PIPELINE    a pipeline on the cluster
    k8sco delete --run ID    .k8sco/runs/ID (a run in progress is stopped first)
    """
    if (pipeline is None) == (run_id is None):
        raise UsageError("give PIPELINE (a cluster) or --run ID (a local run)")
    if pipeline is not None:
        cluster_delete(pipeline, kubeconfig, context, namespace)
        return
    from k8sco.local import control

    assert run_id is not None
    click.echo(control.delete(RUNS_DIR, run_id))
