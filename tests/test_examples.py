"""Every example runs on the local runner (``k8sco run``, a real process), and its nodes'
output, read back with ``k8sco logs``, is what the example promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
K8SCO = [sys.executable, "-m", "k8sco"]


@pytest.fixture(autouse=True)
def _work_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # .k8sco/ goes here, never into the repo


def k8sco(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*K8SCO, *args], capture_output=True, text=True, check=False, cwd=cwd or os.getcwd()
    )


def test_every_example_is_tested() -> None:
    untested = [p.name for p in EXAMPLES.glob("*.py") if f"test_{p.stem}" not in globals()]
    assert not untested, f"add a test_<name> here that runs each of {untested}"


def test_primes() -> None:
    run = k8sco("run", str(EXAMPLES / "primes.py"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "(5 done)" in run.stdout
    assert k8sco("logs", "/seive").stdout == "[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]\n"
    assert k8sco("logs", "/check/10-20").stdout == "[10, 20): 4 primes, ok\n"
    assert k8sco("logs", "/report").stdout == "all primes below 30 checked\n"
    # The node's command, typed in a terminal in the example's directory, does the same.
    called = k8sco("call", "primes.py:seive", "--n=30", cwd=EXAMPLES)
    assert called.stdout == k8sco("logs", "/seive").stdout


def test_primes_with_an_argument() -> None:
    run = k8sco("run", f"{EXAMPLES / 'primes.py'}:primes", "--n=50")
    assert run.returncode == 0, run.stdout + run.stderr
    assert k8sco("logs", "/seive").stdout.endswith("41, 43, 47]\n")
    assert k8sco("logs", "/check/32-48").stdout == "[32, 48): 4 primes, ok\n"


def test_primes_as_a_script() -> None:
    printed = subprocess.run(
        [sys.executable, str(EXAMPLES / "primes.py")], capture_output=True, text=True, check=True
    )
    assert printed.stdout.splitlines()[:2] == [
        "Serial /",
        "  Exec /seive: k8sco call primes.py:seive --n=30",
    ]
    local = subprocess.run(
        [sys.executable, str(EXAMPLES / "primes.py"), "--n=20", "--local"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert local.returncode == 0, local.stdout + local.stderr
    assert k8sco("logs", "/seive").stdout == "[2, 3, 5, 7, 11, 13, 17, 19]\n"


def test_payload() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import payload
    finally:
        sys.path.remove(str(EXAMPLES))
    run = k8sco("run", str(EXAMPLES / "payload.py"))
    assert run.returncode == 0, run.stdout + run.stderr
    order = k8sco("logs", "/order").stdout.splitlines()
    assert order[0] == "label: order 17"
    assert order[1] == "tags: ['rush', 'a,b']"
    assert json.loads(order[2].removeprefix("payload: ")) == payload.ORDER
    assert order[3] == "total: 42.00"
    assert k8sco("logs", "/empty").stdout == "label: None\ntags: []\npayload: {}\ntotal: 0.00\n"


def test_nested() -> None:
    run = k8sco("run", str(EXAMPLES / "nested.py"))
    assert run.returncode == 1
    summary = run.stdout.split("\n\n", 1)[1]
    assert "error /test/unit/u2: exit code 1" in summary
    assert "  | assert 1 + 1 == 3" in summary
    assert "error (suppressed) /build/optional: exit code 1" in summary
    status = {line.split()[0]: line.split()[2:] for line in k8sco("status").stdout.splitlines()[1:]}
    assert status["/"][0] == "error"
    assert status["build"][0] == "done"  # optional failed, but its errors are suppressed
    assert status["flaky"][0] == "done" and status["flaky"][-2:] == ["2", "attempts"]
    assert status["u2"][0] == "error"
    assert status["u3"][0] == "done"  # a sibling of the failure still ran
    assert status["integration"] == ["pending"]  # the Serial stopped at the failure
    assert status["cleanup"][0] == "done"  # the root does not stop on errors
    assert status["docs"] == ["skipped"]
    assert k8sco("logs", "/test/unit/u3").stdout == "u3 still runs\n"
    assert k8sco("logs", "/build/flaky").stdout == (
        "first attempt fails\n[k8sco] attempt 2\nsecond attempt passes\n"
    )
