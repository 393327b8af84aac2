"""The pipeline tree: ``Serial``, ``Parallel`` and ``Exec`` nodes and their parameters.

Pure: building a tree does no I/O. Two ways to add a child, as in Conducto::

    root = co.Serial()
    root["build"] = co.Exec("make")          # by item assignment

    with co.Parallel() as tests:             # or inside a with block, named with name=
        co.Exec("pytest a", name="a")
        co.Exec(check, 3).set(name="check")  # native functions take name through .set()

A node's path is ``/`` for the root and ``/build/test a`` below it; paths are what the
engine, the runners, the logs and the Kubernetes annotations use to name a node. A name is
visible text on one line (no control, bidirectional or invisible characters), at most
``MAX_NAME`` characters; a tree is at most ``MAX_DEPTH`` levels deep. Commands and
parameters are checked as they are set, so that a tree that builds can be written, run and
rendered.
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
from k8sco.bulk import collector_paused
from k8sco.errors import PipelineError, PipelineTypeError
from k8sco.image import Image
from k8sco.params import PARAM_NAMES, SPECS, Inherit, canonical, check_param
from k8sco.secrets import SecretRef, env_from_json, env_to_json
from k8sco.validate import MAX_ARG_BYTES, MAX_ARGV_BYTES, name_problem, text_problem

SERIAL_FORMAT = 1
# The deepest a node may be below the root. Trees are walked without recursion, but their
# JSON nests three levels per tree level and Python's json module recurses (the default
# recursion limit is 1000); no pipeline needs a fraction of this.
MAX_DEPTH = 100
MAX_NAME = 256  # characters in a node name

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


# Conducto's Node.__init__ parameters whose None means unset (conducto/pipeline.py).
_CONDUCTO = frozenset(
    {"env", "skip", "cpu", "gpu", "mem", "image", "doc", "title", "tags", "max_time"}
    | {"requires_docker", "suppress_errors", "max_concurrent"}
    | {"container_reuse_context", "same_container"}
)


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
    containers get no network), ``container_reuse_context`` (``co.ContainerReuseContext.NEW``:
    the Exec nodes below share one container, one after another; Conducto's
    ``same_container=``) and ``requires_docker`` (default False: the node reaches a Docker
    engine).
    """

    kind: ClassVar[str] = "Node"
    _can_have_children: ClassVar[bool] = True

    # Every parameter is also an attribute (properties added below the class): assigning
    # one is `.set(...)` for that parameter (None unsets it; `env` is replaced, not merged)
    # and reading one gives what is set on this node, as in Conducto: None when unset (the
    # default for skip, suppress_errors, stop_on_error, env and pod_spec), except `image`,
    # which is inherited. `node.get(name)` gives the value in effect.
    image: Any
    env: Any
    cpu: Any
    mem: Any
    gpu: Any
    skip: Any
    stop_on_error: Any
    network: Any
    suppress_errors: Any
    max_time: Any
    start_timeout: Any
    max_concurrent: Any
    retries: Any
    doc: Any
    title: Any
    tags: Any
    pod_spec: Any
    image_pull_policy: Any
    run_as_root: Any
    container_reuse_context: Any
    requires_docker: Any
    callbacks: Any

    def __init__(self, *, name: str | None = None, **params: Any) -> None:
        self._name: str | None = None
        self._parent: Node | None = None
        self._children: dict[str, Node] = {}
        self._params: dict[str, Any] = {}
        self._tokens: list[Token[tuple[Node, ...]]] = []
        self._height = 0  # levels below this node (0 for a leaf): the depth check's input
        if params and None in params.values():
            # Conducto's constructors default these to None, meaning unset (as in set()):
            # wrappers pass their own None defaults through. k8sco's own refuse None.
            params = {k: v for k, v in params.items() if v is not None or k not in _CONDUCTO}
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
        _check_name(self, name)
        if name in self._children:
            raise PipelineError(f"{_join(self.path, name)}: a sibling is already named {name!r}")
        if node._parent is not None:
            raise PipelineError(
                f"{_join(self.path, name)}: this node is already at {node.path}; "
                "a node can be in one place only"
            )
        ancestor: Node | None = self
        depth = 0
        while ancestor is not None:
            if ancestor is node:
                raise PipelineError(f"{_join(self.path, name)}: a node cannot contain itself")
            ancestor = ancestor._parent
            depth += 1
        if depth + node._height > MAX_DEPTH:
            where = _join(self.path, name)
            where = where if len(where) <= 80 else "..." + where[-77:]
            raise PipelineError(
                f"{where}: the tree would be {depth + node._height} levels deep; k8sco takes "
                f"at most {MAX_DEPTH}"
            )
        node._parent, node._name = self, name
        self._children[name] = node
        above: Node | None = self
        height = node._height + 1
        while above is not None and above._height < height:
            above._height = height
            above, height = above._parent, height + 1

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
        if not params:
            return  # most nodes set nothing: no path (a walk to the root) to compute
        path = path or self._label()
        params = canonical(path, params)  # Conducto's same_container= spelling
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

    # --- callbacks (Conducto's node.on_error(co.callback.retry(3)); k8sco.callback) --------

    def on_done(self, callback: Any) -> None:
        """Register a callback for when this node enters the "done" state."""
        self._on("done", callback)

    def on_error(self, callback: Any) -> None:
        """Register a callback for when this node enters the "error" state."""
        self._on("error", callback)

    def on_queued(self, callback: Any) -> None:
        """Register a callback for when this node enters the "queued" state."""
        self._on("queued", callback)

    def on_running(self, callback: Any) -> None:
        """Register a callback for when this node enters the "running" state."""
        self._on("running", callback)

    def on_killed(self, callback: Any) -> None:
        """Register a callback for when this node enters the "killed" state."""
        self._on("killed", callback)

    def on_state_change(self, callback: Any) -> None:
        """Register a callback for every change of this node's state."""
        self._on("stateChange", callback)

    def _on(self, event: str, callback: Any) -> None:
        from k8sco.callback import Callback

        if not isinstance(callback, Callback):
            raise PipelineTypeError(
                f"{self._label()}: on_{event if event != 'stateChange' else 'state_change'}() "
                f"takes a co.callback value such as co.callback.retry(2), got {callback!r}"
            )
        entries = [*self._params.get("callbacks", ()), [event, callback.to_literal()]]
        self._params["callbacks"] = check_param(self.kind, self._label(), "callbacks", entries)

    # --- parameters as attributes (Conducto's ``node.cpu = 2``) --------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        # A typo such as `node.cpus = 2` would otherwise set nothing and say nothing; a
        # user's own subclass may keep its own attributes.
        if (
            name.startswith("_")
            or name in _INSTANCE_ATTRS
            or isinstance(getattr(type(self), name, None), property)
            or type(self).__module__ != __name__
        ):
            object.__setattr__(self, name, value)
            return
        raise AttributeError(
            f"{self._label()}: {self.kind} has no parameter or attribute {name!r}; node "
            "parameters are: " + ", ".join(sorted(SPECS))
        )

    def _read_param(self, name: str) -> Any:
        if name in self._params:
            value = self._params[name]
            if isinstance(value, dict):
                return MappingProxyType(value)  # change it by assigning a new dict
            return tuple(value) if isinstance(value, list) else value
        if name == "image":  # Conducto's Node.image is the inherited one
            return self.get("image")
        spec = SPECS[name]
        if spec.inherit is Inherit.NEAREST:
            return (
                None  # Conducto: None until set on this node (node.get gives the value in effect)
            )
        return MappingProxyType({}) if isinstance(spec.default, dict) else spec.default

    def _write_param(self, name: str, value: Any) -> None:
        if value is None:  # Conducto: node.cpu = None goes back to inherited or default
            self._params.pop(name, None)
            return
        self._params[name] = check_param(self.kind, self._label(), name, value)

    def _lineage(self) -> Iterator[Node]:
        node: Node | None = self
        while node is not None:
            yield node
            node = node._parent

    # --- text -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The subtree as plain JSON-ready data (what ``serialize`` writes)."""
        top = self._own_dict()
        stack: list[tuple[Node, dict[str, Any]]] = [(self, top)]
        while stack:  # no recursion: a deep tree must not exhaust the stack
            node, data = stack.pop()
            if node._children:
                pairs: list[list[Any]] = []
                for name, child in node._children.items():
                    child_data = child._own_dict()
                    pairs.append([name, child_data])
                    stack.append((child, child_data))
                data["children"] = pairs
        return top

    def _own_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.kind}
        if self._params:
            data["params"] = {k: _param_to_json(v) for k, v in self._params.items()}
        return data

    def serialize(self) -> str:
        """JSON that :meth:`Node.deserialize` turns back into an identical tree."""
        with collector_paused():  # a dict per node and per parameter set (k8sco.bulk)
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
        except RecursionError:
            raise PipelineError(
                f"not a serialized k8sco tree: nested deeper than {MAX_DEPTH} levels"
            ) from None
        if not isinstance(data, dict) or data.get("k8sco") != SERIAL_FORMAT:
            raise PipelineError("not a serialized k8sco tree (format 1 expected)")
        return Node.from_dict(data["root"])

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Node:
        with collector_paused():  # a node and its dicts per node (k8sco.bulk)
            return Node._from_dict(data)

    @staticmethod
    def _from_dict(data: Mapping[str, Any]) -> Node:
        root = Node._one_from_dict(data)
        stack: list[tuple[Node, Any]] = [(root, data)]
        while stack:  # no recursion: a deep tree must not exhaust the stack
            node, node_data = stack.pop()
            children = node_data.get("children", [])
            if not isinstance(children, list):
                raise PipelineError(f"{node.path}: children must be a list in a serialized tree")
            for pair in children:
                if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], dict)):
                    raise PipelineError(
                        f"{node.path}: a child must be [name, node] in a serialized tree"
                    )
                child = Node._one_from_dict(pair[1])
                node._add_child(pair[0], child)
                stack.append((child, pair[1]))
        return root

    @staticmethod
    def _one_from_dict(data: Mapping[str, Any]) -> Node:
        kind = data.get("type")
        cls = _KINDS.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise PipelineError(f"unknown node type {kind!r} in serialized tree")
        params = {k: _param_from_json(v) for k, v in data.get("params", {}).items()}
        if cls is Exec:
            return Exec._restore(data.get("command"), params)
        return cls(**params)

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
            try:
                takes_params = self._takes_params(command)
            except native.NotEncodable as exc:  # a lambda, a method, a builtin, a partial
                raise PipelineTypeError(f"Exec: {exc}") from None
            self.command: str | list[str] = self._bind(command, args, kwargs)
            params = kwargs.pop("params", {}) if takes_params else {}
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
        target = f"{_function_target(func)}:{func.__qualname__}"
        problem = text_problem(target)
        if problem:
            raise PipelineError(f"{target!r}: the function's file path {problem}; rename it")
        return ["k8sco", "call", target, *argv]

    @classmethod
    def _restore(cls, command: Any, params: Mapping[str, Any]) -> Exec:
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

    def _own_dict(self) -> dict[str, Any]:
        data = super()._own_dict()
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
_INSTANCE_ATTRS = frozenset({"command", "function"})  # Exec's plain attributes


def _param_property(name: str) -> Any:
    def read(self: Node) -> Any:
        return self._read_param(name)

    def write(self: Node, value: Any) -> None:
        self._write_param(name, value)

    return property(read, write, doc=f"The node's {name!r} parameter: {SPECS[name].doc}")


for _param in SPECS:
    if hasattr(Node, _param):  # never shadow a method or structure attribute
        raise RuntimeError(f"node parameter {_param!r} clashes with a Node attribute")
    setattr(Node, _param, _param_property(_param))


def _join(path: str, name: str) -> str:
    return path.rstrip("/") + "/" + name


def _check_name(parent: Node, name: Any) -> None:
    # The parent's path (a walk to the root) only for a message: names are checked per node.
    if not isinstance(name, str) or not name:
        raise PipelineError(f"{parent.path}: a node name must be a non-empty string, got {name!r}")
    if "/" in name:
        raise PipelineError(f"{_join(parent.path, name)}: a node name may not contain '/'")
    problem = name_problem(name)
    if problem:
        raise PipelineError(f"{parent.path}: node name {name!r} {problem}")
    if len(name) > MAX_NAME:
        raise PipelineError(
            f"{parent.path}: node name {name[:40]!r}... is {len(name):,} characters; at most "
            f"{MAX_NAME} (paths become Kubernetes annotations, 256 KiB in all)"
        )


def _check_command(command: Any) -> str | list[str]:
    if isinstance(command, str):
        text = textwrap.dedent(command).strip()
        if not text:
            raise PipelineError("Exec: the command is empty")
        _check_argv([text], "the command")
        return text
    if isinstance(command, list) and command and all(isinstance(a, str) for a in command):
        if not command[0]:
            raise PipelineError("Exec([...]): the program (the argv's first item) is empty")
        _check_argv(command, "the command")
        return list(command)
    raise PipelineTypeError(
        f"Exec: the command must be a shell string, a list of strings (argv) or a function, "
        f"got {type(command).__name__}"
    )


def _check_argv(argv: list[str], what: str) -> None:
    """Refuse what no process could be started with: text a command line cannot carry, an
    argument beyond Linux's MAX_ARG_STRLEN, or an argv near ARG_MAX."""
    total = 0
    for arg in argv:
        problem = text_problem(arg)
        if problem:
            shown = arg if len(arg) <= 40 else arg[:37] + "..."
            raise PipelineError(f"Exec({shown!r}): {what} {problem}")
        size = len(arg.encode("utf-8"))
        total += size + 1
        if size > MAX_ARG_BYTES:
            raise PipelineError(
                f"Exec({arg[:37] + '...'!r}): {what} has an argument of {size:,} bytes; a "
                f"process takes at most {MAX_ARG_BYTES:,} per argument (Linux MAX_ARG_STRLEN): "
                "pass large data in a file"
            )
    if total > MAX_ARGV_BYTES:
        raise PipelineError(
            f"Exec({argv[0][:37]!r}...): {what} is {total:,} bytes long; k8sco keeps a node's "
            f"command under {MAX_ARGV_BYTES:,} bytes (the OS limit, ARG_MAX, also holds the "
            "environment): pass large data in a file"
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
    if isinstance(value, dict) and any(isinstance(v, SecretRef) for v in value.values()):
        return env_to_json(value)  # env with co.SecretRef: the reference, never a value
    return value


def _param_from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"image"} and isinstance(value["image"], dict):
        return Image.from_dict(value["image"])
    if isinstance(value, dict) and any(isinstance(v, dict) for v in value.values()):
        return env_from_json(value)
    return value


__all__ = ["PARAM_NAMES", "Exec", "Node", "Parallel", "Serial", "code_root"]
