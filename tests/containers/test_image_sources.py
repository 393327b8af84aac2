"""Code from git (``copy_url`` + ``copy_branch``, ``copy_repo``) and ``dockerfile_text``:
planned, tagged and cloned without a Docker engine, from local bare repositories only; the
last tests build with a real engine."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from k8sco.containers import context, run, sources
from k8sco.containers.build import Builder, BuildSettings, planned_commit
from k8sco.containers.context import K8scoDist
from k8sco.errors import BuildError
from k8sco.image import Image

DIST = K8scoDist("k8sco==0.1.0")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def commit_file(work: Path, name: str, text: str) -> str:
    (work / name).parent.mkdir(parents=True, exist_ok=True)
    (work / name).write_text(text)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", f"write {name}")
    return git(work, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, Path]:
    """A work tree whose ``origin`` is a local bare repository with a ``main`` branch."""
    bare, work = tmp_path / "remote.git", tmp_path / "work"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    git(work, "remote", "add", "origin", str(bare))
    commit_file(work, "app.py", "print('v1')\n")
    git(work, "push", "-q", "origin", "main")
    return work, bare


@pytest.fixture
def planner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Builder:
    # Nothing here may need an engine: any attempt to reach one fails.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/closed.sock")
    b = Builder(BuildSettings(base_image="python:3.11-slim"))
    b._dist = DIST
    return b


def url_image(bare: Path, branch: str = "main") -> Image:
    return Image(copy_url=str(bare), copy_branch=branch, name="from-git")


def test_copy_url_tag_follows_the_branchs_commit(
    repo: tuple[Path, Path], planner: Builder, tmp_path: Path
) -> None:
    work, bare = repo
    first = planner.plan(url_image(bare), str(tmp_path))
    head = git(work, "rev-parse", "HEAD")
    assert first.source == (str(bare), "main", head)
    assert planner.plan(url_image(bare), str(tmp_path)).ref == first.ref  # same commit
    commit_file(work, "app.py", "print('v2')\n")
    git(work, "push", "-q", "origin", "main")
    second = planner.plan(url_image(bare), str(tmp_path))
    assert second.ref != first.ref  # a new commit on the branch: a new tag
    # Another branch at the same commit as the first plan is the same code, but Conducto's
    # hash of the definition includes the branch; so does k8sco's.
    git(work, "push", "-q", "origin", f"{first.source[2]}:refs/heads/old")
    assert planner.plan(url_image(bare, "old"), str(tmp_path)).source[2] == head


def test_the_clone_is_the_planned_commit_and_keeps_the_tag(
    repo: tuple[Path, Path], planner: Builder, tmp_path: Path
) -> None:
    work, bare = repo
    planned = planner.plan(url_image(bare), str(tmp_path))
    commit_file(work, "app.py", "print('moved on')\n")  # the branch moves after planning
    git(work, "push", "-q", "origin", "main")
    commit = planned_commit(planned)
    git_source = sources.resolve(url_image(bare), str(tmp_path), commit).git
    assert git_source is not None
    checkout = sources.clone(git_source, str(tmp_path / "clone"))
    assert (Path(checkout) / "app.py").read_text() == "print('v1')\n"
    built = planner.plan(url_image(bare), str(tmp_path), clone=checkout, commit=commit)
    assert built.ref == planned.ref
    assert {f.path for f in built.files} == {"app.py"}  # .git is never copied
    out = io.BytesIO()
    context.write_context(built, out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        assert "code/app.py" in tar.getnames()
        assert "COPY --chown=1000:1000 code/ /app/" in tar.extractfile("Dockerfile").read().decode()  # type: ignore[union-attr]


def test_a_missing_branch_is_one_line_naming_it(
    repo: tuple[Path, Path], planner: Builder, tmp_path: Path
) -> None:
    _, bare = repo
    with pytest.raises(BuildError, match=r"copy_branch='nope' is no branch of ") as info:
        planner.plan(url_image(bare, "nope"), str(tmp_path))
    assert "\n" not in str(info.value)


def test_credentials_in_a_url_never_reach_a_message(planner: Builder, tmp_path: Path) -> None:
    url = f"file://user:s3cret@{tmp_path}/missing.git"
    with pytest.raises(BuildError) as info:
        planner.plan(Image(copy_url=url, copy_branch="main"), str(tmp_path))
    assert "s3cret" not in str(info.value)
    assert sources.redact("https://u:t@github.com/o/r") == "https://***@github.com/o/r"


def test_copy_repo_copies_the_repository_root(repo: tuple[Path, Path], planner: Builder) -> None:
    work, _ = repo
    commit_file(work, "pipes/flow.py", "import k8sco\n")
    planned = planner.plan(Image(copy_repo=True, name="repo"), str(work / "pipes"))
    assert {f.path for f in planned.files} >= {"app.py", "pipes", "pipes/flow.py"}
    assert not any(f.path.startswith(".git") for f in planned.files)
    assert planned.source == ()


def test_copy_repo_with_a_branch_clones_the_origin(
    repo: tuple[Path, Path], planner: Builder
) -> None:
    work, bare = repo
    planned = planner.plan(Image(copy_repo=True, copy_branch="main"), str(work))
    assert planned.source == (str(bare), "main", git(work, "rev-parse", "HEAD"))
    assert planned.files == ()  # cloned only to build


def test_copy_repo_outside_git_says_so(planner: Builder, tmp_path: Path) -> None:
    (tmp_path / "alone").mkdir()
    with pytest.raises(BuildError, match=r"copy_repo=True but .*alone is in no git repository"):
        planner.plan(Image(copy_repo=True), str(tmp_path / "alone"))


def test_copy_repo_dockerfile_defaults_its_context_to_the_repo(
    repo: tuple[Path, Path], planner: Builder
) -> None:
    work, _ = repo
    commit_file(work, "docker/Dockerfile", "FROM debian:12\nCOPY app.py /\n")
    planned = planner.plan(Image(dockerfile="docker/Dockerfile", copy_repo=True), str(work))
    assert planned.user is not None
    assert planned.user.context == os.path.realpath(work)
    assert "app.py" in {f.path for f in planned.user.files}


def test_dockerfile_text_is_an_inline_dockerfile(planner: Builder, tmp_path: Path) -> None:
    text = "FROM debian:12\nRUN echo hi\n"
    planned = planner.plan(Image(dockerfile_text=text, name="inline"), str(tmp_path))
    assert planned.user is not None and planned.user.text == text
    assert planned.user.files == () and planned.user.dockerfile == ""
    other = planner.plan(Image(dockerfile_text=text + "RUN true\n", name="inline"), str(tmp_path))
    assert other.ref != planned.ref
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "data.txt").write_text("x")
    with_ctx = planner.plan(
        Image(dockerfile_text=text, context="ctx", name="inline"), str(tmp_path)
    )
    assert with_ctx.ref != planned.ref
    out = io.BytesIO()
    assert with_ctx.user is not None
    context.write_user_context(with_ctx.user, out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        assert set(tar.getnames()) == {"data.txt", context.USER_DOCKERFILE}
        member = tar.extractfile(context.USER_DOCKERFILE)
        assert member is not None and member.read().decode() == text


# --- with a Docker engine (the conftest's builder) ----------------------------------------


def run_in(ref: str, *argv: str) -> tuple[int, str]:
    out = io.BytesIO()
    code = run.run(run.ContainerSpec(ref, argv), out)
    return code, out.getvalue().decode()


@pytest.mark.slow
def test_copy_url_builds_the_branch_cloned_on_the_client(
    builder: Builder, repo: tuple[Path, Path], tmp_path: Path
) -> None:
    work, bare = repo
    image = Image(copy_url=str(bare), copy_branch="main", name="test-from-git")
    # What render names, planned without an engine, is what the build tags.
    planner = Builder(builder.settings)  # connects to no engine until it builds
    # The same k8sco wheel: the session's builder resolved it once, and the checkout may
    # have been edited since (as another build of this k8sco would).
    planner._dist = builder.dist()
    planned = planner.plan(image, str(tmp_path)).ref
    first = builder.build(image, str(tmp_path))
    assert first.ref == planned
    assert run_in(first.ref, "cat", "app.py") == (0, "print('v1')\n")  # at the code root
    assert builder.build(image, str(tmp_path)).built is False  # same commit, same tag
    commit_file(work, "app.py", "print('v2')\n")
    git(work, "push", "-q", "origin", "main")
    second = builder.build(image, str(tmp_path))
    assert second.ref != first.ref and second.built
    assert run_in(second.ref, "cat", "/app/app.py") == (0, "print('v2')\n")
    for ref in (first.ref, second.ref):
        builder.client.api.remove_image(ref)


@pytest.mark.slow
def test_dockerfile_text_builds_inline(builder: Builder, base_image: str, tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "greeting").write_text("hello\n")
    text = f"FROM {base_image}\nCOPY greeting /greeting\n"
    image = Image(dockerfile_text=text, context="ctx", name="test-inline", shell="/bin/bash")
    result = builder.build(image, str(tmp_path))
    assert run_in(result.ref, "cat", "/greeting") == (0, "hello\n")
    builder.client.api.remove_image(result.ref)
