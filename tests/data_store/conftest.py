"""Fixtures of the co.data tests: an S3-compatible server over real HTTP on 127.0.0.1.

The server is moto's (``moto_server``, moto[server] from PyPI) in its own virtualenv,
``.venv-s3`` (scripts/test.sh makes it; ``K8SCO_TEST_MOTO_SERVER`` may name another
``moto_server``): no S3 server binary (MinIO, Ceph) can be installed here, moto is the
maintained emulator with a server mode, and it cannot live in k8sco's own environment
because botocore pins python-dateutil<3 while kubernetes 37 needs >=3. It runs as a
separate process, so k8sco's client meets it only through HTTP, as it would a real store.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakecluster import FakeCluster

from k8sco.kube.client import Cluster
from k8sco.render.crd import crd

REPO = Path(__file__).resolve().parents[2]
BIN = str(Path(sys.executable).parent)
KEYS = {"AWS_ACCESS_KEY_ID": "k8sco-test", "AWS_SECRET_ACCESS_KEY": "k8sco-test-secret"}


def moto_server() -> str | None:
    found = os.environ.get("K8SCO_TEST_MOTO_SERVER") or str(REPO / ".venv-s3/bin/moto_server")
    return found if os.access(found, os.X_OK) else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a moto server started for this session."""
    server = moto_server()
    if server is None:
        pytest.skip("no moto_server: run scripts/test.sh once (it makes .venv-s3)")
    port = _free_port()
    proc = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start (exit {proc.poll()})") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3_env(s3_endpoint: str) -> dict[str, str]:
    return {"K8SCO_S3_ENDPOINT": s3_endpoint, **KEYS}


@pytest.fixture
def bucket(s3_env: dict[str, str], request: pytest.FixtureRequest) -> str:
    """A fresh bucket for one test."""
    from k8sco.data.s3 import S3Store

    name = (
        "t-" + str(abs(hash(request.node.nodeid)) % 10**12) + "-" + str(time.monotonic_ns() % 10**6)
    )
    S3Store.from_url(f"s3://{name}/", s3_env).create_bucket()
    return name


def k8sco_bin(name: str) -> str:
    """A console script of k8sco's venv (next to the interpreter running the tests)."""
    return str(Path(sys.executable).parent / name)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[FakeCluster, Cluster, Path]]:
    """A fake cluster whose pods run with k8sco's scripts on PATH, without the test
    environment's S3 settings and keys (a pod gets those from its Job only)."""
    env = dict(os.environ)
    for name in (*KEYS, "K8SCO_DATA_PIPELINE", "K8SCO_DATA_USER", "K8SCO_S3_ENDPOINT"):
        env.pop(name, None)  # a pod gets these from its Job only
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")  # the image's k8sco scripts
    with FakeCluster(path_map={"/app": str(tmp_path)}, base_env=env, gc_delay=0) as cluster:
        cluster.create(crd())
        kubeconfig = tmp_path / "kubeconfig"
        cluster.write_kubeconfig(kubeconfig)
        client = Cluster(str(kubeconfig))
        yield cluster, client, kubeconfig
        client.close()
