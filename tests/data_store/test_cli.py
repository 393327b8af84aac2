"""``k8sco data``, ``k8sco-data-*`` and Conducto's ``conducto-data-*`` command lines, run as
real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from k8sco.cli.data import parse

from .conftest import k8sco_bin


def _run(
    argv: list[str], env: dict[str, str], stdin: bytes = b"", cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    full = {**os.environ, **env}
    full.pop("K8SCO_PIPELINE", None)
    return subprocess.run(argv, input=stdin, env=full, capture_output=True, cwd=cwd, timeout=60)


def test_parse_is_conductos_syntax() -> None:
    assert parse(["gets", "a", "--byte-range=0,3"]) == ("gets", ["a"], {"byte_range": "0,3"})
    assert parse(["delete", "a", "--recursive"]) == ("delete", ["a"], {"recursive": True})
    assert parse(["list", "--prefix", "x/"]) == ("list", [], {"prefix": "x/"})
    assert parse(["url", "a", "--no-path-only"]) == ("url", ["a"], {"path_only": False})


@pytest.mark.parametrize("command", ["conducto-data-pipeline", "k8sco-data-pipeline"])
def test_console_scripts_in_a_node(tmp_path: Path, command: str) -> None:
    env = {"K8SCO_DATA_PIPELINE": str(tmp_path / "d")}
    exe = k8sco_bin(command)
    assert _run([exe, "puts", "r/a.txt"], env, b"0123456789").returncode == 0
    out = _run([exe, "gets", "r/a.txt", "--byte-range=2,5"], env)
    assert out.stdout == b"234"
    assert _run([exe, "gets", "r/a.txt", "--byte_range", "[0, 2]"], env).stdout == b"01"
    assert json.loads(_run([exe, "exists", "r/a.txt"], env).stdout) is True
    assert json.loads(_run([exe, "size", "--name=r/a.txt"], env).stdout) == 10
    assert json.loads(_run([exe, "list", "r/"], env).stdout) == ["r/a.txt"]
    src = tmp_path / "f"
    src.write_bytes(b"file")
    assert _run([exe, "put", "r/f", str(src)], env).returncode == 0
    assert _run([exe, "get", "r/f", str(tmp_path / "g")], env).returncode == 0
    assert (tmp_path / "g").read_bytes() == b"file"
    assert _run([exe, "delete", "r", "--recursive"], env).returncode == 0
    assert json.loads(_run([exe, "list", ""], env).stdout) == []
    missing = _run([exe, "gets", "nope"], env)
    assert missing.returncode == 1 and b"no object 'nope'" in missing.stderr
    bad = _run([exe, "frobnicate", "x"], env)
    assert bad.returncode == 2 and b"not a method" in bad.stderr


def test_user_script_and_cache_methods(tmp_path: Path) -> None:
    env = {"K8SCO_DATA_USER": str(tmp_path / "u")}
    exe = k8sco_bin("conducto-data-user")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir/x").write_text("x")
    assert _run([exe, "save-cache", "c", "sum1", str(tmp_path / "dir")], env).returncode == 0
    assert json.loads(_run([exe, "cache-exists", "c", "sum1"], env).stdout) is True
    assert _run([exe, "restore-cache", "c", "sum1", str(tmp_path / "out")], env).returncode == 0
    assert (tmp_path / "out/dir/x").read_text() == "x"
    assert _run([exe, "clear-cache", "c"], env).returncode == 0
    assert json.loads(_run([exe, "cache-exists", "c", "sum1"], env).stdout) is False


def test_k8sco_data_reads_a_local_runs_data(tmp_path: Path) -> None:
    pipeline = tmp_path / "p.py"
    pipeline.write_text(
        "import k8sco as co\n"
        "def write() -> None:\n"
        "    co.data.pipeline.puts('out/answer', b'42')\n"
        "def root() -> co.Serial:\n"
        "    s = co.Serial()\n"
        "    s['write'] = co.Exec(write)\n"
        "    return s\n"
    )
    env = {"K8SCO_HOME": str(tmp_path / "home")}
    k8sco = k8sco_bin("k8sco")
    ran = _run([k8sco, "run", "p.py:root"], env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr.decode() + ran.stdout.decode()
    got = _run([k8sco, "data", "pipeline", "gets", "out/answer"], env, cwd=tmp_path)
    assert got.stdout == b"42", got.stderr.decode()
    run_id = os.readlink(tmp_path / ".k8sco/runs/latest")
    got = _run([k8sco, "data", "pipeline", "list", "out", "--run", run_id], env, cwd=tmp_path)
    assert json.loads(got.stdout) == ["out/answer"]
    store = (tmp_path / ".k8sco/runs" / run_id / "data").as_uri()
    got = _run([k8sco, "data", "pipeline", "exists", "out/answer", f"--store={store}"], env)
    assert json.loads(got.stdout) is True


_ = sys
