"""Native functions: check, encode and decode arguments by their type hints.

Pure and light (stdlib only): the dispatcher imports this once per node.

A value travels as one ``--name=value`` command-line argument. The rules, chosen so that the
same command typed in a terminal does what the node does:

- ``bool``: ``--name`` / ``--no-name`` (Conducto's flags); ``--name=true|false|1|0|yes|no``
  also decode.
- ``None``: a bare ``--name`` (for hints that include ``bool``: ``--name=null``).
- ``list[T]`` / ``tuple``: items joined by commas, commas and backslashes inside items escaped
  with a backslash (``--xs=1,2,3``, ``--names=a\\,b,c``); when that would be ambiguous (an empty
  item, ``None`` items, a leading ``[``) a JSON array of the items' encodings. Both forms decode.
- ``dict``: JSON. ``Enum``: the member's name. ``datetime``/``date``/``time``: ISO 8601.
- ``pathlib.Path``: the path. A class with ``from_str`` (and ``to_str``): those methods.
- No hint (or ``Any``): ``str``.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import pathlib
import types
import typing
from typing import Any, Literal, Union

_NONE_TYPE = type(None)
_NULL_WORDS = frozenset({"null", "none"})
_TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "n", "off"})


class NotEncodable(TypeError):
    """A value that does not fit its hint, or a hint that cannot be carried on a command line."""


def _unwrap(hint: Any) -> Any:
    """The hint with NewType, Annotated and "no hint" resolved."""
    while True:
        if hint is None or hint is Any or hint is object or hint is typing.Any:
            return str
        if hint is _NONE_TYPE:
            return _NONE_TYPE
        supertype = getattr(hint, "__supertype__", None)  # typing.NewType
        if supertype is not None:
            hint = supertype
            continue
        if typing.get_origin(hint) is typing.Annotated:
            hint = typing.get_args(hint)[0]
            continue
        return hint


def _is_union(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    return origin is Union or origin is types.UnionType


def _members(hint: Any) -> tuple[Any, ...]:
    return tuple(_unwrap(a) for a in typing.get_args(hint))


def describe(hint: Any) -> str:
    """A short human name for a hint: ``int``, ``list[int]``, ``int | None``."""
    hint = _unwrap(hint)
    if _is_union(hint):
        return " | ".join(describe(m) for m in _members(hint))
    if hint is _NONE_TYPE:
        return "None"
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin is not None:
        args = typing.get_args(hint)
        inner = ", ".join("..." if a is Ellipsis else describe(a) for a in args)
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{inner}]" if args else name
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))


def allows_bool(hint: Any) -> bool:
    hint = _unwrap(hint)
    if _is_union(hint):
        return any(m is bool for m in _members(hint))
    return hint is bool


def is_bool(hint: Any) -> bool:
    return _unwrap(hint) is bool


def _has_from_str(hint: Any) -> bool:
    return isinstance(hint, type) and callable(getattr(hint, "from_str", None))


def fits(value: Any, hint: Any) -> bool:
    """True when ``value`` can be passed for a parameter with this hint."""
    hint = _unwrap(hint)
    if _is_union(hint):
        return any(fits(value, m) for m in _members(hint))
    if hint is _NONE_TYPE:
        return value is None
    origin = typing.get_origin(hint)
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple):
        return _fits_sequence(value, hint)
    if origin is dict or hint is dict:
        return isinstance(value, dict) and _json_safe(value)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is dt.date:
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    if isinstance(hint, type) and issubclass(hint, pathlib.PurePath):
        return isinstance(value, (str, pathlib.PurePath))
    if isinstance(hint, type):
        return isinstance(value, hint)
    raise NotEncodable(f"type hint {describe(hint)} cannot be passed on a command line")


def _fits_sequence(value: Any, hint: Any) -> bool:
    if not isinstance(value, (list, tuple, set, frozenset)):
        return False
    args = typing.get_args(hint)
    if not args:
        return all(isinstance(v, str) for v in value)
    if typing.get_origin(hint) is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return len(value) == len(args) and all(fits(v, a) for v, a in zip(value, args))
    return all(fits(v, args[0]) for v in value)


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _item_hints(hint: Any, count: int) -> list[Any]:
    args = typing.get_args(hint)
    if not args:
        return [str] * count
    if typing.get_origin(hint) is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return list(args)
    return [args[0]] * count


def encode(value: Any, hint: Any) -> str | None:
    """The command-line text of a value (``None`` for a bare flag meaning ``None``)."""
    hint = _unwrap(hint)
    if value is None:
        return None
    if _is_union(hint):
        for member in _members(hint):
            if member is not _NONE_TYPE and fits(value, member):
                return encode(value, member)
        raise NotEncodable(f"{value!r} does not fit {describe(hint)}")
    origin = typing.get_origin(hint)
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple):
        return _encode_sequence(list(value), _item_hints(hint, len(value)))
    if origin is dict or hint is dict:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if hint is bool:
        return "true" if value else "false"
    if hint is float:
        return repr(float(value))
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, pathlib.PurePath):
        return str(value)
    to_str = getattr(value, "to_str", None)
    if callable(to_str) and not isinstance(value, str):
        return str(to_str())
    return str(value)


def _encode_sequence(values: list[Any], hints: list[Any]) -> str:
    items = [encode(v, h) for v, h in zip(values, hints)]
    plain = [i for i in items if i is not None]
    if len(plain) == len(items) and all(plain) and not (plain and plain[0].startswith("[")):
        return ",".join(i.replace("\\", "\\\\").replace(",", "\\,") for i in plain)
    return json.dumps(items, ensure_ascii=False)


def encode_arg(name: str, value: Any, hint: Any) -> str:
    """One ``--name=value`` argument (``--name``/``--no-name`` for booleans)."""
    if isinstance(value, bool) and allows_bool(hint):
        return f"--{name}" if value else f"--no-{name}"
    text = encode(value, hint)
    if text is None:
        return f"--{name}=null" if allows_bool(hint) else f"--{name}"
    return f"--{name}={text}"


def decode(text: str | None, hint: Any) -> Any:
    """The value of a command-line text for a hint; ``None`` text is a bare ``--name``.

    Raises ``ValueError`` with the expected type when the text does not decode.
    """
    hint = _unwrap(hint)
    if _is_union(hint):
        return _decode_union(text, hint)
    if text is None:
        if hint is bool:
            return True
        raise ValueError(f"needs a value ({describe(hint)})")
    if hint is _NONE_TYPE:
        if text.lower() in _NULL_WORDS:
            return None
        raise ValueError("expected null")
    origin = typing.get_origin(hint)
    if origin is Literal:
        for option in typing.get_args(hint):
            if text == (option.name if isinstance(option, enum.Enum) else str(option)):
                return option
        raise ValueError(f"expected {describe(hint)}")
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple):
        return _decode_sequence(text, hint)
    if origin is dict or hint is dict:
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object")
        return value
    if hint is str:
        return text
    if hint is bool:
        word = text.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise ValueError("expected true or false")
    if hint is int:
        return int(text)
    if hint is float:
        return float(text)
    if hint in (dt.datetime, dt.date, dt.time):
        return _decode_iso(text, hint)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint[text]
        except KeyError:
            raise ValueError("expected one of " + ", ".join(hint.__members__)) from None
    if isinstance(hint, type) and issubclass(hint, pathlib.PurePath):
        return hint(text)
    if _has_from_str(hint):
        return hint.from_str(text)
    if isinstance(hint, type):
        return hint(text)
    raise ValueError(f"cannot decode {describe(hint)}")


def _decode_union(text: str | None, hint: Any) -> Any:
    members = _members(hint)
    optional = _NONE_TYPE in members
    if text is None:
        if optional:
            return None
        return decode(None, next(m for m in members if m is not _NONE_TYPE))
    if optional and any(m is bool for m in members) and text.lower() in _NULL_WORDS:
        return None
    for member in members:
        if member is _NONE_TYPE:
            continue
        try:
            return decode(text, member)
        except (ValueError, TypeError, KeyError):
            continue
    raise ValueError(f"expected {describe(hint)}")


def _decode_sequence(text: str, hint: Any) -> Any:
    if text.startswith("["):
        raw = json.loads(text)
        if not isinstance(raw, list):
            raise ValueError("expected a JSON array")
        texts: list[str | None] = [
            v if isinstance(v, str) or v is None else json.dumps(v) for v in raw
        ]
    else:
        texts = list(split_escaped(text))
    hints = _item_hints(hint, len(texts))
    if len(hints) != len(texts):
        raise ValueError(f"expected {len(hints)} items, got {len(texts)}")
    items = [_decode_item(t, h) for t, h in zip(texts, hints)]
    origin = typing.get_origin(hint) or hint
    return origin(items) if origin is not list else items


def _decode_item(text: str | None, hint: Any) -> Any:
    if text is None:
        return decode(None, hint) if _is_union(_unwrap(hint)) else _reject_null(hint)
    return decode(text, hint)


def _reject_null(hint: Any) -> Any:
    raise ValueError(f"null item where {describe(hint)} was expected")


def split_escaped(text: str) -> list[str]:
    """Split on commas not escaped by a backslash; ``""`` is the empty list."""
    if text == "":
        return []
    items, current, chars = [], [], iter(text)
    for char in chars:
        if char == "\\":
            current.append(next(chars, "\\"))
        elif char == ",":
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return items


def _decode_iso(text: str, hint: Any) -> Any:
    value = text.strip()
    if value.endswith("Z"):  # fromisoformat accepts "Z" only from Python 3.11 on
        value = value[:-1] + "+00:00"
    result = hint.fromisoformat(value)
    return result


# --- functions ---------------------------------------------------------------------------

_SIGNATURES: dict[Any, tuple[Any, dict[str, Any]]] = {}


def signature(func: Any) -> tuple[Any, dict[str, Any]]:
    """``(inspect.Signature, {parameter: hint})`` for a function that can run as a node.

    Raises ``NotEncodable`` (a ``TypeError``) for what a command line cannot call: a lambda,
    a nested function or method, ``*args``/``**kwargs`` and positional-only parameters.
    """
    cached = _SIGNATURES.get(func)
    if cached is not None:
        return cached
    import inspect  # not needed by callers that only encode or decode values

    label = f"{getattr(func, '__qualname__', func)!s}()"
    code = getattr(func, "__code__", None)
    if code is None or not inspect.isfunction(inspect.unwrap(func)):
        raise NotEncodable(f"{label} must be a plain function defined at module level")
    if "<" in func.__qualname__ or "." in func.__qualname__:
        raise NotEncodable(
            f"{label} must be defined at module level (not a lambda, method or nested "
            "function), so the dispatcher can import it by name"
        )
    sig = inspect.signature(func)
    for param in sig.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise NotEncodable(
                f"{label}: parameter {param.name!r} is *args/**kwargs; a node passes each "
                "argument by name, so give every parameter a name"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise NotEncodable(
                f"{label}: parameter {param.name!r} is positional-only; a node passes each "
                "argument by name"
            )
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:
        raise NotEncodable(f"{label}: its type hints cannot be resolved: {exc}") from exc
    hints.pop("return", None)
    result = (sig, {name: hints.get(name, str) for name in sig.parameters})
    _SIGNATURES[func] = result
    return result


def bind_arguments(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
    """The ``--name=value`` arguments that call ``func(*args, **kwargs)`` from a command line.

    Checks the call when the node is built: a missing or extra argument, or a value that
    does not fit its hint, raises ``NotEncodable`` naming the function and the parameter.
    Only the arguments given are emitted; defaults stay in the function.
    """
    sig, hints = signature(func)
    label = f"{func.__qualname__}()"
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as exc:
        raise NotEncodable(f"{label}: {exc}") from None
    out = []
    for name, value in bound.arguments.items():
        hint = hints[name]
        try:
            ok = fits(value, hint)
        except NotEncodable as exc:
            raise NotEncodable(f"{label}: parameter {name!r}: {exc}") from None
        if not ok:
            shown = repr(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            advice = "; add a type hint to pass other types" if hint is str else ""
            raise NotEncodable(
                f"{label}: parameter {name!r} expects {describe(hint)}, got "
                f"{type(value).__name__} {shown}{advice}"
            )
        out.append(encode_arg(name, value, hint))
    return out
