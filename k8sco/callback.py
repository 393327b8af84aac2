"""Callbacks: what happens when a node changes state (``co.callback``, as in Conducto).

::

    node.on_error(co.callback.retry(3))                       # up to 3 more attempts
    node.on_error(co.callback.retry_with_double_mem(2))       # out of memory: twice the mem
    root.on_error(co.callback.email(to="team@example.com"))   # tell someone
    root.on_done(co.callback.slack_status("#builds", "built"), )

A callback is data, ``[name, {arguments}]`` in the serialised tree (Conducto's
``to_literal``), so it travels with the tree to a cluster; what it does is decided in
:mod:`k8sco.reconcile.callbacks` and sent by :mod:`k8sco.notify`. Every callback takes
``inherited`` (it also applies to every node below the one it is set on) and
``user_display`` (kept for Conducto's sake; k8sco shows every callback).

Retries by callback are new attempts of the node (on Kubernetes a new Job, ``<job>-a<n>``);
``retries=`` stays the Job's own ``backoffLimit``, counted inside one attempt.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from k8sco.errors import PipelineError, PipelineTypeError


class Event(str, enum.Enum):
    """The node events a callback is attached to (Conducto's state names)."""

    DONE = "done"
    ERROR = "error"
    QUEUED = "queued"
    RUNNING = "running"
    KILLED = "killed"
    STATE_CHANGE = "stateChange"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Callback:
    """One callback: Conducto's name and its keyword arguments (JSON values only)."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def inherited(self) -> bool:
        return bool(self.kwargs.get("inherited", False))

    def to_literal(self) -> list[Any]:
        """``[name, {arguments}]``: Conducto's serialised form."""
        return [self.name, dict(self.kwargs)]

    @classmethod
    def parse(cls, literal: Any, where: str = "callback") -> Callback:
        """The callback a :meth:`to_literal` stands for; PipelineError for anything else."""
        if not (
            isinstance(literal, (list, tuple))
            and len(literal) == 2
            and isinstance(literal[0], str)
            and isinstance(literal[1], Mapping)
        ):
            raise PipelineError(
                f"{where}: a callback must be [name, {{arguments}}], got {literal!r}"
            )
        name, kwargs = literal
        make = _FACTORIES.get(name)
        if make is None:
            raise PipelineError(
                f"{where}: unknown callback {name!r}; k8sco knows " + ", ".join(sorted(_FACTORIES))
            )
        try:
            made: Callback = make(**kwargs)
        except TypeError as exc:
            raise PipelineTypeError(f"{where}: callback {name}: {exc}") from None
        return made

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"co.callback.{self.name}({args})"


# Each attempt leaves a summary in the node's record (the Pipeline's status on a cluster):
# the count stays where that record stays small.
MAX_COUNT = 100


def _count(name: str, what: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
        raise PipelineTypeError(
            f"co.callback.{name}: {what} must be a whole number from 0 to {MAX_COUNT}, "
            f"got {value!r}"
        )
    return value


def _flag(name: str, what: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise PipelineTypeError(f"co.callback.{name}: {what} must be True or False, got {value!r}")
    return value


def _text(name: str, what: str, value: Any, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise PipelineTypeError(
            f"co.callback.{name}: {what} must be a non-empty string, got {value!r}"
        )
    return value


def _make(name: str, inherited: Any, user_display: Any, **kwargs: Any) -> Callback:
    kwargs["inherited"] = _flag(name, "inherited", inherited)
    kwargs["user_display"] = _flag(name, "user_display", user_display)
    return Callback(name, kwargs)


def retry(max_num_retries: int, *, inherited: bool = False, user_display: bool = True) -> Callback:
    """Run a failed node again, up to ``max_num_retries`` more times."""
    n = _count("retry", "max_num_retries", max_num_retries)
    return _make("retry", inherited, user_display, max_num_retries=n)


def retry_then_skip(
    max_num_retries: int, *, inherited: bool = False, user_display: bool = True
) -> Callback:
    """As :func:`retry`; when the last attempt fails too, the node is skipped (its parent
    goes on as if it had succeeded)."""
    n = _count("retry_then_skip", "max_num_retries", max_num_retries)
    return _make("retry_then_skip", inherited, user_display, max_num_retries=n)


def retry_with_double_mem(
    max_num_retries: int, *, inherited: bool = False, user_display: bool = True
) -> Callback:
    """Run a failed node again up to ``max_num_retries`` times; an attempt killed for
    running out of memory (Kubernetes' and Docker's OOMKilled; exit by SIGKILL in process
    mode) is followed by one with twice its memory."""
    n = _count("retry_with_double_mem", "max_num_retries", max_num_retries)
    return _make("retry_with_double_mem", inherited, user_display, max_num_retries=n)


def skip_some_errors(
    max_num_errors: int, *, inherited: bool = False, user_display: bool = True
) -> Callback:
    """Skip up to ``max_num_errors`` failed Exec nodes in the subtree (the node's own
    failure counts when it is an Exec node), so that their parents go on."""
    n = _count("skip_some_errors", "max_num_errors", max_num_errors)
    return _make("skip_some_errors", inherited, user_display, max_num_errors=n)


def handle_memory_errors(
    mem_limits: Sequence[float] = (8, 32),
    max_duration: float = 3600,
    *,
    inherited: bool = False,
    user_display: bool = True,
) -> Callback:
    """On an out-of-memory kill only: run the node again with twice the memory while that
    stays within ``mem_limits[1]`` GB and the attempt ran at most ``max_duration`` seconds;
    below ``mem_limits[0]`` GB always, above it once."""
    where = "co.callback.handle_memory_errors"
    if (
        not isinstance(mem_limits, (list, tuple))
        or len(mem_limits) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in mem_limits)
        or not 0 < mem_limits[0] <= mem_limits[1]
    ):
        raise PipelineTypeError(
            f"{where}: mem_limits must be (lower, upper) GB with 0 < lower <= upper, "
            f"got {mem_limits!r}"
        )
    if (
        not isinstance(max_duration, (int, float))
        or isinstance(max_duration, bool)
        or max_duration <= 0
    ):
        raise PipelineTypeError(
            f"{where}: max_duration must be positive seconds, got {max_duration!r}"
        )
    return _make(
        "handle_memory_errors",
        inherited,
        user_display,
        mem_limits=[mem_limits[0], mem_limits[1]],
        max_duration=max_duration,
    )


def _recipients(name: str, what: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(
        isinstance(v, str) and v.strip() for v in items
    ):
        raise PipelineTypeError(
            f"co.callback.{name}: {what} must be an address or a list of addresses, got {value!r}"
        )
    return list(items)


def email(
    to: str | Sequence[str] | None = None,
    cc: str | Sequence[str] | None = None,
    *,
    inherited: bool = False,
    user_display: bool = True,
) -> Callback:
    """Mail a summary of the node to ``to`` and ``cc`` (through the SMTP server that
    ``K8SCO_SMTP_*`` names: :mod:`k8sco.notify`)."""
    to_list = _recipients("email", "to", to)
    cc_list = _recipients("email", "cc", cc)
    if not to_list and not cc_list:
        raise PipelineTypeError("co.callback.email: give at least one recipient (to= or cc=)")
    return _make("email", inherited, user_display, to=to_list, cc=cc_list)


def slack_status(
    recipient: str,
    message: str | None = None,
    node_summary: bool = False,
    *,
    inherited: bool = False,
    user_display: bool = True,
) -> Callback:
    """Post the node's state (and ``message``) to a Slack channel or user id."""
    _text("slack_status", "recipient", recipient, optional=False)
    _text("slack_status", "message", message)
    _flag("slack_status", "node_summary", node_summary)
    return _make(
        "slack_status",
        inherited,
        user_display,
        recipient=recipient,
        message=message,
        node_summary=node_summary,
    )


def github_status(
    url: str, sha: str, *, inherited: bool = False, user_display: bool = True
) -> Callback:
    """Set a commit status (``pending``, ``success``, ``failure``) on GitHub for the node:
    ``url`` is the repository (``https://github.com/owner/repo``), ``sha`` the commit."""
    _text("github_status", "url", url, optional=False)
    _text("github_status", "sha", sha, optional=False)
    return _make("github_status", inherited, user_display, url=url, sha=sha)


def github_pipeline_status(
    url: str, sha: str, *, inherited: bool = False, user_display: bool = True
) -> Callback:
    """As :func:`github_status`, for the whole pipeline (the root's state)."""
    _text("github_pipeline_status", "url", url, optional=False)
    _text("github_pipeline_status", "sha", sha, optional=False)
    return _make("github_pipeline_status", inherited, user_display, url=url, sha=sha)


_FACTORIES: dict[str, Any] = {
    f.__name__: f
    for f in (
        retry,
        retry_then_skip,
        retry_with_double_mem,
        skip_some_errors,
        handle_memory_errors,
        email,
        slack_status,
        github_status,
        github_pipeline_status,
    )
}

# What `k8sco run --docker`'s shim (k8sco.containers.run) writes to a node's log when Docker
# says the container was OOMKilled: its exit code alone cannot tell.
OOM_MARKER = "[k8sco] OOMKilled"

RETRIES = frozenset({"retry", "retry_then_skip", "retry_with_double_mem", "handle_memory_errors"})
NOTIFICATIONS = frozenset({"email", "slack_status", "github_status", "github_pipeline_status"})


def check_callbacks(path: str, name: str, value: Any) -> list[list[Any]]:
    """The ``callbacks`` node parameter: ``[[event, [name, {arguments}]], ...]``, each
    callback parsed again so that a tree read back holds only callbacks k8sco knows."""
    if not isinstance(value, (list, tuple)):
        raise PipelineTypeError(f"{path}: parameter {name!r} expects a list, got {value!r}")
    out: list[list[Any]] = []
    for item in value:
        if not (isinstance(item, (list, tuple)) and len(item) == 2):
            raise PipelineError(f"{path}: a callback entry must be [event, callback], got {item!r}")
        event, cb = item
        try:
            ev = Event(event)
        except ValueError:
            raise PipelineError(
                f"{path}: unknown callback event {event!r}; one of "
                + ", ".join(e.value for e in Event)
            ) from None
        parsed = cb if isinstance(cb, Callback) else Callback.parse(cb, path)
        out.append([ev.value, parsed.to_literal()])
    return out


def entries(value: Any) -> list[tuple[Event, Callback]]:
    """The ``callbacks`` parameter's value (as :func:`check_callbacks` left it), parsed."""
    return [(Event(event), Callback.parse(cb)) for event, cb in value or ()]


__all__ = [
    "Callback",
    "Event",
    "email",
    "github_pipeline_status",
    "github_status",
    "handle_memory_errors",
    "retry",
    "retry_then_skip",
    "retry_with_double_mem",
    "skip_some_errors",
    "slack_status",
]
