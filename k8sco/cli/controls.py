"""``k8sco reset``, ``skip``, ``unskip`` and ``modify``: the live controls of
:mod:`k8sco.controls`, for a local run in progress (through its run directory, as ``k8sco
rerun``) or, given a pipeline's name, for a Pipeline on the cluster (``spec.controls``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from k8sco import controls
from k8sco.cli.cluster import cluster_options, connect
from k8sco.controls import Control
from k8sco.errors import UsageError
from k8sco.local.rundir import RUNS_DIR

WHERE = """
\b
k8sco {name} /NODE_PATH ...             the latest local run in progress (or --run ID)
k8sco {name} PIPELINE /NODE_PATH ...    a pipeline on the cluster
"""


def carry_out(
    args: tuple[str, ...],
    run_id: str | None,
    make: Callable[[str], Control],
    cluster: tuple[str | None, str | None, str | None],
) -> str:
    """Send the control ``make(path)`` builds to a local run or a cluster's Pipeline, as
    ``args`` (``[PIPELINE] NODE_PATH``) and ``run_id`` say; the one-line answer."""
    if run_id is None and len(args) == 1 and not args[0].startswith("/"):
        raise UsageError(
            f"{args[0]!r}: a local NODE_PATH starts with '/'; for a cluster give PIPELINE NODE_PATH"
        )
    if run_id is not None or len(args) == 1:
        if len(args) != 1:
            raise UsageError("a local run takes one NODE_PATH (--run picks the run)")
        from k8sco.local import control

        ctl = make(args[0])  # what is wrong with the command line, first
        return control.live(control.running_run(RUNS_DIR, run_id), ctl)
    if len(args) != 2:
        raise UsageError("give PIPELINE NODE_PATH (a cluster) or NODE_PATH (a local run)")
    from k8sco.kube import pipelines

    name, path = args
    ctl = make(path)
    pipelines.control(connect(*cluster), name, ctl)
    return f"pipeline/{name}: {ctl.describe()}"


def _command(action: str, summary: str) -> Any:
    @click.command(name=action, help=summary + "\n" + WHERE.format(name=action))
    @click.argument("args", nargs=-1, required=True, metavar="[PIPELINE] NODE_PATH")
    @click.option("--run", "run_id", metavar="ID", help="A local run id (default: the latest).")
    @cluster_options
    def command(
        args: tuple[str, ...],
        run_id: str | None,
        kubeconfig: str | None,
        context: str | None,
        namespace: str | None,
    ) -> None:
        def make(path: str) -> Control:
            return controls.make(action, path)

        click.echo(carry_out(args, run_id, make, (kubeconfig, context, namespace)))

    return command


reset = _command(
    "reset",
    "Set a subtree back to pending: its nodes run again, done ones too (running ones are "
    "stopped first).",
)
skip = _command(
    "skip",
    "Skip a node and its subtree: it counts as done for its parent, so a Serial goes on "
    "past a skipped failure; a node that has not run does not run.",
)
unskip = _command(
    "unskip",
    "Undo a skip: the node shows its own state again (a failure fails its Serial again) and "
    "runs if it has not.",
)


@click.command()
@click.argument("args", nargs=-1, required=True, metavar="[PIPELINE] NODE_PATH")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="NAME=VALUE",
    help='A node parameter (cpu=2, mem=4, max_time=1h, env=\'{"A": "1"}\'...); repeatable.',
)
@click.option("--command", "command", metavar="CMD", help="A new shell command (Exec nodes).")
@click.option("--run", "run_id", metavar="ID", help="A local run id (default: the latest).")
@cluster_options
def modify(
    args: tuple[str, ...],
    sets: tuple[str, ...],
    command: str | None,
    run_id: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Change a node's parameters or command, for what starts from now on: a node that has
    not started yet, or the next retry, rerun or reset of one that has. Values are checked
    as when the tree is built; a bad one changes nothing.
    """
    values = controls.parse_sets(sets)

    def make(path: str) -> Control:
        return controls.make(controls.MODIFY, path, values, command)

    click.echo(carry_out(args, run_id, make, (kubeconfig, context, namespace)))


modify.help = (modify.help or "") + WHERE.format(name="modify")
