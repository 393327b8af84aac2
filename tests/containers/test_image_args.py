"""``co.Image`` takes Conducto's arguments, with Conducto's rules (conducto.md, Images)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import k8sco as co
from k8sco import image as image_mod
from k8sco.containers import context
from k8sco.containers.context import K8scoDist
from k8sco.errors import PipelineError, PipelineTypeError
from k8sco.image import Image
from k8sco.render.jobs import command_argv, image_key, needs_build, render_job

DIST = K8scoDist("k8sco==0.1.0")


def test_every_conducto_argument_is_accepted() -> None:
    img = co.Image(
        dockerfile_text="FROM debian:12\n",
        docker_build_args={"A": "1"},
        context=".",
        copy_dir="src",
        docker_auto_workdir=False,
        install_pip=["six"],
        install_npm=["left-pad"],
        install_packages=["curl"],
        install_docker=True,
        path_map={"./src": "/app"},
        shell="/bin/bash",
        name="everything",
    )
    assert img.install_npm == ("left-pad",) and img.install_docker
    assert img.shell == "/bin/bash" and img.docker_auto_workdir is False
    assert Image.from_dict(img.to_dict()) == img
    git = co.Image(image="alpine:3.20", copy_url="https://x/r.git", copy_branch="main")
    assert (git.copy_url, git.copy_branch) == ("https://x/r.git", "main")
    assert co.Image(copy_repo=True, copy_branch="main").copy_repo
    assert co.Image().shell == co.Image.AUTO


def test_reqs_names_are_aliases_of_install() -> None:
    old = co.Image(reqs_py=["six"], reqs_npm=["a"], reqs_packages="curl", reqs_docker=True)
    new = co.Image(
        install_pip=["six"], install_npm=["a"], install_packages=["curl"], install_docker=True
    )
    assert old == new and hash(old) == hash(new)
    assert old.reqs_py == ("six",) and old.reqs_packages == ("curl",)
    assert old.to_dict() == new.to_dict()
    # What earlier k8sco versions serialized still loads.
    assert Image.from_dict({"reqs_py": ["six"]}) == co.Image(install_pip=["six"])
    with pytest.raises(PipelineError, match=r"give install_pip= or its old name reqs_py="):
        co.Image(install_pip=["a"], reqs_py=["b"])


def test_unknown_arguments_raise() -> None:
    with pytest.raises(PipelineTypeError, match=r"co.Image: unknown argument colour="):
        co.Image(colour="red")  # type: ignore[call-arg]
    # Conducto's own leftovers, which it drops.
    assert co.Image(pre_built=True, git_sha="abc") == co.Image()  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image": "a", "dockerfile": "D"}, "at most one of image=, dockerfile= and "),
        ({"image": "a", "dockerfile_text": "FROM a"}, r"\(got image= and dockerfile_text=\)"),
        ({"dockerfile": "D", "dockerfile_text": "FROM a"}, "got dockerfile= and dockerfile_text="),
        (
            {"copy_dir": ".", "copy_url": "https://x/r.git", "copy_branch": "m"},
            "copy_dir= or copy_url=",
        ),
        ({"copy_url": "https://x/r.git"}, r"copy_url= needs copy_branch="),
        ({"copy_url": "s3://bucket/code"}, "copy_url= from S3 is not supported"),
        ({"copy_branch": "main"}, "copy_branch= needs copy_url= or copy_repo=True"),
        ({"copy_repo": True, "copy_dir": "."}, "copy_repo=True copies the pipeline's git"),
        ({"context": "."}, "context= needs dockerfile= or dockerfile_text="),
        ({"install_npm": ["a\nRUN id"]}, r"co.Image\(install_npm=...\) has an item"),
        ({"reqs_py": ["a\nRUN id"]}, r"co.Image\(reqs_py=...\) has an item"),
        ({"install_docker": "yes"}, "install_docker= must be True or False"),
        ({"docker_auto_workdir": 1}, "docker_auto_workdir= must be True or False"),
        ({"shell": "bash -e"}, "shell= must be a shell's path"),
        ({"copy_url": "", "copy_branch": "m"}, "copy_url= must be a non-empty string"),
    ],
)
def test_rules_fail_in_one_line_naming_the_parameter(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises((PipelineError, PipelineTypeError), match=message) as info:
        co.Image(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value).replace("\\n", "")


def test_new_contents_need_a_build() -> None:
    assert not needs_build(co.Image(image="alpine:3.20"))
    for img in (
        co.Image(image="alpine:3.20", dockerfile_text=None, install_npm=["a"]),
        co.Image(image="alpine:3.20", install_docker=True),
        co.Image(dockerfile_text="FROM alpine:3.20\n"),
        co.Image(image="alpine:3.20", copy_url="https://x/r.git", copy_branch="main"),
        co.Image(image="alpine:3.20", copy_repo=True),
    ):
        assert needs_build(img), img


def test_install_layers_go_in_conductos_order_before_the_code() -> None:
    img = co.Image(
        copy_dir=".",
        install_packages=["curl"],
        install_docker=True,
        install_pip=["six"],
        install_npm=["left-pad"],
    )
    lines = context.render_dockerfile(img, DIST, has_code=True).splitlines()
    order = [
        "setup.sh apt curl",
        "setup.sh docker",
        "setup.sh pip six",
        "setup.sh npm /app left-pad",
        "pip k8sco==0.1.0",
        "WORKDIR /app",
        "COPY --chown=1000:1000 code/ /app/",
    ]
    found = [next(i for i, line in enumerate(lines) if want in line) for want in order]
    assert found == sorted(found)
    assert "docker)" in context.SETUP_SCRIPT and "npm)" in context.SETUP_SCRIPT


def test_docker_auto_workdir_false_keeps_the_images_workdir() -> None:
    img = co.Image(copy_dir=".", docker_auto_workdir=False)
    text = context.render_dockerfile(img, DIST, has_code=True)
    assert "WORKDIR" not in text and "code/ /app/" in text
    with co.Serial() as root:
        co.Exec("pwd", name="kept", image=img)
        co.Exec("pwd", name="auto", image=co.Image(copy_dir="."))
    refs = {image_key(n.params["image"]): "r:1" for n in root.stream() if "image" in n.params}

    def main(path: str) -> dict[str, object]:
        job = render_job(root, path, "p", "default", image_refs=refs)
        return job["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]

    assert "workingDir" not in main("/kept")
    assert main("/auto")["workingDir"] == "/app"
    from k8sco.containers.run import node_spec

    kept, auto = (n for n in root.stream() if isinstance(n, co.Exec))
    assert (node_spec(kept, "r:1").workdir, node_spec(auto, "r:1").workdir) == ("", "/app")


def test_shell_picks_the_shell_of_string_commands() -> None:
    assert command_argv("echo $0", co.Image(shell="/bin/bash").command_shell) == [
        "/bin/bash",
        "-c",
        "echo $0",
    ]
    assert co.Image().command_shell == "/bin/sh"  # AUTO
    from k8sco.containers.run import node_spec

    node = co.Exec("echo hi", image=co.Image(image="alpine:3.20", shell="/bin/ash"))
    assert node_spec(node, "ref").argv == ("/bin/ash", "-c", "echo hi")


def test_share_directory_records_the_mapping(tmp_path: Path) -> None:
    co.Image.share_directory("data", "sub")
    here = str(Path(__file__).resolve().parent / "sub")
    assert image_mod.SHARED_DIRECTORIES["data"] == here
    co.Image.register_directory("abs", str(tmp_path))
    assert image_mod.SHARED_DIRECTORIES["abs"] == str(tmp_path.resolve())
    with pytest.raises(PipelineTypeError, match="share_directory: name must be"):
        co.Image.share_directory("", ".")


def test_a_file_that_shares_a_directory_at_import_runs(tmp_path: Path) -> None:
    path = tmp_path / "pipe.py"
    path.write_text(
        textwrap.dedent(
            """\
            import k8sco as co

            co.Image.share_directory("example", ".")
            co.Image.register_directory("other", "..")


            def main() -> co.Serial:
                img = co.Image(copy_dir=".", install_pip=["six"], reqs_npm=["a"])
                with co.Serial(image=img) as root:
                    co.Exec("echo hi", name="hi")
                return root


            if __name__ == "__main__":
                co.main(default=main)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "hi" in done.stdout
