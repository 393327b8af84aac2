"""YAML for Kubernetes objects: block style, in the objects' own key order, and fast.

Pure. ``yaml.dump`` (even libyaml's) takes about 2.5 s for 10,000 Jobs; this emitter takes
about a tenth of that, because the objects are plain JSON data (dicts, lists, str, int,
float, bool, None) and most strings repeat, so each distinct string is quoted once.

A string is written plain when no YAML 1.1 or 1.2 reader (PyYAML, kubectl's go-yaml) could
take it for anything else: it starts with a letter, ``_`` or ``/``, holds only letters,
digits, single spaces and ``_./@=+:~-``, has no ``": "``, does not end with ``:``, and is
not a word such as ``yes``, ``on`` or ``null``. A multi-line string that fits a literal block
is written as ``|-`` / ``|``; a one-line string with ``"`` or ``\\`` in it single-quoted;
anything else double-quoted (JSON escapes are YAML escapes, and characters YAML would not
keep are escaped on top).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@=+:~-]*(?: [A-Za-z0-9_./@=+:~-]+)*")
_RESERVED = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})
# What YAML cannot hold raw: non-printable characters, and the characters YAML 1.1 reads as
# line breaks (NEL, LS, PS), which would be folded away inside quotes.
_UNSAFE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_LITERAL_LINE = re.compile(
    "[^\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]*"
)
# What a single-quoted scalar holds as it is: printable characters on one line.
_SINGLE = re.compile("[\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]+")
_CACHE_MAX = 200_000
# Exact classes, tested before the costly isinstance(value, Mapping) of other values.
_SCALARS = frozenset({int, bool, float, type(None)})
_BLOCKS = frozenset({dict, list, tuple})
_ONCE: list[str] = []  # in Emitter._lines: the object was met once, its lines not kept
# An object with fewer references than this (its container's, this walk's: 3 to 5 in
# CPython) is written without looking for it among the objects met before: it can only be
# met again through a container that is met again, whose lines are kept. Where there is no
# reference count (not CPython), every object is looked for.
_SHARED = 8
_references: Callable[[object], int] = getattr(sys, "getrefcount", lambda _: _SHARED)


class Emitter:
    """Writes documents to YAML; remembers how it quoted each string (use one per stream)."""

    def __init__(self) -> None:
        self._scalars: dict[str, str] = {}
        # Objects met more than once in one call (Jobs from render_all share their constant
        # parts) are written once more and their lines reused after that, by (id, indent).
        # Ids are only stable while the objects live, so this is emptied after every call,
        # and the documents are held until then.
        self._lines: dict[object, list[str]] = {}

    def dump_all(self, docs: Iterable[Mapping[str, Any]]) -> str:
        """A multi-document stream, each document after a ``---`` line."""
        out: list[str] = []
        held = []
        try:
            for doc in docs:
                held.append(doc)
                out.append("---\n")
                self._mapping(doc, out, 0)
        finally:
            self._lines.clear()
        return "".join(out)

    def dump(self, doc: Mapping[str, Any]) -> str:
        return self.dump_all([doc])[len("---\n") :]

    def _block(self, value: Any, out: list[str], indent: int, item: bool) -> None:
        """A non-empty mapping or sequence at ``indent``; as a sequence item when ``item``
        (its first line then starts with ``- ``), otherwise below its key."""
        if _references(value) < _SHARED:
            # Held by its container (and this walk) alone, as most of a Job is: written
            # without the look-ups below, which pay only for parts that many Jobs share.
            lines = None
            key: object = None
        else:
            # An int key is cheaper than a tuple; indents past 1023 fall back to a tuple.
            key = (
                (id(value) << 11) | (indent << 1) | item
                if indent < 1024
                else (id(value), indent, item)
            )
            lines = self._lines.get(key)
            if lines is None:
                self._lines[key] = _ONCE  # the lines are kept from the second time on
            elif lines is not _ONCE:
                out.extend(lines)
                return
        start = len(out)
        kind = type(value)
        if kind is list or kind is tuple:
            self._sequence(value, out, indent + 2 if item else indent)
        else:
            self._mapping(value, out, indent + 2)
        if item:
            out[start] = f"{' ' * indent}- {out[start][indent + 2 :]}"
        if lines is _ONCE:  # met before: keep the lines for the next time
            self._lines[key] = out[start:]

    def _string(self, text: str) -> str:
        quoted = self._scalars.get(text)
        if quoted is None:
            quoted = quote(text)
            if len(self._scalars) < _CACHE_MAX:
                self._scalars[text] = quoted
        return quoted

    def _scalar(self, value: Any) -> str:
        kind = type(value)
        if kind is str:
            return self._string(value)
        if kind is bool:
            return "true" if value else "false"
        if kind is int:
            return str(value)
        if value is None:
            return "null"
        if kind is float:
            return _float(value)
        if isinstance(value, str):  # a str subclass (e.g. an enum member)
            return self._string(str(value))
        if isinstance(value, int):
            return str(int(value))
        raise TypeError(f"cannot write {type(value).__name__} {value!r} as YAML")

    # The two methods below are the hot loop (about a million scalars for 10,000 Jobs): exact
    # type checks first (strings, then other scalars, then containers), the cache read
    # inline, ABC checks only for unusual values.

    def _mapping(self, obj: Mapping[str, Any], out: list[str], indent: int) -> None:
        pad = " " * indent
        cache = self._scalars
        append = out.append
        for key, value in obj.items():
            head = cache.get(key) if type(key) is str else None
            if head is None:
                head = self._scalar(key)
            kind = type(value)
            if kind is str:
                text = cache.get(value)
                if text is None:
                    if "\n" in value and _fits_literal(value):
                        append(f"{pad}{head}: {_literal(value, indent + 2)}")
                        continue
                    text = self._string(value)
                append(f"{pad}{head}: {text}\n")
            elif kind in _SCALARS or not (kind in _BLOCKS or isinstance(value, Mapping)):
                append(f"{pad}{head}: {self._scalar(value)}\n")
            elif value:
                append(f"{pad}{head}:\n")
                self._block(value, out, indent, item=False)
            else:
                append(f"{pad}{head}: {'[]' if kind is list or kind is tuple else '{}'}\n")

    def _sequence(self, items: Iterable[Any], out: list[str], indent: int) -> None:
        pad = " " * indent
        cache = self._scalars
        append = out.append
        for value in items:
            kind = type(value)
            if kind is str:
                text = cache.get(value)
                if text is None:
                    if "\n" in value and _fits_literal(value):
                        append(f"{pad}- {_literal(value, indent + 2)}")
                        continue
                    text = self._string(value)
                append(f"{pad}- {text}\n")
            elif kind in _SCALARS or not (kind in _BLOCKS or isinstance(value, Mapping)):
                append(f"{pad}- {self._scalar(value)}\n")
            elif value:
                self._block(value, out, indent, item=True)
            else:
                append(f"{pad}- {'[]' if kind is list or kind is tuple else '{}'}\n")


def quote(text: str) -> str:
    """``text`` as a YAML scalar that every reader takes for that exact string."""
    if (
        _PLAIN.fullmatch(text)
        and text.lower() not in _RESERVED
        and ": " not in text
        and not text.endswith(":")
    ):
        return text
    if ('"' in text or "\\" in text) and _SINGLE.fullmatch(text):
        # JSON inside YAML (a Pipeline's tree) reads better without a backslash per quote.
        return "'" + text.replace("'", "''") + "'"
    quoted = json.dumps(text, ensure_ascii=False)
    if _UNSAFE.search(quoted):
        quoted = _UNSAFE.sub(_escape, quoted)
    return quoted


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _fits_literal(text: str) -> bool:
    """True if a ``|`` block holds ``text`` exactly: printable, no CR, no leading blank, no
    trailing blanks on any line, and at most one final newline."""
    if text[0] in " \n\t" or "\r" in text or text.endswith("\n\n"):
        return False
    lines = text.split("\n")
    return all(
        not line or (line[-1] not in " \t" and _LITERAL_LINE.fullmatch(line)) for line in lines
    )


def _literal(text: str, indent: int) -> str:
    pad = " " * indent
    body = text[:-1] if text.endswith("\n") else text
    indicator = "|" if text.endswith("\n") else "|-"
    lines = "".join(f"{pad}{line}\n" if line else "\n" for line in body.split("\n"))
    return f"{indicator}\n{lines}"


def _float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    if "e" in text and "." not in text:  # YAML 1.1 floats need a dot: 1e-05 -> 1.0e-05
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def dump_all(docs: Iterable[Mapping[str, Any]]) -> str:
    """``docs`` as one multi-document YAML stream (``kubectl apply -f -`` reads it)."""
    return Emitter().dump_all(docs)


def dump(doc: Mapping[str, Any]) -> str:
    return Emitter().dump(doc)


__all__ = ["Emitter", "dump", "dump_all", "quote"]
