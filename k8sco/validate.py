"""What a value must look like to reach a process, a Dockerfile or the Kubernetes API intact.

Pure and light (stdlib only): node parameters, node names, commands and native-function
arguments are checked with these when a tree is built, so that a bad value fails there, as
one line naming the node and the parameter, and never half-way through a run.

Each function returns ``None`` for a good value, or a short phrase saying what is wrong
(the caller adds the node path and the parameter), except the quantity parsers, which
return the amount or raise ``ValueError``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from decimal import Decimal

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

# Linux refuses one argv string (or one environment string) longer than MAX_ARG_STRLEN,
# 32 pages = 128 KiB including its NUL (include/uapi/linux/binfmts.h), with E2BIG: "Argument
# list too long". The whole argv plus environment must stay under ARG_MAX (a quarter of
# the stack limit, 2 MiB by default; 1 MiB on macOS), so a node's argv is kept well below.
MAX_ARG_BYTES = 128 * 1024 - 1
MAX_ARGV_BYTES = 512 * 1024

# Characters that make text look like other text (Trojan Source, CVE-2021-42574): the
# bidirectional embeddings, overrides and isolates, and the implicit direction marks.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# What text_problem refuses beyond NUL and surrogates: DEL, the C1 controls and _BIDI.
_TEXT_BAD = re.compile("[\x7f-\x9f" + "".join(sorted(_BIDI)) + "]")


def _char_name(char: str) -> str:
    name = unicodedata.name(char, "")
    code = f"U+{ord(char):04X}"
    return f"{code} {name}" if name else code


def _utf8_problem(text: str) -> str | None:
    if "\0" in text:
        return "contains a NUL character, which no command line, environment or file name can carry"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        return f"contains {_char_name(bad)}, a lone surrogate (text that is not valid UTF-8)"
    return None


def name_problem(text: str) -> str | None:
    """A node name, tag or title: one line of visible text. Control characters (C0, DEL,
    C1), format characters (bidirectional controls, zero-width characters), line and
    paragraph separators and lone surrogates are refused."""
    problem = _utf8_problem(text)
    if problem:
        return problem
    if text.isascii() and text.isprintable():
        return None  # the common case, without a look-up per character
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Zl", "Zp"):
            kind = "an invisible or bidirectional" if category != "Cc" else "a control"
            return f"contains {_char_name(char)}, {kind} character"
    return None


def text_problem(text: str) -> str | None:
    """A command, an environment variable's value or a doc: any text a process can carry,
    with line breaks and tabs, but no NUL, no lone surrogate, no DEL or C1 control and no
    bidirectional control (which would make the text read differently than it runs)."""
    if text.isascii() and "\0" not in text and "\x7f" not in text:
        return None  # the common case: no surrogate, C1 or bidirectional control possible
    problem = _utf8_problem(text)
    if problem:
        return problem
    found = _TEXT_BAD.search(text)  # a scan in C: commands are checked once per node
    if found is None:
        return None
    char = found.group()
    if char in _BIDI:
        return f"contains {_char_name(char)}, a bidirectional control character"
    return f"contains {_char_name(char)}, a control character"


# k8s.io/apimachinery/pkg/util/validation/validation.go, IsEnvVarName (envVarNameFmt): the
# rule every API server enforces (the relaxed one is behind RelaxedEnvironmentVariable-
# Validation, which a cluster may not enable).
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


def env_name_problem(name: str) -> str | None:
    if not _ENV_NAME.fullmatch(name):
        return (
            f"{name!r} is not a valid environment variable name (letters, digits, '_', '-' "
            "or '.', not starting with a digit)"
        )
    return None


# The Docker image reference grammar, from github.com/distribution/reference regexp.go
# (ReferenceRegexp: name [":" tag] ["@" digest]); a name is at most 255 characters
# (NameTotalLengthMax, reference.go).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*"
_HOST = r"(?:" + _DOMAIN_NAME + r"|\[(?:[a-fA-F0-9:]+)\])"
_DOMAIN_AND_PORT = _HOST + r"(?::[0-9]+)?"
_PATH_COMPONENT = _ALNUM + r"(?:" + _SEPARATOR + _ALNUM + r")*"
_REMOTE_NAME = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_NAME = r"(?:" + _DOMAIN_AND_PORT + r"/)?" + _REMOTE_NAME
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_REFERENCE = re.compile(r"(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?", re.ASCII)
NAME_TOTAL_LENGTH_MAX = 255


def image_reference_problem(ref: str) -> str | None:
    match = _REFERENCE.fullmatch(ref)
    if match is None:
        return (
            f"{ref!r} is not a valid image reference ([registry/]name[:tag][@digest], the name "
            "in lower case, e.g. 'python:3.11-slim' or 'ghcr.io/me/app:1')"
        )
    if len(match.group(1)) > NAME_TOTAL_LENGTH_MAX:
        return f"{ref[:40]!r}...: an image name may be at most {NAME_TOTAL_LENGTH_MAX} characters"
    return None


# --- quantities -------------------------------------------------------------------------

# Kubernetes' quantity grammar, from k8s.io/apimachinery/pkg/api/resource/quantity.go:
#   <quantity> ::= <signedNumber><suffix>
#   <number>   ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
#   <suffix>   ::= <binarySI> | <decimalExponent> | <decimalSI>
#   <binarySI> ::= Ki | Mi | Gi | Ti | Pi | Ei
#   <decimalSI> ::= n | u | m | "" | k | M | G | T | P | E
#   <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>
# where parseQuantityString accepts only digits after the exponent's sign. Python's
# float() and the kubernetes client's parse_quantity accept more ("Infinity", "NaN",
# "1_000"), so neither is used.
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))"
    r"(?:(?P<binary>[KMGTPE]i)|(?P<exponent>[eE][+-]?[0-9]+)|(?P<decimal>[numkMGTPE]))?",
    re.ASCII,
)
_DECIMAL_SI = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SI = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}


def parse_quantity(text: str) -> tuple[Decimal, bool]:
    """The exact amount of a Kubernetes quantity string and whether it has a unit (an SI or
    binary suffix, not a bare number or an exponent). Raises ``ValueError``."""
    from decimal import Decimal, InvalidOperation  # exact, and loaded only when needed

    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    try:
        amount = Decimal(match.group("number"))
        if match.group("binary"):
            return amount * (2 ** _BINARY_SI[match.group("binary")]), True
        if match.group("exponent"):
            exponent = int(match.group("exponent")[1:])
            if abs(exponent) > 1000:  # quantity.go reads it as an int32; far beyond any use
                raise ValueError(f"{text!r}: the exponent is out of range")
            return amount.scaleb(exponent), False
        if match.group("decimal"):
            return amount.scaleb(_DECIMAL_SI[match.group("decimal")]), True
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a Kubernetes quantity") from None
    return amount, False
