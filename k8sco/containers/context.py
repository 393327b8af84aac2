"""An image's build context, generated Dockerfile and input hash.

No Docker engine and no network here: this module reads the files it hashes and writes a tar,
nothing else, so the rules that decide "same inputs, same tag" are tested without Docker.

The generated Dockerfile orders its layers from what changes least to what changes most::

    FROM <base>                      base image (resolved to its id for the hash)
    COPY .k8sco-build/setup/         the install helper (+ a CA bundle for proxies, if given)
    RUN  ... user 1000 /app          the non-root user and the code root
    RUN  ... apt <reqs_packages>     system packages
    RUN  ... pip <reqs_py>           the user's Python requirements
    RUN  ... pip <k8sco's deps>      k8sco's own dependencies
    COPY + RUN k8sco wheel           k8sco itself (changes while k8sco is developed)
    ENV  <env>
    WORKDIR /app; USER 1000:1000
    COPY code/ /app/                 the pipeline's code: a code change rebuilds only this

The tag is ``k8sco-<name>:<first 16 hex digits of the input hash>``. The hash covers the
Dockerfile text, the base image's reference (or, for ``dockerfile=``/``dockerfile_text=``, the
user's Dockerfile, build args and context files), the k8sco wheel's contents and every copied
file's path, mode and contents (for ``copy_url``/``copy_repo`` from a branch: the URL, branch
and commit instead). No input needs a Docker engine, so ``k8sco render`` names the tag
without building. It leaves out what only carries the build (a CA bundle, proxy settings): those do
not change what a node runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import re
import shlex
import stat
import sys
import tarfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

from k8sco.errors import BuildError
from k8sco.image import Image
from k8sco.render.constants import CODE_ROOT, RUN_AS_USER

# The image's USER: the uid the renderer runs nodes as, numeric so that Kubernetes'
# runAsNonRoot can check it (it cannot check a user name).
USER_UID = RUN_AS_USER
# Never copied into an image: run state, version control, bytecode caches.
DEFAULT_EXCLUDES = (".k8sco", ".git", "__pycache__", "**/__pycache__")
# Secrets and local environments, left out of a copy_dir at any depth unless a `!` line of
# the .dockerignore takes them back (these come first, so the user's lines decide last).
# A folder holding a `pyvenv.cfg` (a virtualenv) is left out the same way.
SECRET_EXCLUDES = (
    "**/.env*",
    "**/.netrc",
    "**/.pypirc",
    "**/.npmrc",
    "**/.docker/config.json",
    "**/.aws",
    "**/.kube",
    "**/.ssh",
    "**/id_rsa*",
    "**/id_ed25519*",
    "**/*.pem",
    "**/*.key",
)
VENV_MARKER = "pyvenv.cfg"
BUILD_DIR = ".k8sco-build"  # k8sco's own files in the build context (not in copy_dir)
CA_FILE = "ca.pem"
_HASH_FORMAT = 2  # bump when the meaning of the hash inputs changes

# The helper every RUN line calls. It runs as root in the build, with the build's CA bundle
# when one was given, and installs with whatever the base image has (apt, apk, dnf, yum).
SETUP_SCRIPT = """\
#!/bin/sh
# Written by k8sco: installs what a co.Image asks for. Runs as root during the image build.
set -eu
here=/tmp/k8sco-build
apt_ca=""
if [ -s "$here/ca.pem" ]; then
    export PIP_CERT="$here/ca.pem" REQUESTS_CA_BUNDLE="$here/ca.pem" SSL_CERT_FILE="$here/ca.pem"
    apt_ca="-o Acquire::https::CAInfo=$here/ca.pem"
fi
what=$1
shift
install() {
    if command -v apt-get >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get $apt_ca update -q
        apt-get $apt_ca install -y -q --no-install-recommends "$@"
        rm -rf /var/lib/apt/lists/*
    elif command -v apk >/dev/null; then
        apk add --no-cache "$@"
    elif command -v dnf >/dev/null; then
        dnf install -y "$@" && dnf clean all
    elif command -v yum >/dev/null; then
        yum install -y "$@" && yum clean all
    else
        echo "k8sco: install_packages needs apt-get, apk, dnf or yum in the base image" >&2
        exit 1
    fi
}
case "$what" in
user)
    uid=$1 root=$2
    if ! grep -q "^[^:]*:[^:]*:$uid:" /etc/passwd; then
        echo "k8sco:x:$uid:$uid:k8sco:/home/k8sco:/bin/sh" >>/etc/passwd
        grep -q "^[^:]*:[^:]*:$uid:" /etc/group || echo "k8sco:x:$uid:" >>/etc/group
    fi
    mkdir -p /home/k8sco "$root"
    chown "$uid:$uid" /home/k8sco "$root"
    ;;
apt)
    install "$@"
    ;;
docker)
    # The Docker CLI from the distribution (Conducto ran get.docker.com): nodes reach an
    # engine through DOCKER_HOST or a mounted socket; k8sco starts none.
    if command -v apt-get >/dev/null; then install docker.io
    elif command -v apk >/dev/null; then install docker-cli
    else install docker
    fi
    ;;
npm)
    # Conducto installs npm packages in the code root (node_modules next to the code).
    command -v npm >/dev/null || install nodejs npm
    mkdir -p "$1"
    cd "$1"
    shift
    npm install --no-audit --no-fund "$@"
    ;;
pip)
    py=$(command -v python3 || command -v python || true)
    if [ -z "$py" ]; then
        echo "k8sco: the base image has no python3; k8sco needs Python >= 3.10 in it" >&2
        exit 1
    fi
    # Installs into the image's own Python: there is no other user of it to protect.
    PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_CACHE_DIR=1 \\
        PIP_DISABLE_PIP_VERSION_CHECK=1 "$py" -m pip install --progress-bar off "$@"
    ;;
*)
    echo "k8sco setup: unknown step $what" >&2
    exit 2
    ;;
esac
"""


def default_base(version: tuple[int, int] = (sys.version_info[0], sys.version_info[1])) -> str:
    """The base image when an Image names none: the slim Python image of the client's X.Y."""
    return f"python:{version[0]}.{version[1]}-slim"


@dataclass(frozen=True)
class FileEntry:
    """One path of copied code. ``digest``: a file's sha256, a symlink's target, "" for a dir."""

    path: str  # relative, "/"-separated
    kind: str  # "file", "dir" or "symlink"
    mode: int  # permission bits
    digest: str
    source: str  # absolute path on this machine (not hashed)


@dataclass(frozen=True)
class K8scoDist:
    """How k8sco gets into the image: a wheel of this checkout, or a version from PyPI."""

    requirement: str  # "k8sco==0.1.0", or the wheel's file name
    requires: tuple[str, ...] = ()  # the wheel's dependencies, installed in an earlier layer
    wheel_path: str | None = None
    digest: str = ""  # of the wheel's members (zip timestamps left out)

    @classmethod
    def from_wheel(cls, path: str) -> K8scoDist:
        members, requires = wheel_digest_and_requires(path)
        return cls(os.path.basename(path), requires, os.path.abspath(path), members)


@dataclass(frozen=True)
class UserDockerfile:
    """The first stage of a ``dockerfile=`` image: the user's Dockerfile as it is built."""

    dockerfile: str  # absolute path
    context: str  # absolute path
    text: str
    build_args: Mapping[str, str]
    files: tuple[FileEntry, ...]


@dataclass(frozen=True)
class BuildPlan:
    """Everything a build needs, and the tag it gets. Two equal plans build the same image."""

    image: Image
    repository: str
    digest: str  # full sha256 hex of the inputs
    base: str  # FROM of the generated Dockerfile; "" until the user's Dockerfile is built
    dockerfile_template: str  # the generated Dockerfile with "{base}" for the FROM image
    files: tuple[FileEntry, ...]
    dist: K8scoDist
    user: UserDockerfile | None = None
    extras: Mapping[str, bytes] = field(default_factory=dict)  # not hashed (CA bundle)
    source: tuple[str, ...] = ()  # code from git: URL, branch, commit (hashed, not files)

    @property
    def tag(self) -> str:
        return self.digest[:16]

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"

    def dockerfile(self, base: str | None = None) -> str:
        return self.dockerfile_template.replace("{base}", base or self.base, 1)


# --- files -------------------------------------------------------------------------------


def read_ignore_file(path: str) -> list[str]:
    """The patterns of a ``.dockerignore``, cleaned as Docker reads them; [] if none.

    As moby/patternmatcher ignorefile/ignorefile.go ReadAll: a UTF-8 BOM is dropped, a line
    is a comment only when ``#`` is its first character, ``!`` may be followed by spaces,
    and a pattern is path-cleaned with its leading ``/`` removed.
    """
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"{path}: cannot be read as a .dockerignore: {exc}") from exc
    patterns = []
    for line in lines:
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = posixpath.normpath(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern.lstrip("/") or "/"
        patterns.append("!" + pattern if invert else pattern)
    return patterns


# The characters moby's compile escapes (shouldEscape); every other one goes to the regexp.
_GO_ESCAPED = ".+()|{}$"


class _Pattern:
    """One ``.dockerignore`` line, compiled as moby/patternmatcher patternmatcher.go does
    (Pattern.compile, for a "/" separator): ``*`` and ``?`` stop at ``/``, ``**`` spans
    folders, ``\\`` escapes the next character, matching is case-sensitive, and a pattern
    without wildcards is an exact, prefix (``dir/**``) or suffix (``**/name``) match."""

    def __init__(self, text: str) -> None:
        self.exclusion = text.startswith("!")
        if self.exclusion:
            text = text[1:]
        self.text = text
        kind = "exact"
        out: list[str] = []
        i = 0
        while i < len(text):
            first = i == 0
            ch = text[i]
            i += 1
            if ch == "*":
                if text.startswith("*", i):
                    i += 1
                    if text.startswith("/", i):
                        i += 1
                    if i >= len(text):
                        if kind == "exact":
                            kind = "prefix"
                        else:
                            out.append(".*")
                            kind = "regexp"
                    else:
                        out.append("(.*/)?")
                        kind = "regexp"
                    if first:
                        kind = "suffix"
                else:
                    out.append("[^/]*")
                    kind = "regexp"
            elif ch == "?":
                out.append("[^/]")
                kind = "regexp"
            elif ch == "\\":
                if i < len(text):
                    out.append(re.escape(text[i]))
                    i += 1
                    kind = "regexp"
                else:
                    out.append(re.escape(ch))
            elif ch in "[]":
                out.append(ch)
                kind = "regexp"
            elif ch in _GO_ESCAPED:
                out.append("\\" + ch)
            else:
                out.append(ch)  # as moby: the rest reaches the regexp as it is
        self.kind = kind
        try:
            self.regex = re.compile("".join(out))
        except re.error as exc:
            raise BuildError(f".dockerignore pattern {text!r} is not valid: {exc}") from exc

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        return self.regex.fullmatch(path) is not None


class _Matcher:
    """moby/patternmatcher's PatternMatcher.MatchesOrParentMatches, the rule Docker's build
    context uses (moby/go-archive TarWithOptions): the last line that matches a path, or one
    of its parent folders, decides; a ``!`` line takes the path back."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: list[_Pattern] = []
        for text in patterns:
            text = text.strip()
            if text in ("", "!"):
                continue  # moby refuses a lone "!"; an empty line says nothing
            self.patterns.append(_Pattern(posixpath.normpath(text)))

    def add(self, index: int, pattern: _Pattern) -> None:
        self.patterns.insert(index, pattern)

    @property
    def exclusions(self) -> list[_Pattern]:
        return [p for p in self.patterns if p.exclusion]

    def excluded(self, path: str) -> bool:
        parents = path.split("/")[:-1]
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue  # cannot change the outcome
            hit = pattern.match(path) or any(
                pattern.match("/".join(parents[: i + 1])) for i in range(len(parents))
            )
            if hit:
                matched = not pattern.exclusion
        return matched

    def may_take_back_below(self, folder: str) -> bool:
        """Whether a ``!`` line names something below an excluded ``folder`` (moby/go-archive
        walks into an excluded folder only then, comparing the pattern's text)."""
        prefix = folder + "/"
        return any((p.text + "/").startswith(prefix) for p in self.exclusions)


def _literal(path: str) -> str:
    """``path`` as a pattern that matches only itself."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", path)


@dataclass(frozen=True)
class CodeScan:
    """The copied paths of a folder, and what k8sco's secret rules left out of them."""

    files: tuple[FileEntry, ...]
    left_out: tuple[str, ...]  # top-most paths, a folder with a trailing "/"


def scan(
    root: str, excludes: Sequence[str] = DEFAULT_EXCLUDES, *, secrets: bool = True
) -> CodeScan:
    """Every path below ``root`` that is copied, sorted, with its digest.

    ``excludes`` are ``.dockerignore`` patterns; a ``.dockerignore`` in ``root`` adds its own
    (including ``!`` exceptions). With ``secrets``, :data:`SECRET_EXCLUDES` and virtualenvs
    are left out too, before the ``.dockerignore`` so that its ``!`` lines can take them
    back. Sockets and devices are skipped, as Docker does.
    """
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise BuildError(f"{root}: not a directory (copy_dir or context of an Image)")
    users = read_ignore_file(os.path.join(root, ".dockerignore"))
    # The .dockerignore itself always goes, as the docker CLI sends it whatever it says
    # (docker/cli cli/command/image/build/context.go, TrimBuildFilesFromExcludes).
    users = [*users, "!.dockerignore"]
    plain = _Matcher([*excludes, *users])
    full = _Matcher([*excludes, *(SECRET_EXCLUDES if secrets else ()), *users])
    venv_at = len(full.patterns) - len(_Matcher(users).patterns)
    entries: list[FileEntry] = []
    left_out: list[str] = []

    def walk(folder: str, rel_folder: str) -> None:
        try:
            names = sorted(os.listdir(folder))
        except OSError as exc:
            raise BuildError(f"{folder}: cannot be listed for the image: {exc}") from exc
        for name in names:
            rel = f"{rel_folder}/{name}" if rel_folder else name
            source = os.path.join(folder, name)
            is_dir = os.path.isdir(source) and not os.path.islink(source)
            if secrets and is_dir and os.path.isfile(os.path.join(source, VENV_MARKER)):
                full.add(venv_at, _Pattern(_literal(rel)))
            if full.excluded(rel):
                if secrets and not plain.excluded(rel):
                    left_out.append(rel + "/" if is_dir else rel)
                if is_dir and full.may_take_back_below(rel):
                    walk(source, rel)
                continue
            entry = _entry(rel, source)
            if entry is not None:
                entries.append(entry)
            if is_dir:
                walk(source, rel)

    walk(root, "")
    entries.sort(key=lambda e: e.path)
    return CodeScan(tuple(entries), tuple(left_out))


def left_out_line(label: str, left_out: Sequence[str], most: int = 8) -> str:
    """The one line that tells what the secret rules kept out of ``label``'s image."""
    shown = ", ".join(left_out[:most])
    more = f" and {len(left_out) - most} more" if len(left_out) > most else ""
    return (
        f"{label}: left out of the image as secrets or virtualenvs: {shown}{more} "
        "(a '!' line in .dockerignore puts one back)"
    )


def scan_dir(
    root: str, excludes: Sequence[str] = DEFAULT_EXCLUDES, *, secrets: bool = True
) -> tuple[FileEntry, ...]:
    """The copied paths of :func:`scan`."""
    return scan(root, excludes, secrets=secrets).files


def _entry(rel: str, source: str) -> FileEntry | None:
    st = os.lstat(source)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return FileEntry(rel, "symlink", mode, os.readlink(source), source)
    if stat.S_ISDIR(st.st_mode):
        return FileEntry(rel, "dir", mode, "", source)
    if not stat.S_ISREG(st.st_mode):
        return None
    try:
        return FileEntry(rel, "file", mode, file_sha256(source), source)
    except OSError as exc:
        raise BuildError(f"{source}: cannot be read for the image: {exc}") from exc


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheel_digest_and_requires(path: str) -> tuple[str, tuple[str, ...]]:
    """A digest of a wheel's members (names and contents, not zip timestamps) and its
    unconditional ``Requires-Dist`` lines."""
    digest = hashlib.sha256()
    requires: list[str] = []
    with zipfile.ZipFile(path) as wheel:
        for name in sorted(wheel.namelist()):
            data = wheel.read(name)
            digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
            if name.endswith(".dist-info/METADATA"):
                for line in data.decode("utf-8").splitlines():
                    if line.startswith("Requires-Dist:") and "extra ==" not in line:
                        requires.append(line.partition(":")[2].strip())
    return digest.hexdigest(), tuple(requires)


# --- the Dockerfile ------------------------------------------------------------------------


def _run_setup(step: str, args: Iterable[str]) -> str:
    return "RUN sh /tmp/k8sco-build/setup.sh " + shlex.join([step, *args])


def render_dockerfile(image: Image, dist: K8scoDist, *, has_code: bool) -> str:
    """The generated Dockerfile, with ``{base}`` where the base image goes. Pure."""
    lines = [
        "# Generated by k8sco; the layers go from what changes least to what changes most.",
        "FROM {base}",
        "USER root",
        f"COPY {BUILD_DIR}/setup/ /tmp/k8sco-build/",
        _run_setup("user", [str(USER_UID), CODE_ROOT]),
    ]
    # Conducto's order: system packages, Docker, pip, npm.
    if image.install_packages:
        lines.append(_run_setup("apt", image.install_packages))
    if image.install_docker:
        lines.append(_run_setup("docker", []))
    if image.install_pip:
        lines.append(_run_setup("pip", image.install_pip))
    if image.install_npm:
        lines.append(_run_setup("npm", [CODE_ROOT, *image.install_npm]))
    if dist.wheel_path is not None:
        if dist.requires:
            lines.append(_run_setup("pip", dist.requires))
        lines.append(f"COPY {BUILD_DIR}/dist/ /tmp/k8sco-build/dist/")
        install = _run_setup("pip", ["--no-deps", f"/tmp/k8sco-build/dist/{dist.requirement}"])
    else:
        install = _run_setup("pip", [dist.requirement])
    # The setup files (and a CA bundle) leave the image with the last install step.
    lines.append(install + " && rm -rf /tmp/k8sco-build")
    env = {"PYTHONUNBUFFERED": "1", **image.env}
    lines.append("ENV " + " ".join(f"{k}={_env_value(image, k, v)}" for k, v in env.items()))
    # Every instruction after a changed one is rebuilt, and the classic builder starts a
    # container even for metadata: all of it goes before the code, which changes most.
    # docker_auto_workdir=False keeps the base image's WORKDIR (Conducto's text_for_copy).
    if image.docker_auto_workdir:
        lines.append(f"WORKDIR {CODE_ROOT}")
    lines += [
        f"USER {USER_UID}:{USER_UID}",
        "ENTRYPOINT []",
        'CMD ["/bin/sh"]',
    ]
    if has_code:
        lines.append(f"COPY --chown={USER_UID}:{USER_UID} code/ {CODE_ROOT}/")
    return "\n".join(lines) + "\n"


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _env_value(image: Image, name: str, value: str) -> str:
    """``value`` quoted for a Dockerfile ENV line, where ``$`` would otherwise expand."""
    label = f"Image({image.name or image.image or image.copy_dir or ''!r})"
    if not _ENV_NAME.match(name):
        raise BuildError(f"{label}: env name {name!r} is not a valid variable name")
    if "\n" in value or "\r" in value:
        raise BuildError(f"{label}: env[{name!r}] has a line break, which an image cannot hold")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def repository_name(image: Image, registry: str | None = None) -> str:
    """``k8sco-<name>``, under ``registry/`` when given. A name with a ``/`` is a repository
    already (``ghcr.io/me/app``) and is used as it is."""
    name = image.name or (os.path.basename(image.copy_dir) if image.copy_dir else "") or "image"
    if "/" in name:
        return name.lower()
    clean = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("._-") or "image"
    repo = f"k8sco-{clean}"
    return f"{registry.rstrip('/')}/{repo}" if registry else repo


def plan(
    image: Image,
    *,
    base: str,
    files: tuple[FileEntry, ...],
    dist: K8scoDist,
    user: UserDockerfile | None = None,
    registry: str | None = None,
    ca_bundle: bytes | None = None,
    source: Sequence[str] = (),
) -> BuildPlan:
    """The plan and tag of ``image`` from its resolved inputs. Pure.

    The base is hashed by its reference, not its id, so that the tag is known without a
    Docker engine (``k8sco render``); pin a digest (``python:3.11-slim@sha256:...``) to
    make a re-pulled base a new input. For a ``dockerfile=``/``dockerfile_text=`` image
    ``user`` is hashed instead. ``source`` names code cloned from git (URL, branch, commit):
    it is hashed in place of ``files``, which may then be empty (the clone is made only to
    build).
    """
    template = render_dockerfile(image, dist, has_code=bool(files) or bool(source))
    inputs: dict[str, object] = {
        "format": _HASH_FORMAT,
        "dockerfile": template,
        "k8sco": [dist.requirement, dist.digest],
    }
    if source:
        inputs["git"] = list(source)
    else:
        inputs["files"] = [[f.path, f.kind, f.mode, f.digest] for f in files]
    if user is not None:
        inputs["user"] = {
            "dockerfile": user.text,
            "build_args": sorted(user.build_args.items()),
            "context": [[f.path, f.kind, f.mode, f.digest] for f in user.files],
        }
    else:
        inputs["base"] = base
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    extras = {CA_FILE: ca_bundle} if ca_bundle else {}
    return BuildPlan(
        image=image,
        repository=repository_name(image, registry),
        digest=hashlib.sha256(blob).hexdigest(),
        base="" if user is not None else base,
        dockerfile_template=template,
        files=files,
        dist=dist,
        user=user,
        extras=extras,
        source=tuple(source),
    )


# --- the tar -------------------------------------------------------------------------------


def _info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    # Fixed owner and time: the same files give the same tar, so Docker's layer cache hits.
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_context(build: BuildPlan, out: IO[bytes], base: str | None = None) -> None:
    """The build context of ``build`` as an uncompressed tar, written to ``out``."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add_bytes(name: str, data: bytes, mode: int = 0o644) -> None:
            tar.addfile(_info(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))

        add_bytes("Dockerfile", build.dockerfile(base).encode())
        tar.addfile(_info(f"{BUILD_DIR}/setup", tarfile.DIRTYPE, 0o755))
        add_bytes(f"{BUILD_DIR}/setup/setup.sh", SETUP_SCRIPT.encode(), 0o755)
        for name, data in sorted(build.extras.items()):
            add_bytes(f"{BUILD_DIR}/setup/{name}", data)
        if build.dist.wheel_path is not None:
            tar.addfile(_info(f"{BUILD_DIR}/dist", tarfile.DIRTYPE, 0o755))
            with open(build.dist.wheel_path, "rb") as f:
                add_bytes(f"{BUILD_DIR}/dist/{build.dist.requirement}", f.read())
        if build.files:
            tar.addfile(_info("code", tarfile.DIRTYPE, 0o755))
        for entry in build.files:
            name = f"code/{entry.path}"
            if entry.kind == "dir":
                tar.addfile(_info(name, tarfile.DIRTYPE, entry.mode))
            elif entry.kind == "symlink":
                info = _info(name, tarfile.SYMTYPE, entry.mode)
                info.linkname = entry.digest
                tar.addfile(info)
            else:
                with open(entry.source, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    tar.addfile(_info(name, tarfile.REGTYPE, entry.mode, size), f)


USER_DOCKERFILE = f"{BUILD_DIR}/Dockerfile"  # where a dockerfile_text goes in its context


def write_user_context(user: UserDockerfile, out: IO[bytes]) -> None:
    """The context of a ``dockerfile_text=`` stage: its context's files (none without
    ``context=``) and the text at :data:`USER_DOCKERFILE`, as an uncompressed tar."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in user.files:
            if entry.kind == "dir":
                tar.addfile(_info(entry.path, tarfile.DIRTYPE, entry.mode))
            elif entry.kind == "symlink":
                info = _info(entry.path, tarfile.SYMTYPE, entry.mode)
                info.linkname = entry.digest
                tar.addfile(info)
            else:
                with open(entry.source, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    tar.addfile(_info(entry.path, tarfile.REGTYPE, entry.mode, size), f)
        data = user.text.encode()
        tar.addfile(_info(USER_DOCKERFILE, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))


__all__ = [
    "CODE_ROOT",
    "DEFAULT_EXCLUDES",
    "SECRET_EXCLUDES",
    "USER_UID",
    "BuildPlan",
    "CodeScan",
    "FileEntry",
    "K8scoDist",
    "UserDockerfile",
    "default_base",
    "left_out_line",
    "plan",
    "render_dockerfile",
    "repository_name",
    "scan",
    "scan_dir",
    "write_context",
    "write_user_context",
]
