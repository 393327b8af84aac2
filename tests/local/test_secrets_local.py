"""Secrets on the local runner: the 0600 file in the user's config directory, injected into
every node with Conducto's precedence, never written to the run directory."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import k8sco as co
from k8sco.engine import State
from k8sco.errors import UsageError
from k8sco.local import runner
from k8sco.local import secrets as local_secrets
from k8sco.local.progress import PlainProgress

VALUE = "s3cr3t-value-7f9d2c"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home / "k8sco" / "secrets.json"


def test_the_file_is_created_owner_only(config: Path) -> None:
    assert local_secrets.path() == config
    local_secrets.put({"TOKEN": VALUE})
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    assert local_secrets.read() == {"TOKEN": VALUE}
    local_secrets.put({"OTHER": "x"})
    assert local_secrets.read() == {"TOKEN": VALUE, "OTHER": "x"}
    assert local_secrets.delete(["TOKEN", "NOPE"]) == ["TOKEN"]
    assert local_secrets.read() == {"OTHER": "x"}
    assert [p.name for p in config.parent.iterdir()] == ["secrets.json"]  # no temporary left


def test_a_file_others_may_read_is_refused(config: Path) -> None:
    local_secrets.put({"TOKEN": VALUE})
    config.chmod(0o644)
    with pytest.raises(UsageError, match=r"open to other users \(mode 0644\); run `chmod 600"):
        local_secrets.read()


def test_no_file_means_no_secrets_and_bad_keys_are_refused(config: Path) -> None:
    assert local_secrets.load() == {}
    with pytest.raises(UsageError, match="reserved"):
        local_secrets.put({"K8SCO_PIPELINE": "x"})
    with pytest.raises(UsageError, match="not a variable name"):
        local_secrets.put({"A-B": "x"})
    local_secrets.put({"tls.crt": "x"}, name="certs")  # any Secret key for a named Secret
    assert local_secrets.read("certs") == {"tls.crt": "x"}


def test_a_relative_xdg_config_home_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert local_secrets.path() == Path.home() / ".config" / "k8sco" / "secrets.json"


def run(root: co.Node, tmp_path: Path) -> runner.RunResult:
    spec = runner.RunSpec(root=root, code_root=str(tmp_path), meta={"file": "test.py"})
    return runner.run(spec, PlainProgress(lambda _: None), runs_dir=tmp_path / "runs", cpus=2)


def test_nodes_get_the_secrets_with_conductos_precedence(config: Path, tmp_path: Path) -> None:
    local_secrets.put({"TOKEN": VALUE, "SHARED": "secret"})
    local_secrets.put({"token": "from-ref"}, name="github")
    with co.Serial(env={"SHARED": "node", "PLAIN": "node"}) as root:
        co.Exec(
            'echo "$TOKEN|$SHARED|$PLAIN|$GH|$K8SCO_NODE_PATH"',
            name="show",
            env={"GH": co.SecretRef("github", "token")},
        )
    result = run(root, tmp_path)
    assert result.root is State.DONE
    assert result.run.log_path("/show").read_text() == f"{VALUE}|secret|node|from-ref|/show\n"


def test_no_value_reaches_the_run_directory(config: Path, tmp_path: Path) -> None:
    local_secrets.put({"TOKEN": VALUE})
    root = co.Serial()
    root["check"] = co.Exec(f'test "$TOKEN" = "{VALUE[:6]}"-"{VALUE[7:]}"')
    result = run(root, tmp_path)
    assert result.root is State.DONE  # the node saw the value...
    for file in (tmp_path / "runs").rglob("*"):  # ...and no file of the run holds it
        if file.is_file():
            assert VALUE.encode() not in file.read_bytes(), file


def test_a_missing_reference_fails_its_node_naming_it(config: Path, tmp_path: Path) -> None:
    root = co.Serial()
    root["a"] = co.Exec("true", env={"GH": co.SecretRef("github", "token")})
    result = run(root, tmp_path)
    assert result.root is State.ERROR
    assert "Secret 'github'" in result.run.log_path("/a").read_text()


def test_cli_manages_the_local_file(config: Path, tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(config.parent.parent)}

    def k8sco(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "k8sco", "secrets", *args, "--local"],
            capture_output=True,
            text=True,
            env=env,
            input=stdin,
            cwd=REPO,
            timeout=120,
        )

    done = k8sco("set", f"TOKEN={VALUE}", "B=2")
    assert done.returncode == 0, done.stderr
    piped = k8sco("set", "PIPED", stdin="from stdin\n")
    assert piped.returncode == 0, piped.stderr
    listed = k8sco("list")
    assert listed.stdout == "B\nPIPED\nTOKEN\n"
    assert VALUE not in listed.stdout + listed.stderr + done.stdout + done.stderr
    assert local_secrets.read()["PIPED"] == "from stdin"
    gone = k8sco("delete", "B", "NOPE")
    assert gone.returncode == 1
    assert "k8sco: no secret NOPE in " in gone.stderr
    assert k8sco("list").stdout == "PIPED\nTOKEN\n"
    bad = k8sco("set", "K8SCO_X=1")
    assert bad.returncode == 2 and "reserved" in bad.stderr


def test_co_api_secrets_locally(config: Path) -> None:
    api = co.api.Secrets(local=True)
    assert api.get_user_secrets() == {}
    api.put_user_secrets({"TOKEN": VALUE, "N": 3}, token="ignored")
    assert api.get_user_secrets() == {"N": "3", "TOKEN": VALUE}
    assert local_secrets.read() == {"N": "3", "TOKEN": VALUE}
    assert api.get_user_secrets(obfuscate=True) == {"N": co.api.MASK, "TOKEN": co.api.MASK}
    api.delete_user_secrets(["N"])
    assert api.get_user_secrets() == {"TOKEN": VALUE}


def test_co_api_secrets_is_local_without_a_kubeconfig(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert co.api.Secrets().local is True
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    assert co.api.Secrets().local is False
