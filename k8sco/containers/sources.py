"""Where an image's code comes from: a local folder, or a git branch cloned on the client.

``copy_dir`` is a folder; ``copy_url`` + ``copy_branch`` is a branch of a git repository,
named by the commit the branch points at (``git ls-remote``, no clone) so that its tag is
known before anything is fetched, and cloned at that commit only to build. ``copy_repo=True``
is the git repository holding the pipeline file, as Conducto does it
(conducto/image/internal_image.py, Image.__init__): with ``copy_branch`` its ``origin`` is
cloned at that branch, else its work tree is copied as a folder.

git runs as a subprocess with an argv list (no shell) and never prompts.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, replace

from k8sco.errors import BuildError
from k8sco.image import Image

_GIT_TIMEOUT = 600.0  # seconds; a clone of a large repository over a slow link


@dataclass(frozen=True)
class GitSource:
    url: str
    branch: str
    commit: str

    def key(self) -> tuple[str, str, str]:
        """What goes into the image's hash: a new commit on the branch is a new tag."""
        return (self.url, self.branch, self.commit)

    def with_commit(self, commit: str) -> GitSource:
        return replace(self, commit=commit)


@dataclass(frozen=True)
class Source:
    copy_dir: str | None = None  # absolute
    git: GitSource | None = None
    context: str | None = None  # a Dockerfile's default context (copy_repo: the repo root)


def redact(url: str) -> str:
    """``url`` without the credentials Conducto's docs put in it (https://user:token@...)."""
    return re.sub(r"(?<=//)[^/@]+@", "***@", url)


def _git(args: list[str], what: str, cwd: str | None = None) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as exc:
        raise BuildError(
            f"{what}: git is not installed; install it to use copy_url/copy_repo"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{what}: git {args[0]} took over {_GIT_TIMEOUT:.0f}s") from exc
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["(no message)"]
        last = next((x for x in lines if x.startswith(("fatal:", "error:"))), lines[-1])
        raise BuildError(f"{what}: git {args[0]} failed: {redact(last)}")
    return done.stdout


def branch_commit(url: str, branch: str, what: str) -> str:
    """The commit ``branch`` (or a tag of that name) points at in ``url``, without cloning."""
    out = _git(
        [
            "ls-remote",
            "--",
            url,
            f"refs/heads/{branch}",
            f"refs/tags/{branch}^{{}}",
            f"refs/tags/{branch}",
        ],
        what,
    )
    refs: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        refs[ref.strip()] = sha.strip()
    for ref in (f"refs/heads/{branch}", f"refs/tags/{branch}^{{}}", f"refs/tags/{branch}"):
        if ref in refs:
            return refs[ref]
    raise BuildError(
        f"{what}: copy_branch={branch!r} is no branch of {redact(url)}; push it or fix the name"
    )


def clone(git: GitSource, dest: str) -> str:
    """A checkout of ``git.commit`` at ``dest`` (the branch only, no other history)."""
    what = f"cloning {redact(git.url)} ({git.branch})"
    _git(
        [
            "clone",
            "--quiet",
            "--no-checkout",
            "--single-branch",
            "--branch",
            git.branch,
            "--",
            git.url,
            dest,
        ],
        what,
    )
    _git(
        ["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", git.commit],
        what,
        cwd=dest,
    )
    return dest


def repo_root(folder: str, what: str) -> str:
    """The root of the git work tree holding ``folder``."""
    if not os.path.isdir(folder):
        raise BuildError(f"{what}: copy_repo=True but {folder} is not a directory")
    try:
        out = _git(["rev-parse", "--show-toplevel"], what, cwd=folder)
    except BuildError as exc:
        raise BuildError(
            f"{what}: copy_repo=True but {folder} is in no git repository; use copy_dir= instead"
        ) from exc
    return os.path.realpath(out.strip())


def resolve(image: Image, base_dir: str, commit: str | None = None) -> Source:
    """Where ``image``'s code comes from (relative paths from ``base_dir``). A git source's
    commit is looked up unless ``commit`` is given."""
    what = f"Image({image.name or redact(image.copy_url or '') or image.copy_dir or ''!r})"
    if image.copy_dir is not None:
        return Source(copy_dir=os.path.abspath(os.path.join(base_dir, image.copy_dir)))
    if image.copy_url is not None:
        assert image.copy_branch is not None
        url, branch = image.copy_url, image.copy_branch
        return Source(git=GitSource(url, branch, commit or branch_commit(url, branch, what)))
    if image.copy_repo:
        root = repo_root(base_dir, what)
        if image.copy_branch is None:
            return Source(copy_dir=root, context=root)
        try:
            url = _git(["remote", "get-url", "origin"], what, cwd=root).strip()
        except BuildError as exc:
            raise BuildError(
                f"{what}: copy_repo=True with copy_branch= clones the repository's origin, "
                f"and {root} has none; add one or drop copy_branch="
            ) from exc
        branch = image.copy_branch
        git = GitSource(url, branch, commit or branch_commit(url, branch, what))
        return Source(git=git, context=root)
    return Source()


__all__ = ["GitSource", "Source", "branch_commit", "clone", "redact", "repo_root", "resolve"]
