"""pytest fixtures for the fake cluster. Register with
``pytest_plugins = ["fakecluster.fixtures"]`` in tests/conftest.py (tests/fakecluster's own
conftest imports them directly).

- ``fake_cluster``: a started FakeCluster (fails the test on internal errors at teardown)
- ``kubeconfig``: the path of a kubeconfig for it
- ``k8s_client``: a ``kubernetes.client.ApiClient`` for it
- ``kubectl``: ``kubectl("get", "jobs")`` runs the real kubectl against it
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .cluster import FakeCluster

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


class Kubectl:
    """Runs kubectl with this cluster's kubeconfig and a fresh discovery cache."""

    def __init__(self, kubeconfig: Path, cache_dir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.cache_dir = cache_dir

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        cmd = [
            KUBECTL,
            "--kubeconfig",
            str(self.kubeconfig),
            "--cache-dir",
            str(self.cache_dir),
            *args,
        ]
        result = subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
        return result


@pytest.fixture
def fake_cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    with FakeCluster(log_dir=str(tmp_path / "fakecluster-logs")) as cluster:
        yield cluster
    assert not cluster.internal_errors, "\n".join(cluster.internal_errors)


@pytest.fixture
def kubeconfig(fake_cluster: FakeCluster, tmp_path: Path) -> Path:
    return fake_cluster.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def k8s_client(fake_cluster: FakeCluster) -> Iterator[Any]:
    with fake_cluster.api_client() as client:
        yield client


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    return Kubectl(kubeconfig, tmp_path / "kube-cache")
