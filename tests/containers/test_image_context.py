"""The generated Dockerfile, build context and input hash: no Docker engine needed."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from k8sco.containers import context
from k8sco.containers.context import K8scoDist
from k8sco.errors import BuildError
from k8sco.image import Image

DIST = K8scoDist("k8sco==0.1.0")
WHEEL_DIST = K8scoDist("k8sco-0.1.0-py3-none-any.whl", ("click>=8.1",), "/w/k.whl", "d" * 64)


def make_code(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "primes.py").write_text("def seive(n: int) -> None: ...\n")
    (root / "pkg" / "util.py").write_text("X = 1\n")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    return root


def tag_of(root: Path, image: Image | None = None, **kw: object) -> str:
    image = image or Image(copy_dir=".", name="app")
    args: dict[str, object] = {"base": "python:3.11-slim", "base_id": "sha256:base", "dist": DIST}
    args.update(kw)
    files = context.scan_dir(str(root))
    return context.plan(image, files=files, **args).ref  # type: ignore[arg-type]


def test_same_inputs_give_the_same_tag(tmp_path: Path) -> None:
    make_code(tmp_path / "a")
    make_code(tmp_path / "b")
    first = tag_of(tmp_path / "a")
    assert first.startswith("k8sco-app:") and len(first.split(":")[1]) == 16
    assert tag_of(tmp_path / "a") == first
    # Another directory with the same files (and other mtimes) is the same input.
    os.utime(tmp_path / "b" / "primes.py", (1, 1))
    assert tag_of(tmp_path / "b") == first


@pytest.mark.parametrize(
    "change",
    [
        lambda r: (r / "primes.py").write_text("def seive(n: int) -> None: pass\n"),
        lambda r: (r / "pkg" / "new.py").write_text(""),
        lambda r: (r / "pkg" / "util.py").unlink(),
        lambda r: (r / "run.sh").chmod(0o644),
        lambda r: (r / "empty").mkdir(),
        lambda r: (r / "link").symlink_to("primes.py"),
    ],
    ids=["content", "new file", "removed file", "mode", "new dir", "symlink"],
)
def test_a_changed_file_changes_the_tag(tmp_path: Path, change: object) -> None:
    root = make_code(tmp_path)
    before = tag_of(root)
    change(root)  # type: ignore[operator]
    assert tag_of(root) != before


@pytest.mark.parametrize(
    "path", [".git/HEAD", ".k8sco/runs/1/state.json", "__pycache__/x.pyc", "pkg/__pycache__/y.pyc"]
)
def test_excluded_paths_do_not_change_the_tag(tmp_path: Path, path: str) -> None:
    root = make_code(tmp_path)
    before = tag_of(root)
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text("anything")
    assert tag_of(root) == before
    excluded = str(Path(path).parent)
    assert not [e.path for e in context.scan_dir(str(root)) if e.path.startswith(excluded)]


def test_dockerignore_in_copy_dir_is_honoured(tmp_path: Path) -> None:
    root = make_code(tmp_path)
    (root / "data").mkdir()
    (root / "data" / "big.csv").write_text("1,2\n")
    (root / "data" / "keep.csv").write_text("3,4\n")
    (root / ".dockerignore").write_text("# comment\ndata\n!data/keep.csv\n")
    paths = [e.path for e in context.scan_dir(str(root))]
    assert "data/keep.csv" in paths and "data/big.csv" not in paths
    before = tag_of(root)
    (root / "data" / "big.csv").write_text("changed\n")
    assert tag_of(root) == before


@pytest.mark.parametrize(
    "kw",
    [
        {"base_id": "sha256:other"},
        {"base": "python:3.12-slim"},
        {"dist": K8scoDist("k8sco==0.2.0")},
        {"image": Image(copy_dir=".", name="app", reqs_py=["six"])},
        {"image": Image(copy_dir=".", name="app", reqs_packages=["curl"])},
        {"image": Image(copy_dir=".", name="app", env={"A": "1"})},
    ],
    ids=["base id", "base", "k8sco", "reqs_py", "reqs_packages", "env"],
)
def test_every_other_input_changes_the_tag(tmp_path: Path, kw: dict[str, object]) -> None:
    root = make_code(tmp_path)
    assert tag_of(root, **kw) != tag_of(root)  # type: ignore[arg-type]


def test_the_ca_bundle_and_registry_are_not_inputs_of_the_hash(tmp_path: Path) -> None:
    root = make_code(tmp_path)
    plain = tag_of(root)
    assert tag_of(root, ca_bundle=b"-----BEGIN CERTIFICATE-----") == plain
    pushed = tag_of(root, registry="registry.example.com:5000/team")
    assert pushed == "registry.example.com:5000/team/" + plain


def test_user_dockerfile_inputs_change_the_tag(tmp_path: Path) -> None:
    root = make_code(tmp_path)
    user = context.UserDockerfile("/c/Dockerfile", "/c", "FROM debian\n", {"A": "1"}, ())
    with_user = tag_of(root, user=user)
    assert with_user != tag_of(root)
    assert tag_of(root, user=user) == with_user
    changed = [
        context.UserDockerfile("/c/Dockerfile", "/c", "FROM ubuntu\n", {"A": "1"}, ()),
        context.UserDockerfile("/c/Dockerfile", "/c", "FROM debian\n", {"A": "2"}, ()),
        context.UserDockerfile(
            "/c/Dockerfile", "/c", "FROM debian\n", {"A": "1"}, context.scan_dir(str(root))
        ),
    ]
    assert len({tag_of(root, user=u) for u in changed} | {with_user}) == 4


def test_dockerfile_orders_layers_for_cache_hits() -> None:
    image = Image(copy_dir=".", reqs_py=["six==1.16.0"], reqs_packages=["curl"], env={"A": "b"})
    text = context.render_dockerfile(image, WHEEL_DIST, has_code=True)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "FROM {base}"
    order = [
        "setup.sh user 1000 /app",
        "setup.sh apt curl",
        "setup.sh pip six==1.16.0",
        "setup.sh pip 'click>=8.1'",
        "COPY .k8sco-build/dist/",
        "--no-deps /tmp/k8sco-build/dist/k8sco-0.1.0-py3-none-any.whl",
        'ENV PYTHONUNBUFFERED="1" A="b"',
        "WORKDIR /app",
        "USER 1000:1000",
        "COPY --chown=1000:1000 code/ /app/",
    ]
    found = [next(i for i, line in enumerate(lines) if want in line) for want in order]
    assert found == sorted(found)
    assert lines[-1] == "COPY --chown=1000:1000 code/ /app/"  # a code change: one layer


def test_dockerfile_from_pypi_and_without_code() -> None:
    text = context.render_dockerfile(Image(image="debian:12"), DIST, has_code=False)
    assert "setup.sh pip k8sco==0.1.0 && rm -rf /tmp/k8sco-build" in text
    assert "code/" not in text and "USER 1000:1000" in text


def test_env_values_are_quoted_for_the_dockerfile() -> None:
    image = Image(env={"P": 'a "b" $HOME \\ c'})
    text = context.render_dockerfile(image, DIST, has_code=False)
    assert 'P="a \\"b\\" \\$HOME \\\\ c"' in text
    with pytest.raises(BuildError, match="line break"):
        context.render_dockerfile(Image(env={"P": "a\nb"}), DIST, has_code=False)
    with pytest.raises(BuildError, match="not a valid variable name"):
        context.render_dockerfile(Image(env={"A B": "x"}), DIST, has_code=False)


@pytest.mark.parametrize(
    ("image", "registry", "repo"),
    [
        (Image(name="My App!"), None, "k8sco-my-app"),
        (Image(copy_dir="src/pipes"), None, "k8sco-pipes"),
        (Image(), "localhost:5000", "localhost:5000/k8sco-image"),
        (Image(name="ghcr.io/me/app"), "ignored.io", "ghcr.io/me/app"),
    ],
)
def test_repository_names(image: Image, registry: str | None, repo: str) -> None:
    assert context.repository_name(image, registry) == repo


def test_context_tar_is_deterministic_and_holds_the_code(tmp_path: Path) -> None:
    root = make_code(tmp_path / "code")
    (root / "link").symlink_to("primes.py")
    files = context.scan_dir(str(root))
    build = context.plan(
        Image(copy_dir="."), base="b", base_id="i", files=files, dist=DIST, ca_bundle=b"PEM"
    )
    blobs = []
    for _ in range(2):
        out = io.BytesIO()
        context.write_context(build, out)
        blobs.append(out.getvalue())
    assert blobs[0] == blobs[1]
    with tarfile.open(fileobj=io.BytesIO(blobs[0])) as tar:
        names = tar.getnames()
        assert tar.extractfile("Dockerfile").read().decode().startswith("# Generated")  # type: ignore[union-attr]
        assert tar.getmember("code/run.sh").mode == 0o755
        assert tar.getmember("code/link").issym()
        assert tar.extractfile(".k8sco-build/setup/ca.pem").read() == b"PEM"  # type: ignore[union-attr]
    assert {"code/primes.py", "code/pkg/util.py", ".k8sco-build/setup/setup.sh"} <= set(names)
    assert "FROM b\n" in build.dockerfile()


def test_scan_dir_of_a_missing_directory_fails(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="not a directory"):
        context.scan_dir(str(tmp_path / "nope"))


def test_default_base_is_the_clients_python() -> None:
    assert context.default_base((3, 11)) == "python:3.11-slim"
