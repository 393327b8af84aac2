"""Conducto's ``co.util``: helpers for writing pipelines.

``magic_doc`` builds a node's ``doc`` from the function that builds the node, and the
``make*nodes`` helpers group many similar nodes (by path, by month, by date) under
intermediate control nodes. They follow Conducto 0.1.28's ``conducto/util.py`` (the
published wheel) so that pipelines written for Conducto read the same here:

- ``magic_doc()`` with no argument is the calling function's docstring, unindented, followed
  by that function's source (without its docstring) in a fenced ``python`` block;
  ``doc_only=True`` gives the docstring alone; ``comment=True`` gives the block of ``#``
  comments just above the call (or above ``func``) instead. A function without a docstring
  uses its module's docstring.

Pure: it reads source files through :mod:`inspect`, nothing else.
"""

from __future__ import annotations

import gc
import inspect
import os
import re
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from k8sco.errors import UsageError
from k8sco.tree import Node, Parallel

# Conducto's ``types.Bool``: every value but these (and unset) is true.
_FALSE = frozenset({"", "0", "n", "none", "false", "f", "0.0"})


def env_bool(key: str) -> bool:
    """Whether the environment variable ``key`` is set to something other than a false
    word (``""``, ``0``, ``n``, ``none``, ``false``, ``f``, ``0.0``, any case), as Conducto
    reads it."""
    value = os.environ.get(key)
    return value is not None and value.strip().lower() not in _FALSE


def unindent(text: str) -> str:
    """``text`` without the indentation its continuation lines share, stripped at both ends
    (Conducto's ``log.unindent``: the first line of a docstring is not indented)."""
    text = text.replace("\t", "    ")
    indents = [len(m) for m in re.findall(r"\n( *)\S", text)]
    if not indents:
        return text.strip()
    return text.replace("\n" + " " * min(indents), "\n").strip()


def magic_doc(
    *, func: Callable[..., Any] | None = None, doc_only: bool = False, comment: bool = False
) -> str:
    """A ``doc`` for a node, from the function that builds it (or from ``func``).

    Default: the function's docstring, unindented, then its source in a fenced ``python``
    block. ``doc_only``: the docstring alone. ``comment``: the ``#`` comment block just above
    the line that called ``magic_doc`` (above ``func``'s definition when given).
    """
    if func is None:
        caller = sys._getframe(1)
        code: types.CodeType = caller.f_code
        lineno = caller.f_lineno
        found = _function_of(code, caller.f_globals)
        source_of: Any = found if found is not None else code
        docstring = found.__doc__ if found is not None else None
        module = inspect.getmodule(code)
    else:
        if not callable(func):
            raise UsageError(f"magic_doc: func must be a function, not {type(func).__name__}")
        lineno = func.__code__.co_firstlineno if hasattr(func, "__code__") else 0
        source_of, docstring, module = func, func.__doc__, inspect.getmodule(func)

    if comment:
        return _comment_above(source_of, lineno)
    try:
        code_text = inspect.getsource(source_of)
    except (OSError, TypeError) as exc:
        raise UsageError(f"magic_doc: cannot read the source of {source_of!r}: {exc}") from None
    if docstring is not None:
        code_text = _without_docstring(code_text, docstring)
    else:
        docstring = (module.__doc__ if module is not None else None) or ""
    doc = unindent(docstring)
    if doc_only:
        return doc
    return f"{doc}\n\n```python\n{code_text}\n```"


def _function_of(code: types.CodeType, namespace: dict[str, Any]) -> Any:
    """The function object whose code is ``code``: by name in the caller's module first,
    then (nested functions, methods) among the objects that refer to the code."""
    candidate = namespace.get(code.co_name)
    if getattr(candidate, "__code__", None) is code:
        return candidate
    for referrer in gc.get_referrers(code):
        if isinstance(referrer, types.FunctionType) and referrer.__code__ is code:
            return referrer
    return None


def _without_docstring(source: str, docstring: str) -> str:
    # The docstring as written may differ from __doc__ by escaped backslashes, as in Conducto.
    unescaped = source.replace("\\\\", "\\")
    for quote in ('"""', "'''", '"', "'"):
        for text in (source, unescaped):
            literal = f"{quote}{docstring}{quote}"
            if literal in text:
                out = text.replace(literal, "", 1)
                return re.sub(r"\n\s+\n", "\n", out, count=1)
    return source


def _comment_above(obj: Any, lineno: int) -> str:
    """The ``#`` comment block closest above ``lineno`` (1-based), as ``inspect.getcomments``
    reads one: stripped of its ``#`` marks, unindented."""
    try:
        lines, _ = inspect.findsource(obj)
    except (OSError, TypeError) as exc:
        raise UsageError(f"magic_doc: cannot read the source of {obj!r}: {exc}") from None
    end = lineno - 1
    while end >= 0 and lines[end].lstrip()[:1] != "#":
        end -= 1
    start = end
    while start >= 0 and lines[start].lstrip()[:1] == "#":
        start -= 1
    comments = [line.expandtabs().lstrip()[1:] for line in lines[start + 1 : end + 1]]
    while comments and not comments[0].strip():
        del comments[0]
    while comments and not comments[-1].strip():
        del comments[-1]
    return unindent("".join(comments))


# The helpers below keep Conducto's parameter names (baseNode, makeLeafNode, nodeType), so
# calls written for it with keywords work unchanged.


def mkdirs(baseNode: Node, path: str, nodeType: type[Node] | None = None) -> Node:
    """The node at ``path`` (``a/b``) below ``baseNode``, creating missing control nodes on
    the way (Parallel unless ``nodeType`` says otherwise)."""
    make = nodeType or Parallel
    current = baseNode
    for part in path.split("/"):
        if not part:
            continue
        if part not in current.children:
            current[part] = make()
        current = current[part]
    return current


def makenestednodes(
    baseNode: Node,
    values: Iterable[Any],
    func: Callable[[int, Any, list[Any]], str],
    makeLeafNode: bool = False,
    sort: bool = True,
    reverse: bool = False,
    nodeType: type[Node] | None = None,
) -> Iterator[tuple[Node, Any]]:
    """For each value, the node that ``func(index, value, values)`` names (its parent unless
    ``makeLeafNode``), created as needed; yields ``(node, value)``."""
    items = sorted(values, reverse=reverse) if sort else list(values)
    for index, value in enumerate(items):
        path = func(index, value, items)
        if not makeLeafNode:
            path = "/".join(path.split("/")[:-1])
        yield mkdirs(baseNode, path, nodeType), value


def makeyyyymmnodes(
    baseNode: Node,
    yyyymms: Iterable[Any],
    makeLeafNode: bool = False,
    reverse: bool = True,
    nodeType: type[Node] | None = None,
) -> Iterator[tuple[Node, Any]]:
    """Nodes per month (``202001``), grouped by year once there are ten or more."""

    def path(_: int, yyyymm: Any, values: list[Any]) -> str:
        return str(yyyymm) if len(values) < 10 else f"{str(yyyymm)[:4]}/{yyyymm}"

    return makenestednodes(baseNode, yyyymms, path, makeLeafNode, True, reverse, nodeType)


def makedatenodes(
    baseNode: Node,
    dates: Iterable[Any],
    makeLeafNode: bool = False,
    reverse: bool = True,
    nodeType: type[Node] | None = None,
) -> Iterator[tuple[Node, Any]]:
    """Nodes per date, grouped by month past ten dates and by year past ten months."""
    dates = list(dates)  # an iterator is read once
    months = {str(d)[:7] for d in dates}

    def path(_: int, date: Any, values: list[Any]) -> str:
        if len(values) <= 10:
            return str(date)
        if len(months) < 10:
            return f"{str(date)[:7]}/{date}"
        return f"{str(date)[:4]}/{str(date)[:7]}/{date}"

    return makenestednodes(baseNode, dates, path, makeLeafNode, True, reverse, nodeType)


__all__ = [
    "env_bool",
    "magic_doc",
    "makedatenodes",
    "makenestednodes",
    "makeyyyymmnodes",
    "mkdirs",
    "unindent",
]
