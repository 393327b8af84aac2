"""``co.main``: a pipeline file as its own command line (``python FILE.py ...``)."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

import k8sco as co
from k8sco.cli.script import MODES, run_main
from k8sco.errors import PipelineTypeError

SCRIPT = """
import k8sco as co


def build(n: int = 2) -> co.Serial:
    \"\"\"A Serial of n echo nodes.\"\"\"
    root = co.Serial()
    for i in range(n):
        root[f"s{i}"] = co.Exec(f"echo step {i}")
    return root


def other() -> co.Parallel:
    root = co.Parallel()
    root["x"] = co.Exec("exit 1")
    return root


def add(a: int, b: int = 1) -> int:
    return a + b


def shout(word: str) -> None:
    print(word.upper())


if __name__ == "__main__":
    co.main(default=build, env={"FROM_MAIN": "yes"})
"""


@pytest.fixture
def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pipe.py").write_text(SCRIPT)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # runs land here, not next to the script
    return tmp_path / "pipe.py"


def python(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, check=False
    )


def test_no_arguments_prints_the_default_tree(script: Path) -> None:
    result = python(script)
    assert result.returncode == 0
    assert result.stdout == "Serial /\n  Exec /s0: echo step 0\n  Exec /s1: echo step 1\n"


def test_a_function_and_its_arguments(script: Path) -> None:
    assert python(script, "build", "--n=3").stdout.count("Exec /s") == 3
    assert python(script, "--n=1").stdout.count("Exec /s") == 1  # the default takes them
    assert python(script, "add", "--a=2", "--b=5").stdout == "7\n"
    assert python(script, "shout", "hey").stdout == "HEY\n"  # None is not printed


def test_local_runs_the_pipeline_here(script: Path) -> None:
    result = python(script, "--n=1", "--local")
    assert result.returncode == 0, result.stderr
    assert "done /s0" in result.stdout
    logs = list(Path(".k8sco/runs/latest/logs").iterdir())
    assert [p.read_text() for p in logs] == ["step 0\n"]
    failed = python(script, "other", "--local")
    assert failed.returncode == 1
    assert "error /x: exit code 1" in failed.stdout


def test_help_lists_the_functions(script: Path) -> None:
    result = python(script, "-h")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "usage: python pipe.py [FUNC] [--param=value ...] " + MODES,
        "",
        "pipelines (print the tree; --local runs it on this machine):",
        "  build(n: int = 2) -> Serial   (default)",
        "  other() -> Parallel",
        "",
        "functions (called with the arguments; the result is printed):",
        "  add(a: int, b: int = 1) -> int",
        "  shout(word: str)",
    ]
    assert "A Serial of n echo nodes." in python(script, "build", "-h").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--apply", "--local"], "k8sco: give --local or --apply, not both"),
        (["add", "--apply"], "k8sco: pipe.py:add is not a pipeline function"),
        (["nosuch"], "k8sco: pipe.py: no function 'nosuch'; functions: build, other, add, shout"),
        (["--n=x"], "k8sco: pipe.py:build: --n='x' is not a valid int"),
        (["add", "--local"], "k8sco: pipe.py:add is not a pipeline function"),
    ],
)
def test_bad_input_exits_2(script: Path, args: list[str], message: str) -> None:
    result = python(script, *args)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert not Path(".k8sco").exists()


def test_main_keywords_apply_to_the_root_unless_it_sets_its_own() -> None:
    module = types.ModuleType("fake_pipeline")
    module.__file__ = "/tmp/fake_pipeline.py"
    built: list[co.Node] = []

    def pipeline() -> co.Serial:
        root = co.Serial(cpu=3, env={"KEEP": "root"})
        root["a"] = co.Exec("true")
        built.append(root)
        return root

    pipeline.__module__ = module.__name__
    pipeline.__qualname__ = "pipeline"  # as if defined at the top of the module
    module.pipeline = pipeline  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        kwargs = {"env": {"KEEP": "main", "NEW": "main"}, "cpu": 8, "mem": 4}
        assert run_main(pipeline, kwargs, [], module) == 0
        with pytest.raises(PipelineTypeError, match="unknown keyword"):
            run_main(pipeline, {"cpus": 2}, [], module)
    finally:
        del sys.modules[module.__name__]
    root = built[0]
    assert root.get("env") == {"KEEP": "root", "NEW": "main"}
    assert (root.get("cpu"), root.get("mem")) == (3, 4)
