"""The pipeline tree: ``Serial``, ``Parallel`` and ``Exec`` nodes and their parameters.

Pure: building a tree does no I/O. Two ways to add a child, as in Conducto::

    root = co.Serial()
    root["build"] = co.Exec("make")          # by item assignment

    with co.Parallel() as tests:             # or inside a with block, named with name=
        co.Exec("pytest a", name="a")
        co.Exec(check, 3).set(name="check")  # native functions take name through .set()

A node's path is ``/`` for the root and ``/build/test a`` below it; paths are what the
engine, the runners, the logs and the Kubernetes annotations use to name a node.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from k8sco import native
from k8sco.errors import PipelineError, PipelineTypeError
from k8sco.image import Image
from k8sco.params import PARAM_NAMES, SPECS, Inherit, check_param

SERIAL_FORMAT = 1

_open_nodes: ContextVar[tuple[Node, ...]] = ContextVar("k8sco_open_nodes", default=())
_code_root: ContextVar[str | None] = ContextVar("k8sco_code_root", default=None)

N = TypeVar("N", bound="Node")


def code_root() -> str:
    """The directory native-function paths are relative to (the pipeline file's directory).

    The CLI sets it when it loads a pipeline file; a script run as ``python pipeline.py``
    uses its own directory, and anything else the current directory.
    """
    root = _code_root.get()
    if root is not None:
        return root
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return os.path.dirname(os.path.abspath(main_file)) if main_file else os.getcwd()


def set_code_root(path: str | None) -> Token[str | None]:
    return _code_root.set(os.path.abspath(path) if path is not None else None)


def reset_code_root(token: Token[str | None]) -> None:
    _code_root.reset(token)


class Node:
    """A node of a pipeline tree; the base of ``Serial``, ``Parallel`` and ``Exec``.

    Parameters (constructor keywords or ``.set(...)``; unset ones are inherited or default):
    ``image``, ``env`` (merged with ancestors', the child wins), ``cpu`` (cores, default 1),
    ``mem`` (GB, default 2), ``gpu`` (default 0), ``skip``, ``stop_on_error`` (Serial only,
    default True), ``suppress_errors``, ``max_time`` (seconds or "30s"/"15m"/"4h"/"2d",
    default 4h), ``max_concurrent``, ``retries`` (default 0), ``doc``, ``title``, ``tags``;
    and for containers: ``pod_spec`` (a dict merged into the node's Kubernetes pod spec:
    node selector, tolerations, volumes...), ``run_as_root`` (default False: pods run as a
    non-root user and pass Pod Security "restricted"), ``network`` (default False: local
    containers get no network).
    """

    kind: ClassVar[str] = "Node"
    _can_have_children: ClassVar[bool] = True

    def __init__(self, *, name: str | None = None, **params: Any) -> None:
        self._name: str | None = None
        self._parent: Node | None = None
        self._children: dict[str, Node] = {}
        self._params: dict[str, Any] = {}
        self._tokens: list[Token[tuple[Node, ...]]] = []
        open_nodes = _open_nodes.get()
        if name is not None and open_nodes:
            self._apply(params, _join(open_nodes[-1].path, name))
        else:
            self._apply(params)
        if name is not None:
            self._attach_to_open(name)

    # --- structure ------------------------------------------------------------------------

    @property
    def name(self) -> str | None:
        """The node's name among its siblings; ``None`` for a root."""
        return self._name

    @property
    def parent(self) -> Node | None:
        return self._parent

    @property
    def children(self) -> Mapping[str, Node]:
        """The children by name, in the order they were added (read-only)."""
        return MappingProxyType(self._children)

    @property
    def path(self) -> str:
        """``/`` for the root, ``/a/b c`` below it."""
        names: list[str] = []
        node: Node | None = self
        while node is not None and node._parent is not None:
            names.append(node._name or "")
            node = node._parent
        return "/" + "/".join(reversed(names))

    @property
    def root(self) -> Node:
        node = self
        while node._parent is not None:
            node = node._parent
        return node

    def __setitem__(self, name: str, node: Node) -> None:
        if not isinstance(name, str):
            raise PipelineTypeError(f"{self.path}: a child's name must be a str, got {name!r}")
        parent_path, _, leaf = name.rpartition("/")
        parent = self[parent_path] if parent_path else self
        parent._add_child(leaf, node)

    def __getitem__(self, path: str) -> Node:
        """The node at ``path``: relative (``"a/b"``) or from the root (``"/a/b"``)."""
        node = self.root if path.startswith("/") else self
        for part in path.split("/"):
            if not part:
                continue
            try:
                node = node._children[part]
            except KeyError:
                raise KeyError(f"{node.path}: no child named {part!r}") from None
        return node

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        try:
            self[path]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[Node]:
        raise TypeError(f"{self.kind} is not iterable; use .children or .stream()")

    def stream(self, reverse: bool = False) -> Iterator[Node]:
        """Every node of the subtree: parents before children, or after them if ``reverse``."""
        stack: list[tuple[Node, bool]] = [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if reverse and expanded:
                yield node
                continue
            if not reverse:
                yield node
            else:
                stack.append((node, True))
            stack.extend((child, False) for child in reversed(node._children.values()))

    def _add_child(self, name: str, node: Node) -> None:
        if not self._can_have_children:
            raise PipelineError(f"{self.path}: an Exec node cannot have children (adding {name!r})")
        if not isinstance(node, Node):
            raise PipelineTypeError(
                f"{self.path}: child {name!r} must be a Serial, Parallel or Exec node, "
                f"got {type(node).__name__}"
            )
        _check_name(self.path, name)
        if name in self._children:
            raise PipelineError(f"{_join(self.path, name)}: a sibling is already named {name!r}")
        if node._parent is not None:
            raise PipelineError(
                f"{_join(self.path, name)}: this node is already at {node.path}; "
                "a node can be in one place only"
            )
        ancestor: Node | None = self
        while ancestor is not None:
            if ancestor is node:
                raise PipelineError(f"{_join(self.path, name)}: a node cannot contain itself")
            ancestor = ancestor._parent
        node._parent, node._name = self, name
        self._children[name] = node

    def _attach_to_open(self, name: str) -> None:
        open_nodes = _open_nodes.get()
        if not open_nodes:
            raise PipelineError(
                f"name={name!r} works only inside a `with` block of its parent; outside one, "
                f"add the node with parent[{name!r}] = node"
            )
        open_nodes[-1]._add_child(name, self)

    def __enter__(self: N) -> N:
        self._tokens.append(_open_nodes.set((*_open_nodes.get(), self)))
        return self

    def __exit__(self, *exc: object) -> None:
        _open_nodes.reset(self._tokens.pop())

    # --- parameters -----------------------------------------------------------------------

    def set(self: N, name: str | None = None, **params: Any) -> N:
        """Set parameters (those given as ``None`` are left alone); ``name=`` inside a
        ``with`` block adds the node to that block's node. Returns the node."""
        self._apply({k: v for k, v in params.items() if v is not None})
        if name is not None:
            if self._parent is not None:
                raise PipelineError(f"{self.path}: the node is already named; names are fixed")
            self._attach_to_open(name)
        return self

    def _apply(self, params: Mapping[str, Any], path: str | None = None) -> None:
        path = path or self._label()
        for key, value in params.items():
            normal = check_param(self.kind, path, key, value)
            if key == "env":
                normal = {**self._params.get("env", {}), **normal}
            self._params[key] = normal

    @property
    def params(self) -> Mapping[str, Any]:
        """The parameters set on this node itself (not inherited ones)."""
        return MappingProxyType(self._params)

    def get(self, param: str) -> Any:
        """The parameter's value in effect here: set on this node, inherited, or default."""
        spec = SPECS[param]
        if spec.inherit is Inherit.NONE:
            return self._params.get(param, spec.default)
        if spec.inherit is Inherit.ANY:
            return any(n._params.get(param, False) for n in self._lineage())
        if spec.inherit is Inherit.MERGE:
            merged: dict[str, Any] = {}
            for node in reversed(list(self._lineage())):
                merged.update(node._params.get(param, {}))
            return merged
        for node in self._lineage():
            if param in node._params:
                return node._params[param]
        return spec.default

    def _lineage(self) -> Iterator[Node]:
        node: Node | None = self
        while node is not None:
            yield node
            node = node._parent

    # --- text -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The subtree as plain JSON-ready data (what ``serialize`` writes)."""
        data: dict[str, Any] = {"type": self.kind}
        if self._params:
            data["params"] = {k: _param_to_json(v) for k, v in self._params.items()}
        if self._children:
            data["children"] = [[name, child.to_dict()] for name, child in self._children.items()]
        return data

    def serialize(self) -> str:
        """JSON that :meth:`Node.deserialize` turns back into an identical tree."""
        return json.dumps(
            {"k8sco": SERIAL_FORMAT, "root": self.to_dict()},
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @staticmethod
    def deserialize(text: str | bytes) -> Node:
        """Rebuild a tree from :meth:`serialize`'s output."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PipelineError(f"not a serialized k8sco tree: {exc}") from None
        if not isinstance(data, dict) or data.get("k8sco") != SERIAL_FORMAT:
            raise PipelineError("not a serialized k8sco tree (format 1 expected)")
        return Node.from_dict(data["root"])

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Node:
        kind = data.get("type")
        cls = _KINDS.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise PipelineError(f"unknown node type {kind!r} in serialized tree")
        params = {k: _param_from_json(v) for k, v in data.get("params", {}).items()}
        node: Node
        node = Exec._restore(data["command"], params) if cls is Exec else cls(**params)
        for name, child in data.get("children", []):
            node[name] = Node.from_dict(child)
        return node

    def pretty(self) -> str:
        """The tree as text: one line per node with its type, path and command."""
        lines = []
        base = self.path.count("/") if self._parent is not None else 0
        for node in self.stream():
            depth = (node.path.count("/") if node._parent is not None else 0) - base
            lines.append("  " * depth + node._describe())
        return "\n".join(lines)

    def _describe(self) -> str:
        return f"{self.kind} {self.path}"

    def _label(self) -> str:
        """How error messages name this node: its path, or its command while it has none."""
        return self.path

    def __str__(self) -> str:
        return self.pretty()

    def __repr__(self) -> str:
        return f"<{self.kind} {self.path}>"


class Serial(Node):
    """Runs its children one after another, in the order they were added.

    A failing child stops the Serial when ``stop_on_error`` (default True): the rest stay
    pending and the Serial fails. Otherwise the rest still run and the Serial ends failed.
    """

    kind = "Serial"


class Parallel(Node):
    """Runs all its children at once (at most ``max_concurrent`` Exec nodes, if set)."""

    kind = "Parallel"


class Exec(Node):
    """Runs one command: a shell string, an argv list, or a native function with arguments.

    ``Exec("echo hi", name="x", cpu=2)``: a shell command; keywords are node parameters.
    ``Exec(func, 30, flag=True)``: a native function; positional and keyword arguments are the
    function's, bound to its signature now, so mistakes fail here and not when the node runs.
    Node parameters of a native-function node go through ``.set(...)`` (or ``params={...}``).
    """

    kind = "Exec"
    _can_have_children = False

    def __init__(self, command: str | list[str] | Callable[..., Any], *args: Any, **kwargs: Any):
        self.function: str | None = None
        if callable(command):
            self.command: str | list[str] = self._bind(command, args, kwargs)
            params = kwargs.pop("params", {}) if self._takes_params(command) else {}
            if not isinstance(params, Mapping):
                raise PipelineTypeError(f"params= must be a dict, got {type(params).__name__}")
            super().__init__(**params)
            return
        if args:
            raise PipelineTypeError(
                f"Exec({command!r}, ...): extra positional arguments are only for native "
                "functions; put them in the command"
            )
        self.command = _check_command(command)
        super().__init__(**kwargs)

    @staticmethod
    def _takes_params(func: Callable[..., Any]) -> bool:
        return "params" not in native.signature(func)[0].parameters

    def _bind(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> list[str]:
        if self._takes_params(func):
            kwargs = {k: v for k, v in kwargs.items() if k != "params"}
        try:
            argv = native.bind_arguments(func, args, kwargs)
        except native.NotEncodable as exc:
            misplaced = sorted(
                k
                for k in kwargs
                if (k in PARAM_NAMES or k == "name")
                and k not in native.signature(func)[0].parameters
            )
            # Conducto users write Exec(f, 1, cpu=2); say where node parameters go instead.
            message = str(exc)
            if misplaced:
                message += f"; a function node takes {', '.join(misplaced)} through .set(...) "
                message += "or params={...}"
            raise PipelineTypeError(message) from None
        self.function = func.__qualname__
        return ["k8sco", "call", f"{_function_target(func)}:{func.__qualname__}", *argv]

    @classmethod
    def _restore(cls, command: str | list[str], params: Mapping[str, Any]) -> Exec:
        node = cls.__new__(cls)
        node.command = _check_command(command)
        node.function = None
        if isinstance(command, list) and command[:2] == ["k8sco", "call"] and len(command) > 2:
            node.function = command[2].rpartition(":")[2]
        Node.__init__(node, **params)
        return node

    @property
    def is_native(self) -> bool:
        return self.function is not None

    @property
    def command_line(self) -> str:
        """The command as one line a terminal would accept."""
        return self.command if isinstance(self.command, str) else shlex.join(self.command)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["command"] = self.command
        return data

    def _label(self) -> str:
        if self._parent is None:
            text = self.command_line
            return f"Exec({text if len(text) <= 40 else text[:37] + '...'!r})"
        return self.path

    def _describe(self) -> str:
        text = self.command_line
        return f"Exec {self.path}: {text if len(text) <= 200 else text[:197] + '...'}"


_KINDS: dict[str, type[Node]] = {"Serial": Serial, "Parallel": Parallel, "Exec": Exec}


def _join(path: str, name: str) -> str:
    return path.rstrip("/") + "/" + name


def _check_name(parent_path: str, name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise PipelineError(f"{parent_path}: a node name must be a non-empty string, got {name!r}")
    if "/" in name:
        raise PipelineError(f"{_join(parent_path, name)}: a node name may not contain '/'")
    if any(ord(c) < 32 for c in name):
        raise PipelineError(f"{parent_path}: node name {name!r} contains a control character")


def _check_command(command: Any) -> str | list[str]:
    if isinstance(command, str):
        text = textwrap.dedent(command).strip()
        if not text:
            raise PipelineError("Exec: the command is empty")
        return text
    if isinstance(command, list) and command and all(isinstance(a, str) for a in command):
        return list(command)
    raise PipelineTypeError(
        f"Exec: the command must be a shell string, a list of strings (argv) or a function, "
        f"got {type(command).__name__}"
    )


_targets: dict[tuple[str, str], str] = {}


def _function_target(func: Callable[..., Any]) -> str:
    """How the dispatcher finds ``func``: ``dir/file.py`` relative to the code root, or
    ``package.module`` when the function lives in an importable package."""
    module = sys.modules.get(func.__module__)
    package = getattr(module, "__package__", None)
    if package and func.__module__ != "__main__":
        return func.__module__
    root = code_root()
    filename = func.__code__.co_filename
    key = (root, filename)
    target = _targets.get(key)
    if target is None:
        target = os.path.relpath(os.path.abspath(filename), root).replace(os.sep, "/")
        _targets[key] = target
    return target


def _param_to_json(value: Any) -> Any:
    if isinstance(value, Image):
        return {"image": value.to_dict()}
    return value


def _param_from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"image"} and isinstance(value["image"], dict):
        return Image.from_dict(value["image"])
    return value


__all__ = ["PARAM_NAMES", "Exec", "Node", "Parallel", "Serial", "code_root"]
