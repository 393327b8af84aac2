"""A native function's command line back to its arguments: the dispatcher's half of
:func:`k8sco.native.bind_arguments`.

Pure and light (stdlib only), like :mod:`k8sco.native`.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any

from k8sco.errors import DecodeError
from k8sco.native import (
    NotEncodable,
    allows_bool,
    allows_none,
    decode,
    describe,
    signature,
    unwrap,
)


def parse_arguments(func: Any, argv: Sequence[str], label: str) -> dict[str, Any]:
    """Keyword arguments for ``func`` from a command line, decoded by its hints.

    Accepts what :func:`bind_arguments` writes and what a person types: ``--name=value``,
    ``--name value`` (not for booleans), ``--flag``/``--no-flag``, a bare ``--name`` for
    ``None``, dashes for underscores (``--max-n``), and bare values for the parameters not
    given by name, in order (``--`` ends the options). Raises ``DecodeError`` with one line
    starting with ``label`` that names the parameter and the type it expects.
    """
    try:
        sig, hints = signature(func)
    except NotEncodable as exc:
        raise DecodeError(f"{label}: {exc}") from None
    params = sig.parameters
    texts: dict[str, tuple[str, str | None]] = {}  # name -> (as typed, text)
    loose: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        arg = items[i]
        i += 1
        if arg == "--":
            loose.extend(items[i:])
            break
        if not arg.startswith("--"):
            loose.append(arg)
            continue
        key, eq, value = arg[2:].partition("=")
        name, negated = _param_name(key, hints)
        if name is None or (negated and eq):  # --no-flag takes no value
            known = ", ".join(f"--{p}" for p in params) or "no parameters"
            raise DecodeError(f"{label}: unknown parameter --{key} (it takes {known})")
        if name in texts:
            raise DecodeError(f"{label}: --{key} is given twice")
        hint = hints[name]
        if negated:
            texts[name] = (f"--{key}", "false")
        elif eq:
            texts[name] = (f"--{key}", value)
        elif allows_bool(hint) or i >= len(items) or items[i].startswith("--"):
            texts[name] = (f"--{key}", None)
        else:  # `--name value`
            texts[name] = (f"--{key}", items[i])
            i += 1
    free = [n for n, p in params.items() if p.kind is p.POSITIONAL_OR_KEYWORD and n not in texts]
    if len(loose) > len(free):
        raise DecodeError(
            f"{label}: unexpected argument {loose[len(free)]!r} "
            "(no parameter left for it; pass values as --name=value)"
        )
    for name, loose_text in zip(free, loose):
        texts[name] = (f"--{name}", loose_text)
    missing = [n for n, p in params.items() if p.default is p.empty and n not in texts]
    if missing:
        raise DecodeError(
            f"{label}: missing " + ", ".join(f"--{n}=<{describe(hints[n])}>" for n in missing)
        )
    out: dict[str, Any] = {}
    for name, (typed, text) in texts.items():
        try:
            out[name] = decode(text, hints[name])
        except Exception as exc:  # a user's from_str may raise anything: still bad input
            raise DecodeError(f"{label}: {_bad_value(typed, text, hints[name], exc)}") from None
    return out


def _param_name(key: str, hints: dict[str, Any]) -> tuple[str | None, bool]:
    """The parameter a ``--key`` names, and whether it is a ``--no-key`` negation (of a
    parameter that takes a bool: ``--no-n`` for ``n: int`` names nothing)."""
    for candidate in (key, key.replace("-", "_")):
        if candidate in hints:
            return candidate, False
    if key[:3] in ("no-", "no_"):
        name, negated = _param_name(key[3:], hints)
        if name is not None and not negated and allows_bool(hints[name]):
            return name, True
    return None, False


def _bad_value(typed: str, text: str | None, hint: Any, exc: BaseException) -> str:
    kind = describe(hint)
    if text is None:
        return f"{typed} needs a value ({kind})"
    shown = repr(text) if len(text) <= 60 else repr(text[:57]) + "..."
    message = f"{typed}={shown} is " + (
        kind if kind.startswith("one of") else f"not a valid {kind}"
    )
    detail = " ".join(str(exc).split())
    # int("x") and friends repeat the text; a parser's own message (JSON, an enum's names,
    # an ISO date) says what is wrong, so it is kept.
    core = unwrap(hint)
    if allows_none(core):  # `T | None`: judge by T
        others = [m for m in typing.get_args(core) if m is not type(None)]
        core = unwrap(others[0]) if len(others) == 1 else core
    if (
        detail
        and detail != f"expected {kind}"
        and core not in (int, float, bool)
        and not kind.startswith("one of")
    ):
        message += f" ({detail if len(detail) <= 120 else detail[:117] + '...'})"
    return message
