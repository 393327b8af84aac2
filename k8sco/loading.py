"""Loading a pipeline: ``FILE.py[:FUNC] [--param=value ...]`` to the root node of its tree.

The file is imported by path as a module (not as ``__main__``, so its
``if __name__ == "__main__":`` block does not run), with its directory as the code root
(native-function commands are relative to it) and on ``sys.path`` (so it can import its
neighbours). Without ``:FUNC`` the pipeline is the ``default=`` given to ``co.main`` in the
file (found without running it, with ``ast``), or else its one function annotated to return
a node. Every failure is a :class:`~k8sco.errors.LoadError` naming the file.
"""

from __future__ import annotations

import ast
import inspect
import os
import traceback
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from k8sco import modules, tree
from k8sco.bulk import collector_paused
from k8sco.errors import K8scoError, LoadError


def importing() -> bool:
    """True while k8sco imports a user's file or module, to load a pipeline or to call a
    native function (``co.main`` must not act then). One flag for both, kept by
    :mod:`k8sco.modules`, which does all of k8sco's importing of user code."""
    return modules.importing()


@dataclass(frozen=True)
class Loaded:
    """A loaded pipeline: the tree and what produced it (recorded with every run)."""

    root: tree.Node
    file: str  # absolute path of the pipeline file
    func: str  # the pipeline function's name
    args: list[str] = field(default_factory=list)  # the --param=value arguments as given

    @property
    def code_root(self) -> str:
        return os.path.dirname(self.file)


def split_target(target: str) -> tuple[str, str | None]:
    """``"dir/file.py:func"`` -> ``("dir/file.py", "func")``; no ``:FUNC`` -> ``None``."""
    path, sep, func = target.rpartition(":")
    if sep and func.isidentifier() and path:
        return path, func
    return target, None


def load(target: str, args: Sequence[str] = ()) -> Loaded:
    """The tree of ``FILE.py[:FUNC]`` called with ``args`` (``--name=value`` strings)."""
    path, func_name = split_target(target)
    module = import_file(path)
    file = os.path.abspath(path)
    if func_name is None:
        func_name = default_function(file, module)
    func = getattr(module, func_name, None)
    if not callable(func):
        raise LoadError(
            f"{path}: no function {func_name!r}; pipeline functions: "
            + (", ".join(pipeline_functions(module)) or "none")
        )
    token = tree.set_code_root(os.path.dirname(file))
    try:
        kwargs = decode_args(func, args, label=f"{path}:{func_name}")
        result = call_user(func, kwargs, label=f"{path}:{func_name}()")
    finally:
        tree.reset_code_root(token)
    if not isinstance(result, tree.Node):
        raise LoadError(
            f"{path}:{func_name}() returned {type(result).__name__}, not a Serial, Parallel "
            "or Exec node"
        )
    return Loaded(root=result, file=file, func=func_name, args=list(args))


def import_file(path: str) -> types.ModuleType:
    """Import the pipeline file at ``path`` (:func:`k8sco.modules.import_file`), with its
    directory as the code root while its top-level code builds nodes."""
    token = tree.set_code_root(os.path.dirname(os.path.abspath(path)))
    try:
        return modules.import_file(path)
    except LoadError as exc:
        cause = exc.__cause__
        if isinstance(cause, K8scoError):
            # k8sco refused a node the file's top-level code built: k8sco's one line, not
            # the user's traceback.
            raise type(cause)(f"{path}: {cause}") from cause
        raise
    except K8scoError:
        raise
    except SystemExit as exc:
        raise LoadError(f"{path}: {_exit_text(exc)} while being imported; {_NO_EXIT}") from None
    except Exception as exc:  # modules translates what the file raises; this is a safety net
        raise LoadError(f"{path}: cannot be imported: {type(exc).__name__}: {exc}") from exc
    finally:
        tree.reset_code_root(token)


def call_user(func: Callable[..., Any], kwargs: dict[str, Any], label: str) -> Any:
    """``func(**kwargs)``; an exception in the user's code becomes a LoadError naming it."""
    try:
        with collector_paused():  # the function builds the tree: up to 100,000 nodes
            return func(**kwargs)
    except K8scoError as exc:
        raise type(exc)(f"{label}: {exc}") from exc
    except SystemExit as exc:
        raise LoadError(f"{label} {_exit_text(exc)}; {_NO_EXIT}") from None
    except Exception as exc:
        raise LoadError(f"{label} raised {type(exc).__name__}: {exc}") from exc


_NO_EXIT = "a pipeline must return its tree (raise an exception to refuse its arguments)"


def _exit_text(exc: SystemExit) -> str:
    code = exc.code
    return f"called sys.exit({code!r})" if code is not None else "called sys.exit()"


# --- which function ---------------------------------------------------------------------


def returns_node(func: Any) -> bool:
    """True when the function's return annotation is a node type (a pipeline function)."""
    try:
        hint = typing.get_type_hints(func).get("return")
    except Exception:  # an unresolvable annotation is not a node annotation
        return False
    return isinstance(hint, type) and issubclass(hint, tree.Node)


def functions(module: types.ModuleType) -> dict[str, Callable[..., Any]]:
    """The module's public functions defined in it (limited by ``__all__`` when it has one)."""
    names = getattr(module, "__all__", None) or list(vars(module))
    out: dict[str, Callable[..., Any]] = {}
    for name in names:
        value = getattr(module, name, None)
        if name.startswith("_") or not inspect.isfunction(value):
            continue
        if value.__module__ == module.__name__:
            out[name] = value
    return out


def pipeline_functions(module: types.ModuleType) -> list[str]:
    return [name for name, func in functions(module).items() if returns_node(func)]


def default_function(file: str, module: types.ModuleType) -> str:
    """The pipeline function to use when the target names none."""
    name = static_default(file)
    if name is not None:
        return name
    candidates = pipeline_functions(module)
    if len(candidates) == 1:
        return candidates[0]
    rel = os.path.relpath(file)
    if not candidates:
        others = ", ".join(functions(module)) or "none"
        raise LoadError(
            f"{rel}: no pipeline function (one annotated to return co.Serial, co.Parallel or "
            f"co.Exec) and no co.main(default=...); functions: {others}"
        )
    raise LoadError(
        f"{rel}: several pipeline functions, name one as {rel}:FUNC: " + ", ".join(candidates)
    )


def static_default(file: str) -> str | None:
    """The ``NAME`` in a ``co.main(default=NAME)`` call in the file, found without running it."""
    try:
        with open(file, encoding="utf-8") as f:
            module = ast.parse(f.read(), filename=file)
    except (OSError, SyntaxError, ValueError):
        return None
    for node in ast.walk(module):
        if not isinstance(node, ast.Call) or not _is_main(node.func):
            continue
        for keyword in node.keywords:
            if keyword.arg == "default" and isinstance(keyword.value, ast.Name):
                return keyword.value.id
        if node.args and isinstance(node.args[0], ast.Name):
            return node.args[0].id
    return None


def _is_main(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id == "main"
    return isinstance(func, ast.Attribute) and func.attr == "main"


# --- arguments --------------------------------------------------------------------------


def decode_args(func: Callable[..., Any], args: Sequence[str], label: str) -> dict[str, Any]:
    """Keyword arguments for ``func`` from ``--name=value`` strings, decoded by its hints,
    exactly as the dispatcher decodes a node's command line."""
    from k8sco.cmdline import parse_arguments

    return parse_arguments(func, args, label)


def user_traceback(exc: BaseException) -> str:
    """The traceback of an exception raised by the user's code, without k8sco's frames."""
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not _is_internal(frame.filename)
    ]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
    if not frames:  # a syntax error: its own text shows the file, line and caret
        lines = []
    lines.extend(traceback.format_exception_only(type(exc), exc))
    return "".join(lines)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _is_internal(filename: str) -> bool:
    return filename.startswith("<frozen") or os.path.abspath(filename).startswith(
        _PACKAGE_DIR + os.sep
    )
