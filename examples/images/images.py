"""
### Images
Where a node runs, as Conducto's `co.Image` describes it:

* an existing image from a registry: `co.Image("python:3.12-slim")`;
* a Dockerfile (`dockerfile=`, built from `context=`), or its text (`dockerfile_text=`),
  with packages added by `install_pip=` (and `install_packages=`, `install_npm=`);
* your code copied into the image: a local folder (`copy_dir=`) or a git branch
  (`copy_url=` + `copy_branch=`, cloned at build time). The node runs in that folder.

`python images.py` prints the tree; `k8sco build images.py` builds the images (Docker);
`k8sco render images.py` names them without building; on this machine
(`python images.py --local`) each node runs here, in its image's folder.
`python images.py --repo=URL --branch=main` adds a node whose code comes from git.

This example has a folder of its own, as Conducto's demos do: the code and the
Dockerfile its images are built from are next to it.
"""

from __future__ import annotations

import k8sco as co

PY = co.Image("python:3.12-slim")
# Relative paths are from this file's folder, whatever the current directory.
APP = co.Image("python:3.12-slim", copy_dir="./code")
TOOLS = co.Image(dockerfile="./docker/Dockerfile", context="./docker", copy_dir="./code")
REPORTS = co.Image(
    dockerfile_text="FROM python:3.12-slim\nRUN useradd --create-home --uid 1000 app\n",
    install_pip=["tabulate==0.9.0"],
)


def existing_image() -> co.Exec:
    """Any image from Docker Hub or another registry, by name."""
    return co.Exec("python3 -c 'print(6 * 7)'", image=PY, doc=co.util.magic_doc())


def copy_local_code() -> co.Exec:
    """Local code copied into the image with `copy_dir`: the node runs in that folder."""
    return co.Exec("python3 app_test.py", image=APP, doc=co.util.magic_doc())


def dockerfile() -> co.Exec:
    """A Dockerfile for full control, plus the same folder of code."""
    return co.Exec("python3 app_test.py", image=TOOLS, doc=co.util.magic_doc())


def dockerfile_text() -> co.Exec:
    """A Dockerfile written inline, with pip packages installed on top."""
    return co.Exec("echo reports image", image=REPORTS, doc=co.util.magic_doc())


def clone_from_git(repo: str, branch: str) -> co.Exec:
    """
    A git branch cloned into the image with `copy_url` and `copy_branch`; a new commit on
    the branch makes a new image.
    """
    image = co.Image("python:3.12-slim", copy_url=repo, copy_branch=branch)
    return co.Exec("python3 app_test.py", image=image, doc=co.util.magic_doc())


def images(repo: str = "", branch: str = "main") -> co.Parallel:
    ex = co.Parallel(doc=__doc__)
    ex["existing_image"] = existing_image()
    ex["copy_local_code"] = copy_local_code()
    ex["dockerfile"] = dockerfile()
    ex["dockerfile_text"] = dockerfile_text()
    if repo:
        ex["clone_from_git"] = clone_from_git(repo, branch)
    return ex


if __name__ == "__main__":
    co.main(default=images)
