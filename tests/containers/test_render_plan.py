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
from click.testing import CliRunner

from k8sco.cli.app import cli
from k8sco.containers import build as build_mod
from k8sco.containers.build import Builder
from k8sco.containers.context import K8scoDist
from k8sco.image import Image

DIST = K8scoDist("k8sco==0.1.0")

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


def test_render_prints_only_objects_and_needs_no_engine(pipeline_dir: Path) -> None:
    done = render(pipeline_dir)
    assert done.returncode == 0, done.stderr
    # Only objects on stdout; what the file printed went to stderr.
    docs = list(yaml.safe_load_all(done.stdout))
    assert docs and all(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in docs)
    assert "hello from the top of the file" not in done.stdout
    assert "hello from the top of the file" in done.stderr
    assert "building the tree" in done.stderr
    jobs = [d for d in docs if d["kind"] == "Job"]
    images = {j["spec"]["template"]["spec"]["containers"][0]["image"] for j in jobs}
    assert len(jobs) == 2 and all(i.startswith(("k8sco-planned:", "k8sco-image:")) for i in images)


def test_render_names_the_tag_build_gives(
    pipeline_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One k8sco for both sides: the tag holds the k8sco wheel's digest, and this checkout
    # may be edited while the test runs.
    monkeypatch.setattr(build_mod, "k8sco_dist", lambda cache_dir=None: DIST)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{pipeline_dir}/no-engine.sock")
    monkeypatch.setenv("K8SCO_BASE_IMAGE", "python:3.11-slim")
    monkeypatch.delenv("K8SCO_REGISTRY", raising=False)
    monkeypatch.chdir(pipeline_dir)

    def images() -> set[str]:
        result = CliRunner().invoke(cli, ["render", "flow.py:pipeline"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        docs = [d for d in yaml.safe_load_all(result.stdout) if d["kind"] == "Job"]
        return {d["spec"]["template"]["spec"]["containers"][0]["image"] for d in docs}

    rendered = images()
    # The tag k8sco build gives (Builder.build tags with its plan), computed here without
    # building, with the same settings.
    image = Image(copy_dir=".", install_pip=["six==1.16.0"], name="planned")
    plain = Image(image="alpine:3.20")
    with Builder.from_env(os.environ) as builder:
        expected = {builder.plan(i, str(pipeline_dir)).ref for i in (image, plain)}
    assert rendered == expected
    # The same inputs, the same tag; a changed file, a new one.
    assert images() == rendered
    (pipeline_dir / "data.txt").write_text("new input\n")
    changed = images()
    assert changed != rendered and len(changed & rendered) == 1  # alpine copies no code


def test_render_build_builds_first(pipeline_dir: Path) -> None:
    done = render(pipeline_dir, "--build")
    assert done.returncode == 2
    assert "no Docker engine answers" in done.stderr
    assert done.stdout == ""
