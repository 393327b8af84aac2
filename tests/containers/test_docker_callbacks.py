"""Callbacks with ``k8sco run --docker``: Docker's ``State.OOMKilled`` is the signal that
``retry_with_double_mem`` acts on; a container that fails otherwise is retried with the
same memory, even when it exits 137 as a killed process would. Needs a real engine (the
``engine`` fixture skips loudly without one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from k8sco.containers.build import Builder

pytestmark = pytest.mark.slow

PIPELINE = """\
import k8sco as co

# About 150 MiB resident: more than 128Mi, less than twice that.
HOG = "python -c 'import time; b = b\\"x\\" * (150 * 2**20); time.sleep(1)'"


def oom() -> co.Serial:
    with co.Serial() as root:
        hog = co.Exec(HOG, name="hog", mem="128Mi")
        hog.on_error(co.callback.retry_with_double_mem(2))
    return root


def killed() -> co.Serial:
    with co.Serial() as root:
        n = co.Exec('test "${K8SCO_ATTEMPT:-1}" -ge 2 || exit 137', name="n", mem="128Mi")
        n.on_error(co.callback.retry_with_double_mem(2))
    return root
"""


def run(tmp_path: Path, builder: Builder, target: str) -> dict[str, object]:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    env = {**os.environ, "K8SCO_BASE_IMAGE": builder.settings.base_image}
    if builder.settings.ca_bundle:
        env["K8SCO_BUILD_CA_BUNDLE"] = builder.settings.ca_bundle
    result = subprocess.run(
        [sys.executable, "-m", "k8sco", "run", "--docker", "--plain", target],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (run_dir,) = [p for p in (tmp_path / ".k8sco" / "runs").iterdir() if not p.is_symlink()]
    states = run_dir / "states.json"
    nodes: dict[str, object] = json.loads(states.read_text())["nodes"]
    return nodes


def test_an_oom_killed_container_is_retried_with_twice_the_memory(
    tmp_path: Path, builder: Builder
) -> None:
    hog = run(tmp_path, builder, "pipeline.py:oom")["/hog"]
    assert isinstance(hog, dict)
    assert (hog["state"], hog["retried"], hog["mem"]) == ("done", 1, 256 * 2**20)
    assert hog["history"][0]["oom"] is True


def test_a_container_killed_otherwise_keeps_its_memory(tmp_path: Path, builder: Builder) -> None:
    n = run(tmp_path, builder, "pipeline.py:killed")["/n"]
    assert isinstance(n, dict)
    assert (n["state"], n["retried"], n.get("mem")) == ("done", 1, None)
    assert "oom" not in n["history"][0]
