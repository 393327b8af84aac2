"""
### **Execution Environment**
Every flavour of image specification.
"""

import os

import k8sco as co

# The demos clone from GitHub; these tests from a local bare repository.
GIT_URL = os.environ.get("COMPAT_GIT_URL", "")


def existing_image() -> co.Exec:
    """An existing image from an image registry."""
    image = co.Image("node:lts-alpine")
    return co.Exec("echo npm help", image=image, doc=co.util.magic_doc())


def python_image_with_reqs_py() -> co.Exec:
    """A python image and its requirements, `reqs_py`."""
    image = co.Image("python:3.12-alpine", reqs_py=["PTable"])
    return co.Exec("python -c 'print(1 + 1)'", image=image, doc=co.util.magic_doc())


def dockerfile() -> co.Exec:
    """A dockerfile."""
    image = co.Image(dockerfile="./docker/Dockerfile.simple")
    return co.Exec("python -c 'print(2 + 2)'", image=image, doc=co.util.magic_doc())


def copy_local_code() -> co.Exec:
    """Local code copied into the image with `copy_dir`."""
    image = co.Image("python:3.12-alpine", copy_dir="./code")
    return co.Exec("python test.py local", image=image, doc=co.util.magic_doc())


def clone_from_git() -> co.Exec:
    """A git branch cloned into the image with `copy_url` and `copy_branch`."""
    image = co.Image(dockerfile="./docker/Dockerfile.util", copy_url=GIT_URL, copy_branch="main")
    return co.Exec("python code/test.py git", image=image, doc=co.util.magic_doc())


def dockerfile_with_copy() -> co.Exec:
    """COPY in the dockerfile."""
    image = co.Image(dockerfile="./docker/Dockerfile.copy", context=".")
    return co.Exec("python /root/code/test.py", image=image, doc=co.util.magic_doc())


def dockerfile_with_path_map() -> co.Exec:
    """`path_map`, local folder to container folder."""
    path_map = {"./code": "/root/code"}
    image = co.Image(dockerfile="./docker/Dockerfile.copy", context=".", path_map=path_map)
    return co.Exec("python /root/code/test.py", image=image, doc=co.util.magic_doc())


def examples() -> co.Parallel:
    ex = co.Parallel(doc=__doc__)
    ex["existing_image"] = existing_image()
    ex["python_image_with_reqs_py"] = python_image_with_reqs_py()
    ex["dockerfile"] = dockerfile()
    ex["copy_local_code"] = copy_local_code()
    if GIT_URL:
        ex["clone_from_git"] = clone_from_git()
    ex["dockerfile_with_copy"] = dockerfile_with_copy()
    ex["dockerfile_with_path_map"] = dockerfile_with_path_map()
    return ex


if __name__ == "__main__":
    print(__doc__)
    co.Image.share_directory("CONDUCTO_DEMO", "..")
    co.main(default=examples)
