"""``k8sco run``, ``logs``, ``status`` and ``--version`` through the click group, and
Ctrl-C on a real ``k8sco run`` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import k8sco as co
from k8sco.cli.app import cli
from k8sco.render import render_job

PIPELINE = """
import k8sco as co


def pipeline(n: int = 2, word: str = "hi") -> co.Serial:
    with co.Serial() as root:
        with co.Parallel(name="p"):
            for i in range(n):
                co.Exec(f"echo {word} {i}", name=f"n{i}")
        co.Exec("echo $(pwd)", name="where")
    return root


def failing() -> co.Serial:
    with co.Serial() as root:
        co.Exec("echo one; echo two; echo boom >&2; exit 5", name="bad")
        co.Exec("echo never", name="after")
    return root


def helper(x: int) -> int:
    return x


if __name__ == "__main__":
    co.main(default=pipeline)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with pipe.py, made the current directory (runs land in it)."""
    (tmp_path / "pipe.py").write_text(PIPELINE)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def k8sco(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_run_logs_and_status(project: Path) -> None:
    result = k8sco("run", "pipe.py", "--n=3", "--word", "hello")
    assert result.exit_code == 0, result.output
    assert "[" in result.stdout and "] done /p/n2 (" in result.stdout
    assert "done in" in result.stdout.splitlines()[-1]
    assert "(4 done)" in result.stdout
    assert k8sco("logs", "/p/n2").stdout == "hello 2\n"
    assert k8sco("logs", "where").stdout == f"{os.path.realpath(project)}\n"
    assert k8sco("logs", "/p").stdout == "".join(f"==> /p/n{i} <==\nhello {i}\n" for i in range(3))
    status = k8sco("status").stdout.splitlines()
    assert status[0].startswith("run ") and status[0].endswith(
        "pipe.py:pipeline --n=3 --word hello  done"
    )
    assert status[1].split() == ["/", "Serial", "done", status[1].split()[-1]]
    assert status[3].split()[:3] == ["n0", "Exec", "done"]


def test_a_failed_run_exits_1_and_names_the_failed_node(project: Path) -> None:
    result = k8sco("run", "pipe.py:failing")
    assert result.exit_code == 1
    summary = result.stdout.split("\n\n", 1)[1]
    assert "error in" in summary and "(1 error, 1 pending)" in summary
    assert "error /bad: exit code 5" in summary
    assert "  | one\n  | two\n  | boom" in summary
    status = k8sco("status").stdout
    assert "exit code 5" in status
    assert [line.split()[:3] for line in status.splitlines()[2:]] == [
        ["bad", "Exec", "error"],
        ["after", "Exec", "pending"],
    ]


def test_logs_and_status_of_an_earlier_run(project: Path) -> None:
    k8sco("run", "pipe.py", "--word=first")
    first = os.readlink(project / ".k8sco" / "runs" / "latest")
    k8sco("run", "pipe.py", "--word=second")
    assert k8sco("logs", "/p/n0").stdout == "second 0\n"
    assert k8sco("logs", "/p/n0", "--run", first).stdout == "first 0\n"
    assert "--word=first" in k8sco("status", "--run", first).stdout


def test_logs_of_an_unknown_node_lists_the_paths(project: Path) -> None:
    k8sco("run", "pipe.py")
    result = k8sco("logs", "/nope")
    assert result.exit_code == 2
    assert result.stderr.startswith("k8sco: no node '/nope' in run ")
    assert "nodes: /p, /p/n0, /p/n1, /where" in result.stderr
    assert result.stdout == ""


def test_logs_and_status_without_a_run(project: Path) -> None:
    for args in (["logs", "/x"], ["status"]):
        result = k8sco(*args)
        assert result.exit_code == 2
        assert result.stderr.startswith("k8sco: no runs in .k8sco/runs/")
    k8sco("run", "pipe.py")
    result = k8sco("status", "--run", "20000101-000000-0000")
    assert result.exit_code == 2
    assert "no run '20000101-000000-0000'" in result.stderr


BAD_FILES = {
    "syntax.py": ("def pipeline(:\n", "syntax.py: cannot be imported: SyntaxError"),
    "raises.py": (
        "import k8sco as co\n\ndef f():\n    raise RuntimeError('no config')\n\nf()\n",
        "raises.py: cannot be imported: RuntimeError: no config",
    ),
    "nopipe.py": ("def helper() -> int:\n    return 1\n", "no pipeline function"),
    "two.py": (
        "import k8sco as co\ndef a() -> co.Serial: ...\ndef b() -> co.Parallel: ...\n",
        "several pipeline functions, name one as two.py:FUNC: a, b",
    ),
    "none.py": (
        "import k8sco as co\ndef p() -> co.Serial:\n    return None\n",
        "none.py:p() returned NoneType, not a Serial, Parallel or Exec node",
    ),
    "badtree.py": (
        "import k8sco as co\ndef p() -> co.Serial:\n    return co.Serial(cpu=-1)\n",
        "badtree.py:p(): /: parameter 'cpu' must be a positive number",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_pipeline_files_exit_2_with_one_line(project: Path, name: str) -> None:
    text, message = BAD_FILES[name]
    (project / name).write_text(text)
    result = k8sco("run", name)
    assert result.exit_code == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"k8sco: {name}")
    assert message in first
    assert not (project / ".k8sco").exists()  # bad input creates no run


def test_an_exception_in_the_users_code_shows_their_traceback(project: Path) -> None:
    (project / "raises.py").write_text(BAD_FILES["raises.py"][0])
    stderr = k8sco("run", "raises.py").stderr
    assert "Traceback (most recent call last):" in stderr
    assert 'raises.py", line 4, in f' in stderr
    assert "k8sco/" not in stderr.split("Traceback", 1)[1]  # only the user's frames


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.py"], "k8sco: missing.py: no such file"),
        (["pipe.py:nosuch"], "k8sco: pipe.py: no function 'nosuch'; pipeline functions: "),
        (["pipe.py", "--nn=3"], "k8sco: pipe.py:pipeline: unknown parameter --nn"),
        (["pipe.py", "--n=three"], "k8sco: pipe.py:pipeline: --n='three' is not a valid int"),
        (["pipe.py:helper"], "k8sco: pipe.py:helper: missing --x=<int>"),
    ],
)
def test_bad_arguments_exit_2(project: Path, args: list[str], message: str) -> None:
    result = k8sco("run", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not (project / ".k8sco").exists()


def test_the_default_comes_from_co_main(project: Path) -> None:
    (project / "two.py").write_text(
        textwrap.dedent(
            """
            import k8sco as co

            def a() -> co.Serial:
                raise AssertionError("not this one")

            def b() -> co.Parallel:
                root = co.Parallel()
                root["x"] = co.Exec("echo from b")
                return root

            co.main(default=b)  # unguarded: must not take over `k8sco run`
            """
        )
    )
    assert k8sco("run", "two.py").exit_code == 0
    assert k8sco("logs", "/x").stdout == "from b\n"


def test_version_and_call_in_help() -> None:
    assert k8sco("--version").stdout == "k8sco 0.1.0\n"
    helptext = k8sco("--help").stdout
    for command in ("run", "call", "logs", "status"):
        assert f"  {command} " in helptext


def test_call_delegates_to_the_dispatcher(project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "k8sco", "call", "pipe.py:helper", "--x=41"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "41\n")
    assert k8sco("call", "pipe.py:helper", "--x=42").stdout == "42\n"


SLEEPY = """
import k8sco as co

def sleepy() -> co.Parallel:
    root = co.Parallel()
    for name in ("a", "b"):
        root[name] = co.Exec(f"sleep 30 & echo $! > {name}.pid; wait")
    return root
"""


@pytest.mark.timeout(60)
def test_ctrl_c_kills_running_nodes_and_exits_130(project: Path) -> None:
    (project / "sleepy.py").write_text(SLEEPY)
    proc = subprocess.Popen(
        [sys.executable, "-m", "k8sco", "run", "sleepy.py"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids = [project / "a.pid", project / "b.pid"]
    for _ in range(600):  # until both nodes' sleeps run (bounded by the test's timeout)
        if all(p.exists() and p.read_text().strip() for p in pids):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted" in stdout
    states = json.loads((project / ".k8sco" / "runs" / "latest" / "states.json").read_text())
    assert {states["nodes"][p]["state"] for p in ("/a", "/b")} == {"killed"}
    status = subprocess.run(
        [sys.executable, "-m", "k8sco", "status"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert status[0].endswith("sleepy.py:sleepy  interrupted")
    assert status[2].split() == ["a", "Exec", "killed", status[2].split()[3], "interrupted"]
    for pid_file in pids:
        assert _dies(int(pid_file.read_text()))


def test_status_of_a_run_in_progress_and_of_one_whose_runner_died(project: Path) -> None:
    (project / "sleepy.py").write_text(SLEEPY)
    proc = subprocess.Popen(
        [sys.executable, "-m", "k8sco", "run", "sleepy.py", "--plain"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        pids = [project / "a.pid", project / "b.pid"]
        for _ in range(600):  # until both nodes run (bounded by the test's timeout)
            if all(p.exists() and p.read_text().strip() for p in pids):
                break
            time.sleep(0.05)
        header = k8sco("status").output.splitlines()[0]
        assert header.endswith("(running)"), header
    finally:
        proc.kill()  # no clean-up by the runner: the run directory says it never finished
        proc.wait()
    header = k8sco("status").output.splitlines()[0]
    assert header.endswith("(the runner is gone; the run did not finish)"), header
    # The dead runner's pid now belongs to a process started after the run: still gone.
    latest = project / ".k8sco" / "runs" / "latest"
    states = latest / "states.json"
    data = json.loads(states.read_text())
    started = json.loads((latest / "run.json").read_text())["started"]
    while time.time() < started + 2:  # /proc's start times are good to a second
        time.sleep(0.1)
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        data["runner_pid"] = stranger.pid
        states.write_text(json.dumps(data))
        header = k8sco("status").output.splitlines()[0]
    finally:
        stranger.kill()
        stranger.wait()
    assert header.endswith("(the runner is gone; the run did not finish)"), header


def _dies(pid: int) -> bool:
    """True once ``pid`` is gone or a zombie (a SIGKILL is delivered asynchronously, so this
    waits a moment; the bound is generous, nothing is timed)."""
    for _ in range(200):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_native_nodes_of_a_file_in_another_directory(project: Path) -> None:
    sub = project / "sub"
    sub.mkdir()
    (sub / "helpers_run.py").write_text("def double(x: int) -> int:\n    return 2 * x\n")
    (sub / "flow.py").write_text(
        textwrap.dedent(
            """
            import k8sco as co
            from helpers_run import double

            def flow(n: int = 3) -> co.Serial:
                root = co.Serial()
                root["d"] = co.Exec(double, n)
                return root
            """
        )
    )
    result = k8sco("run", "sub/flow.py", "--n=21")
    assert result.exit_code == 0, result.stdout
    assert k8sco("logs", "/d").stdout == "42\n"


def test_a_root_that_is_one_exec(project: Path) -> None:
    (project / "single.py").write_text(
        "import k8sco as co\n\ndef one() -> co.Exec:\n    return co.Exec('echo alone')\n"
    )
    assert k8sco("run", "single.py").exit_code == 0
    assert k8sco("logs", "/").stdout == "alone\n"
    assert k8sco("status").stdout.splitlines()[1].split()[:3] == ["/", "Exec", "done"]


DOCUMENTED = '''
import k8sco as co


def pipeline() -> co.Serial:
    """# Build and check

    The long description."""
    with co.Serial(doc=co.util.magic_doc()) as root:
        co.Exec("echo built", name="build").doc = "Compiles the code into **dist/**."
        co.Exec("echo checked", name="check")
        root["check"].doc = "x" * 100
    return root
'''


def test_status_shows_the_first_line_of_each_nodes_doc(project: Path) -> None:
    (project / "documented.py").write_text(DOCUMENTED)
    assert k8sco("run", "documented.py:pipeline").exit_code == 0
    lines = k8sco("status").stdout.splitlines()[1:]
    assert lines[0].split()[:3] == ["/", "Serial", "done"]
    assert lines[0].endswith("s  -- Build and check")
    assert lines[1].split()[:3] == ["build", "Exec", "done"]
    assert lines[1].endswith("  -- Compiles the code into **dist/**.")
    assert lines[2].endswith("  -- " + "x" * 57 + "...")


COPY_DIR = """
import k8sco as co

IMG = co.Image("python:3.11-slim", copy_dir="sub")


def read_it() -> None:
    print(open("data.txt").read().strip())


def pipeline() -> co.Serial:
    with co.Serial(image=IMG) as root:
        co.Exec("cat data.txt", name="shell")
        co.Exec(read_it).set(name="native")
    root["plain"] = co.Exec("cat data.txt", image="python:3.11-slim")
    return root
"""


def test_a_node_runs_in_its_images_copy_dir_as_its_job_does(project: Path) -> None:
    (project / "sub").mkdir()
    (project / "sub" / "data.txt").write_text("in sub\n")
    (project / "data.txt").write_text("in root\n")
    (project / "copydir.py").write_text(COPY_DIR)
    assert k8sco("run", "copydir.py:pipeline").exit_code == 0
    assert k8sco("logs", "/shell").stdout == "in sub\n"
    assert k8sco("logs", "/native").stdout == "in sub\n"
    assert k8sco("logs", "/plain").stdout == "in root\n"  # no copy_dir: the pipeline's folder
    # On a cluster the node runs where the image holds its copy_dir: the image's code root.
    root = co.Serial(image=co.Image("python:3.11-slim", copy_dir="sub"))
    root["shell"] = co.Exec("cat data.txt")
    job = render_job(root, "/shell", "p", "default", image="x:1")
    assert job["spec"]["template"]["spec"]["containers"][0]["workingDir"] == "/app"
