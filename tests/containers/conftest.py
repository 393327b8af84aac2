"""A real Docker engine and base image for the tests that need one.

The ``engine`` fixture runs ``scripts/docker-setup.sh`` (installs and starts dockerd if need
be) and ``scripts/base-image.sh`` (a local Python base image, no registry needed). It skips
only when no engine can be started, and says so loudly; a base image that cannot be built
is a failure.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from k8sco.containers.build import Builder, BuildSettings

REPO = Path(__file__).resolve().parents[2]
PRIMES = '''\
def seive(n: int) -> None:
    """Prints the primes below n, and the version of the requirement the image installed."""
    import six  # installed in the image by reqs_py, not on the client

    is_prime = [True] * n
    primes = []
    for i in range(2, n):
        if is_prime[i]:
            primes.append(i)
            for j in range(i * i, n, i):
                is_prime[j] = False
    print(" ".join(map(str, primes)), "six", six.__version__)
'''
PIPELINE = """\
import k8sco as co
from primes import seive


def pipeline() -> co.Serial:
    image = co.Image(copy_dir=".", reqs_py=["six==1.16.0"], name="test-primes")
    with co.Serial(image=image) as root:
        co.Exec(seive, 30).set(name="seive")
        co.Exec("id -u", name="whoami")
    return root
"""


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    setup = subprocess.run(
        ["bash", str(REPO / "scripts" / "docker-setup.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    if setup.returncode != 0:
        tail = "\n".join(setup.stderr.splitlines()[-8:])
        pytest.skip(f"NO DOCKER ENGINE COULD BE STARTED, the image tests did not run:\n{tail}")
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(engine: docker.DockerClient) -> str:
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "base-image.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"scripts/base-image.sh failed:\n{proc.stderr[-3000:]}"
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def builder(engine: docker.DockerClient, base_image: str) -> Builder:
    # The documented option for a TLS-intercepting proxy: on these machines pip's CA bundle.
    ca = os.environ.get("K8SCO_BUILD_CA_BUNDLE") or os.environ.get("PIP_CERT")
    settings = BuildSettings.from_env(os.environ, base_image=base_image, ca_bundle=ca)
    return Builder(settings, engine)


@pytest.fixture
def pipeline_dir(tmp_path: Path) -> Path:
    (tmp_path / "primes.py").write_text(PRIMES)
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / ".k8sco").mkdir()
    (tmp_path / ".k8sco" / "state").write_text("run state: never copied")
    return tmp_path
