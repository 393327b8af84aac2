"""``co.main`` takes Conducto's launch flags (conducto/pipeline.py ``main``): the ones that
only steer Conducto's web app and manager are accepted and do nothing, ``--k8s`` is
``--apply``, ``--title=``/``--doc=`` set the root's, and the ones with no meaning here are
refused with what to use instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PIPELINE = """
import k8sco as co


def hello() -> co.Serial:
    with co.Serial(doc="from the code") as root:
        co.Exec("echo hello", name="hi")
    return root


if __name__ == "__main__":
    co.main(default=hello)
"""


@pytest.fixture
def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # no kubeconfig: --apply fails at once
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    path = tmp_path / "hello.py"
    path.write_text(PIPELINE)
    return path


def python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, check=False)


def status() -> str:
    return python("-m", "k8sco", "status").stdout


@pytest.mark.parametrize(
    "flags",
    [["--run"], ["--run", "--no-app"], ["--app", "--sleep-when-done"], ["--shell"], ["--no-shell"]],
)
def test_flags_for_conductos_web_app_are_accepted(script: Path, flags: list[str]) -> None:
    done = python(str(script), "--local", *flags)
    assert done.returncode == 0, done.stdout + done.stderr
    assert python("-m", "k8sco", "logs", "/hi").stdout == "hello\n"


def test_run_without_local_still_prints_the_tree(script: Path) -> None:
    done = python(str(script), "--run")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Serial /\n  Exec /hi: echo hello\n"
    assert not os.path.exists(".k8sco")  # nothing ran


def test_doc_flag_sets_the_roots_doc(script: Path) -> None:
    done = python(str(script), "--local", "--doc=from the command line", "--title=Hello")
    assert done.returncode == 0, done.stdout + done.stderr
    root = status().splitlines()[1]
    assert root.endswith("-- from the command line")


@pytest.mark.parametrize("flag", ["--cloud", "--public", "--run-at=2030-01-01", "--pipeline_id=x"])
def test_flags_with_no_meaning_here_are_refused(script: Path, flag: str) -> None:
    done = python(str(script), flag)
    assert done.returncode == 2
    name = flag.split("=")[0]
    assert done.stderr.startswith(f"k8sco: {name} is Conducto's and has no meaning here: ")
    assert done.stderr.count("\n") == 1


def test_k8s_is_apply(script: Path) -> None:
    k8s, apply = python(str(script), "--k8s"), python(str(script), "--apply")
    assert k8s.returncode == apply.returncode != 0  # no cluster configured
    assert k8s.stderr == apply.stderr
