"""The real kubectl against the fake API server (tests/fakecluster): `kubectl apply -f
manifests/` installs k8sco, and `k8sco render | kubectl apply -f -` is accepted."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fakecluster import FakeCluster
from fakecluster.fixtures import Kubectl
from kube_schemas import REPO

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    with FakeCluster(kubelet=False, log_dir=str(tmp_path / "logs")) as fake:
        yield fake
    assert not fake.internal_errors, "\n".join(fake.internal_errors)


@pytest.fixture
def kubectl(cluster: FakeCluster, tmp_path: Path) -> Kubectl:
    return Kubectl(cluster.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path / "cache")


def render(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "k8sco", "render", str(REPO / "examples" / "primes.py"), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


def test_manifests_install_and_rendered_objects_apply(
    cluster: FakeCluster, kubectl: Kubectl
) -> None:
    out = kubectl("apply", "-f", str(REPO / "manifests")).stdout
    assert "namespace/k8sco-system created" in out
    assert "customresourcedefinition.apiextensions.k8s.io/pipelines.k8sco.io created" in out
    assert "deployment.apps/k8sco-controller created" in out
    assert "clusterrole.rbac.authorization.k8s.io/k8sco-user created" in out

    stream = render("-n", "default")
    # The whole stream, Jobs included, passes the server's checks without being stored.
    checked = kubectl("apply", "--dry-run=server", "-f", "-", input=stream).stdout
    jobs = [d for d in yaml.safe_load_all(stream) if d["kind"] == "Job"]
    assert checked.count("(server dry run)") == 1 + len(jobs)
    assert kubectl("get", "jobs", "-o", "name").stdout == ""

    out = kubectl("apply", "-f", "-", input=render("--pipeline-only")).stdout
    assert out.strip() == "pipeline.k8sco.io/primes created"
    stored = cluster.get("pipelines.k8sco.io", "primes", "default")
    assert stored["spec"]["tree"]  # nothing pruned: every field is in the schema
    assert stored["spec"] == yaml.safe_load(render("--pipeline-only"))["spec"]
    table = kubectl("get", "pl").stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "PROGRESS", "AGE"]
    assert table[1].split()[0] == "primes"
