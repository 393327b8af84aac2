"""Native functions: check, encode and decode arguments by their type hints.

Pure and light (stdlib only, ``inspect`` loaded on first use): the dispatcher imports this
once per node.

A value travels as one ``--name=value`` command-line argument. The rules, chosen so that the
same command typed in a terminal does what the node does:

- ``str``: as is. ``int``/``float``: their literals. ``bytes``: UTF-8 text.
- ``bool``: ``--name`` / ``--no-name`` (Conducto's flags); ``--name=true|false|1|0|yes|no``
  also decode.
- ``None``: a bare ``--name`` (for hints that include ``bool``: ``--name=null``, since a bare
  flag means ``True``).
- ``list[T]`` / ``tuple`` / ``set``: items joined by commas, commas and backslashes inside
  items escaped with a backslash (``--xs=1,2,3``, ``--names=a\\,b,c``); when that would be
  ambiguous (an empty item, ``None`` items, a leading ``[``) a JSON array of the items'
  encodings. Both forms decode, so ``--xs=[1,2]`` typed by hand works too.
- ``dict``: a JSON object (values must be JSON values). ``Enum``: the member's name.
  ``Literal``: the option's text. ``datetime``/``date``/``time``: ISO 8601.
- ``pathlib.Path``: the path. A class with ``from_str`` (and ``to_str``): those methods;
  another class: ``str()`` and the class called on the text.
- ``A | B``: the first member the value fits; ``str`` is tried last when decoding. A value
  that would arrive as another member (``"5"`` for ``int | str``) is refused when the node
  is built.
- No hint and no default: ``str(value)`` (Conducto's serialization: a list, tuple or set
  joined by commas, commas in items escaped ``\\,``; ``to_str()`` or ``bytes`` decoded when
  the value has them), and the function receives that text. No hint but a default other
  than ``None``: the default's class is the hint (``count=4`` is an ``int``,
  ``show_sum=False`` a ``--show_sum``/``--no-show_sum`` flag); a value of another type is
  taken when its text decodes as that class (``count="5"``), as Conducto's dispatcher does.
  ``Any``: ``str``.

An argument can carry any text but NUL (``argv`` is NUL-terminated) and lone surrogates
(the command travels as UTF-8 JSON to Kubernetes); such values are refused when the node is
built.
"""

from __future__ import annotations

import enum
import json
import math
import sys
import types
import typing
from typing import Any, Literal, Union

from k8sco.validate import MAX_ARG_BYTES, MAX_ARGV_BYTES

_NONE_TYPE = type(None)
_NULL_WORDS = frozenset({"null", "none"})
_TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "n", "off"})
_SEQUENCES = (list, tuple, set, frozenset)


class NotEncodable(TypeError):
    """A value that does not fit its hint, or a hint that cannot be carried on a command line."""


class NoHint:
    """The hint of a parameter with neither a type hint nor a default: any value travels as
    its text (Conducto's ``str(value)``) and the function receives that ``str``."""


def unwrap(hint: Any) -> Any:
    """The hint with NewType, Annotated and "no hint" resolved."""
    while True:
        if hint is None or hint is Any or hint is object:
            return str
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
    """A union's members, unwrapped (``None`` becomes ``NoneType``, as in ``get_args``)."""
    return tuple(unwrap(m) for m in typing.get_args(hint))


def _is_sequence(hint: Any) -> bool:
    return typing.get_origin(hint) in _SEQUENCES or hint in _SEQUENCES


def _is_dict(hint: Any) -> bool:
    return typing.get_origin(hint) is dict or hint is dict


def _is_class(hint: Any, base: type | tuple[type, ...]) -> bool:
    return isinstance(hint, type) and issubclass(hint, base)


def describe(hint: Any) -> str:
    """A short human name for a hint: ``int``, ``list[int]``, ``int | None``."""
    hint = unwrap(hint)
    if hint is NoHint:
        return "str"
    if _is_union(hint):
        return " | ".join(describe(m) for m in _members(hint))
    if hint is _NONE_TYPE:
        return "None"
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(
            a.name if isinstance(a, enum.Enum) else repr(a) for a in typing.get_args(hint)
        )
    if origin is not None:
        args = typing.get_args(hint)
        inner = ", ".join(
            "..." if a is Ellipsis else "Any" if a is Any else describe(a) for a in args
        )
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{inner}]" if args else name
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))


def allows_bool(hint: Any) -> bool:
    """True when the hint is ``bool`` or a union with ``bool``: ``--name`` means ``True``."""
    hint = unwrap(hint)
    if _is_union(hint):
        return any(m is bool for m in _members(hint))
    return hint is bool


def is_bool(hint: Any) -> bool:
    return unwrap(hint) is bool


def allows_none(hint: Any) -> bool:
    hint = unwrap(hint)
    return hint is _NONE_TYPE or (_is_union(hint) and _NONE_TYPE in _members(hint))


# pathlib and datetime are not imported here: the dispatcher starts once per node, and a
# hint or value of their classes cannot exist unless the user's code imported them first.
class _Never:
    """A class nothing is an instance of, standing in for a class of an unimported module."""


def _date_classes() -> tuple[type, type, type]:
    """``(datetime, date, time)``, or stand-ins when no code has imported datetime."""
    module = sys.modules.get("datetime")
    return (module.datetime, module.date, module.time) if module else (_Never, _Never, _Never)


def _is_path(hint: Any) -> bool:
    module = sys.modules.get("pathlib")
    return module is not None and _is_class(hint, module.PurePath)


def _has_from_str(hint: Any) -> bool:
    return isinstance(hint, type) and callable(getattr(hint, "from_str", None))


# --- does a value fit its hint ------------------------------------------------------------


def fits(value: Any, hint: Any) -> bool:
    """True when ``value`` can be passed for a parameter with this hint."""
    hint = unwrap(hint)
    if hint is NoHint:
        return True
    if _is_union(hint):
        return any(fits(value, m) for m in _members(hint))
    if hint is _NONE_TYPE:
        return value is None
    origin = typing.get_origin(hint)
    if origin is Literal:
        # `1 in (True,)` is true in Python; an option must match in type too.
        return any(value == a and type(value) is type(a) for a in typing.get_args(hint))
    if _is_sequence(hint):
        return _fits_sequence(value, hint)
    if _is_dict(hint):
        return _fits_dict(value, hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is bytes:
        return isinstance(value, (bytes, bytearray)) and _is_utf8(value)
    datetime, date, _ = _date_classes()
    if hint is date:
        return isinstance(value, date) and not isinstance(value, datetime)
    if _is_path(hint):
        return isinstance(value, (str, sys.modules["pathlib"].PurePath))
    if isinstance(hint, type):
        return isinstance(value, hint)
    raise NotEncodable(f"type hint {describe(hint)} cannot be passed on a command line")


def _fits_sequence(value: Any, hint: Any) -> bool:
    if not isinstance(value, _SEQUENCES):
        return False
    args = typing.get_args(hint)
    if not args:
        return all(isinstance(v, str) for v in value)
    if typing.get_origin(hint) is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return len(value) == len(args) and all(fits(v, a) for v, a in zip(value, args))
    return all(fits(v, args[0]) for v in value)


def _fits_dict(value: Any, hint: Any) -> bool:
    if not (isinstance(value, dict) and _is_json(value)):
        return False
    args = typing.get_args(hint)
    if len(args) != 2 or args[1] is Any or args[1] is object:  # any JSON value
        return True
    return all(fits(v, args[1]) for v in value.values())


def _is_json(value: Any) -> bool:
    """True when JSON carries the value unchanged (str keys, no tuples, no NaN)."""
    if value is None or isinstance(value, (str, int)):  # bool is an int
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


def _is_utf8(value: bytes | bytearray) -> bool:
    try:
        bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- encoding -----------------------------------------------------------------------------


def _item_hints(hint: Any, count: int) -> list[Any]:
    args = typing.get_args(hint)
    if not args:
        return [str] * count
    if typing.get_origin(hint) is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return list(args)
    return [args[0]] * count


def encode(value: Any, hint: Any) -> str | None:
    """The command-line text of a value (``None`` for a bare flag meaning ``None``).

    Follows the hint, not the value's class, so an ``IntEnum`` passed for ``int`` travels as
    its number and a ``str`` subclass for ``str`` as its text.
    """
    hint = unwrap(hint)
    if hint is NoHint:
        return conducto_text(value)
    if value is None:
        return "null" if allows_bool(hint) else None  # a bare --flag means True
    if _is_union(hint):
        for member in _members(hint):
            if member is not _NONE_TYPE and fits(value, member):
                return encode(value, member)
        raise NotEncodable(f"{value!r} does not fit {describe(hint)}")
    if typing.get_origin(hint) is Literal:
        return value.name if isinstance(value, enum.Enum) else str(value)
    if _is_sequence(hint):
        return _encode_sequence(list(value), _item_hints(hint, len(value)))
    if _is_dict(hint):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if hint is str:
        return str.__str__(value)
    if hint is bool:
        return "true" if value else "false"
    if hint is int:
        return str(int(value))
    if hint is float:
        return repr(float(value))
    if hint is bytes:
        return bytes(value).decode("utf-8")
    if _is_class(hint, enum.Enum):
        return str(value.name)
    if _is_class(hint, _date_classes()):
        return str(value.isoformat())
    to_str = getattr(value, "to_str", None)
    if callable(to_str) and not _is_path(hint):
        return str(to_str())
    return str(value)


def conducto_text(value: Any) -> str:
    """A value's text as Conducto serializes an argument without a type hint
    (conducto/glue/method.py ``_make_quoted_command_parts``, conducto/shared/types.py
    ``serialize``): an iterable's items joined by commas (commas escaped ``\\,``),
    ``to_str()`` when the value has it, ``bytes`` decoded, ``str()`` otherwise."""
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        return ",".join(conducto_text(v).replace(",", "\\,") for v in value)
    to_str = getattr(value, "to_str", None)
    if callable(to_str):
        return str(to_str())
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="surrogateescape")
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
    return f"--{name}" if text is None else f"--{name}={text}"


# --- decoding -----------------------------------------------------------------------------


def decode(text: str | None, hint: Any) -> Any:
    """The value of a command-line text for a hint; ``None`` text is a bare ``--name``.

    Raises ``ValueError`` (or whatever a ``from_str`` raises) when the text does not decode.
    """
    hint = unwrap(hint)
    if hint is NoHint:
        if text is None:
            raise ValueError("needs a value (str)")
        return text
    if _is_union(hint):
        return _decode_union(text, hint)
    if text is None:
        if hint is bool:
            return True
        if hint is _NONE_TYPE:
            return None
        raise ValueError(f"needs a value ({describe(hint)})")
    if hint is _NONE_TYPE:
        if text.lower() in _NULL_WORDS:
            return None
        raise ValueError("expected null")
    if typing.get_origin(hint) is Literal:
        for option in typing.get_args(hint):
            if text == (option.name if isinstance(option, enum.Enum) else str(option)):
                return option
        raise ValueError(f"expected {describe(hint)}")
    if _is_sequence(hint):
        return _decode_sequence(text, hint)
    if _is_dict(hint):
        return _decode_dict(text, hint)
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
    if hint is bytes:
        return text.encode("utf-8")
    if hint in _date_classes():
        return _decode_iso(text, hint)
    if _is_class(hint, enum.Enum):
        try:
            return hint[text]
        except KeyError:
            raise ValueError("expected one of " + ", ".join(hint.__members__)) from None
    if _is_path(hint):
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
        if any(m is bool for m in members):
            return True  # a bare --flag; None travels as --flag=null
        if optional:
            return None
        return decode(None, members[0])
    if optional and any(m is bool for m in members) and text.lower() in _NULL_WORDS:
        return None
    # str accepts any text, so it goes last: "5" for `str | int` is the int 5.
    others = sorted((m for m in members if m is not _NONE_TYPE), key=lambda m: m is str)
    for member in others:
        try:
            return decode(text, member)
        except (ValueError, TypeError, KeyError):
            if len(others) == 1 and not (optional and text.lower() in _NULL_WORDS):
                raise  # `T | None`: T's own reason says more
    if optional and text.lower() in _NULL_WORDS:
        return None  # "--n=null" typed by hand for an int | None
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
    return items if origin is list else origin(items)


def _decode_item(text: str | None, hint: Any) -> Any:
    if text is not None:
        return decode(text, hint)
    if allows_none(hint):  # a JSON null item
        return None
    raise ValueError(f"null item where {describe(hint)} was expected")


def _decode_dict(text: str, hint: Any) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    if not _fits_dict(value, hint):
        raise ValueError(f"expected {describe(hint)}")
    return value


def split_escaped(text: str) -> list[str]:
    """Split on commas not escaped by a backslash; ``""`` is the empty list."""
    if text == "":
        return []
    items: list[str] = []
    current: list[str] = []
    chars = iter(text)
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
    return hint.fromisoformat(value)


# --- functions ----------------------------------------------------------------------------

_SIGNATURES: dict[Any, tuple[Any, dict[str, Any]]] = {}
_INFERRED: dict[Any, frozenset[str]] = {}


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
    # get_type_hints evaluates string annotations (`from __future__ import annotations`);
    # a function without annotations does not need it.
    annotations = getattr(func, "__annotations__", None)
    try:
        hints = typing.get_type_hints(func, include_extras=True) if annotations else {}
    except Exception as exc:
        raise NotEncodable(f"{label}: its type hints cannot be resolved: {exc}") from exc
    hints.pop("return", None)
    inferred = set()
    for name, param in sig.parameters.items():
        if name in hints:
            continue
        if param.default is param.empty or param.default is None:
            hints[name] = NoHint
        else:  # Conducto's rule: the default's class is the hint
            hints[name] = type(param.default)
            inferred.add(name)
    result = (sig, {name: hints[name] for name in sig.parameters})
    for name in sig.parameters:
        flag = name[3:]
        if name.startswith("no_") and flag in sig.parameters and allows_bool(result[1][flag]):
            raise NotEncodable(
                f"{label}: parameters {flag!r} (a bool) and {name!r} clash on a command line, "
                f"where --no-{flag} sets {flag}=False; rename one of them"
            )
    _SIGNATURES[func] = result
    _INFERRED[func] = frozenset(inferred)
    return result


def inferred_from_default(func: Any) -> frozenset[str]:
    """The parameters of ``func`` whose hint is their default's class (no type hint)."""
    signature(func)
    return _INFERRED.get(func, frozenset())


def bind_arguments(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
    """The ``--name=value`` arguments that call ``func(*args, **kwargs)`` from a command line.

    Checks the call when the node is built: a missing or extra argument, or a value that
    does not fit its hint or cannot travel on a command line, raises ``NotEncodable`` naming
    the function and the parameter. Only the arguments given are emitted; defaults stay in
    the function.
    """
    sig, hints = signature(func)
    label = f"{func.__qualname__}()"
    arguments = _bind_simply(func, sig, args, kwargs)
    if arguments is None:
        try:
            arguments = sig.bind(*args, **kwargs).arguments
        except TypeError as exc:
            raise NotEncodable(f"{label}: {exc}") from None
    inferred = inferred_from_default(func)
    out = []
    for name, value in arguments.items():
        hint = hints[name]
        plain = _PLAIN.get(hint, ()) if isinstance(hint, type) else ()  # hints may not hash
        if type(value) in plain:
            # An int, float or str for that very hint (or an int or str without one): the
            # checks below would all pass, and the text is the value's own; only a str can
            # hold what a command line cannot carry. A node is built this way 100,000 times.
            arg = f"--{name}={value!r}" if hint is float else f"--{name}={value}"
            problem = _cannot_carry(arg) if type(value) is str else None
            if problem:
                raise NotEncodable(f"{label}: parameter {name!r}: {problem}")
            out.append(arg)
            continue
        try:
            ok = fits(value, hint)
        except NotEncodable as exc:
            raise NotEncodable(f"{label}: parameter {name!r}: {exc}") from None
        if not ok and name in inferred and _decodes_as(value, hint):
            # Conducto passes str(value) and its dispatcher parses it by the default's
            # class (conducto/glue/method.py _get_state), so count="5" reaches count=4 as 5.
            hint = NoHint
        elif not ok:
            advice = (
                " (the class of its default; add a type hint to pass other types)"
                if name in inferred
                else ""
            )
            raise NotEncodable(
                f"{label}: parameter {name!r} expects {describe(hint)}, got "
                f"{type(value).__name__} {_short(value)}{advice}"
            )
        arg = encode_arg(name, value, hint)
        problem = _cannot_carry(arg) or _arrives_otherwise(value, hint)
        if problem:
            raise NotEncodable(f"{label}: parameter {name!r}: {problem}")
        out.append(arg)
    total = sum(len(arg.encode("utf-8")) + 1 for arg in out)
    if total > MAX_ARGV_BYTES:
        raise NotEncodable(
            f"{label}: its arguments are {total:,} bytes together; k8sco keeps a node's command "
            f"under {MAX_ARGV_BYTES:,} bytes (the OS limit, ARG_MAX, also holds the "
            "environment): pass large data in a file"
        )
    return out


# Hints whose values of these exact classes encode as their str() (repr() for float), with
# no check that can fail but _cannot_carry: bind_arguments' fast path.
_PLAIN: dict[Any, tuple[type, ...]] = {
    int: (int,),
    float: (float,),
    str: (str,),
    NoHint: (str, int),
}
_SIMPLE: dict[Any, tuple[tuple[str, ...], frozenset[str]] | None] = {}
_UNKNOWN = (("",), frozenset[str]())  # not looked at yet (None: not simple)


def _bind_simply(
    func: Any, sig: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any] | None:
    """``sig.bind(*args, **kwargs).arguments`` for a call that binds without a question (no
    argument missing, none extra or given twice); None for any other call, which
    ``inspect`` then binds, or refuses with its own message."""
    simple = _SIMPLE.get(func, _UNKNOWN)
    if simple is _UNKNOWN:
        params = list(sig.parameters.values())
        simple = _SIMPLE[func] = (
            (
                tuple(p.name for p in params),
                frozenset(p.name for p in params if p.default is p.empty),
            )
            if all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
            else None
        )
    if simple is None:
        return None
    names, required = simple
    if len(args) > len(names):
        return None
    arguments = dict(zip(names, args))
    used = len(arguments)
    for name in names[len(args) :]:
        if name in kwargs:
            arguments[name] = kwargs[name]
            used += 1
        elif name in required:
            return None
    if used != len(args) + len(kwargs):  # a keyword that is no parameter, or one given twice
        return None
    return arguments


def _decodes_as(value: Any, hint: Any) -> bool:
    """True when the value's Conducto text decodes as ``hint``."""
    try:
        decode(conducto_text(value), hint)
    except Exception:  # a class called on the text may raise anything: it does not decode
        return False
    return True


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _cannot_carry(arg: str) -> str | None:
    if "\0" in arg:
        return "a command line cannot carry NUL characters"
    try:
        size = len(arg.encode("utf-8"))
    except UnicodeEncodeError:
        return "a command line cannot carry lone surrogates (text that is not UTF-8)"
    if size > MAX_ARG_BYTES:
        return (
            f"its argument is {size:,} bytes; a process takes at most {MAX_ARG_BYTES:,} per "
            "argument (Linux MAX_ARG_STRLEN): pass large data in a file and its path here"
        )
    return None


def _arrives_otherwise(value: Any, hint: Any) -> str | None:
    """For a union of several types: what the value would turn into, if not itself."""
    hint = unwrap(hint)
    if not _is_union(hint) or sum(m is not _NONE_TYPE for m in _members(hint)) < 2:
        return None
    text = encode(value, hint)
    try:
        back = _decode_union(text, hint)
    except (ValueError, TypeError, KeyError):
        back = _NOT_DECODED
    if type(back) is type(value) and back == value:
        return None
    return (
        f"{_short(value)} would arrive as {_short(back)} ({describe(hint)} cannot tell them "
        "apart on a command line); narrow the type hint"
    )


_NOT_DECODED = object()
