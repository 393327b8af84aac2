"""Bad input, through the real CLI: one line on stderr naming the culprit, exit 2, no
traceback, and nothing written (no run directory) or nothing printed (``render``).

Every case of issue 9, item 6 is a row of ``CASES`` (the body of a pipeline function,
the file's top level, or a whole file), run through both ``k8sco run`` and ``k8sco render``;
damaged run directories are a table of their own, through ``status`` and ``logs``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from k8sco.cli.app import cli

HEADER = """\
import functools
import sys

import k8sco as co


def f(x: str) -> None:
    pass


def flag(x: bool, no_x: str) -> None:
    pass


class C:
    def m(self) -> None:
        pass


def pipe() -> co.Serial:
"""


def one(setting: str) -> str:
    """A pipeline whose root sets ``setting`` and holds one node."""
    return f'root = co.Serial({setting})\nroot["a"] = co.Exec("echo")'


def node(command: str) -> str:
    """A pipeline whose node /a runs ``command`` (Python source)."""
    return f'root = co.Serial()\nroot["a"] = co.Exec({command})'


def named(name: str) -> str:
    return f'root = co.Serial()\nroot[{name}] = co.Exec("echo")'


DEEP = """\
root = co.Serial()
n = root
for i in range(400):
    c = co.Serial()
    n[f"n{i}"] = c
    n = c
n["e"] = co.Exec("echo")"""

# (id, body of pipe(), words the one line must hold: the culprit)
CASES: list[tuple[str, str, str]] = [
    # text no process, file or API can carry, or that reads differently than it runs
    ("name-nul", named('"a\\0b"'), "node name 'a\\x00b' contains a NUL"),
    ("name-surrogate", named('"a\\udcff"'), "U+DCFF, a lone surrogate"),
    ("name-bidi", named('"a\\u202eb"'), "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("name-del", named('"a\\x7fb"'), "U+007F, a control character"),
    ("name-c1", named('"a\\x85b"'), "U+0085, a control character"),
    ("name-zero-width", named('"a\\u200bb"'), "U+200B ZERO WIDTH SPACE"),
    ("name-newline", named('"a\\nb"'), "U+000A, a control character"),
    ("command-nul", node('"echo a\\0b"'), "the command contains a NUL"),
    ("command-surrogate", node('"echo \\udcff"'), "U+DCFF, a lone surrogate"),
    ("command-bidi", node('"echo \\u202e"'), "U+202E"),
    ("command-c1", node('"echo \\x9b"'), "U+009B"),
    ("argv-nul", node('["echo", "a\\0"]'), "the command contains a NUL"),
    ("argv-empty-program", node('["", "x"]'), "the program (the argv's first item) is empty"),
    ("name-too-long", named('"n" * 300'), "is 300 characters; at most 256"),
    ("env-value-nul", one('env={"A": "x\\0y"}'), "env['A']\" contains a NUL"),
    ("env-value-surrogate", one('env={"A": "\\udcff"}'), "lone surrogate"),
    ("env-value-bidi", one('env={"A": "\\u2066x"}'), "U+2066"),
    ("env-value-too-long", one('env={"A": "x" * 200_000}'), "is 200,002 bytes; a process takes"),
    ("title-bidi", one('title="a\\u202eb"'), "'title' contains U+202E"),
    ("tag-nul", one('tags=["a\\0"]'), "'tags' has a tag that contains a NUL"),
    ("doc-surrogate", one('doc="\\udcff"'), "'doc' contains U+DCFF"),
    # names, references and requirements that are not what they claim
    ("env-name-space", one('env={"A B": "x"}'), "'A B' is not a valid environment variable"),
    ("env-name-newline", one('env={"A\\nB": "x"}'), "invalid variable name"),
    ("env-name-digit", one('env={"1A": "x"}'), "'1A' is not a valid environment variable"),
    ("env-name-empty", one('env={"": "x"}'), "'' is not a valid environment variable"),
    ("image-injection", one('image="UPPER CASE;rm -rf /"'), "is not a valid image reference"),
    ("image-upper", one('image="Python:3.11"'), "'Python:3.11' is not a valid image reference"),
    ("image-bad-tag", one('image="python:3.11 slim"'), "is not a valid image reference"),
    ("image-long-name", one(f'image="{"a" * 256}"'), "at most 255 characters"),
    (
        "image-base-bad",
        one('image=co.Image(image="a b", reqs_py=["x"])'),
        "co.Image(image=...): 'a b' is not a valid image reference",
    ),
    (
        "reqs-py-newline",
        one('image=co.Image(reqs_py=["x\\nRUN rm -rf /"])'),
        "co.Image(reqs_py=...) has an item",
    ),
    (
        "reqs-packages-newline",
        one('image=co.Image(reqs_packages=["curl\\rRUN id"])'),
        "co.Image(reqs_packages=...) has an item",
    ),
    (
        "image-env-newline",
        one('image=co.Image(reqs_py=["x"], env={"A": "1\\nRUN id"})'),
        "the value of 'A' contains a line break",
    ),
    (
        "image-env-name",
        one('image=co.Image(reqs_py=["x"], env={"A-B": "1"})'),
        "'A-B' is not a valid variable name for an image",
    ),
    # numbers Kubernetes cannot hold, and quantities outside its grammar
    ("retries-int32", one("retries=2**31"), "'retries' must be from 0 to 2147483647"),
    ("max-time-int64", one("max_time=2**63"), "'max_time' must be a positive duration up to"),
    ("max-time-inf", one('max_time="1e400"'), "'max_time' must be a positive duration"),
    ("max-concurrent-int32", one("max_concurrent=2**31"), "'max_concurrent' must be from 1"),
    ("gpu-int64", one("gpu=2**63"), "'gpu' must be from 0 to"),
    ("cpu-1e400", one('cpu="1e400"'), "'cpu' is '1e400', beyond what Kubernetes can count"),
    ("mem-1e400", one('mem="1e400"'), "'mem' is '1e400', beyond what Kubernetes can count"),
    ("cpu-inf", one('cpu=float("inf")'), "'cpu' must be a positive number of cores"),
    ("cpu-nan", one('cpu=float("nan")'), "'cpu' must be a positive number of cores"),
    ("mem-inf", one('mem=float("inf")'), "'mem' must be a positive number of GB"),
    ("cpu-huge-int", one("cpu=10**400"), "'cpu' must be a positive number of cores"),
    ("mem-too-big", one("mem=1e10"), "'mem' must be a positive number of GB up to"),
    ("mem-below-a-byte", one("mem=1e-12"), "'mem' must be at least one byte"),
    ("cpu-Infinity", one('cpu="Infinity"'), "'cpu' must be a number or a Kubernetes quantity"),
    ("cpu-NaN", one('cpu="NaN"'), "'cpu' must be a number or a Kubernetes quantity"),
    ("mem-underscore", one('mem="1_000Mi"'), "'mem' must be a number or a Kubernetes quantity"),
    ("mem-bad-suffix", one('mem="1GB"'), "'mem' must be a number or a Kubernetes quantity"),
    ("cpu-fraction-exp", one('cpu="1e1.5"'), "'cpu' must be a number or a Kubernetes quantity"),
    ("cpu-negative", one('cpu="-1"'), "'cpu' must be positive"),
    ("mem-unitless", one('mem=".5"'), "write mem=0.5 (a number, in GB) or give a unit"),
    ("mem-unitless-int", one('mem="2"'), "a quantity without a unit"),
    ("mem-millibytes", one('mem="500m"'), "not a whole number of bytes"),
    # native functions: what a command line cannot carry or call
    ("arg-too-long", node('f, "x" * 200_000'), "parameter 'x': its argument is 200,004 bytes"),
    ("args-too-long-total", node('["echo", *["x" * 100_000] * 6]'), "bytes long; k8sco keeps"),
    ("command-too-long", node('"echo " + "x" * 200_000'), "has an argument of 200,005 bytes"),
    ("arg-name-clash", node("flag, True, 's'"), "parameters 'x' (a bool) and 'no_x' clash"),
    ("lambda", node("lambda: 1"), "must be defined at module level"),
    ("closure", "def g() -> None:\n    pass\n" + node("g"), "pipe.<locals>.g()"),
    ("method", node("C().m"), "C.m() must be a plain function"),
    ("partial", node("functools.partial(f, 'x')"), "must be a plain function"),
    ("builtin", node("print"), "print() must be a plain function"),
    # structure and exits
    ("too-deep", DEEP, "levels deep; k8sco takes at most 100"),
    ("sys-exit-in-function", "sys.exit(3)", "pipe() called sys.exit(3)"),
    ("sys-exit-none", "sys.exit()", "pipe() called sys.exit()"),
]

# Whole files: what the file's top level does when k8sco imports it.
FILE_CASES: list[tuple[str, str, str]] = [
    (
        "sys-exit-at-import",
        "import sys\nimport k8sco as co\nsys.exit(4)\n",
        "p.py: called sys.exit(4) while being imported",
    ),
    (
        "bad-node-at-import",
        'import k8sco as co\nROOT = co.Serial(mem="1e400")\n'
        "def pipe() -> co.Serial:\n    return ROOT\n",
        "p.py: /: parameter 'mem' is '1e400'",
    ),
    (
        "lambda-at-import",
        "import k8sco as co\nNODE = co.Exec(lambda: 1)\n"
        "def pipe() -> co.Serial:\n    return NODE\n",
        "p.py: Exec: <lambda>() must be defined at module level",
    ),
]


def pipeline_file(body: str) -> str:
    return HEADER + textwrap.indent(body, "    ") + "\n    return root\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def check_refused(project: Path, command: str, words: str) -> None:
    args = [command, "p.py", "--plain"] if command == "run" else [command, "p.py", "--image=x:1"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("k8sco: "), lines
    assert words in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""  # render printed nothing, run started nothing
    assert not (project / ".k8sco").exists()  # no run directory, not even a half one


@pytest.mark.parametrize("command", ["run", "render"])
@pytest.mark.parametrize(("body", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_trees_are_one_line_and_exit_2(
    project: Path, command: str, body: str, words: str
) -> None:
    (project / "p.py").write_text(pipeline_file(body), encoding="utf-8")
    check_refused(project, command, words)


@pytest.mark.parametrize("command", ["run", "render"])
@pytest.mark.parametrize(
    ("text", "words"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES]
)
def test_bad_files_are_one_line_and_exit_2(
    project: Path, command: str, text: str, words: str
) -> None:
    (project / "p.py").write_text(text, encoding="utf-8")
    check_refused(project, command, words)


def test_a_surrogate_in_a_real_process_leaves_no_run_behind(project: Path) -> None:
    """The issue's own case, as a user meets it: a process, not CliRunner."""
    (project / "p.py").write_text(pipeline_file(named('"a\\udcff"')), encoding="utf-8")
    for _ in range(2):  # status must not contradict itself afterwards
        proc = subprocess.run(
            [sys.executable, "-m", "k8sco", "run", "p.py", "--plain"],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and "lone surrogate" in proc.stderr
    assert not (project / ".k8sco").exists()
    status = subprocess.run(
        [sys.executable, "-m", "k8sco", "status"], capture_output=True, text=True
    )
    assert status.returncode == 2
    assert status.stderr.startswith("k8sco: no runs in .k8sco/runs/")


def test_a_native_node_in_a_file_whose_name_is_not_utf8(project: Path) -> None:
    name = os.fsdecode(b"\xff.py")
    (project / name).write_text(pipeline_file(node("f, 'x'")), encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", name], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        # CliRunner shows what cannot be encoded with backslashes
        "k8sco: \\udcff.py:pipe(): '\\udcff.py:f': the function's file path contains U+DCFF, a "
        "lone surrogate (text that is not valid UTF-8); rename it"
    ]
    assert not (project / ".k8sco").exists()


def test_sys_exit_at_import_in_a_real_process(project: Path) -> None:
    (project / "p.py").write_text("import sys\nsys.exit(7)\n")
    proc = subprocess.run(
        [sys.executable, "-m", "k8sco", "run", "p.py"], capture_output=True, text=True
    )
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "k8sco: p.py: called sys.exit(7) while being imported; a pipeline must return its "
        "tree (raise an exception to refuse its arguments)\n"
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["run"], "k8sco: Missing argument 'FILE.py[:FUNC]' (see 'k8sco run --help')"),
        (["status", "--bogus"], "k8sco: No such option '--bogus' (see 'k8sco status --help')"),
        (["zzz"], "k8sco: No such command 'zzz' (see 'k8sco --help')"),
        (["--bogus"], "k8sco: No such option '--bogus' (see 'k8sco --help')"),
        (["run", "p.py", "--docker=yes"], "k8sco: Option '--docker' does not take a value"),
        (["status", "--run", "../.."], "k8sco: --run '../..' is not a run id"),
        (["logs", "--run", "", "/a"], "k8sco: --run '' is not a run id"),
    ],
)
def test_command_lines_that_do_not_parse_are_one_line(
    project: Path, args: list[str], line: str
) -> None:
    result = CliRunner().invoke(cli, args, catch_exceptions=False, prog_name="k8sco")
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(line)


def test_render_refuses_a_bad_image_option(project: Path) -> None:
    (project / "p.py").write_text(pipeline_file(one("")), encoding="utf-8")
    result = CliRunner().invoke(cli, ["render", "p.py", "--image=Bad Image"])
    assert result.exit_code == 2
    assert result.stderr == (
        "k8sco: --image: 'Bad Image' is not a valid image reference ([registry/]name[:tag]"
        "[@digest], the name in lower case, e.g. 'python:3.11-slim' or 'ghcr.io/me/app:1')\n"
    )


# --- damaged run directories ---------------------------------------------------------------

GOOD = """\
import k8sco as co


def pipe() -> co.Serial:
    root = co.Serial()
    root["a"] = co.Exec("echo hi")
    return root
"""


def _remove(name: str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        target = run / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()

    return damage


def _write(name: str, text: str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        (run / name).write_text(text)

    return damage


def _only_a_tmp_tree(run: Path) -> None:
    """What a run killed while writing its tree used to leave: no run.json, no tree.json."""
    for child in run.iterdir():
        if child.is_file():
            child.unlink()
    (run / ".tree.json.tmp").write_text('{"k8sco": 1, "ro')


STATUS, LOGS = ["status"], ["logs", "/a"]
BOTH = (STATUS, LOGS)

# (id, damage, words, the commands that read the damaged file)
DAMAGE = [
    ("run-json-missing", _remove("run.json"), "run.json it is missing", BOTH),
    ("run-json-garbage", _write("run.json", "{nope"), "run.json Expecting property name", BOTH),
    ("run-json-not-a-run", _write("run.json", "[1, 2]"), "it is not what k8sco wrote", BOTH),
    ("run-json-no-log-of-a", _write("run.json", '{"logs": {}}'), "no log file for /a", (LOGS,)),
    ("tree-json-missing", _remove("tree.json"), "tree.json it is missing", BOTH),
    ("tree-json-garbage", _write("tree.json", "garbage"), "not a serialized k8sco tree", BOTH),
    (
        "tree-json-bad-node",
        _write("tree.json", '{"k8sco": 1, "root": {"type": "X"}}'),
        "unknown node type 'X'",
        BOTH,
    ),
    ("states-json-missing", _remove("states.json"), "states.json it is missing", (STATUS,)),
    ("states-json-garbage", _write("states.json", "{"), "states.json Expecting", (STATUS,)),
    (
        "states-json-bad-record",
        _write("states.json", json.dumps({"nodes": {"/a": {"state": "on fire"}}})),
        "the record of '/a'",
        (STATUS,),
    ),
    (
        "states-json-bad-time",
        _write("states.json", json.dumps({"nodes": {"/a": {"started": "noon"}}})),
        "the record of '/a' is not valid",
        (STATUS,),
    ),
    ("only-a-tmp-tree", _only_a_tmp_tree, "run.json it is missing", BOTH),
]
DAMAGE_PARAMS = [
    pytest.param(damage, words, command, id=f"{name}-{command[0]}")
    for name, damage, words, commands in DAMAGE
    for command in commands
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished run, copied (fresh) into each test's directory."""
    base = tmp_path_factory.mktemp("good")
    (base / "p.py").write_text(GOOD)
    subprocess.run(
        [sys.executable, "-m", "k8sco", "run", "p.py", "--plain"],
        cwd=base,
        check=True,
        capture_output=True,
    )
    return base


@pytest.mark.parametrize(("damage", "words", "command"), DAMAGE_PARAMS)
def test_a_damaged_run_directory_is_one_line_and_exit_2(
    finished_run: Path,
    project: Path,
    damage: Callable[[Path], None],
    words: str,
    command: list[str],
) -> None:
    shutil.copytree(finished_run / ".k8sco", project / ".k8sco", symlinks=True)
    run = (project / ".k8sco" / "runs" / "latest").resolve()
    damage(run)
    result = CliRunner().invoke(cli, command, catch_exceptions=False)
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"k8sco: run {run.name} is incomplete or damaged: ")
    assert words in lines[0]
    assert result.stdout == ""


def test_a_run_directory_is_owner_only(finished_run: Path) -> None:
    runs = finished_run / ".k8sco" / "runs"
    run = (runs / "latest").resolve()
    assert (run.stat().st_mode & 0o777, (run / "logs").stat().st_mode & 0o777) == (0o700, 0o700)
    assert runs.stat().st_mode & 0o777 == 0o700
