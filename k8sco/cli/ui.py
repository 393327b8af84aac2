"""``k8sco ui``: serve the web page for this directory's local runs and a cluster's Pipelines."""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from pathlib import Path

import click

from k8sco.errors import ClusterError, UsageError


@click.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="0: any free port.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to listen on; any but a loopback one requires the printed token.",
)
@click.option("--read-only", is_flag=True, help="Show everything, refuse every control.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="Path to the kubeconfig file.")
@click.option("--context", help="The kubeconfig context to use.")
@click.option(
    "-n",
    "--namespace",
    help="Namespace(s) whose Pipelines to show, comma-separated (default: the context's).",
)
@click.option("-A", "--all-namespaces", is_flag=True, help="Show the Pipelines of every namespace.")
@click.option(
    "--cluster/--no-cluster",
    "use_cluster",
    default=None,
    help="Show a cluster's Pipelines (default: when a kubeconfig or in-cluster account exists).",
)
@click.option("--no-local", is_flag=True, help="Do not show the local runs of this directory.")
def ui(
    port: int,
    host: str,
    read_only: bool,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    all_namespaces: bool,
    use_cluster: bool | None,
    no_local: bool,
) -> None:
    """Serve a web page with every pipeline as a live tree, its logs and controls.

    The local runs of the current directory (.k8sco/runs/) and, with a kubeconfig, the
    Pipelines of the chosen namespaces, read and controlled with your own credentials.
    Prints the URL; Ctrl-C stops it.
    """
    from k8sco.local.rundir import RUNS_DIR
    from k8sco.ui import server, sources

    if all_namespaces and namespace:
        raise UsageError("give -n NAMESPACE or -A, not both")
    explicit = bool(kubeconfig or context or namespace or all_namespaces) or use_cluster is True
    if use_cluster is None:
        use_cluster = explicit or _kubeconfig_exists()
    cluster_source = None
    cluster_error = None
    if use_cluster:
        from k8sco.cli.cluster import connect

        try:
            cluster = connect(kubeconfig, context, None)
        except ClusterError as exc:
            if explicit:
                raise
            cluster_error = str(exc)  # a default kubeconfig that does not load: local only
        else:
            spaces = (
                None
                if all_namespaces
                else [n.strip() for n in (namespace or cluster.namespace).split(",") if n.strip()]
            )
            cluster_source = sources.ClusterPipelines(cluster, spaces)
    local = None if no_local else sources.LocalRuns(Path(RUNS_DIR))
    access = None if server.is_loopback(host) else secrets.token_urlsafe(18)
    settings = server.Settings(
        local=local,
        cluster=cluster_source,
        read_only=read_only,
        host=host,
        access_token=access,
        cluster_error=cluster_error,
    )
    try:
        srv = server.UIServer((host, port), settings)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    if cluster_error:
        click.echo(f"k8sco: no cluster ({cluster_error}); showing local runs only", err=True)
    shown = ["local runs of " + os.getcwd()] if local else []
    if cluster_source is not None:
        where = (
            "all namespaces"
            if cluster_source.namespaces is None
            else ", ".join(cluster_source.namespaces)
        )
        shown.append(f"Pipelines in {where} at {cluster_source.cluster.host}")
    click.echo(f"k8sco ui: {'; '.join(shown) or 'nothing to show'}")
    if read_only:
        click.echo("read-only: controls are refused")
    # Ctrl-C and SIGTERM (a pod's stop) set a flag that the main thread looks at. Python
    # raises no KeyboardInterrupt when SIGINT came ignored from the parent (a background job
    # of a script): the command ran on. A plain list, not an Event: the handler runs in the
    # main thread, which may hold the Event's lock at that moment.
    stopping: list[int] = []
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda signum, _frame: stopping.append(signum))
    click.echo(f"open {srv.url}", color=False)
    thread = threading.Thread(target=srv.serve_forever, daemon=True, name="k8sco-ui")
    thread.start()
    try:
        while not stopping:
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        srv.shutdown()
        srv.server_close()


def _kubeconfig_exists() -> bool:
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return True
    paths = os.environ.get("KUBECONFIG", "")
    candidates = [p for p in paths.split(os.pathsep) if p] or [os.path.expanduser("~/.kube/config")]
    return any(os.path.isfile(p) for p in candidates)


COMMANDS = (ui,)
