"""Conducto-style pipelines mixing issue 14's features (tests/e2e/test_issue14_mix.py):
written as a Conducto user would, with only the import line changed."""

from __future__ import annotations

import k8sco as co

# Fails on its first attempt only (K8SCO_ATTEMPT is unset on the first).
FLAKY = 'echo "attempt ${K8SCO_ATTEMPT:-1}"; test "${K8SCO_ATTEMPT:-1}" -ge 2'


def retry_in_shared_container() -> co.Serial:
    """A retry callback on a node of a same_container Serial: locally the file the first
    node wrote is there for every attempt and for the node after; refused on a cluster."""
    with co.Serial(same_container=co.SameContainer.NEW) as root:
        co.Exec("echo shared > f.txt", name="write")
        flaky = co.Exec(FLAKY + " && cat f.txt", name="flaky")
        flaky.on_error(co.callback.retry(2))
        co.Exec("cat f.txt", name="read")
    return root


def skip_in_parallel() -> co.Serial:
    """A failure inside a Parallel, skipped by retry_then_skip: the Serial goes on."""
    with co.Serial() as root:
        with co.Parallel(name="par"):
            bad = co.Exec("echo bad; exit 3", name="bad")
            bad.on_error(co.callback.retry_then_skip(1))
            co.Exec("echo good", name="good")
        co.Exec("echo after", name="after")
    return root


def failure_in_parallel() -> co.Serial:
    """A failure inside a Parallel that stops the Serial until it is skipped by hand."""
    with co.Serial() as root:
        with co.Parallel(name="par"):
            co.Exec("echo bad; exit 3", name="bad")
            co.Exec("echo good", name="good")
        co.Exec("echo after", name="after")
    return root


def generate(n: int) -> co.Parallel:
    with co.Parallel() as out:
        for i in range(n):
            co.Exec(f"echo gen {i}", name=f"g{i}")
    return out


def lazy_subtree() -> co.Serial:
    """A Lazy subtree (reset later) and a node after it."""
    with co.Serial() as root:
        root["lazy"] = co.Lazy(generate, 2)
        co.Exec("echo end", name="end")
    return root


def modify_under_callback() -> co.Serial:
    """A node with a retry callback that has not started while its sibling runs: modified,
    its new command runs and its callback still holds."""
    with co.Serial() as root:
        co.Exec(
            "while [ ! -e /tmp/k8sco-e2e-modify-gate ]; do sleep 0.1; done",
            name="gate",
            max_time=600,
        )
        later = co.Exec("echo original; exit 5", name="later")
        later.on_error(co.callback.retry(1))
    return root


def failing_group() -> co.Serial:
    """A failing node of a shared container, the rest of it waiting behind it."""
    with co.Serial() as root:
        with co.Serial(name="box", same_container=co.SameContainer.NEW):
            co.Exec("echo one > f.txt; echo one", name="one")
            co.Exec("echo two; exit 3", name="two")
            co.Exec("echo three", name="three")
        co.Exec("echo after", name="after")
    return root


def retry_then_skip_in_shared_container() -> co.Serial:
    """retry_then_skip on a node of a shared container: locally skipped, the rest of it
    runs; refused on a cluster."""
    with co.Serial(container_reuse_context=co.ContainerReuseContext.NEW) as root:
        co.Exec("echo one", name="one")
        bad = co.Exec("echo bad; exit 3", name="bad")
        bad.on_error(co.callback.retry_then_skip(1))
        co.Exec("echo three", name="three")
    return root
