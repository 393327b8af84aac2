"""``k8sco run --docker`` with shared containers (container_reuse_context=NEW: one container
per group, each node exec'd into it) and requires_docker=True (the engine's socket mounted),
against the real engine of the ``engine`` fixture."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest

pytestmark = pytest.mark.slow

PIPELINE = """\
import k8sco as co

PING = (
    "python3 -c \\"import socket; s = socket.socket(socket.AF_UNIX); "
    "s.connect('/var/run/docker.sock'); s.sendall(b'GET /_ping HTTP/1.0\\\\r\\\\n\\\\r\\\\n'); "
    "print(s.recv(4096).decode().split()[-1])\\""
)


def pipeline(ref: str) -> co.Serial:
    with co.Serial(image=ref, stop_on_error=False) as root:
        with co.Serial(name="box", same_container=co.SameContainer.NEW):
            co.Exec("echo $HOSTNAME > /tmp/box; echo made", name="make")
            with co.Parallel(name="p"):
                co.Exec("cat /tmp/box; echo $K8SCO_NODE_PATH $WHO", name="a", env={"WHO": "a"})
                co.Exec("cat /tmp/box; exit 5", name="b")
            co.Exec("echo never", name="never")
        co.Exec("cat /tmp/box 2>/dev/null || echo fresh", name="alone")
        co.Exec(PING, name="docker", requires_docker=True)
    return root
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    return tmp_path


def k8sco(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "k8sco", *args],
        cwd=project,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_group_shares_one_container_and_requires_docker_reaches_the_engine(
    project: Path, engine: docker.DockerClient, base_image: str
) -> None:
    result = k8sco(project, "run", "--docker", "--plain", "pipeline.py", f"--ref={base_image}")
    assert result.returncode == 1, result.stdout + result.stderr
    made = k8sco(project, "logs", "/box/make").stdout.strip()
    a = k8sco(project, "logs", "/box/p/a").stdout.split()
    b = k8sco(project, "logs", "/box/p/b").stdout.split()
    host = a[0]
    assert made == "made" and b == [host]  # one container: the same file, the same host
    assert a[1:] == ["/box/p/a", "a"]  # each node its own environment
    assert "exit code 5" in result.stdout
    assert "has not run" in k8sco(project, "logs", "/box/never").stderr  # its Serial stopped
    assert k8sco(project, "logs", "/alone").stdout.strip() == "fresh"  # a container of its own
    assert k8sco(project, "logs", "/docker").stdout.strip() == "OK"  # the engine answered
    run = next(p.name for p in (project / ".k8sco" / "runs").iterdir() if not p.is_symlink())
    left = engine.api.containers(all=True, filters={"label": f"k8sco.io/run={run}"})
    assert left == []  # the group's container went with the run
