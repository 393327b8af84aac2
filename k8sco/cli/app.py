"""The ``k8sco`` command group. Each command group lives in its own module and is added here.

Every k8sco error a command raises is printed as one line, ``k8sco: <message>``, on stderr
and ends the process with the error's exit code (2 for bad input); only when the user's own
code raised does its traceback follow. A command line that does not parse (a missing
argument, an unknown option) is one such line too, exit 2.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from k8sco import __version__
from k8sco.cli import output
from k8sco.errors import K8scoError

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


def report(err: K8scoError) -> None:
    """Print a k8sco error the way every command does."""
    from k8sco.loading import user_traceback

    cause = err.__cause__
    trace = None
    if cause is not None and not isinstance(cause, K8scoError):
        trace = user_traceback(cause)
    click.echo(output.error_text(err, trace), err=True)


class K8scoGroup(click.Group):
    """A click group that turns k8sco errors into ``k8sco: <message>`` and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except K8scoError as err:
            report(err)
            ctx.exit(err.exit_code)
        except click.UsageError as err:  # a command line click cannot parse: one line too
            _usage_error(err, ctx)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as err:
            _usage_error(err, ctx)


def _usage_error(err: click.UsageError, ctx: click.Context) -> NoReturn:
    where = err.ctx.command_path if err.ctx is not None else ctx.command_path
    message = " ".join(err.format_message().split()).rstrip(".")
    click.echo(f"k8sco: {message} (see '{where} --help')", err=True)
    ctx.exit(err.exit_code)


@click.group(cls=K8scoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="k8sco", message="%(prog)s %(version)s")
def cli() -> None:
    """k8sco: pipelines as Python trees of Serial, Parallel and Exec nodes."""


@cli.command(
    context_settings={**PASS_THROUGH, "help_option_names": []},
    short_help="Run a native function: FILE.py:FUNC --param=value ...",
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def call(args: tuple[str, ...]) -> None:
    """Run a native function as a node does: k8sco call FILE.py:FUNC --param=value ..."""
    from k8sco.dispatch import main as dispatch  # the dispatcher's own light import path

    code = dispatch(list(args))
    sys.exit(code or 0)


# Each command group lives in its own module under k8sco.cli; adding one is one line here.
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("k8sco.cli.runs", ("run", "logs", "status", "rerun", "stop", "delete")),
    ("k8sco.cli.render", ("render",)),
    ("k8sco.cli.build", ("build",)),
    ("k8sco.cli.cluster", ("apply", "list_", "controller")),
    ("k8sco.cli.secrets", ("secrets_group",)),
    ("k8sco.cli.data", ("data",)),
    ("k8sco.cli.ui", ("ui",)),
    ("k8sco.cli.controls", ("reset", "skip", "unskip", "modify")),
    ("k8sco.cli.debug", ("debug",)),
)


def _add_commands() -> None:
    for module_name, names in COMMANDS:
        module = importlib.import_module(module_name)
        for name in names:
            cli.add_command(getattr(module, name))


_add_commands()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``k8sco`` command group (exits the process)."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="k8sco")
