"""Object metadata helpers: timestamps, ages, name and label validation, generateName."""

from __future__ import annotations

import datetime
import functools
import random
import re
import time
from collections.abc import Mapping
from typing import Any

from .errors import FieldError

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apiserver's names.go

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def format_time(ts: float) -> str:
    """RFC 3339 with second precision, as metav1.Time serialises."""
    return _format_second(int(ts // 1))


@functools.lru_cache(maxsize=64)
def _format_second(second: int) -> str:
    # Every write stamps a time or two, mostly the current second: formatting is the cost.
    stamp = datetime.datetime.fromtimestamp(second, datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(ts: float) -> str:
    dt = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now() -> str:
    return format_time(time.time())


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    text = text.replace("Z", "+00:00")
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration, used for AGE and DURATION columns."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def age(timestamp: str | None, at: float | None = None) -> str:
    ts = parse_time(timestamp)
    if ts is None:
        return "<unknown>"
    return human_duration((at if at is not None else time.time()) - ts)


def generate_name(base: str, rng: random.Random | None = None) -> str:
    rng = rng or random.Random()
    return base[:58] + "".join(rng.choice(NAME_ALPHABET) for _ in range(5))


def validate_subdomain(path: str, name: str) -> list[FieldError]:
    if len(name) > 253:
        return [FieldError.invalid(path, name, "must be no more than 253 characters")]
    if not _DNS_SUBDOMAIN.match(name):
        return [FieldError.invalid(path, name, SUBDOMAIN_MSG)]
    return []


def validate_label_name(path: str, name: str) -> list[FieldError]:
    if len(name) > 63:
        return [FieldError.invalid(path, name, "must be no more than 63 characters")]
    if not _DNS_LABEL.match(name):
        return [FieldError.invalid(path, name, LABEL_MSG)]
    return []


def validate_labels(path: str, labels: Mapping[str, Any] | None) -> list[FieldError]:
    errors: list[FieldError] = []
    for key, value in (labels or {}).items():
        prefix, _, name = key.rpartition("/")
        if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
            errors.append(FieldError.invalid(path, key, "prefix part " + SUBDOMAIN_MSG))
        if not name or len(name) > 63 or not _LABEL_NAME.match(name):
            errors.append(
                FieldError.invalid(path, key, "name part must be no more than 63 characters")
                if len(name) > 63
                else FieldError.invalid(
                    path, key, "name part must consist of alphanumeric characters, '-', '_' or '.'"
                )
            )
        if not isinstance(value, str):
            errors.append(FieldError.invalid(path, value, "label values must be strings"))
        elif len(value) > 63:
            errors.append(FieldError.invalid(path, value, "must be no more than 63 characters"))
        elif not _LABEL_VALUE.match(value):
            errors.append(FieldError.invalid(path, value, LABEL_VALUE_MSG))
    return errors


def condition(
    ctype: str, status: str, reason: str = "", message: str = "", at: float | None = None
) -> dict[str, Any]:
    stamp = format_time(at if at is not None else time.time())
    cond: dict[str, Any] = {
        "type": ctype,
        "status": status,
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
    }
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond
