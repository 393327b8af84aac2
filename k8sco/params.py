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
from k8sco.secrets import SecretRef
from k8sco.validate import (
    INT32_MAX,
    INT64_MAX,
    MAX_ARG_BYTES,
    env_name_problem,
    image_reference_problem,
    name_problem,
    parse_quantity,
    text_problem,
)


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
# The largest amounts Kubernetes can hold: a CPU request is counted in int64 millicores
# (Quantity.MilliValue), memory in int64 bytes (Quantity.Value); mem as a number is GiB.
MAX_CPU_CORES = INT64_MAX / 1000
MAX_MEM_BYTES = INT64_MAX
MAX_MEM_GB = MAX_MEM_BYTES / 2**30


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
        return float(parse_quantity(value.strip())[0])
    return float(value)


def mem_bytes(value: float | str) -> int:
    """Bytes in a ``mem`` value: GB as a number (2 → 2 GiB) or a quantity (``"512Mi"``)."""
    if isinstance(value, str):
        return int(parse_quantity(value.strip())[0])
    return int(value * 2**30)


def _check_resource(path: str, name: str, value: Any) -> Any:
    if _is_number(value):
        limit = MAX_CPU_CORES if name == "cpu" else MAX_MEM_GB
        unit = "cores" if name == "cpu" else "GB"
        # Compared before any float conversion: int(10**400) has no float.
        if not (isinstance(value, int) or math.isfinite(value)) or not 0 < value <= limit:
            raise _fail(
                path, name, f"must be a positive number of {unit} up to {limit:.4g}, got {value!r}"
            )
        if name == "mem" and value * 2**30 < 1:  # 0 bytes would mean "no limit" to Docker
            raise _fail(path, name, f"must be at least one byte, got {value!r} GB")
        return value
    if not isinstance(value, str):
        raise _type_fail(path, name, "a number or a quantity string", value)
    q = value.strip()
    example = "'500m' or '2'" if name == "cpu" else "'512Mi' or '2Gi'"
    try:
        amount, has_unit = parse_quantity(q)
    except ValueError:
        raise _fail(
            path,
            name,
            f"must be a number or a Kubernetes quantity such as {example}, got {value!r}",
        ) from None
    if amount <= 0:
        raise _fail(path, name, f"must be positive, got {value!r}")
    if name == "cpu":
        if amount * 1000 > INT64_MAX:
            raise _fail(path, name, f"is {value!r}, beyond what Kubernetes can count")
        return q
    if not has_unit:
        if amount > MAX_MEM_BYTES:
            raise _fail(path, name, f"is {value!r}, beyond what Kubernetes can count")
        # Kubernetes reads a bare quantity as bytes, a Conducto pipeline's mem as GB.
        raise _fail(
            path,
            name,
            f"is {value!r}, a quantity without a unit, which Kubernetes reads as bytes: write "
            f"mem={float(amount)!r} (a number, in GB) or give a unit, e.g. '{q}Gi' or '512Mi'",
        )
    if amount != amount.to_integral_value():
        # A fractional byte count draws the API server's warning "fractional byte value
        # is invalid, must be an integer" (kubernetes pkg/api/pod/warnings.go).
        raise _fail(
            path,
            name,
            f"is {value!r}, which is not a whole number of bytes (the 'm' suffix is "
            "thousandths: write '500Mi' for mebibytes)",
        )
    if amount > MAX_MEM_BYTES:
        raise _fail(path, name, f"is {value!r}, beyond what Kubernetes can count")
    return q


def _check_gpu(path: str, name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type_fail(path, name, "a whole number of GPUs", value)
    if not 0 <= value <= INT64_MAX:  # an extended resource's quantity (int64)
        raise _fail(path, name, f"must be from 0 to {INT64_MAX}, got {value}")
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
    # activeDeadlineSeconds is an int64 of seconds (batch/v1 JobSpec).
    if not math.isfinite(seconds) or not 0 < seconds <= INT64_MAX:
        raise _fail(
            path, name, f"must be a positive duration up to {INT64_MAX} seconds, got {value!r}"
        )
    return int(seconds) if seconds == int(seconds) else seconds


def _check_max_concurrent(path: str, name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type_fail(path, name, "a whole number", value)
    if not 1 <= value <= INT32_MAX:
        raise _fail(path, name, f"must be from 1 to {INT32_MAX}, got {value}")
    return value


def _check_retries(path: str, name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type_fail(path, name, "a whole number", value)
    if not 0 <= value <= INT32_MAX:  # backoffLimit is an int32 (batch/v1 JobSpec)
        raise _fail(path, name, f"must be from 0 to {INT32_MAX}, got {value}")
    return value


# Container.imagePullPolicy's values (k8s.io/api/core/v1 types.go, PullPolicy).
PULL_POLICIES = ("Always", "IfNotPresent", "Never")


def _check_pull_policy(path: str, name: str, value: Any) -> str:
    if value not in PULL_POLICIES:
        raise _fail(path, name, f"must be one of {', '.join(PULL_POLICIES)}, not {value!r}")
    return str(value)


def _check_str(path: str, name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _type_fail(path, name, "a string", value)
    # A title is one line shown in trees; a doc is free text (markdown).
    problem = name_problem(value) if name == "title" else text_problem(value)
    if problem:
        raise _fail(path, name, problem)
    return value


def _check_tags(path: str, name: str, value: Any) -> list[str]:
    tags = [value] if isinstance(value, str) else value
    if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags):
        raise _type_fail(path, name, "a string or a list of strings", value)
    for tag in tags:
        problem = name_problem(tag)
        if problem:
            raise _fail(path, name, f"has a tag that {problem}")
    return list(tags)


def _check_env(path: str, name: str, value: Any) -> dict[str, str | SecretRef]:
    if not isinstance(value, Mapping):
        raise _type_fail(path, name, "a dict of str to str", value)
    out: dict[str, str | SecretRef] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not isinstance(val, (str, SecretRef)):
            raise _type_fail(path, f"env[{key!r}]", "str keys and values (or co.SecretRef)", val)
        problem = name_problem(key) or env_name_problem(key)
        if problem:
            raise _fail(path, name, f"has an invalid variable name: {problem}")
        # K8SCO_LAZY marks a co.Lazy Generate node (k8sco.lazy): set by k8sco, in the tree.
        if key.startswith("K8SCO_") and key != "K8SCO_LAZY":
            raise _fail(path, name, f"may not set {key!r}: K8SCO_* variables are set by k8sco")
        if isinstance(val, SecretRef):  # a reference: its value stays in the Secret
            out[key] = val
            continue
        problem = text_problem(val)
        if problem:
            raise _fail(path, f"env[{key!r}]", problem)
        size = len(key.encode()) + len(val.encode()) + 1
        if size > MAX_ARG_BYTES:  # an environment string has the same limit as an argument
            raise _fail(
                path,
                f"env[{key!r}]",
                f"is {size:,} bytes; a process takes at most {MAX_ARG_BYTES:,} per variable "
                "(Linux MAX_ARG_STRLEN): pass large data in a file",
            )
        out[key] = val
    return out


# The builder writes an Image's env into a Dockerfile ENV line (k8sco.containers.context),
# where a name must be a shell variable name.
_DOCKERFILE_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_image(path: str, name: str, value: Any) -> Any:
    from k8sco.image import Image  # tree params refer to images; images refer to nothing

    if isinstance(value, str):
        if not value.strip():
            raise _fail(path, name, "must not be empty")
        problem = image_reference_problem(value)
        if problem:
            raise _fail(path, name, problem)
        return value
    if isinstance(value, Image):
        problem = _image_problem(value)
        if problem:
            raise _fail(path, name, problem)
        return value
    raise _type_fail(path, name, "an image name or a co.Image", value)


def _image_problem(image: Any) -> str | None:
    """What makes a co.Image unbuildable, or a Dockerfile it generates say something else."""
    if image.image is not None:
        problem = image_reference_problem(image.image)
        if problem:
            return f"co.Image(image=...): {problem}"
    for attr in ("dockerfile", "context", "copy_dir", "name"):
        text = getattr(image, attr)
        problem = name_problem(text) if text is not None else None
        if problem:
            return f"co.Image({attr}=...) {problem}"
    for attr in ("reqs_py", "reqs_packages"):
        for req in getattr(image, attr):
            # Each item becomes part of a RUN line: a line break would start a new
            # Dockerfile instruction.
            problem = name_problem(req)
            if problem:
                return f"co.Image({attr}=...) has an item {req!r} that {problem}"
    for key, val in image.env.items():
        if not _DOCKERFILE_ENV_NAME.fullmatch(key):
            return f"co.Image(env=...): {key!r} is not a valid variable name for an image"
        problem = text_problem(val) or (
            "contains a line break" if "\n" in val or "\r" in val else None
        )
        if problem:
            return f"co.Image(env=...): the value of {key!r} {problem}"
    for attr in ("docker_build_args", "path_map"):
        for key, val in getattr(image, attr).items():
            problem = name_problem(key) or text_problem(val)
            if problem:
                return f"co.Image({attr}=...): {key!r} {problem}"
    return None


class ContainerReuseContext(str, Enum):
    """Which Exec nodes share a container (Conducto's ``co.ContainerReuseContext``).

    ``NEW`` on a node: every Exec below it (down to a node that sets its own context) runs
    in one container, one after another in tree order, sharing its filesystem. ``GLOBAL``:
    the subtree below leaves its ancestor's shared container. The values are Conducto's.
    """

    NEW = "new"
    GLOBAL = "global"

    def __str__(self) -> str:
        return self.value


class SameContainer:
    """Conducto's older spelling of :class:`ContainerReuseContext` (``same_container=``)."""

    NEW = ContainerReuseContext.NEW
    ESCAPE = ContainerReuseContext.GLOBAL
    INHERIT = None  # unset: the nearest ancestor's context applies


# Conducto's deprecated parameter names and the parameter they set.
ALIASES = {"same_container": "container_reuse_context"}


def canonical(path: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with Conducto's aliases under their parameter's name, and an unset
    container context (``SameContainer.INHERIT``, ``None``: Conducto's defaults) left out."""
    out = dict(params)
    for alias, name in ALIASES.items():
        if alias not in out:
            continue
        value = out.pop(alias)
        if value is None:
            continue
        if out.get(name) is not None:
            # Conducto's Node.__init__ refuses both too.
            raise _fail(path, alias, f"is the older spelling of {name!r}: set one, not both")
        out[name] = _check_reuse(path, alias, value)  # a bad value named as the user spelt it
    if "container_reuse_context" in out and out["container_reuse_context"] is None:
        del out["container_reuse_context"]
    return out


def _check_reuse(path: str, name: str, value: Any) -> str:
    try:
        return ContainerReuseContext(value).value
    except ValueError:
        raise _fail(
            path,
            name,
            "must be co.ContainerReuseContext.NEW or .GLOBAL (or co.SameContainer.NEW, "
            f".ESCAPE, .INHERIT), got {value!r}",
        ) from None


def _check_callbacks(path: str, name: str, value: Any) -> list[list[Any]]:
    from k8sco.callback import check_callbacks

    return check_callbacks(path, name, value)


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
            "start_timeout",
            None,
            Inherit.NEAREST,
            _check_max_time,
            doc="seconds an Exec's pod may fail to start on a cluster (ErrImagePull, "
            "Unschedulable, FailedCreate) before the node fails with that reason (default: "
            "the controller's K8SCO_START_TIMEOUT, 10 minutes)",
        ),
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
            "image_pull_policy",
            None,
            Inherit.NEAREST,
            _check_pull_policy,
            doc="the container's imagePullPolicy: Always, IfNotPresent or Never (default: "
            "the cluster's, which is Always for a ':latest' or untagged image)",
        ),
        ParamSpec(
            "container_reuse_context",
            None,
            Inherit.NONE,  # reaches the Execs below through k8sco.sequence.groups
            _check_reuse,
            doc="co.ContainerReuseContext.NEW: the Exec nodes below share one container and "
            "run one after another in tree order; GLOBAL: this subtree leaves its ancestor's "
            "(Conducto's older spelling: same_container=co.SameContainer.NEW/ESCAPE)",
        ),
        ParamSpec(
            "requires_docker",
            False,
            Inherit.NEAREST,
            _check_bool,
            doc="the node reaches a Docker engine: the host's socket with `k8sco run "
            "--docker`, a Docker-in-Docker sidecar on a cluster (where it needs the "
            "controller's K8SCO_ALLOW_DOCKER opt-in and a 'privileged' namespace)",
        ),
        ParamSpec(
            "callbacks",
            None,
            Inherit.NONE,  # an entry with inherited=True reaches the nodes below (callbacks.py)
            _check_callbacks,
            doc="[[event, [name, {arguments}]], ...]: what node.on_done(...), on_error(...) "
            "and the other on_* methods registered (co.callback)",
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
