"""Pipelines of tests/e2e/test_container_reuse.py: Exec nodes sharing one container."""

from __future__ import annotations

import k8sco as co


def shared() -> co.Serial:
    """Three nodes in one container: a file written by the first is read by the next ones,
    under a Parallel too (which runs them one after another in a shared container)."""
    with co.Serial() as root:
        co.Exec("echo before", name="before")
        with co.Serial(name="box", same_container=co.SameContainer.NEW):
            co.Exec("echo shared-$$ > /tmp/k8sco-reuse.txt; echo wrote", name="write")
            with co.Parallel(name="both"):
                co.Exec("echo first $(cat /tmp/k8sco-reuse.txt)", name="a")
                co.Exec("echo second $(cat /tmp/k8sco-reuse.txt)", name="b")
        co.Exec("echo after", name="after")
    return root


def failing() -> co.Serial:
    """A failing node of a shared container stops the rest of its Serial."""
    with co.Serial(container_reuse_context=co.ContainerReuseContext.NEW) as root:
        co.Exec("echo one", name="one")
        co.Exec("echo two; exit 3", name="two")
        co.Exec("echo three", name="three")
    return root


def unschedulable() -> co.Serial:
    """A group whose pod no node can take: its first node fails after its start_timeout."""
    with co.Serial(same_container=co.SameContainer.NEW, cpu=10_000, start_timeout=3) as root:
        co.Exec("echo one", name="one")
        co.Exec("echo two", name="two")
    return root
