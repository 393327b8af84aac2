"""Pipelines of the end-to-end tests of live controls (tests/e2e/test_controls.py)."""

from __future__ import annotations

import k8sco as co


def skippable() -> co.Serial:
    """A failure that stops its Serial until it is skipped; the nodes after it wait."""
    with co.Serial() as root:
        co.Exec("echo failing; exit 3", name="fails")
        co.Exec("echo after", name="after")
        co.Exec("echo original", name="last")
    return root
