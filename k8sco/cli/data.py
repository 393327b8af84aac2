"""``k8sco data pipeline|user METHOD ...`` and Conducto's ``conducto-data-pipeline`` /
``conducto-data-user`` commands, with Conducto's command line (``conducto.glue.method``):

    conducto-data-pipeline puts results/a.json < a.json
    conducto-data-pipeline gets results/a.json --byte-range=0,100
    conducto-data-user list --prefix=models/
    k8sco data pipeline exists results/a.json --run 20261130-050000-1a2b

The method comes first; its parameters follow, positionally or as ``--name=value`` /
``--name value`` (``_`` or ``-`` in names), booleans as ``--flag`` / ``--no-flag``. A
result is printed as JSON (``exists`` prints ``true``/``false``, ``list`` a list), as
Conducto's printer did; ``gets`` writes the raw bytes and ``puts`` reads standard input.

Which store: inside a node, the node's (``K8SCO_DATA_PIPELINE`` / ``K8SCO_DATA_USER``); in
a shell, the pipeline scope is the latest local run's ``data/`` (``--run ID``, or Conducto's
``--id ID``), the user scope ``~/.k8sco/data``; ``--store URL`` names any store (for a
cluster's: ``s3://bucket/prefix/<namespace>/pipelines/<pipeline uid>/data``, with the
S3 settings in the environment). ``--local`` and ``--profile`` are Conducto's and ignored.

Console scripts: ``k8sco-data-pipeline`` / ``k8sco-data-user`` always, and
``conducto-data-pipeline`` / ``conducto-data-user`` for shell commands written for
Conducto. pip gives a script name to the last package installed that declares it, so in
an environment that also holds the ``conducto`` package, whichever of the two was installed
last owns those two names; ours hands over to Conducto's when it is not in a k8sco node
and ``conducto`` is importable (see :func:`_conducto_fallback`).
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from k8sco.data import api
from k8sco.errors import DataError, K8scoError, UsageError

SCOPES = {"pipeline": api.pipeline, "user": api.user}


def _methods(cls: type[api._Data]) -> dict[str, Callable[..., Any]]:
    return {
        "delete": cls.delete,
        "exists": cls.exists,
        "get": cls.get,
        "gets": _gets(cls),
        "list": cls.list,
        "put": cls.put,
        "puts": _puts(cls),
        "size": cls.size,
        "url": cls.url,
        "cache-exists": cls.cache_exists,
        "clear-cache": cls.clear_cache,
        "save-cache": cls.save_cache,
        "restore-cache": cls.restore_cache,
    }


def _gets(cls: type[api._Data]) -> Callable[..., None]:
    def gets(name: str, byte_range: str | None = None) -> None:
        sys.stdout.buffer.write(cls.gets(name, byte_range=_parse_range(byte_range)))
        sys.stdout.buffer.flush()

    return gets


def _puts(cls: type[api._Data]) -> Callable[..., None]:
    def puts(name: str) -> None:
        cls.puts(name, sys.stdin.buffer.read())

    return puts


def _parse_range(text: str | None) -> tuple[int, int] | None:
    """``0,100`` or ``[0, 100]`` (Conducto's List[int] on a command line)."""
    if text is None:
        return None
    parts = [p for p in text.strip().strip("[]").replace(" ", "").split(",") if p]
    try:
        begin, end = (int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--byte-range={text!r}: give BEGIN,END (bytes [BEGIN, END))") from None
    return begin, end


_BOOL_TRUE = {"1", "true", "t", "y", "yes", "on"}
_BOOL_FALSE = {"0", "false", "f", "n", "no", "off", "none", ""}


def parse(argv: Sequence[str]) -> tuple[str, list[str], dict[str, str | bool]]:
    """Conducto's command line: the method, positional values, ``--name[=value]`` options
    (``--no-name`` for False). A ``--name`` without ``=`` takes the next word unless the
    next word is another option, in which case it is a flag."""
    if not argv:
        raise UsageError("give a method: " + ", ".join(_methods(api.user)))
    method, rest = argv[0], list(argv[1:])
    args: list[str] = []
    options: dict[str, str | bool] = {}
    i = 0
    while i < len(rest):
        word = rest[i]
        if word.startswith("--") and len(word) > 2:
            key, eq, value = word[2:].partition("=")
            key = key.replace("-", "_")
            if eq:
                options[key] = value
            elif key.startswith("no_"):
                options[key[3:]] = False
            elif key in _FLAGS or i + 1 >= len(rest) or rest[i + 1].startswith("--"):
                options[key] = True
            else:
                options[key] = rest[i + 1]
                i += 1
        else:
            args.append(word)
        i += 1
    return method, args, options


_FLAGS = {"recursive", "path_only", "local"}
_STORE_OPTIONS = ("store", "run", "id", "local", "profile")


def _coerce(fn: Callable[..., Any], name: str, value: str | bool) -> Any:
    """A command-line value for ``fn``'s parameter ``name``: booleans by the default."""
    param = inspect.signature(fn).parameters.get(name)
    if param is not None and isinstance(param.default, bool) and isinstance(value, str):
        low = value.lower()
        if low in _BOOL_TRUE | _BOOL_FALSE:
            return low in _BOOL_TRUE
        raise UsageError(f"--{name.replace('_', '-')}={value!r}: give true or false")
    return value


def scope_url(scope: str, options: dict[str, str | bool]) -> str:
    """The store URL of ``scope`` for a command run with ``options``."""
    store = options.get("store")
    if isinstance(store, str) and store:
        return store
    run_id = options.get("run") or options.get("id")
    if scope == "user":
        return os.environ.get(api.ENV_USER) or str(api.user_home() / "data")
    if not run_id and os.environ.get(api.ENV_PIPELINE):
        return os.environ[api.ENV_PIPELINE]
    from k8sco.local.rundir import RUNS_DIR, RunDir

    run = RunDir.open(RUNS_DIR, run_id if isinstance(run_id, str) else None)
    return str((run.path / "data").absolute())


def run_method(scope: str, argv: Sequence[str]) -> Any:
    """Carry out one command; the method's result (None for gets/puts)."""
    method, args, options = parse(argv)
    url = scope_url(scope, options)
    bound = type(scope, (SCOPES[scope],), {"_url": classmethod(lambda cls: url)})
    methods = _methods(bound)
    fn = methods.get(method)
    if fn is None:
        raise UsageError(f"{method!r} is not a method; use one of: {', '.join(methods)}")
    kwargs = {k: _coerce(fn, k, v) for k, v in options.items() if k not in _STORE_OPTIONS}
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError as exc:
        raise UsageError(f"{method}: {exc}") from None
    return fn(*args, **kwargs)


def _print(value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bytes):
        value = value.decode()
    click.echo(json.dumps(value))


def _run(scope: str, argv: Sequence[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        click.echo(__doc__)
        return 0
    try:
        _print(run_method(scope, argv))
    except K8scoError as exc:
        click.echo(f"k8sco: {exc}", err=True)
        return 1 if isinstance(exc, DataError) else exc.exit_code
    except (OSError, ValueError) as exc:
        click.echo(f"k8sco: {exc}", err=True)
        return 1
    return 0


def _conducto_fallback(scope: str) -> Callable[[], Any] | None:
    """Conducto's own command when we are not in a k8sco node (no ``K8SCO_PIPELINE``) and the
    ``conducto`` package is installed: a shell of a Conducto user keeps working."""
    if os.environ.get("K8SCO_PIPELINE") or os.environ.get("K8SCO_DATA_PIPELINE"):
        return None
    try:
        from conducto.shared import data as conducto_data  # type: ignore[import-not-found]
    except ImportError:
        return None
    main: Callable[[], Any] = getattr(conducto_data, scope)._main
    return main


def pipeline_main() -> None:
    """``k8sco-data-pipeline``."""
    sys.exit(_run("pipeline", sys.argv[1:]))


def user_main() -> None:
    """``k8sco-data-user``."""
    sys.exit(_run("user", sys.argv[1:]))


def conducto_pipeline_main() -> None:
    """``conducto-data-pipeline``."""
    fallback = _conducto_fallback("pipeline")
    if fallback is not None:
        fallback()
        return
    pipeline_main()


def conducto_user_main() -> None:
    """``conducto-data-user``."""
    fallback = _conducto_fallback("user")
    if fallback is not None:
        fallback()
        return
    user_main()


_PASS = {"ignore_unknown_options": True, "allow_interspersed_args": False}


@click.group(name="data")
def data() -> None:
    """co.data from a shell: k8sco data pipeline|user METHOD [ARGS] [--name=value].

    \b
    Methods: gets, puts, get, put, delete, exists, size, list, url, save-cache,
    restore-cache, cache-exists, clear-cache (Conducto's conducto-data-* syntax).
    --run ID: a local run's pipeline data (default: the latest run).
    --store URL: any store (a path, file:///path, s3://bucket/prefix).
    """


@data.command(context_settings={**_PASS, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def pipeline(args: tuple[str, ...]) -> None:
    """The pipeline's data (a local run's, or --store URL)."""
    sys.exit(_run("pipeline", args))


@data.command(context_settings={**_PASS, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def user(args: tuple[str, ...]) -> None:
    """The user's data (~/.k8sco/data, or --store URL)."""
    sys.exit(_run("user", args))
