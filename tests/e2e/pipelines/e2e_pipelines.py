"""Pipelines the end-to-end suite runs, on the fake cluster or a real one.

Commands are short shell commands or native functions of this file, so the suite spends
its time in k8sco and the cluster, not in the work.
"""

from __future__ import annotations

import k8sco as co


def record(tag: str, times: int = 1) -> None:
    """A native-function node: prints its tag."""
    for _ in range(times):
        print(f"tag={tag}")


def show(text: str) -> None:
    """A native-function node: prints its argument as it received it."""
    print(f"text={text}")


def dollars() -> co.Serial:
    """Commands and arguments holding what Kubernetes would expand in a container's command:
    ``$(VAR)`` of a variable the container defines, and ``$$``."""
    root = co.Serial()
    root["shell"] = co.Exec("printf '%s\\n' '$(K8SCO_PIPELINE)' '$$' \"pid=$$\"")
    root["native"] = co.Exec(show, "$(K8SCO_NODE_PATH) $$")
    return root


def nested(width: int = 5) -> co.Serial:
    """50 Exec nodes: a Serial of 5 Parallels, each of `width` Serials of 2 nodes."""
    with co.Serial() as root:
        for i in range(5):
            with co.Parallel(name=f"stage{i}"):
                for j in range(width):
                    with co.Serial(name=f"lane{j}"):
                        co.Exec(f"echo step-{i}-{j}-a", name="a")
                        co.Exec(record, f"{i}-{j}").set(name="b")
    return root


def failing() -> co.Serial:
    """A failing node stops its Serial, not its Parallel siblings."""
    with co.Serial() as root:
        co.Exec("echo first", name="first")
        with co.Parallel(name="p"):
            co.Exec("echo about to fail; exit 3", name="bad")
            co.Exec("sleep 1; echo sibling-done", name="sibling")
        co.Exec("echo never", name="never")
    return root


def flaky() -> co.Serial:
    """A node that always fails, with two retries: three attempts in all."""
    root = co.Serial()
    root["flaky"] = co.Exec("echo attempt; exit 1", retries=2)
    return root


def slow(seconds: int = 60, max_time: int = 2) -> co.Serial:
    """A node that outlives its max_time."""
    root = co.Serial()
    root["slow"] = co.Exec(f"sleep {seconds}", max_time=max_time)
    return root


def long(count: int = 3) -> co.Parallel:
    """Nodes that run long enough to be stopped or deleted mid-run."""
    root = co.Parallel()
    for i in range(count):
        root[f"sleep{i}"] = co.Exec("sleep 60")
    return root
