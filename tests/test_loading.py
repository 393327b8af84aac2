"""Loading a pipeline file: which function, with which arguments, relative to which root."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import k8sco as co
from k8sco import loading
from k8sco.errors import LoadError


def test_split_target() -> None:
    assert loading.split_target("dir/pipe.py:build") == ("dir/pipe.py", "build")
    assert loading.split_target("dir/pipe.py") == ("dir/pipe.py", None)
    assert loading.split_target("odd:dir/pipe.py") == ("odd:dir/pipe.py", None)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("co.main(default=build)", "build"),
        ("k8sco.main(default=build, env={'A': 'b'})", "build"),
        ("main(build)", "build"),
        ("if __name__ == '__main__':\n    co.main(default=build)", "build"),
        ("co.main()", None),
        ("print(build)", None),
    ],
)
def test_the_default_is_found_without_running_the_file(
    tmp_path: Path, source: str, expected: str | None
) -> None:
    (tmp_path / "p.py").write_text(source + "\n")
    assert loading.static_default(str(tmp_path / "p.py")) == expected


def test_load_sets_the_code_root_to_the_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "helpers_loading.py").write_text("def double(x: int) -> int:\n    return 2 * x\n")
    (sub / "pipe_root.py").write_text(
        textwrap.dedent(
            """
            from __future__ import annotations

            import k8sco as co
            from helpers_loading import double  # a neighbour, found through sys.path

            TOP = co.Exec(double, 1)  # built while the file is imported


            def pipeline(n: int, names: list[str] | None = None) -> co.Serial:
                root = co.Serial()
                root["top"] = TOP
                root["d"] = co.Exec(double, n)
                root["names"] = co.Exec(f"echo {names}")
                return root
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    loaded = loading.load("sub/pipe_root.py", ["--n=4", "--names=a,b"])
    assert loaded.func == "pipeline"
    assert loaded.code_root == str(sub)
    assert loaded.args == ["--n=4", "--names=a,b"]
    root = loaded.root
    assert isinstance(root, co.Serial)
    commands = [n.command for n in root.stream() if isinstance(n, co.Exec)]
    assert commands == [
        ["k8sco", "call", "helpers_loading.py:double", "--x=1"],
        ["k8sco", "call", "helpers_loading.py:double", "--x=4"],
        "echo ['a', 'b']",
    ]


def test_a_function_that_is_not_a_pipeline(tmp_path: Path) -> None:
    (tmp_path / "p.py").write_text("def helper() -> int:\n    return 3\n")
    with pytest.raises(LoadError, match=r"p.py:helper\(\) returned int, not a Serial"):
        loading.load(str(tmp_path / "p.py") + ":helper")
