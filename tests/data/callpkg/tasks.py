"""Functions addressed by module name: ``k8sco call callpkg.tasks:double --n=4``."""

from __future__ import annotations


def double(n: int) -> int:
    return 2 * n
