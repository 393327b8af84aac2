"""co.Lazy pipelines the end-to-end suite runs on the fake cluster (k8sco/lazy.py)."""

from __future__ import annotations

import os

import k8sco as co


def gen(count: int = 20) -> co.Parallel:
    """The generator: ``count`` nodes that print their number and the inherited env."""
    out = co.Parallel()
    for i in range(count):
        out[f"n{i}"] = co.Exec(f"echo generated-{i} $GREETING")
    return out


def gen_nested(count: int = 3) -> co.Serial:
    """A generated tree holding a Lazy node of its own."""
    out = co.Serial()
    out["before"] = co.Exec("echo before")
    out["inner"] = co.Lazy(gen, count)
    return out


def gen_once_failing(marker: str) -> co.Parallel:
    """A generated node that fails the first time the tree is generated (``marker`` does
    not exist yet, and is then created): a rerun of the Lazy node regenerates a good one."""
    out = co.Parallel()
    out["good"] = co.Exec("echo good")
    if os.path.exists(marker):
        out["fixed"] = co.Exec("echo fixed")
    else:
        open(marker, "w").close()
        out["broken"] = co.Exec("echo broken; exit 3")
    return out


def lazy(count: int = 20) -> co.Serial:
    root = co.Serial(env={"GREETING": "hello"})
    root["first"] = co.Exec("echo first")
    root["l"] = co.Lazy(gen, count)
    return root


def nested() -> co.Serial:
    root = co.Serial()
    root["l"] = co.Lazy(gen_nested, 3)
    return root


def regenerated(marker: str) -> co.Serial:
    root = co.Serial()
    root["l"] = co.Lazy(gen_once_failing, marker)
    return root


def bad_generator() -> co.Serial:
    root = co.Serial()
    root["l"] = co.Lazy("echo no tree here")
    return root


def gen_long(count: int = 3) -> co.Parallel:
    out = co.Parallel()
    for i in range(count):
        out[f"sleep{i}"] = co.Exec("sleep 60")
    return out


def long() -> co.Serial:
    root = co.Serial()
    root["l"] = co.Lazy(gen_long, 3)
    return root
