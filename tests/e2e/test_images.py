"""A pipeline with a ``co.Image`` on a cluster whose pods run in that image.

On the fake cluster the pods run in Docker (``fakecluster.dockerrunner.DockerRunner``): a
cluster of its own, installed with ``kubectl apply -f manifests/``, with a ``k8sco
controller`` process for its namespace. Against a real cluster (``K8SCO_E2E_KUBECONFIG``)
these tests use the suite's cluster; ``k8sco build`` and ``k8sco apply`` load the image into
kind when the kube context is ``kind-*``.

The image is built from a directory holding ``examples/primes.py`` and requires a small
pure-Python package. That needs a Docker engine: the engine and base-image fixtures of
``tests/containers`` start one, or skip saying so loudly. Build caching (a second build does
nothing, a code change rebuilds one layer) is tested there, in ``test_docker_engine.py``.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from containers.conftest import base_image, builder, engine  # noqa: F401 (fixtures)
from fakecluster import FakeCluster
from fakecluster.dockerrunner import DockerRunner
from fakecluster.fixtures import Kubectl

from k8sco.containers.build import Builder

from .conftest import K8SCO, REPO, ControllerProcess, Target, create_namespace

pytestmark = pytest.mark.slow

PRIMES_BELOW_30 = "[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]"
PIPELINE = """\
import k8sco as co
from primes import primes as checked_primes


def primes(n: int = 30) -> co.Serial:
    \"\"\"examples/primes.py in an image of this directory, with a requirement of its own.\"\"\"
    root = checked_primes(n)
    root.set(image=co.Image(copy_dir=".", reqs_py=["six==1.16.0"], name="e2e-primes"))
    root["six"] = co.Exec("python -c 'import six; print(six.__version__)'")
    return root
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    code = tmp_path_factory.mktemp("images-project")
    (code / "primes.py").write_text((REPO / "examples" / "primes.py").read_text())
    (code / "images.py").write_text(PIPELINE)
    return code


@pytest.fixture(scope="module")
def cluster(
    request: pytest.FixtureRequest,
    builder: Builder,  # noqa: F811 (the fixture imported above)
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Target]:
    """The cluster under test, its env set up to build images for it."""
    build_env = {"K8SCO_BASE_IMAGE": builder.settings.base_image}
    if builder.settings.ca_bundle:
        build_env["K8SCO_BUILD_CA_BUNDLE"] = builder.settings.ca_bundle
    if os.environ.get("K8SCO_E2E_KUBECONFIG"):
        target: Target = request.getfixturevalue("target")
        env = {**target.env, **build_env, "KUBECONFIG": str(target.kubeconfig)}
        yield dataclasses.replace(target, env=env)
        return
    base = tmp_path_factory.mktemp("e2e-images")
    kubeconfig = base / "kubeconfig"
    env = {**os.environ, "PYTHONPATH": str(REPO), **build_env, "KUBECONFIG": str(kubeconfig)}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    runner = DockerRunner()
    with runner, FakeCluster(runner=runner, log_dir=str(base / "pod-logs")) as fake:
        runner.bind(fake)
        fake.write_kubeconfig(kubeconfig)
        kubectl = Kubectl(kubeconfig, base / "kube-cache")
        kubectl("apply", "-f", str(REPO / "manifests"))
        namespace = "k8sco-images"
        create_namespace(kubectl, namespace)
        controller = ControllerProcess(kubeconfig, namespace, base / "controller.log", env)
        controller.start()
        try:
            yield Target(kubeconfig, namespace, "", kubectl, env, fake, controller)
        finally:
            controller.stop()
        assert not fake.internal_errors, "\n".join(fake.internal_errors)


def check_primes_ran_in(cluster: Target, name: str, ref: str) -> None:
    assert cluster.k8sco("logs", name, "/seive").stdout.strip() == PRIMES_BELOW_30
    assert cluster.k8sco("logs", name, "/six").stdout.strip() == "1.16.0"
    pods = cluster.pods(name)
    assert len(pods) == 6
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {ref}
    if cluster.fake is not None:
        ids = {p["status"]["containerStatuses"][0]["containerID"].split(":")[0] for p in pods}
        assert ids == {"docker"}


def test_build_then_apply_with_the_built_image(cluster: Target, project: Path) -> None:
    built = subprocess.run(
        [*K8SCO, "build", "--quiet", "images.py"],
        cwd=project,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    ref = built.stdout.split()[0]
    assert ref.startswith("k8sco-e2e-primes:"), built.stdout
    # On the fake, the controller embedded in `apply`, in a namespace the cluster's
    # controller does not watch; a real cluster's own controller runs it.
    mode = "cluster"
    if cluster.fake is not None:
        mode = "embedded"
        create_namespace(cluster.kubectl, "k8sco-images-embedded")
        cluster = dataclasses.replace(cluster, namespace="k8sco-images-embedded")
    name = cluster.name("built")
    applied = cluster.k8sco(
        "apply",
        str(project / "images.py"),
        "--name",
        name,
        "--image",
        ref,
        "--controller",
        mode,
        "--wait",
        timeout=300,
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Succeeded (6/6)" in applied.stdout
    check_primes_ran_in(cluster, name, ref)


def test_apply_builds_the_image_and_the_controller_runs_it(cluster: Target, project: Path) -> None:
    name = cluster.name("images")
    applied = cluster.k8sco(
        "apply",
        str(project / "images.py"),
        "--name",
        name,
        "--controller",
        "cluster",
        "--wait",
        timeout=600,
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Succeeded (6/6)" in applied.stdout
    ref = cluster.pods(name)[0]["spec"]["containers"][0]["image"]
    assert ref.startswith("k8sco-e2e-primes:")
    check_primes_ran_in(cluster, name, ref)
