"""Conducto code runs with only its import line changed (issue 10).

The pipelines in pipelines/ are ours, written with the API shapes of Conducto's published
demos (github.com/conducto/demo, cicd/ and data_science/): module docstrings printed before
``co.main``, ``co.Image.share_directory`` in the ``__main__`` block, ``doc=co.util.magic_doc()``,
a shared ``utils.IMG``, children assigned inside ``with`` blocks, native functions whose
node parameters are set as attributes, secrets put through ``co.api.Secrets()`` while the
tree is built, functions of the file called from a node's shell command. Each is built as
its author would (``python file.py``), rendered, and run on the local runner.

Nodes run ``python``: this interpreter's, first on PATH, as Conducto's images had conducto
installed (a user of k8sco has the virtualenv that has k8sco activated)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_schemas import validate_k8s, validate_pipeline

PIPELINES = Path(__file__).resolve().parent / "pipelines"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # .k8sco/ goes here
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    # Secrets: the local file under tmp_path; no kubeconfig, so co.api.Secrets() is local.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def k8sco(*args: str) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "k8sco", *args)


def build(name: str, *args: str) -> list[str]:
    """``python FILE.py [args]``: the tree it prints, as lines (the docstring first)."""
    done = run(sys.executable, str(PIPELINES / name), *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def render(target: str, *args: str) -> list[dict[str, Any]]:
    """``k8sco render``: the Pipeline, then a Job per Exec node, each valid."""
    done = k8sco("render", str(PIPELINES / target), *args)
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    validate_pipeline(docs[0])
    for doc in docs[1:]:
        assert doc["kind"] == "Job"
        validate_k8s(doc)
    return docs


def job_paths(docs: list[dict[str, Any]]) -> list[str]:
    return [d["metadata"]["annotations"]["k8sco.io/path"] for d in docs[1:]]


def logs(path: str) -> str:
    done = k8sco("logs", path)
    assert done.returncode == 0, done.stderr
    return done.stdout


def states() -> dict[str, str]:
    """``k8sco status``: each node's full path -> its state."""
    out: dict[str, str] = {}
    stack: list[str] = []
    for line in k8sco("status").stdout.splitlines()[1:]:
        depth = (len(line) - len(line.lstrip(" "))) // 2
        words = line.split()
        at = next(i for i, w in enumerate(words) if w in ("Exec", "Serial", "Parallel"))
        name = " ".join(words[:at])
        del stack[depth:]
        stack.append("" if name == "/" else name)
        out["/".join(stack) or "/"] = words[at + 1]
    return out


def test_first_pipeline() -> None:
    lines = build("first_pipeline.py")
    assert lines[1] == "### **First Pipeline**"  # print(__doc__) before co.main
    assert lines[-7:] == [
        "Serial /",
        "  Parallel /build",
        "    Exec /build/auth: sh build.sh auth",
        "    Exec /build/app: sh build.sh app",
        "  Serial /test",
        "    Exec /test/auth: python test.py auth",
        "    Exec /test/app: python test.py app",
    ]
    docs = render("first_pipeline.py")
    assert job_paths(docs) == ["/build/auth", "/build/app", "/test/auth", "/test/app"]
    done = run(sys.executable, str(PIPELINES / "first_pipeline.py"), "--local")
    assert done.returncode == 0, done.stdout + done.stderr
    # copy_dir="./code": the nodes run in that folder, as in the image.
    assert logs("/build/auth") == "built auth in code\n"
    assert logs("/test/app") == "testing app: OK\n"


def test_islands_with_conducto_launch_flags() -> None:
    # No default and two pipelines: name one, with Conducto's usual flags.
    done = run(sys.executable, str(PIPELINES / "islands.py"), "islands", "--local", "--run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert logs("/maui_county/lanai") == "pineapple isle\n"
    assert logs("/kauai_county/niihau") == "forbidden isle\n"
    assert states()["/"] == "done"
    assert job_paths(render("islands.py:islands"))[0] == "/hawaii"
    assert build("islands.py", "hello") == ["Exec /: echo Hello world!"]


def test_extras_native_functions_and_markdown() -> None:
    lines = build("extras.py")
    assert "  Parallel /exec_python" in lines
    assert (
        "    Exec /exec_python/no_types: k8sco call extras.py:no_types --name=world --thing=moon"
        in lines
    )
    assert (
        "    Exec /exec_python/simple_types: "
        "k8sco call extras.py:simple_types --price=3.5 --count=2 --show_sum"
    ) in lines
    render("extras.py")
    done = k8sco("run", str(PIPELINES / "extras.py"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert logs("/exec_python/no_types") == "Hello world, goodnight moon. (str)\n"
    assert logs("/exec_python/simple_types") == (
        "Item #0: $3.5. Total: 3.5\nItem #1: $3.5. Total: 7.0\n"
    )
    assert logs("/exec_python/complex_types") == (
        "Today is 2020-02-28. Tomorrow is 2020-02-29.\nTotal: 21.0\n"
    )
    assert "| Jan | 3 |\n</ConductoMarkdown>" in logs("/markdown_in_stdout")
    # `python extras.py display ...` prints the docstring first too: __main__ runs it.
    assert logs("/commands/Display/Cooling Days").endswith(
        "\n<ConductoMarkdown>\n**Cooling Days**: 12 letters\n</ConductoMarkdown>\n"
    )
    assert "  display(dataset: str)" in logs("/commands/help")
    # The magic_doc of a function given as func= is its docstring, then its source.
    status = k8sco("status").stdout
    assert "-- No types: both arrive as `str`s." in status


def test_env_secrets() -> None:
    build("env_secrets.py")  # puts the user secrets, as the demo does while building
    listed = k8sco("secrets", "list", "--local")
    assert listed.stdout.split() == ["COMPAT_PASSWORD", "COMPAT_SSN"]
    docs = render("env_secrets.py")
    # No Job carries a value (the doc does: magic_doc shows the demo's hard-coded secrets,
    # which Conducto's demo itself warns against). The controller adds the namespace
    # Secret's keys as secretKeyRefs when it creates a Job; render knows no cluster.
    for job in docs[1:]:
        env = job["spec"]["template"]["spec"]["containers"][0]["env"]
        assert "ReallyGoodPassword" not in yaml.safe_dump(env)
    done = k8sco("run", str(PIPELINES / "env_secrets.py"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert logs("/env_variables") == "NUM_THREADS=4\nTEST_URL=http://localhost:8080\n"
    assert logs("/user_secrets") == (
        "COMPAT_PASSWORD=ReallyGoodPassword\nCOMPAT_SSN=Never in code\n"
    )


def test_node_params() -> None:
    build("node_params.py")
    docs = render("node_params.py")
    assert "/skip/deploy prod" not in job_paths(docs)  # skipped: no Job
    containers = {
        path: d["spec"]["template"]["spec"]["containers"][0]
        for path, d in zip(job_paths(docs), docs[1:], strict=True)
    }
    cpu = {path: c["resources"]["requests"]["cpu"] for path, c in containers.items()}
    assert cpu["/cpu_and_mem"] == "250m"
    done = k8sco("run", str(PIPELINES / "node_params.py"))
    assert done.returncode == 1  # the intentional errors
    state = states()
    assert state["/stop_on_error/stop_on_error_default/cleanup"] == "pending"
    assert state["/stop_on_error/stop_on_error_false/finally_cleanup"] == "done"
    assert state["/skip/deploy prod"] == "skipped"
    assert state["/skip/send email"] == "done"
    assert state["/doc"] == "done"


def test_error_resolution() -> None:
    build("error_resolution.py")
    render("error_resolution.py")
    done = k8sco("run", str(PIPELINES / "error_resolution.py"))
    assert done.returncode == 1
    state = states()
    assert state["/flaky_error/test/test2"] == "error"
    assert state["/flaky_error/deploy"] == "pending"
    assert state["/specification_error/env_error"] == "error"  # $SCRATCH_DIR is not set
    assert "Exception: Debug me!" in logs("/debug_error")


def git(*args: str, cwd: Path) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "k8sco",
        "GIT_AUTHOR_EMAIL": "k8sco@example.com",
        "GIT_COMMITTER_NAME": "k8sco",
        "GIT_COMMITTER_EMAIL": "k8sco@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=True)


def test_execution_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = build("execution_env.py")
    assert "  Exec /copy_local_code: python test.py local" in lines
    # The demo clones github.com/conducto/demo; here a local bare repository stands in.
    work, bare = tmp_path / "repo", tmp_path / "repo.git"
    shutil.copytree(PIPELINES, work, ignore=shutil.ignore_patterns("__pycache__"))
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "demo", cwd=work)
    git("clone", "--quiet", "--bare", str(work), str(bare), cwd=tmp_path)
    monkeypatch.setenv("COMPAT_GIT_URL", bare.as_uri())
    docs = render("execution_env.py")
    assert "/clone_from_git" in job_paths(docs)
    monkeypatch.delenv("COMPAT_GIT_URL")

    done = k8sco("run", str(PIPELINES / "execution_env.py"))
    assert done.returncode == 1
    state = states()
    # The local runner runs each node here, in its image's copy_dir; the images themselves
    # (node:lts-alpine, a Dockerfile's /root/code) only exist with --docker or on a cluster.
    assert logs("/copy_local_code") == "testing local: OK\n"
    assert logs("/python_image_with_reqs_py") == "2\n"
    assert state["/dockerfile_with_copy"] == "error"  # /root/code/test.py is in the image only
