"""``k8sco call TARGET [--name=value ...]``: run one native function, as a node does.

``TARGET`` is ``FILE.py:FUNC`` (the file relative to the current directory, the code root)
or ``package.module:FUNC``. The arguments are decoded by the function's type hints
(:mod:`k8sco.native` gives the rules), the function is called (and awaited, if it is a
coroutine function), and a value it returns is printed: JSON for a dict, list or tuple,
``str()`` otherwise.

Exit codes: 0 when the function returns; 1 with its traceback when it raises; 2 with one
line on stderr for bad input (no such file, module or function, an unknown parameter, a
value that does not decode). When the module raises while being imported, its traceback
follows that line.

This command line is a stable contract: a node's Job carries it as rendered by the k8sco
that applied the pipeline, and the image may hold an older or newer k8sco. Its form and the
encoding of every kind of value are pinned by tests/golden/call-contract.json
(tests/render/test_call_contract.py says what may change: forms may be added, none removed).

This runs once per node, so it imports only what it needs: no click, rich, yaml,
kubernetes or docker (``k8sco._entry`` comes here before the CLI is imported).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from k8sco import cmdline, modules, native, tree
from k8sco.errors import K8scoError, LoadError, UsageError

USAGE = """\
usage: k8sco call FILE.py:FUNC [--name=value ...]
       k8sco call package.module:FUNC [--name=value ...]

Runs one function the way a node runs it. FILE is relative to the current directory.
Arguments: --name=value or --name value, --flag/--no-flag for booleans, a bare --name
for None, dashes for underscores (--max-n), bare values for parameters in order.
`k8sco call FILE.py:FUNC --help` lists the function's parameters."""

_PREFIX = "k8sco call: "


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``k8sco call`` with ``argv`` (the arguments after ``call``); the exit code."""
    args = list(sys.argv[2:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    target, rest = args[0], args[1:]
    token = tree.set_code_root(os.getcwd())  # nodes the function builds are relative to it
    try:
        try:
            func = resolve(target)
            if _wants_help(rest, func):
                print(help_text(target, func))
                return 0
            kwargs = cmdline.parse_arguments(func, rest, label=target)
        except UsageError as exc:
            _report(exc)
            return exc.exit_code
        return _call(func, kwargs)
    finally:
        tree.reset_code_root(token)


def resolve(target: str) -> Callable[..., Any]:
    """The function ``FILE.py:FUNC`` or ``package.module:FUNC`` names, imported.

    Both the current directory and, for a file, the file's directory go on ``sys.path``,
    so the module can import its neighbours and the rest of the code root.
    """
    where, sep, name = target.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise LoadError(f"{target!r} is not FILE.py:FUNC or package.module:FUNC")
    modules.add_to_path(os.getcwd())
    is_file = where.endswith(".py") or "/" in where or os.sep in where
    module = modules.import_file(where) if is_file else modules.import_module(where)
    func = getattr(module, name, None)
    if func is None:
        defined = ", ".join(_functions(module)) or "no public functions"
        raise LoadError(f"{where}: no function {name!r} (it defines {defined})")
    try:
        native.signature(func)
    except native.NotEncodable as exc:
        raise LoadError(f"{target}: {exc}") from None
    return func  # type: ignore[no-any-return]


def _functions(module: Any) -> list[str]:
    return sorted(
        n
        for n, v in vars(module).items()
        if callable(v) and not n.startswith("_") and getattr(v, "__module__", "") == module.__name__
    )


def _call(func: Callable[..., Any], kwargs: dict[str, Any]) -> int:
    try:
        result = func(**kwargs)
        if isinstance(result, Coroutine):
            import asyncio  # only async functions pay for it

            result = asyncio.run(result)
    except Exception as exc:
        _print_traceback(exc)
        return 1
    if os.environ.get("K8SCO_LAZY") == "1":  # a co.Lazy Generate node: print the tree
        from k8sco import lazy

        problem = lazy.emit(result)
        if problem is not None:
            print(_PREFIX + problem, file=sys.stderr)
            return 1
        return 0
    if result is not None:
        print(_result_text(result))
    return 0


def _result_text(result: object) -> str:
    if isinstance(result, (dict, list, tuple)):
        import json

        return json.dumps(result, ensure_ascii=False, default=str)
    return str(result)


def _report(exc: K8scoError) -> None:
    print(_PREFIX + " ".join(str(exc).split()), file=sys.stderr)
    cause = exc.__cause__
    if cause is not None and not isinstance(cause, K8scoError):
        _print_traceback(cause)  # the user's module raised while being imported


def _print_traceback(exc: BaseException) -> None:
    """The exception's traceback from the user's first frame on (k8sco's, importlib's and
    asyncio's frames above it say nothing to the user)."""
    import traceback

    tb = exc.__traceback__
    while tb is not None and _is_internal(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb, file=sys.stderr)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_ASYNCIO_DIR = os.sep + "asyncio" + os.sep


def _is_internal(filename: str) -> bool:
    return (
        filename.startswith("<frozen")
        or filename.startswith(_PACKAGE_DIR)
        or _ASYNCIO_DIR in filename
    )


# --- help ---------------------------------------------------------------------------------


def _wants_help(args: Sequence[str], func: Callable[..., Any]) -> bool:
    options = args[: args.index("--")] if "--" in args else args
    takes_help = "help" in native.signature(func)[1]  # then --help is that parameter
    return "-h" in options or ("--help" in options and not takes_help)


def help_text(target: str, func: Callable[..., Any]) -> str:
    """What ``k8sco call TARGET --help`` prints: the call, the docstring, the parameters."""
    import inspect

    sig, hints = native.signature(func)
    rows: list[tuple[str, str]] = []
    usage = [f"usage: k8sco call {target}"]
    for name, param in sig.parameters.items():
        hint = hints[name]
        flag = f"--{name}" if native.allows_bool(hint) else f"--{name}=<{native.describe(hint)}>"
        usage.append(flag if param.default is param.empty else f"[{flag}]")
        left = f"--{name}, --no-{name}" if native.allows_bool(hint) else flag
        notes = [native.describe(hint)]
        if param.default is param.empty:
            notes.append("required")
        else:
            notes.append(f"default {param.default!r}")
        if native.allows_none(hint) and not native.allows_bool(hint):
            notes.append(f"a bare --{name} is None")
        if "_" in name:
            notes.append(f"also --{name.replace('_', '-')}")
        rows.append((left, ", ".join(notes)))
    lines = [" ".join(usage)]
    doc = inspect.getdoc(func)
    if doc:
        lines += ["", doc]
    if rows:
        width = min(max(len(left) for left, _ in rows), 32)
        lines += ["", "parameters:"]
        lines += [f"  {left.ljust(width)}  {notes}" for left, notes in rows]
    return "\n".join(lines)
