"""``co.main(default=...)``: a pipeline file as its own command line (Conducto's model).

::

    python pipeline.py                      print the default pipeline's tree
    python pipeline.py --local              run it on this machine (as `k8sco run`)
    python pipeline.py FUNC --n=50 --local  another function, with arguments
    python pipeline.py -h                   list the functions

A function annotated to return a node (``-> co.Serial``) is a pipeline; any other public
function of the file is simply called with its decoded arguments and its result printed.
"""

from __future__ import annotations

import inspect
import os
import pprint
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

from k8sco import loading, native, tree
from k8sco.errors import K8scoError, PipelineTypeError, UsageError

MAIN_KWARGS = ("env", "cpu", "mem", "gpu", "image", "requires_docker")  # Conducto's co.main
# With --apply, these k8sco apply options may follow (as --option=value, or --wait).
APPLY_OPTIONS = ("kubeconfig", "context", "namespace", "name", "image", "controller")
MODES = "[--local | --apply [--wait] [--name=N] [--image=I] [--namespace=NS] ...]"
# Conducto's launch flags (conducto/pipeline.py main): these only steer its web app and
# manager (start at once, open a browser, sleep when done, its shell UI), which k8sco has
# not: --local and --apply start at once and end with the run. Accepted so that Conducto's
# documented `python pipeline.py --local --run` works as written.
CONDUCTO_IGNORED = ("--run", "--app", "--no-app", "--sleep-when-done", "--shell", "--no-shell")
# Conducto's flags with no k8sco meaning, and what to use instead.
CONDUCTO_REFUSED = {
    "--cloud": "k8sco has no cloud service; use --apply to run on a Kubernetes cluster",
    "--public": "k8sco has no web app to share; `k8sco status` shows the run",
    "--run-at": "k8sco starts a pipeline when it is launched; schedule the launch instead",
    "--pipeline_id": "k8sco cannot replace a live pipeline's tree; `k8sco rerun` reruns nodes",
}


def main(default: Any = None, **kwargs: Any) -> None:
    """The entry point behind ``co.main``; exits the process unless all went well."""
    if loading.importing():
        return  # k8sco is importing this file to load a pipeline: the CLI is not ours
    from k8sco.cli.app import report

    try:
        code = run_main(default, kwargs, sys.argv[1:], _module_of(default))
    except K8scoError as err:
        report(err)
        code = err.exit_code
    if code:
        sys.exit(code)


def _module_of(default: Any) -> types.ModuleType:
    name = getattr(default, "__module__", None) or "__main__"
    return sys.modules.get(name) or sys.modules["__main__"]


def run_main(
    default: Any, kwargs: dict[str, Any], argv: Sequence[str], module: types.ModuleType
) -> int:
    """``co.main`` without the process around it: returns the exit code."""
    unknown = sorted(set(kwargs) - set(MAIN_KWARGS))
    if unknown:
        raise PipelineTypeError(
            f"co.main() got unknown keyword(s) {', '.join(unknown)}; it takes "
            + ", ".join(("default", *MAIN_KWARGS))
        )
    if default is not None and not callable(default):
        raise PipelineTypeError(f"co.main(default=...) must be a function, got {default!r}")
    file = os.path.abspath(getattr(module, "__file__", None) or sys.argv[0])
    funcs = loading.functions(module)
    args = list(argv)
    local = _take_flag(args, "--local")
    _take_conducto_flags(args, kwargs)
    apply = _take_apply(args)
    if local and apply is not None:
        raise UsageError("give --local or --apply, not both")
    want_help = _take_flag(args, "-h") | _take_flag(args, "--help")
    name: str | None = None
    if args and not args[0].startswith("-"):
        name, args = args[0], args[1:]
    if want_help:  # about the function named, or else about them all
        print(help_text(os.path.basename(file), funcs, default, name))
        return 0
    if name is None and default is not None:
        name = default.__name__
    if name is None:
        pipelines = [n for n, f in funcs.items() if loading.returns_node(f)]
        if len(pipelines) != 1:
            print(help_text(os.path.basename(file), funcs, default, None), file=sys.stderr)
            return 2
        name = pipelines[0]
    func = funcs.get(name)
    if func is None and default is not None and default.__name__ == name:
        func = default  # a default defined elsewhere than the file
    if func is None:
        raise UsageError(
            f"{os.path.basename(file)}: no function {name!r}; functions: "
            + (", ".join(funcs) or "none")
        )
    return _call(func, name, args, file, local, kwargs, apply)


def _take_conducto_flags(args: list[str], kwargs: dict[str, Any]) -> None:
    """Conducto's launch flags: the ignored ones removed, ``--k8s`` as ``--apply``, and
    ``--title=``/``--doc=`` into ``kwargs`` (they set the root's); a refused one raises."""
    for flag in CONDUCTO_IGNORED:
        _take_flag(args, flag)
    for flag, instead in CONDUCTO_REFUSED.items():
        if any(a == flag or a.startswith(flag + "=") for a in args):
            raise UsageError(f"{flag} is Conducto's and has no meaning here: {instead}")
    if _take_flag(args, "--k8s"):  # Conducto's own (experimental) Kubernetes mode
        args.append("--apply")
    for key in ("title", "doc"):
        found = [a for a in args if a.startswith(f"--{key}=")]
        for arg in found:
            args.remove(arg)
        if found:
            kwargs[key] = found[-1][len(key) + 3 :]


def _take_apply(args: list[str]) -> dict[str, Any] | None:
    """Remove ``--apply`` and its options from ``args``; None when it is not there."""
    if not _take_flag(args, "--apply"):
        return None
    options: dict[str, Any] = {"wait": _take_flag(args, "--wait")}
    for key in APPLY_OPTIONS:
        prefix = f"--{key}="
        found = [a for a in args if a.startswith(prefix)]
        for arg in found:
            args.remove(arg)
        options[key] = found[-1][len(prefix) :] if found else None
    return options


def _call(
    func: Callable[..., Any],
    name: str,
    args: list[str],
    file: str,
    local: bool,
    kwargs: dict[str, Any],
    apply: dict[str, Any] | None = None,
) -> int:
    label = f"{os.path.basename(file)}:{name}"
    is_pipeline = loading.returns_node(func)
    if (local or apply is not None) and not is_pipeline:
        flag = "--local" if local else "--apply"
        raise UsageError(f"{label} is not a pipeline function (-> co.Serial etc.); drop {flag}")
    decoded = loading.decode_args(func, args, label)
    token = tree.set_code_root(os.path.dirname(file))
    try:
        result = loading.call_user(func, decoded, label + "()")
    finally:
        tree.reset_code_root(token)
    if not is_pipeline:
        if result is not None:
            print(result if isinstance(result, str) else pprint.pformat(result))
        return 0
    if not isinstance(result, tree.Node):
        raise UsageError(f"{label}() returned {type(result).__name__}, not a node")
    apply_defaults(result, kwargs)
    if apply is not None:
        from k8sco.cli.cluster import apply_tree, connect

        cluster = connect(apply["kubeconfig"], apply["context"], apply["namespace"])
        mode = apply["controller"] or "auto"
        return apply_tree(cluster, result, name, apply["name"], apply["image"], apply["wait"], mode)
    if not local:
        print(result)
        if os.environ.get("K8SCO_LAZY") == "1":  # run by a co.lazy_shell Generate node
            from k8sco import lazy

            problem = lazy.emit(result)
            if problem is not None:
                print(f"k8sco: {problem}", file=sys.stderr)
                return 1
        return 0
    from k8sco.cli.runs import run_local

    return run_local(result, file, name, args)


def apply_defaults(root: tree.Node, kwargs: dict[str, Any]) -> None:
    """``co.main``'s env, cpu, mem, gpu, image and requires_docker apply to the root, where
    the root does not set its own (its own env keys win over ``co.main``'s)."""
    for key in (*MAIN_KWARGS, "title", "doc"):
        value = kwargs.get(key)
        if value is None:
            continue
        if key in ("title", "doc"):  # from Conducto's --title=/--doc= flags: they win
            root.set(**{key: value})
        elif key == "env":
            root.set(env={**value, **root.params.get("env", {})})
        elif key not in root.params:
            root.set(**{key: value})


def _take_flag(args: list[str], flag: str) -> bool:
    found = flag in args
    while flag in args:
        args.remove(flag)
    return found


def describe_function(name: str, func: Callable[..., Any]) -> str:
    """``primes(n: int = 30) -> Serial``: a function as its command line sees it."""
    try:
        sig, hints = native.signature(func)
    except native.NotEncodable:
        return f"{name}(...)"
    parts = []
    for param in sig.parameters.values():
        text = f"{param.name}: {native.describe(hints[param.name])}"
        if param.default is not inspect.Parameter.empty:
            text += f" = {param.default!r}"
        parts.append(text)
    returns = ""
    try:
        hint = inspect.get_annotations(func, eval_str=True).get("return")
    except Exception:
        hint = None
    if hint is not None:
        returns = f" -> {native.describe(hint)}"
    return f"{name}({', '.join(parts)}){returns}"


def help_text(
    script: str, funcs: dict[str, Callable[..., Any]], default: Any, chosen: str | None
) -> str:
    """``-h``: the usage and the file's functions, pipelines first."""
    if chosen is not None and chosen in funcs:
        doc = inspect.getdoc(funcs[chosen]) or ""
        lines = [
            f"usage: python {script} {chosen} [--param=value ...] {MODES}",
            "",
            "  " + describe_function(chosen, funcs[chosen]),
        ]
        if doc:
            lines += ["", *("  " + line for line in doc.splitlines())]
        return "\n".join(lines)
    pipelines = {n: f for n, f in funcs.items() if loading.returns_node(f)}
    others = {n: f for n, f in funcs.items() if n not in pipelines}
    lines = [
        f"usage: python {script} [FUNC] [--param=value ...] {MODES}",
        "",
    ]
    lines.append("pipelines (print the tree; --local runs it on this machine):")
    for n, f in pipelines.items():
        mark = "   (default)" if default is not None and f is default else ""
        lines.append(f"  {describe_function(n, f)}{mark}")
    if not pipelines:
        lines.append("  (none: annotate a function to return co.Serial, co.Parallel or co.Exec)")
    if others:
        lines += ["", "functions (called with the arguments; the result is printed):"]
        lines += [f"  {describe_function(n, f)}" for n, f in others.items()]
    return "\n".join(lines)
