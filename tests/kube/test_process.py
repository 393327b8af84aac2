"""``k8sco controller``'s namespaces: flags and K8SCO_WATCH_NAMESPACES, read explicitly
(click would take an empty variable for an unset one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from k8sco.cli.cluster import controller
from k8sco.errors import UsageError
from k8sco.kube import process
from k8sco.kube.process import watched_namespaces


@pytest.mark.parametrize(
    ("flag", "everywhere", "env", "expected"),
    [
        (None, False, {}, []),  # the context's namespace
        (None, False, {"K8SCO_WATCH_NAMESPACES": ""}, None),  # set but empty: all
        (None, False, {"K8SCO_WATCH_NAMESPACES": "*"}, None),
        (None, False, {"K8SCO_WATCH_NAMESPACES": " a, b ,"}, ["a", "b"]),
        ("c", False, {"K8SCO_WATCH_NAMESPACES": "*"}, ["c"]),  # the flag wins
        ("*", False, {}, None),
        (None, True, {"K8SCO_WATCH_NAMESPACES": "a"}, None),  # -A
    ],
)
def test_watched_namespaces(
    flag: str | None, everywhere: bool, env: dict[str, str], expected: list[str] | None
) -> None:
    assert watched_namespaces(flag, everywhere, env) == expected


def test_star_with_names_is_refused() -> None:
    with pytest.raises(UsageError, match=r"K8SCO_WATCH_NAMESPACES='a,\*'"):
        watched_namespaces(None, False, {"K8SCO_WATCH_NAMESPACES": "a,*"})


def test_the_command_passes_an_empty_variable_on_as_every_namespace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[process.ControllerSettings] = []
    monkeypatch.setattr(process, "run", seen.append)
    result = CliRunner().invoke(
        controller, [], env={"K8SCO_WATCH_NAMESPACES": "", "K8SCO_LEASE_NAME": "lead"}
    )
    assert result.exit_code == 0, result.output
    assert seen[0].namespaces is None
    assert seen[0].lease_name == "lead"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("K8SCO_WATCH_NAMESPACES", "team-a,Not A Namespace", "is not a namespace name"),
        ("K8SCO_START_TIMEOUT", "soon", "is not a number of seconds above 0"),
        ("K8SCO_FOREIGN_JOB_TIMEOUT", "-5", "is not a number of seconds above 0"),
        ("K8SCO_DATA_STORE", "gs://bucket", "use s3://bucket/prefix or pvc:CLAIM-NAME"),
        ("K8SCO_LAZY_CLUSTER", "yes please", "give 1 (expand Lazy nodes) or 0"),
        ("K8SCO_WORKERS", "0", "is not a number of workers from 1 to 64"),
        ("K8SCO_WORKERS", "four", "is not a number of workers from 1 to 64"),
        ("K8SCO_ALLOW_DOCKER", "ci,Bad_NS", "'Bad_NS' is not a namespace name"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2_before_any_request(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    # A kubeconfig whose server nothing listens on: the settings are read before it is used.
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("K8SCO_")}
    env[variable] = value
    out = subprocess.run(
        [sys.executable, "-m", "k8sco", "controller", "--kubeconfig", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
    assert variable in out.stderr
