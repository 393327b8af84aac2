"""``k8sco render`` prints only Kubernetes objects and needs no Docker engine: the tags of
images that need a build are computed from their inputs, the ones ``k8sco build`` gives."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from k8sco.containers.build import Builder
from k8sco.image import Image

PIPELINE = """\
import k8sco as co

print("hello from the top of the file")


def pipeline() -> co.Serial:
    print("building the tree")
    img = co.Image(copy_dir=".", install_pip=["six==1.16.0"], name="planned")
    with co.Serial(image=img) as root:
        co.Exec("echo hi", name="hi")
        co.Exec("echo plain", name="plain", image=co.Image(image="alpine:3.20"))
    return root
"""


@pytest.fixture
def pipeline_dir(tmp_path: Path) -> Path:
    (tmp_path / "flow.py").write_text(textwrap.dedent(PIPELINE))
    return tmp_path


def render(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # No engine answers here: a closed socket.
        "DOCKER_HOST": f"unix://{folder}/no-engine.sock",
        "K8SCO_BASE_IMAGE": "python:3.11-slim",
    }
    env.pop("K8SCO_REGISTRY", None)
    return subprocess.run(
        [sys.executable, "-m", "k8sco", "render", "flow.py:pipeline", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_render_needs_no_engine_and_names_the_build_tag(
    pipeline_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = render(pipeline_dir)
    assert done.returncode == 0, done.stderr
    # Only objects on stdout; what the file printed went to stderr.
    docs = list(yaml.safe_load_all(done.stdout))
    assert docs and all(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in docs)
    assert "hello from the top of the file" not in done.stdout
    assert "hello from the top of the file" in done.stderr
    assert "building the tree" in done.stderr
    images = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
        for d in docs
        if d["kind"] == "Job"
    }
    # The tag k8sco build gives (Builder.build tags with its plan), computed here without
    # building, with the same settings.
    monkeypatch.setenv("K8SCO_BASE_IMAGE", "python:3.11-slim")
    monkeypatch.delenv("K8SCO_REGISTRY", raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{pipeline_dir}/no-engine.sock")
    image = Image(copy_dir=".", install_pip=["six==1.16.0"], name="planned")
    plain = Image(image="alpine:3.20")
    with Builder.from_env(os.environ) as builder:
        expected = {
            builder.plan(image, str(pipeline_dir)).ref,
            builder.plan(plain, str(pipeline_dir)).ref,
        }
    assert set(images.values()) == expected
    assert all(ref.startswith(("k8sco-planned:", "k8sco-image:")) for ref in expected)
    # The same inputs, the same tag; a changed file, a new one.
    assert render(pipeline_dir).stdout == done.stdout
    (pipeline_dir / "data.txt").write_text("new input\n")
    assert render(pipeline_dir).stdout != done.stdout


def test_render_build_builds_first(pipeline_dir: Path) -> None:
    done = render(pipeline_dir, "--build")
    assert done.returncode == 2
    assert "no Docker engine answers" in done.stderr
    assert done.stdout == ""
