"""Where a local run's data lives: ``<run dir>/data`` for the pipeline scope, the user's
data directory (``$K8SCO_HOME/data``, default ``~/.k8sco/data``) for the user scope.

The node's log needs no archive locally: it is written to ``<run dir>/logs/`` from the
start and outlives the process (k8sco/local/rundir.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from k8sco.data.api import ENV_PIPELINE, ENV_USER, user_home

__all__ = ["ENV_PIPELINE", "ENV_USER", "local_data_env"]


def local_data_env(run_path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The ``co.data`` variables of a local run's nodes (a K8SCO_DATA_USER already set, to
    share a store between machines for instance, is kept)."""
    return {
        ENV_PIPELINE: str((run_path / "data").absolute()),
        ENV_USER: environ.get(ENV_USER) or str((user_home(environ) / "data").absolute()),
    }
