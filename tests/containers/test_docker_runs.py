"""Pipelines in real containers: ``k8sco run --docker``, and the fake cluster's pods in Docker.

The image is built by k8sco from a pipeline directory (``copy_dir`` and a ``reqs_py``
requirement), with a real Docker engine (the ``engine`` fixture skips loudly without one).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest
from fakecluster import FakeCluster
from fakecluster.dockerrunner import DockerRunner

from k8sco.containers.build import Builder
from k8sco.image import Image

REPO = Path(__file__).resolve().parents[2]
PRIMES = "[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]"
PIPELINE = """\
import k8sco as co
from primes import seive


def pipeline() -> co.Serial:
    image = co.Image(copy_dir=".", reqs_py=["six==1.16.0"], name="run-primes")
    with co.Serial(image=image) as root:
        co.Exec(seive, 30).set(name="seive")
        co.Exec("id -u; python -c 'import six; print(six.__version__)'", name="inside")
    return root
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "primes.py").write_text((REPO / "examples" / "primes.py").read_text())
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    return tmp_path


def k8sco(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "k8sco", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def build_env(builder: Builder) -> dict[str, str]:
    env = {**os.environ, "K8SCO_BASE_IMAGE": builder.settings.base_image}
    if builder.settings.ca_bundle:
        env["K8SCO_BUILD_CA_BUNDLE"] = builder.settings.ca_bundle
    return env


def test_run_docker_runs_each_node_in_its_image(
    project: Path, build_env: dict[str, str], engine: docker.DockerClient
) -> None:
    result = k8sco(project, "run", "--docker", "pipeline.py", env=build_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert k8sco(project, "logs", "/seive", env=build_env).stdout.strip() == PRIMES
    uid, six = k8sco(project, "logs", "/inside", env=build_env).stdout.split()
    assert (uid, six) == ("1000", "1.16.0")  # non-root, and the image's own requirement
    assert engine.containers.list(all=True, filters={"label": "k8sco.io/run"}) == []


def test_a_failing_node_in_docker_mode_fails_the_run(
    project: Path, build_env: dict[str, str]
) -> None:
    (project / "pipeline.py").write_text(PIPELINE.replace('"id -u; ', '"exit 3; '))
    result = k8sco(project, "run", "--docker", "pipeline.py", env=build_env)
    assert result.returncode == 1
    assert "exit code 3" in result.stdout


def test_the_fake_clusters_pods_run_in_the_built_image(
    project: Path,
    builder: Builder,
    build_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    ref = builder.build(
        Image(copy_dir=".", reqs_py=["six==1.16.0"], name="run-primes"), str(project)
    ).ref
    kube = tmp_path_factory.mktemp("kube")
    with FakeCluster(runner=DockerRunner(), log_dir=str(kube / "logs")) as fake:
        kubeconfig = kube / "kubeconfig"
        fake.write_kubeconfig(kubeconfig)
        subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                str(kubeconfig),
                "--cache-dir",
                str(kube / "cache"),
                "apply",
                "-f",
                str(REPO / "manifests" / "10-crd.yaml"),
            ],
            check=True,
            capture_output=True,
        )
        flags = ["--kubeconfig", str(kubeconfig)]
        applied = k8sco(
            project,
            "apply",
            "pipeline.py",
            "--name",
            "primes",
            "--image",
            ref,
            "--controller",
            "embedded",
            *flags,
            env=build_env,
        )
        assert applied.returncode == 0, applied.stdout + applied.stderr
        logs = k8sco(project, "logs", "primes", "/seive", *flags, env=build_env)
        assert logs.stdout.strip() == PRIMES
        inside = k8sco(project, "logs", "primes", "/inside", *flags, env=build_env)
        assert inside.stdout.split() == ["1000", "1.16.0"]
        pod = fake.objects("pods", "default")[0]
        assert pod["status"]["containerStatuses"][0]["containerID"].startswith("docker://")


def test_render_names_the_built_image(
    project: Path, builder: Builder, build_env: dict[str, str]
) -> None:
    ref = builder.build(
        Image(copy_dir=".", reqs_py=["six==1.16.0"], name="run-primes"), str(project)
    ).ref
    rendered = k8sco(project, "render", "pipeline.py", env=build_env)
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout.count(f"image: {ref}") == 2  # both Jobs
