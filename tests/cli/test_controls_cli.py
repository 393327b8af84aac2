"""``k8sco reset|skip|unskip|modify``: what the command line must say before anything is
sent (one line, exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from k8sco.cli.app import cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["skip", "demo"],
            "'demo': a local NODE_PATH starts with '/'; for a cluster give",
        ),
        (["reset", "a", "/b", "c"], "give PIPELINE NODE_PATH (a cluster) or NODE_PATH"),
        (["unskip", "--run", "x", "demo", "/a"], "a local run takes one NODE_PATH"),
        (["modify", "/a"], "modify: give --set NAME=VALUE and/or --command CMD"),
        (["modify", "/a", "--set", "cpu"], "--set 'cpu': give NAME=VALUE"),
        (["skip", "/a"], "no runs in .k8sco/runs/"),
        (["debug", "demo"], "'demo': a local NODE_PATH starts with '/'"),
    ],
)
def test_bad_command_lines_are_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
