"""Live controls of a pipeline, as Conducto's: reset, skip, unskip and modify.

Pure: no clock, no environment, no I/O. The local runner (through its run directory) and the
Kubernetes controller (through the Pipeline's ``spec.controls``) apply the same controls
with these functions:

- ``reset PATH``: every Exec node under PATH back to pending, done ones too, so that the
  subtree runs again (:func:`reset_records`). A one-time effect on the records: the local
  runner applies a request once; the controller applies each ``spec.controls`` entry after
  the one whose token ``status.controlToken`` records, and records the last one's token in
  the same status write that drops the records (:func:`new_controls`, :func:`last_token`).
- ``skip PATH`` / ``unskip PATH``: the node's ``skip`` parameter set or cleared. A skipped
  node counts as done for its parent, whatever it recorded, so a Serial goes on past a
  skipped failure; its record is kept, and ``unskip`` shows it again (a failure fails its
  Serial again), as Conducto's ``error_skipped`` goes back to ``error``.
- ``modify PATH --set NAME=VALUE --command CMD``: parameters (checked by
  :func:`k8sco.params.check_param`, as when the tree is built) and an Exec's command set on
  the node. What has started keeps running as it was; the change holds for what starts
  afterwards: a node that has not started yet, a retry, a rerun or a reset.

Skip, unskip and modify change the tree, not the records: they are overrides, folded in
order over the tree each time it is compiled (:func:`overridden`), so applying them again is
harmless and a restarted controller reaches the same tree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from k8sco.engine import EXEC, SERIAL, Graph, NodeState
from k8sco.errors import PipelineError, PipelineTypeError, UsageError
from k8sco.lazy import EXECUTE, GENERATE
from k8sco.params import check_param
from k8sco.tree import Exec, Node, _check_command

RESET, SKIP, UNSKIP, MODIFY = "reset", "skip", "unskip", "modify"
ACTIONS = (RESET, SKIP, UNSKIP, MODIFY)
# Not changed by modify: skip has its own controls; an image is built (or pulled by name)
# before the run, so a new one means applying the pipeline again.
# Callbacks are registered through on_done(...) and the like, not given as values; which
# nodes share a container is fixed when the pipeline starts (their Jobs are made so).
NOT_MODIFIABLE = frozenset(
    {"skip", "image", "callbacks", "container_reuse_context", "same_container"}
)
_HOW = {"skip": "use skip and unskip", "callbacks": "set them in the pipeline"}
MAX_CONTROLS = 200  # entries a Pipeline's spec.controls may hold (it is folded per compile)


@dataclass(frozen=True)
class Control:
    """One control. ``values`` (modify) are parameter values as given (JSON), checked when
    applied; ``token`` tells a cluster's controls apart (empty locally)."""

    action: str
    path: str
    values: Mapping[str, Any] = field(default_factory=dict)
    command: str | None = None
    token: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "path": self.path}
        if self.token:
            out["token"] = self.token
        if self.values:
            out["set"] = dict(self.values)
        if self.command is not None:
            out["command"] = self.command
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "control") -> Control:
        """A control from its JSON form; PipelineError naming ``where`` when malformed."""
        if not isinstance(data, Mapping):
            raise PipelineError(f"{where} is not an object")
        action, path = data.get("action"), data.get("path", "/")
        values, command = data.get("set") or {}, data.get("command")
        if action not in ACTIONS:
            raise PipelineError(f"{where}: unknown action {action!r}: {', '.join(ACTIONS)}")
        if not isinstance(path, str) or not isinstance(values, Mapping):
            raise PipelineError(f"{where}: path must be a string and set an object")
        if command is not None and not isinstance(command, str):
            raise PipelineError(f"{where}: command must be a string")
        return cls(
            str(action), normal_path(path), dict(values), command, str(data.get("token") or "")
        )

    def describe(self) -> str:
        """What the control does, in a few words (the answers of the CLI and the UI)."""
        if self.action == RESET:
            return f"reset {self.path}: its nodes run again"
        if self.action == SKIP:
            return f"skipped {self.path}"
        if self.action == UNSKIP:
            return f"unskipped {self.path}"
        changes = [f"{k}={json.dumps(v)}" for k, v in self.values.items()]
        if self.command is not None:
            changes.append("command")
        return f"modified {self.path} ({', '.join(changes)}): for what starts from now on"


def normal_path(path: str) -> str:
    return "/" + "/".join(p for p in path.split("/") if p)


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """``--set NAME=VALUE`` options as parameter values: VALUE read as JSON when it is
    (``2``, ``true``, ``{"A": "1"}``), else as the string it is (``500m``, ``1h``)."""
    out: dict[str, Any] = {}
    for item in items:
        name, eq, text = item.partition("=")
        if not eq or not name.strip():
            raise UsageError(f"--set {item!r}: give NAME=VALUE (e.g. --set cpu=2)")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        out[name.strip()] = value
    return out


def make(
    action: str,
    path: str,
    values: Mapping[str, Any] | None = None,
    command: str | None = None,
    token: str = "",
) -> Control:
    """A control as the CLI and the UI ask for it; UsageError when it cannot be one."""
    if action not in ACTIONS:
        raise UsageError(f"unknown control {action!r}: {', '.join(ACTIONS)}")
    values = dict(values or {})
    if action == MODIFY and not values and command is None:
        raise UsageError("modify: give --set NAME=VALUE and/or --command CMD")
    if action != MODIFY and (values or command is not None):
        raise UsageError(f"{action}: --set and --command go with modify only")
    return Control(action, normal_path(path), values, command, token)


def check(root: Node, control: Control, *, cluster: bool = False) -> None:
    """Whether ``control`` applies to ``root``; UsageError (a PipelineError) naming the path
    and the parameter otherwise. Changes nothing. ``cluster``: for a Pipeline, where a
    shared container is one Job (see :func:`_check_cluster`)."""
    _apply(root, control, dry=True)
    if cluster:
        _check_cluster(root, control)


def _check_cluster(root: Node, control: Control) -> None:
    """On a cluster a shared container (container_reuse_context=NEW) runs in one Job whose
    pod runs its nodes in order and ends at the first failure: skipping one of its nodes
    would need a new Job for the nodes after it, which the controller does not make (they
    stayed queued). The whole shared container can be skipped (or reset) instead."""
    from k8sco import sequence

    if control.action not in (SKIP, UNSKIP):
        return
    node = root[control.path]
    head = sequence.head_of(node)
    if head is not None and head != control.path:
        raise PipelineError(
            f"{control.path}: on a cluster the nodes of a shared container run in one Job: "
            f"{control.action} {head} (its shared container), or reset it"
        )


def apply(root: Node, control: Control) -> None:
    """Apply a skip, unskip or modify to ``root`` in place, everything checked before
    anything is set, so that a control that cannot apply changes nothing (reset changes
    records: :func:`reset_records`)."""
    _apply(root, control, dry=False)


def _apply(root: Node, control: Control, dry: bool) -> None:
    path = control.path
    if path not in root:
        raise PipelineError(f"no node {path!r} in the pipeline")
    node = root[path]
    if control.action == UNSKIP:
        above = [a for a in _ancestors(node) if a.params.get("skip")]
        if above:
            raise PipelineError(
                f"{path} is skipped because {above[-1].path} is: unskip {above[-1].path}"
            )
    values: dict[str, Any] = {}
    command: str | list[str] | None = None
    if control.action == MODIFY:
        for name, value in control.values.items():
            if name in NOT_MODIFIABLE:
                how = _HOW.get(name, "apply the pipeline again")
                raise PipelineError(f"{path}: parameter {name!r} cannot be modified live ({how})")
            try:
                values[name] = check_param(node.kind, path, name, value)
            except PipelineTypeError as exc:  # one kind of refusal for every caller
                raise PipelineError(str(exc)) from None
        if control.command is not None:
            if not isinstance(node, Exec):
                raise PipelineError(f"{path}: --command applies to Exec nodes, not a {node.kind}")
            try:
                command = _check_command(control.command)
            except PipelineError as exc:
                raise PipelineError(f"{path}: the new command: {exc}") from None
    if dry:
        return
    if control.action == SKIP:
        node.set(skip=True)
    elif control.action == UNSKIP:
        node.skip = None  # not set: the default, False
    elif control.action == MODIFY:
        if values:
            node.set(**values)
        if command is not None and isinstance(node, Exec):
            node.command, node.function = command, None


def _ancestors(node: Node) -> list[Node]:
    out = []
    up = node.parent
    while up is not None:
        out.append(up)
        up = up.parent
    return out[::-1]


def overridden(root: Node, controls: Iterable[Any]) -> Node:
    """``root`` with the skips, unskips and modifications of ``controls`` (Controls or
    their JSON form, as ``spec.controls`` holds them) applied in order, in place. A control
    whose node is not in the tree (yet: inside a co.Lazy node not expanded) is passed over;
    one that is not valid is an error naming it."""
    for i, item in enumerate(controls):
        control = item if isinstance(item, Control) else Control.from_dict(item, _where(i))
        if control.action == RESET or control.path not in root:
            continue
        try:
            apply(root, control)
        except PipelineError as exc:
            raise PipelineError(f"{_where(i)}: {exc}") from None
    return root


def _where(i: int) -> str:
    return f"spec.controls[{i}]"


def reset_records(
    graph: Graph, recorded: Mapping[str, NodeState], path: str
) -> tuple[dict[str, NodeState], list[str]]:
    """``recorded`` without the records of the Exec nodes under ``path`` (done ones too:
    they run again), and the paths dropped. The Generate node of a co.Lazy node that has
    generated its nodes keeps its record: those nodes run again, and are not generated a
    second time (``k8sco rerun`` regenerates a Lazy node that failed)."""
    out = dict(recorded)
    dropped = []
    for i in graph.subtree(path):
        p = graph.paths[i]
        if graph.kinds[i] == EXEC and p in out and not _generated(graph, i):
            del out[p]
            dropped.append(p)
    return out, dropped


def _generated(graph: Graph, i: int) -> bool:
    """Whether Exec ``i`` is the Generate node of an expanded co.Lazy node: a Serial's
    first child named Generate, beside an Execute with nodes in it (k8sco.lazy)."""
    parent = graph.parents[i]
    if parent < 0 or graph.kinds[parent] != SERIAL or not graph.paths[i].endswith("/" + GENERATE):
        return False
    kids = graph.children[parent]
    return (
        len(kids) == 2
        and kids[0] == i
        and graph.paths[kids[1]].endswith("/" + EXECUTE)
        and bool(graph.children[kids[1]])
    )


# --- on a cluster: spec.controls, applied once each -------------------------------------------

STATUS_TOKEN = "controlToken"  # status: the token of the last spec.controls entry applied


def spec_controls(spec: Mapping[str, Any]) -> list[Any]:
    found = spec.get("controls")
    return list(found) if isinstance(found, list) else []


def new_controls(spec: Mapping[str, Any], status: Mapping[str, Any]) -> list[Control]:
    """The entries of ``spec.controls`` not yet applied: those after the one whose token
    ``status.controlToken`` records (all of them when it records none). When the recorded
    token is no longer in the list (edited by hand), none: never a reset twice."""
    items = spec_controls(spec)
    done = status.get(STATUS_TOKEN)
    start = 0
    if done:
        tokens = [i.get("token") if isinstance(i, Mapping) else None for i in items]
        if done not in tokens:
            return []
        start = tokens.index(done) + 1
    out = []
    for i in range(start, len(items)):
        try:
            out.append(Control.from_dict(items[i], _where(i)))
        except PipelineError:
            continue  # refused where the tree is compiled (overridden), with its Event
    return out


def last_token(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str | None:
    """The token to record in ``status.controlToken`` once the new controls are applied."""
    items = spec_controls(spec)
    for item in reversed(items):
        if isinstance(item, Mapping) and item.get("token"):
            return str(item["token"])
    found = status.get(STATUS_TOKEN)
    return str(found) if found else None


def cluster_resets(
    graph: Graph,
    recorded: Mapping[str, NodeState],
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
) -> tuple[dict[str, NodeState], list[str]]:
    """The controller's hook: ``recorded`` after the resets of ``spec.controls`` not yet
    applied, and the paths whose records were dropped (their Jobs are to be deleted)."""
    dropped: list[str] = []
    out = dict(recorded)
    for control in new_controls(spec, status):
        if control.action == RESET and control.path in graph.index:
            out, gone = reset_records(graph, out, control.path)
            dropped.extend(gone)
    return out, dropped


__all__ = [
    "ACTIONS",
    "Control",
    "apply",
    "check",
    "cluster_resets",
    "last_token",
    "make",
    "new_controls",
    "overridden",
    "parse_sets",
    "reset_records",
]
