"""Pipelines of the end-to-end tests of callbacks (tests/e2e/test_callbacks.py)."""

from __future__ import annotations

import k8sco as co

# Fails on its first two attempts: each retry by callback is a new Job, whose pod is told
# its attempt number (K8SCO_ATTEMPT; unset on the first).
FLAKY = 'echo "attempt ${K8SCO_ATTEMPT:-1}"; test "${K8SCO_ATTEMPT:-1}" -ge 3'


def retrying() -> co.Serial:
    """A node that succeeds on its third attempt, then one that runs after it."""
    with co.Serial() as root:
        flaky = co.Exec(FLAKY, name="flaky")
        flaky.on_error(co.callback.retry(3))
        co.Exec("echo after", name="after")
    return root


def many_retrying() -> co.Parallel:
    """Eight such nodes at once (the controller is killed while they retry)."""
    with co.Parallel() as root:
        for i in range(8):
            co.Exec(FLAKY, name=f"n{i}")
    root.on_error(co.callback.retry(3, inherited=True))
    return root


def skipped_failure() -> co.Serial:
    """A failure skipped after one retry, so that its Serial goes on."""
    with co.Serial() as root:
        broken = co.Exec("echo broken; exit 3", name="broken")
        broken.on_error(co.callback.retry_then_skip(1))
        co.Exec("echo after", name="after")
    return root
