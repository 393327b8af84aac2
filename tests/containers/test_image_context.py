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
    args: dict[str, object] = {"base": "python:3.11-slim", "dist": DIST}
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
        {"base": "python:3.12-slim"},
        {"dist": K8scoDist("k8sco==0.2.0")},
        {"image": Image(copy_dir=".", name="app", reqs_py=["six"])},
        {"image": Image(copy_dir=".", name="app", reqs_packages=["curl"])},
        {"image": Image(copy_dir=".", name="app", env={"A": "1"})},
        {"image": Image(copy_dir=".", name="app", install_npm=["left-pad"])},
        {"image": Image(copy_dir=".", name="app", install_docker=True)},
        {"image": Image(copy_dir=".", name="app", docker_auto_workdir=False)},
        {"source": ("file:///r.git", "main", "a" * 40)},
    ],
    ids=[
        "base",
        "k8sco",
        "reqs_py",
        "reqs_packages",
        "env",
        "install_npm",
        "install_docker",
        "docker_auto_workdir",
        "git",
    ],
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
    build = context.plan(Image(copy_dir="."), base="b", files=files, dist=DIST, ca_bundle=b"PEM")
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


# --- secrets never go into an image ----------------------------------------------------------

SECRETS = [
    ".env",
    ".env.local",
    "sub/.env.production",
    ".venv/pyvenv.cfg",
    ".venv/pyvenv.cfg .venv/lib/python3.11/site-packages/x.py",
    "tools/myenv/pyvenv.cfg tools/myenv/bin/python",
    ".netrc",
    ".pypirc",
    "web/.npmrc",
    ".docker/config.json",
    ".aws/credentials",
    "home/.kube/config",
    ".ssh/authorized_keys",
    "secrets/id_rsa",
    "secrets/id_rsa.pub",
    "deploy/keys/id_ed25519",
    "tls/server.pem",
    "server.key",
    "a/b/c/private.key",
]


def tar_names(root: Path) -> set[str]:
    build = context.plan(
        Image(copy_dir=".", name="app"),
        base="python:3.11-slim",
        files=context.scan_dir(str(root)),
        dist=DIST,
    )
    out = io.BytesIO()
    context.write_context(build, out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        names = set(tar.getnames())
        for member in tar.getmembers():
            data = tar.extractfile(member) if member.isfile() else None
            assert data is None or b"secret" not in data.read(), member.name
        return names


def write(root: Path, *paths: str) -> None:
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("secret\n")


@pytest.mark.parametrize("paths", SECRETS)
def test_secrets_and_virtualenvs_never_reach_the_tar(tmp_path: Path, paths: str) -> None:
    root = make_code(tmp_path)
    *_, path = paths.split()
    write(root, *paths.split())
    names = tar_names(root)
    assert "code/primes.py" in names
    assert f"code/{path}" not in names
    assert not [n for n in names if "pyvenv" in n or "id_" in n]
    before = tag_of(root)
    (root / path).write_text("another secret\n")
    assert tag_of(root) == before
    left_out = context.scan(str(root)).left_out
    assert len(left_out) == 1 and path.startswith(left_out[0].rstrip("/"))


def test_a_folder_named_like_a_venv_without_pyvenv_cfg_is_copied(tmp_path: Path) -> None:
    root = make_code(tmp_path)
    write(root, "venv/notes.txt", "docker/config.yaml", "keys.py", "environment.py")
    paths = {e.path for e in context.scan_dir(str(root))}
    assert {"venv/notes.txt", "docker/config.yaml", "keys.py", "environment.py"} <= paths
    assert context.scan(str(root)).left_out == ()


def test_dockerignore_exceptions_take_secrets_back(tmp_path: Path) -> None:
    root = make_code(tmp_path)
    write(root, *" ".join(SECRETS).split(), ".env.example", ".ssh/known_hosts", "certs/ca.pem")
    (root / ".dockerignore").write_text(
        "!.env.example\n!.venv\n! .ssh/known_hosts\n!**/*.pem\n!secrets/id_rsa.pub\n"
    )
    scanned = context.scan(str(root))
    paths = {e.path for e in scanned.files}
    taken_back = {".env.example", ".venv/pyvenv.cfg", ".ssh/known_hosts", "secrets/id_rsa.pub"}
    assert taken_back | {"tls/server.pem", "certs/ca.pem"} <= paths
    assert not paths & {".env", "secrets/id_rsa", ".ssh/authorized_keys", "tools/myenv/bin/python"}
    assert ".ssh/" in scanned.left_out and "tools/myenv/" in scanned.left_out
    assert ".venv/" not in scanned.left_out and "tls/server.pem" not in scanned.left_out


def test_user_patterns_that_drop_a_secret_are_not_reported(tmp_path: Path) -> None:
    root = make_code(tmp_path)
    write(root, ".env", "server.key")
    (root / ".dockerignore").write_text(".env\n")
    assert context.scan(str(root)).left_out == ("server.key",)


def test_a_dockerfile_context_keeps_every_file_docker_would_send(tmp_path: Path) -> None:
    # A user's own Dockerfile decides what it COPYs: k8sco hashes what Docker sends.
    root = make_code(tmp_path)
    write(root, ".env")
    assert ".env" in {e.path for e in context.scan_dir(str(root), excludes=(), secrets=False)}


def test_left_out_line_is_one_line_and_says_how_to_take_back() -> None:
    line = context.left_out_line("Image('app')", [f"f{i}.pem" for i in range(10)])
    assert "\n" not in line and "f7.pem" in line and "f8.pem" not in line
    assert "and 2 more" in line and "'!' line in .dockerignore" in line


# moby/patternmatcher patternmatcher_test.go TestMatches ("MatchesOrParentMatches"), the rule
# Docker's build context applies to .dockerignore (at 5a6d8429a19bb6948a372ff19e86fe83599a04b7).
MOBY_MATCHES = [
    (["**"], "file", True),
    (["**"], "file/", True),
    (["**/"], "file", True),
    (["**/"], "file/", True),
    (["**"], "/", True),
    (["**/"], "/", True),
    (["**"], "dir/file", True),
    (["**/"], "dir/file", True),
    (["**"], "dir/file/", True),
    (["**/"], "dir/file/", True),
    (["**/**"], "dir/file", True),
    (["**/**"], "dir/file/", True),
    (["dir/**"], "dir/file", True),
    (["dir/**"], "dir/file/", True),
    (["dir/**"], "dir/dir2/file", True),
    (["dir/**"], "dir/dir2/file/", True),
    (["**/dir"], "dir", True),
    (["**/dir"], "dir/file", True),
    (["**/dir2/*"], "dir/dir2/file", True),
    (["**/dir2/*"], "dir/dir2/file/", True),
    (["**/dir2/**"], "dir/dir2/dir3/file", True),
    (["**/dir2/**"], "dir/dir2/dir3/file/", True),
    (["**file"], "file", True),
    (["**file"], "dir/file", True),
    (["**/file"], "dir/file", True),
    (["**file"], "dir/dir/file", True),
    (["**/file"], "dir/dir/file", True),
    (["**/file*"], "dir/dir/file", True),
    (["**/file*"], "dir/dir/file.txt", True),
    (["**/file*txt"], "dir/dir/file.txt", True),
    (["**/file*.txt"], "dir/dir/file.txt", True),
    (["**/file*.txt*"], "dir/dir/file.txt", True),
    (["**/**/*.txt"], "dir/dir/file.txt", True),
    (["**/**/*.txt2"], "dir/dir/file.txt", False),
    (["**/*.txt"], "file.txt", True),
    (["**/**/*.txt"], "file.txt", True),
    (["a**/*.txt"], "a/file.txt", True),
    (["a**/*.txt"], "a/dir/file.txt", True),
    (["a**/*.txt"], "a/dir/dir/file.txt", True),
    (["a/*.txt"], "a/dir/file.txt", False),
    (["a/*.txt"], "a/file.txt", True),
    (["a/*.txt**"], "a/file.txt", True),
    (["a[b-d]e"], "ae", False),
    (["a[b-d]e"], "ace", True),
    (["a[b-d]e"], "aae", False),
    (["a[^b-d]e"], "aze", True),
    ([".*"], ".foo", True),
    ([".*"], "foo", False),
    (["abc.def"], "abcdef", False),
    (["abc.def"], "abc.def", True),
    (["abc.def"], "abcZdef", False),
    (["abc?def"], "abcZdef", True),
    (["abc?def"], "abcdef", False),
    (["a\\\\"], "a\\", True),
    (["**/foo/bar"], "foo/bar", True),
    (["**/foo/bar"], "dir/foo/bar", True),
    (["**/foo/bar"], "dir/dir2/foo/bar", True),
    (["abc/**"], "abc", False),
    (["abc/**"], "abc/def", True),
    (["abc/**"], "abc/def/ghi", True),
    (["**/.foo"], ".foo", True),
    (["**/.foo"], "bar.foo", False),
    (["a(b)c/def"], "a(b)c/def", True),
    (["a(b)c/def"], "a(b)c/xyz", False),
    (["a.|)$(}+{bc"], "a.|)$(}+{bc", True),
    (
        ["dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        True,
    ),
    (["dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (
        ["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        False,
    ),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    (["a\\*b"], "a*b", True),
    # Not in moby's table: what docker-py's matcher (used before) got wrong.
    (["*.PY"], "main.py", False),  # case-sensitive
    (["a"], "a/b/c/d", True),  # a parent at any depth, not only the pattern's
    (["**foo"], "dir/barfoo", True),  # a leading ** is a suffix match
]


@pytest.mark.parametrize(("patterns", "path", "excluded"), MOBY_MATCHES)
def test_dockerignore_matching_follows_moby(patterns: list[str], path: str, excluded: bool) -> None:
    assert context._Matcher(patterns).excluded(path) is excluded


def test_dockerignore_file_is_read_as_docker_reads_it(tmp_path: Path) -> None:
    # moby/patternmatcher ignorefile/ignorefile.go ReadAll.
    (tmp_path / ".dockerignore").write_text(
        "\ufeffa\n  # not a comment\n# comment\n/b/\n!  c/../d\n\n", encoding="utf-8"
    )
    assert context.read_ignore_file(str(tmp_path / ".dockerignore")) == [
        "a",
        "# not a comment",
        "b",
        "!d",
    ]


def test_a_bad_dockerignore_pattern_is_a_build_error(tmp_path: Path) -> None:
    root = make_code(tmp_path)
    (root / ".dockerignore").write_text("[\n")
    with pytest.raises(BuildError, match=r"\.dockerignore pattern '\['"):
        context.scan_dir(str(root))


def test_the_builder_says_in_one_line_what_it_left_out(tmp_path: Path) -> None:
    from k8sco.containers.build import Builder, BuildSettings

    class Api:
        def inspect_image(self, ref: str) -> dict[str, str]:
            return {"Id": "sha256:base"}

    class Client:
        api = Api()

    class Display:
        def __init__(self) -> None:
            self.lines: list[str] = []

        def say(self, text: str) -> None:
            self.lines.append(text)

    root = make_code(tmp_path / "app")
    write(root, ".env", "keys/id_ed25519")
    display = Display()
    builder = Builder(BuildSettings(base_image="python:3.11-slim"), Client(), display)  # type: ignore[arg-type]
    builder._dist = DIST
    build = builder.plan(Image(copy_dir="app", name="app"), str(tmp_path))
    assert ".env" not in {f.path for f in build.files}
    (line,) = display.lines
    assert line.startswith("Image('app'): left out of the image as secrets or virtualenvs: ")
    assert ".env, keys/id_ed25519 " in line
