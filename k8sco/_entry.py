"""The ``k8sco`` console script.

``k8sco call ...`` starts once per node, so it goes straight to the dispatcher without
importing click, rich, yaml, kubernetes or docker; every other command loads the click CLI.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``k8sco`` with ``argv`` (default ``sys.argv[1:]``); the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["call"]:
        from k8sco.dispatch import main as call

        return call(args[1:])
    if args[:1] == ["sequence"]:  # a shared container's Job (k8sco/sequence.py)
        from k8sco.sequence import main as sequence

        return sequence(args[1:])
    from k8sco.cli.app import cli  # the click CLI and what it imports load only here

    cli.main(args=args, prog_name="k8sco")  # exits the process (click's standalone mode)
