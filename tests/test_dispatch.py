"""``k8sco call``: the dispatcher that runs a native function as a node does.

Most tests call :func:`k8sco.dispatch.main` in this process (fast, and the received values
can be compared as objects); the ones about processes (the console script, what gets
imported, arbitrary text through a real argv) run ``.venv/bin/k8sco`` without a shell.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import k8sco as co
from k8sco import _entry, dispatch, modules, tree

DATA = Path(__file__).parent / "data"
K8SCO = str(Path(sys.executable).with_name("k8sco"))
funcs = modules.import_file(str(DATA / "dispatch_funcs.py"))


@contextlib.contextmanager
def code_root(path: Path) -> Iterator[None]:
    token = tree.set_code_root(str(path))
    try:
        yield
    finally:
        tree.reset_code_root(token)


def run_k8sco(argv: list[str], cwd: Path = DATA) -> subprocess.CompletedProcess[str]:
    """Run the console script with ``argv`` (no shell), in ``cwd``."""
    return subprocess.run(
        [K8SCO, *argv], cwd=cwd, capture_output=True, text=True, encoding="utf-8", check=False
    )


def node_argv(node: co.Exec) -> list[str]:
    """A function node's command with ``k8sco`` made this venv's console script."""
    assert isinstance(node.command, list)
    assert node.command[:2] == ["k8sco", "call"]
    return [K8SCO, *node.command[1:]]


@pytest.fixture
def in_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dispatch in this process from tests/data, the code root; sys.path is restored after."""
    monkeypatch.chdir(DATA)
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty code root; the modules imported from it are forgotten after the test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


# --- calling ------------------------------------------------------------------------------


def test_calls_the_function_and_prints_what_it_returns(
    in_data: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dispatch.main(["dispatch_funcs.py:seive", "--n=30"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    assert err == ""


def test_none_prints_nothing(in_data: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert dispatch.main(["dispatch_funcs.py:quiet"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--max_n=3"], {"max_n": 3, "verbose": False, "label": None}),
        (["--max-n=3"], {"max_n": 3, "verbose": False, "label": None}),  # dashed alias
        (["--max-n", "3", "--label", "x y"], {"max_n": 3, "verbose": False, "label": "x y"}),
        (["3", "--verbose"], {"max_n": 3, "verbose": True, "label": None}),  # positional
        (["--verbose", "3", "lbl"], {"max_n": 3, "verbose": True, "label": "lbl"}),
        (["--max_n=3", "--no-verbose"], {"max_n": 3, "verbose": False, "label": None}),
        (["--max_n=3", "--verbose=yes"], {"max_n": 3, "verbose": True, "label": None}),
        (["--max_n=3", "--label"], {"max_n": 3, "verbose": False, "label": None}),  # bare: None
        (["--max_n=3", "--label="], {"max_n": 3, "verbose": False, "label": ""}),
        (["--", "-3"], {"max_n": -3, "verbose": False, "label": None}),
    ],
)
def test_the_argument_forms_a_person_types(
    in_data: None, capsys: pytest.CaptureFixture[str], args: list[str], expected: dict[str, Any]
) -> None:
    assert dispatch.main(["dispatch_funcs.py:options", *args]) == 0
    assert json.loads(capsys.readouterr().out) == expected


SENT: dict[str, Any] = {
    "s": 'it\'s a "test"; $(rm -rf /) `x`\n',
    "i": -7,
    "f": 0.1,
    "flag": True,
    "ints": [1, 2, 3],
    "strs": ["a,b", "", "\\", "[x"],
    "pair": (1, "one"),
    "many": (1.5, 2.0),
    "mapping": {"k": [1, None, {"n": "é"}]},
    "maybe": None,
    "maybe_text": None,
    "maybe_flag": None,
    "color": funcs.Color.GREEN,
    "when": dt.datetime(2021, 5, 6, 7, 8, 9, 10, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    "day": dt.date(2021, 5, 6),
    "clock": dt.time(7, 8),
    "path": Path("some dir/file.txt"),
    "point": funcs.Point(1, -2),
    "mode": "slow",
    "user": funcs.UserId(42),
    "nested": [[1], [], [2, 3]],
    "raw": "bytes ü".encode(),
}


def test_every_kind_of_value_arrives_as_sent(in_data: None) -> None:
    with code_root(DATA):
        node = co.Exec(funcs.kinds, **SENT)
    assert dispatch.main(node_argv(node)[2:]) == 0
    assert funcs.RECEIVED == SENT
    assert {k: type(v) for k, v in funcs.RECEIVED.items()} == {k: type(v) for k, v in SENT.items()}


def test_every_kind_of_value_arrives_as_sent_through_a_process() -> None:
    with code_root(DATA):
        node = co.Exec(funcs.kinds, **SENT)
    done = subprocess.run(node_argv(node), cwd=DATA, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {k: repr(v) for k, v in SENT.items()}


# Any text argv can carry: everything but NUL, and no lone surrogates (not UTF-8).
ARGV_TEXT = st.lists(
    st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")),
        st.sampled_from([" ", "'", '"', "\n", "$(id)", ";", "`ls`", "\\", ",", "[", "--x=", "é"]),
    ),
    max_size=5,
).map("".join)


@settings(max_examples=25, deadline=None)
@given(ARGV_TEXT)
def test_any_text_reaches_the_function_through_a_real_argv(value: str) -> None:
    with code_root(DATA):
        node = co.Exec(funcs.show, value)
    done = subprocess.run(node_argv(node), cwd=DATA, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == repr(value)


@settings(max_examples=25, deadline=None)
@given(st.lists(ARGV_TEXT, max_size=4))
def test_any_list_of_text_reaches_the_function_through_a_real_argv(values: list[str]) -> None:
    with code_root(DATA):
        node = co.Exec(funcs.show_list, values)
    done = subprocess.run(node_argv(node), cwd=DATA, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == repr(values)


def test_async_functions_are_awaited(in_data: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert dispatch.main(["dispatch_funcs.py:add_later", "--a=2", "--b=40"]) == 0
    assert capsys.readouterr().out == "42\n"


def test_a_function_in_a_package_is_called_by_module_name(
    in_data: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert dispatch.main(["callpkg.tasks:double", "--n=4"]) == 0
    assert capsys.readouterr().out == "8\n"
    # A function node for it names the module, and the command runs from the code root.
    monkeypatch.syspath_prepend(str(DATA))
    tasks = importlib.import_module("callpkg.tasks")
    node = co.Exec(tasks.double, 21)
    assert node.command == ["k8sco", "call", "callpkg.tasks:double", "--n=21"]
    done = subprocess.run(node_argv(node), cwd=DATA, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (0, "42\n")


def test_nodes_built_by_a_dispatched_function_are_relative_to_the_cwd(
    in_data: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dispatch.main(["dispatch_funcs.py:build_node"]) == 0
    command = json.loads(capsys.readouterr().out)
    assert command == ["k8sco", "call", "dispatch_funcs.py:seive", "--n=3"]


def test_the_console_script_goes_to_the_dispatcher(
    in_data: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _entry.main(["call", "dispatch_funcs.py:seive", "--n=5"]) == 0
    assert json.loads(capsys.readouterr().out) == [2, 3, 5]


def test_k8sco_call_imports_no_cli_or_cluster_library() -> None:
    done = run_k8sco(["call", "dispatch_funcs.py:heavy_modules"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_k8sco_sequence_runs_a_shared_containers_nodes_through_the_console_script(
    in_data: None, tmp_path: Path
) -> None:
    # A group's Job runs `k8sco sequence SPEC` (k8sco/sequence.py); like `k8sco call` it
    # starts without the CLI or cluster libraries, and runs native functions by reference.
    from k8sco import sequence

    token = tree.set_code_root(str(DATA))  # function paths relative to it, as in an image
    try:
        with co.Serial(same_container=co.SameContainer.NEW) as root:
            co.Exec(f"echo made > {tmp_path / 'made.txt'}", name="make")
            co.Exec(funcs.heavy_modules).set(name="heavy")
    finally:
        tree.reset_code_root(token)
    spec = sequence.spec(root, "/").replace("$$", "$")
    probe = (
        "import sys; from k8sco import _entry; code = _entry.main(['sequence', sys.argv[1]]); "
        "print(sorted(m for m in ('click', 'rich', 'yaml', 'kubernetes', 'docker') "
        "if m in sys.modules), file=sys.stderr); sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, spec],
        cwd=DATA,
        capture_output=True,
        text=True,
        env={**os.environ, sequence.TERMINATION_ENV: str(tmp_path / "message")},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "[]"
    assert sequence.slice_log(done.stdout.encode(), 1) == b"[]\n"  # the function's result
    assert (tmp_path / "made.txt").read_text() == "made\n"
    assert _entry.main(["sequence"]) == 2  # no spec: usage


def test_the_file_is_imported_not_run_and_can_import_its_neighbours(tmp_path: Path) -> None:
    (tmp_path / "rootlib.py").write_text("VALUE = 'root'\n")
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "helper.py").write_text("VALUE = 'helper'\n")
    (tmp_path / "jobs" / "job.py").write_text(
        "import helper\n"
        "import rootlib\n\n\n"
        "def both() -> str:\n"
        "    return helper.VALUE + '+' + rootlib.VALUE\n\n\n"
        "if __name__ == '__main__':\n"
        "    open('main-ran', 'w').close()\n"
    )
    done = run_k8sco(["call", "jobs/job.py:both"], cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "helper+root\n", "")
    assert not (tmp_path / "main-ran").exists()


def test_importing_is_true_only_while_a_files_top_level_runs(scratch: Path) -> None:
    # co.main() checks it, so a file calling co.main() unguarded does not start the CLI.
    (scratch / "probe.py").write_text("from k8sco import modules\n\nDURING = modules.importing()\n")
    (scratch / "fails.py").write_text("raise ValueError('no')\n")
    assert modules.import_file("probe.py").DURING is True
    with pytest.raises(co.LoadError):
        modules.import_file("fails.py")
    assert modules.importing() is False


# --- failures -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope.py:f"], f"nope.py: no such file (in {DATA})"),
        (["dispatch_funcs.py"], "'dispatch_funcs.py' is not FILE.py:FUNC or package.module:FUNC"),
        (["no_such_pkg.mod:f"], f"no_such_pkg.mod: no module named 'no_such_pkg' (in {DATA})"),
        (["dispatch_funcs.py:nope"], "dispatch_funcs.py: no function 'nope' (it defines "),
        (["dispatch_funcs.py:Color"], "dispatch_funcs.py:Color: Color() must be a plain function"),
        (["dispatch_funcs.py:seive", "--n=abc"], "seive: --n='abc' is not a valid int"),
        (["dispatch_funcs.py:seive", "--n"], "dispatch_funcs.py:seive: --n needs a value (int)"),
        (["dispatch_funcs.py:seive"], "dispatch_funcs.py:seive: missing --n=<int>"),
        (["dispatch_funcs.py:seive", "--m=3"], "seive: unknown parameter --m (it takes --n)"),
        (["dispatch_funcs.py:seive", "--no-n"], "seive: unknown parameter --no-n (it takes --n)"),
        (["dispatch_funcs.py:seive", "3", "4"], "seive: unexpected argument '4'"),
        (["dispatch_funcs.py:seive", "3", "--n=4"], "seive: unexpected argument '3'"),
        (["dispatch_funcs.py:seive", "--n=1", "--n=2"], "seive: --n is given twice"),
        (["dispatch_funcs.py:kinds", "--ints=1,x"], "--ints='1,x' is not a valid list[int] | None"),
        (["dispatch_funcs.py:kinds", "--color=BLUE"], "not a valid Color (expected one of RED, GR"),
        (
            ["dispatch_funcs.py:kinds", "--pair=1,2,3"],
            "tuple[int, str] (expected 2 items",
        ),
        (["dispatch_funcs.py:kinds", "--maybe=x"], "--maybe='x' is not a valid int | None"),
        (["dispatch_funcs.py:kinds", "--mode=medium"], "--mode='medium' is one of 'fast', 'slow'"),
        (["dispatch_funcs.py:kinds", "--point=1"], "--point='1' is not a valid Point | None"),
        (["dispatch_funcs.py:kinds", "--mapping=[1]"], "--mapping='[1]' is not a valid dict"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_culprit(
    in_data: None, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert dispatch.main(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("k8sco call: ")
    assert message in lines[0]


@pytest.mark.parametrize(
    ("source", "first_line", "shown"),
    [
        ("def f(:\n    pass\n", "broken.py: cannot be imported: SyntaxError: ", "def f(:"),
        ("import no_such_dep_xyz\n", "cannot be imported: ModuleNotFoundError: ", "line 1"),
        ("x = 1\nraise RuntimeError('at import')\n", "RuntimeError: at import", "line 2"),
    ],
)
def test_a_module_that_does_not_import_exits_2_with_its_traceback(
    scratch: Path,
    capsys: pytest.CaptureFixture[str],
    source: str,
    first_line: str,
    shown: str,
) -> None:
    (scratch / "broken.py").write_text(source)
    assert dispatch.main(["broken.py:f"]) == 2
    err = capsys.readouterr().err
    first, *rest = err.splitlines()
    assert first.startswith("k8sco call: broken.py: cannot be imported: ")
    assert first_line in first
    assert shown in "\n".join(rest)  # the user's code, where it went wrong
    assert "importlib" not in err and "k8sco/modules.py" not in err
    assert "broken" not in sys.modules


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["dispatch_funcs.py:fail", "--message=boom"], "RuntimeError: boom"),
        (["dispatch_funcs.py:fail_later"], "ValueError: async boom"),
    ],
)
def test_an_exception_in_the_function_exits_1_with_its_traceback(
    in_data: None, capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    assert dispatch.main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):\n")
    assert re.search(r'File ".*dispatch_funcs\.py", line \d+, in fail', err)
    assert err.rstrip().endswith(error)
    assert "k8sco/dispatch.py" not in err and "asyncio" not in err  # the user's frames only


def test_exit_codes_of_the_console_script() -> None:
    assert run_k8sco(["call", "dispatch_funcs.py:seive", "--n=3"]).returncode == 0
    assert run_k8sco(["call", "dispatch_funcs.py:fail", "--message=x"]).returncode == 1
    bad = run_k8sco(["call", "dispatch_funcs.py:seive", "--n=x"])
    assert (bad.returncode, bad.stderr) == (
        2,
        "k8sco call: dispatch_funcs.py:seive: --n='x' is not a valid int\n",
    )


# --- help ---------------------------------------------------------------------------------


def test_help_on_a_target_lists_its_parameters_and_types(
    in_data: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dispatch.main(["dispatch_funcs.py:options", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "usage: k8sco call dispatch_funcs.py:options --max_n=<int> [--verbose] "
        "[--label=<str | None>]\n"
    )
    assert "Has a dashed alias" in out  # the docstring
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  --")}
    assert "int, required, also --max-n" in rows["--max_n=<int>"]
    assert "bool, default False" in rows["--verbose,"]
    assert "str | None, default None, a bare --label is None" in rows["--label=<str"]


def test_usage_without_a_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert dispatch.main(["--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: k8sco call FILE.py:FUNC")
    assert dispatch.main([]) == 2
    assert capsys.readouterr().err.startswith("usage: k8sco call FILE.py:FUNC")


UNGUARDED = """\
import k8sco as co


def double(x: int) -> None:
    print(x * 2)


def pipeline() -> co.Serial:
    root = co.Serial()
    root["double"] = co.Exec(double, 21)
    return root


co.main(default=pipeline)
"""


def test_co_main_without_a_guard_leaves_native_function_nodes_working(tmp_path: Path) -> None:
    (tmp_path / "unguarded.py").write_text(UNGUARDED)
    done = run_k8sco(["call", "unguarded.py:double", "--x=4"], cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "8\n", "")
    done = run_k8sco(["run", "unguarded.py", "--plain"], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    done = run_k8sco(["logs", "/double"], cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "42\n")
    # `python unguarded.py` is the CLI, as with a guard.
    done = subprocess.run(
        [sys.executable, "unguarded.py", "--local"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "done /double" in done.stdout


def test_a_module_target_with_co_main_unguarded_is_imported_not_run(scratch: Path) -> None:
    (scratch / "unguarded_pkg").mkdir()
    (scratch / "unguarded_pkg" / "__init__.py").write_text("")
    (scratch / "unguarded_pkg" / "jobs.py").write_text(UNGUARDED)
    done = run_k8sco(["call", "unguarded_pkg.jobs:double", "--x=5"], cwd=scratch)
    assert (done.returncode, done.stdout, done.stderr) == (0, "10\n", "")
