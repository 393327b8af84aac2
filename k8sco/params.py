"""Node parameters: their defaults, how they are inherited and how their values are checked.

Pure: no I/O. Every check raises at once, naming the node path and the parameter, so a
bad tree fails when it is built, not when it runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from k8sco.errors import PipelineError, PipelineTypeError


class Inherit(Enum):
    """How a parameter reaches the descendants of the node that sets it."""

    NEAREST = "nearest"  # the nearest ancestor that sets it wins
    MERGE = "merge"  # dicts merged along the path, the deepest node wins per key
    ANY = "any"  # true if the node or any ancestor sets it true (skip)
    NONE = "none"  # applies to the node that sets it only


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    inherit: Inherit
    check: Callable[[str, str, Any], Any]  # (node path, name, value) -> normalised value
    kinds: frozenset[str] = frozenset({"Serial", "Parallel", "Exec"})
    doc: str = ""


# Kubernetes quantity: a decimal number with an optional SI or binary suffix.
_QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|ms|s|m|h|d|w)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
}
_CPU_SUFFIX = {"m": 1e-3, "n": 1e-9, "u": 1e-6, "k": 1e3}
_MEM_SUFFIX = {
    "": 1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "m": 1e-3,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def _fail(path: str, name: str, message: str) -> PipelineError:
    return PipelineError(f"{path}: parameter {name!r} {message}")


def _type_fail(path: str, name: str, expected: str, value: Any) -> PipelineTypeError:
    return PipelineTypeError(
        f"{path}: parameter {name!r} expects {expected}, got {type(value).__name__} {value!r}"
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_duration(text: str) -> float:
    """Seconds in a duration string such as ``"30s"``, ``"15m"``, ``"1h30m"`` or ``"2d"``.

    A bare number is seconds. Raises ``ValueError`` for anything else.
    """
    s = text.strip()
    try:
        return float(s)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(s):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(s) or not s:
        raise ValueError(f"not a duration: {text!r} (use seconds or e.g. '30s', '15m', '4h', '2d')")
    return total


def cpu_cores(value: float | str) -> float:
    """Cores in a ``cpu`` value: a number of cores or a Kubernetes quantity (``"500m"``)."""
    if isinstance(value, str):
        suffix = value[-1] if value[-1] in _CPU_SUFFIX else ""
        return float(value[: len(value) - len(suffix)]) * _CPU_SUFFIX.get(suffix, 1)
    return float(value)


def mem_bytes(value: float | str) -> int:
    """Bytes in a ``mem`` value: GB as a number (2 → 2 GiB) or a quantity (``"512Mi"``)."""
    if isinstance(value, str):
        match = re.match(r"^(.*?)([KMGTPE]i|[kMGTPEm])?$", value)
        assert match is not None
        number, suffix = match.group(1), match.group(2) or ""
        return int(float(number) * _MEM_SUFFIX[suffix])
    return int(value * 2**30)


def _check_resource(path: str, name: str, value: Any) -> Any:
    if _is_number(value):
        if not math.isfinite(value) or value <= 0:
            raise _fail(path, name, f"must be a positive number, got {value!r}")
        return value
    if isinstance(value, str):
        if not _QUANTITY.match(value.strip()):
            raise _fail(
                path,
                name,
                f"must be a number or a Kubernetes quantity such as '500m' or '512Mi', "
                f"got {value!r}",
            )
        q = value.strip()
        amount = cpu_cores(q) if name == "cpu" else mem_bytes(q)
        if amount <= 0:
            raise _fail(path, name, f"must be positive, got {value!r}")
        return q
    raise _type_fail(path, name, "a number or a quantity string", value)


def _check_gpu(path: str, name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type_fail(path, name, "a whole number of GPUs", value)
    if value < 0:
        raise _fail(path, name, f"must be 0 or more, got {value}")
    return value


def _check_bool(path: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _type_fail(path, name, "True or False", value)
    return value


def _check_max_time(path: str, name: str, value: Any) -> float:
    if _is_number(value):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise _fail(path, name, str(exc)) from None
    else:
        raise _type_fail(path, name, "seconds or a duration string such as '4h'", value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise _fail(path, name, f"must be a positive duration, got {value!r}")
    return int(seconds) if seconds == int(seconds) else seconds


def _check_max_concurrent(path: str, name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type_fail(path, name, "a whole number", value)
    if value < 1:
        raise _fail(path, name, f"must be 1 or more, got {value}")
    return value


def _check_retries(path: str, name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type_fail(path, name, "a whole number", value)
    if value < 0:
        raise _fail(path, name, f"must be 0 or more, got {value}")
    return value


def _check_str(path: str, name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _type_fail(path, name, "a string", value)
    return value


def _check_tags(path: str, name: str, value: Any) -> list[str]:
    tags = [value] if isinstance(value, str) else value
    if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags):
        raise _type_fail(path, name, "a string or a list of strings", value)
    return list(tags)


def _check_env(path: str, name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _type_fail(path, name, "a dict of str to str", value)
    out: dict[str, str] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not isinstance(val, str):
            raise _type_fail(path, f"env[{key!r}]", "str keys and values", val)
        if not key or "=" in key or "\0" in key:
            raise _fail(path, name, f"has an invalid variable name {key!r}")
        if key.startswith("K8SCO_"):
            raise _fail(path, name, f"may not set {key!r}: K8SCO_* variables are set by k8sco")
        out[key] = val
    return out


def _check_image(path: str, name: str, value: Any) -> Any:
    from k8sco.image import Image  # tree params refer to images; images refer to nothing

    if isinstance(value, str):
        if not value.strip():
            raise _fail(path, name, "must not be empty")
        return value
    if isinstance(value, Image):
        return value
    raise _type_fail(path, name, "an image name or a co.Image", value)


def _check_pod_spec(path: str, name: str, value: Any) -> dict[str, Any]:
    from k8sco.render.podspec import check_patch  # the PodSpec schema loads on first use

    return check_patch(path, value)


SPECS: dict[str, ParamSpec] = {
    spec.name: spec
    for spec in (
        ParamSpec("image", None, Inherit.NEAREST, _check_image, doc="image name or co.Image"),
        ParamSpec("env", {}, Inherit.MERGE, _check_env, doc="environment variables"),
        ParamSpec("cpu", 1, Inherit.NEAREST, _check_resource, doc="cores, or a quantity"),
        ParamSpec("mem", 2, Inherit.NEAREST, _check_resource, doc="GB, or a quantity"),
        ParamSpec("gpu", 0, Inherit.NEAREST, _check_gpu, doc="whole GPUs"),
        ParamSpec("skip", False, Inherit.ANY, _check_bool, doc="skip this subtree"),
        ParamSpec(
            "stop_on_error",
            True,
            Inherit.NONE,
            _check_bool,
            kinds=frozenset({"Serial"}),
            doc="a failed child stops the Serial",
        ),
        ParamSpec(
            "network",
            False,
            Inherit.NEAREST,
            _check_bool,
            doc="needs network access (containers of `k8sco run --docker` have none otherwise)",
        ),
        ParamSpec("suppress_errors", False, Inherit.NONE, _check_bool, doc="done despite failures"),
        ParamSpec("max_time", 4 * 3600, Inherit.NEAREST, _check_max_time, doc="seconds"),
        ParamSpec(
            "max_concurrent",
            None,
            Inherit.NONE,
            _check_max_concurrent,
            doc="Exec nodes below running at once",
        ),
        ParamSpec("retries", 0, Inherit.NEAREST, _check_retries, doc="reruns of a failed Exec"),
        ParamSpec("doc", None, Inherit.NONE, _check_str, doc="markdown"),
        ParamSpec("title", None, Inherit.NONE, _check_str),
        ParamSpec("tags", None, Inherit.NONE, _check_tags),
        ParamSpec(
            "pod_spec",
            {},
            Inherit.MERGE,
            _check_pod_spec,
            doc="PodSpec fields merged into the pod of every Exec node below (nodeSelector, "
            "tolerations, affinity, volumes, serviceAccountName, priorityClassName...); "
            "inherited per top-level field, the deepest node's value winning; validated "
            "against the PodSpec schema when set; merge rules in k8sco.render.podspec",
        ),
        ParamSpec(
            "run_as_root",
            False,
            Inherit.NEAREST,
            _check_bool,
            doc="run as uid 0 instead of the non-root default, for images that need root: "
            "the pod then passes Pod Security 'baseline', not 'restricted'",
        ),
    )
}

PARAM_NAMES: frozenset[str] = frozenset(SPECS)


def check_param(kind: str, path: str, name: str, value: Any) -> Any:
    """The normalised value of parameter ``name`` set on a node of ``kind`` at ``path``."""
    spec = SPECS.get(name)
    if spec is None:
        raise PipelineTypeError(
            f"{path}: unknown parameter {name!r}; node parameters are: " + ", ".join(sorted(SPECS))
        )
    if kind not in spec.kinds:
        raise PipelineError(
            f"{path}: parameter {name!r} applies to {' and '.join(sorted(spec.kinds))} nodes "
            f"only, not {kind}"
        )
    return spec.check(path, name, value)
