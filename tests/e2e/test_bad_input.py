"""Bad input: one line naming the culprit, exit 2, and nothing created on the cluster."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakecluster import FakeCluster

from .conftest import REPO, Target


def k8sco(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "k8sco", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[tuple[FakeCluster, Path]]:
    """A cluster where k8sco is not installed."""
    with FakeCluster(kubelet=False) as cluster:
        path = tmp_path / "kubeconfig"
        cluster.write_kubeconfig(path)
        yield cluster, path


def test_missing_crd_says_how_to_install(bare: tuple[FakeCluster, Path]) -> None:
    cluster, kubeconfig = bare
    line = one_line(
        k8sco(
            "apply",
            "examples/primes.py",
            "--kubeconfig",
            str(kubeconfig),
            "--controller",
            "cluster",
        )
    )
    assert "no Pipeline resource" in line
    assert "kubectl apply -f manifests/" in line
    assert cluster.objects("jobs.batch") == []


def test_unreachable_api_server(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        f"clusters: [{{name: x, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: x, user: {}}]\n"
        "contexts: [{name: x, context: {cluster: x, user: x}}]\n"
    )
    line = one_line(k8sco("list", "--kubeconfig", str(kubeconfig)))
    assert f"cannot reach the Kubernetes API at http://127.0.0.1:{port}" in line


def test_missing_namespace(target: Target) -> None:
    out = target.k8sco("list", "-n", "no-such-namespace")
    # A list in a missing namespace is empty on a real API server; creating in it is not.
    assert out.returncode == 0
    created = k8sco(
        "apply",
        "examples/primes.py",
        "--kubeconfig",
        str(target.kubeconfig),
        "-n",
        "no-such-namespace",
        "--controller",
        "cluster",
        env=target.env,
    )
    line = one_line(created)
    assert "no-such-namespace" in line


def test_namespace_without_permission(bare: tuple[FakeCluster, Path]) -> None:
    cluster, kubeconfig = bare
    crd = REPO / "manifests" / "10-crd.yaml"
    subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "apply", "-f", str(crd)],
        check=True,
        capture_output=True,
    )
    # RBAC is not simulated: the fake answers every write to pipelines with 403 Forbidden.
    cluster.faults.configure(
        write_error_rate=1.0, write_error_codes=(403,), resources=["pipelines"]
    )
    line = one_line(
        k8sco(
            "apply",
            "examples/primes.py",
            "--kubeconfig",
            str(kubeconfig),
            "--controller",
            "cluster",
        )
    )
    assert line.startswith("k8sco: not allowed to create pipeline")
    assert cluster.objects("pipelines.k8sco.io") == []


def test_invalid_tree_creates_nothing(target: Target) -> None:
    before = target.kubectl("get", "pipelines", "-n", target.namespace, "-o", "name").stdout
    line = one_line(target.k8sco("apply", "examples/primes.py", "--n=lots"))
    assert "--n" in line and "int" in line
    after = target.kubectl("get", "pipelines", "-n", target.namespace, "-o", "name").stdout
    assert before == after


def test_bad_live_controls_change_nothing(target: Target) -> None:
    # Issue 14's commands on a Pipeline: each bad one is one line naming the culprit, exit
    # 2, and the Pipeline's spec is left as it was (no spec.controls entry).
    name = target.name("badctl")
    applied = target.apply("tests/e2e/pipelines/issue14_pipelines.py:failing_group", name)
    assert applied.returncode == 0, applied.stderr
    ns = ("-n", target.namespace)
    cases = [
        (("skip", name, "/nope"), "/nope"),
        (("unskip", name, "/box/two"), "/box/two: on a cluster"),
        (("reset", name, "/box/zzz"), "/box/zzz"),
        (("modify", name, "/after", "--set", "bogus=1"), "'bogus'"),
        (("modify", name, "/after", "--set", "requires_docker=maybe"), "'requires_docker'"),
        (("modify", name, "/after", "--set", "skip=true"), "'skip'"),
        (("modify", name, "/box", "--command", "echo x"), "/box: --command"),
        (("skip", "no-such-pipeline", "/after"), "no-such-pipeline"),
        (("debug", name, "/nope", "--print"), "/nope"),
    ]
    for args, culprit in cases:
        done = target.k8sco(*args, *ns)
        line = one_line(done)
        assert culprit in line, (args, line)
    assert "controls" not in target.get("pipeline", name)["spec"]
