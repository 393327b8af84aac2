"""Secrets in `k8sco run --docker`: their values reach the container from the shim's
environment, never from its argv (which every local user can read with ps)."""

from __future__ import annotations

import io
from pathlib import Path

import docker
import pytest

import k8sco as co
from k8sco.containers import run
from k8sco.engine import State
from k8sco.local import runner
from k8sco.local import secrets as local_secrets
from k8sco.local.progress import PlainProgress
from k8sco.secrets import SECRET_NAME, secret_names

VALUE = "s3cr3t-value-7f9d2c"


def test_the_spec_carries_names_not_values() -> None:
    node = co.Exec("true", env={"PLAIN": "x", "GH": co.SecretRef("github", "token")})
    spec = run.node_spec(node, "img:1", env={"K8SCO_NODE_PATH": "/a"})
    assert spec.env == {"PLAIN": "x", "K8SCO_NODE_PATH": "/a"}  # the SecretRef has no value
    hidden = secret_names(node.get("env"), {SECRET_NAME: {"TOKEN": VALUE}}, spec.env)
    assert hidden == {"GH", "TOKEN"}
    spec = run.ContainerSpec(spec.image, spec.argv, spec.env, secret_env=("GH", "TOKEN"))
    assert run.ContainerSpec.from_json(spec.to_json()) == spec
    assert VALUE not in " ".join(run.shim_argv(spec))


def test_the_container_gets_the_values_from_the_environment(
    engine: docker.DockerClient, base_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN", VALUE)
    monkeypatch.delenv("ABSENT", raising=False)
    spec = run.ContainerSpec(
        base_image,
        ("/bin/sh", "-c", 'echo "$TOKEN|$PLAIN|${ABSENT-unset}"'),
        {"PLAIN": "x"},
        workdir="",
        secret_env=("TOKEN", "ABSENT"),
    )
    out = io.BytesIO()
    with run.ContainerRun(spec, out, client=engine) as container:
        container.start()
        assert container.wait() == 0
    assert out.getvalue() == f"{VALUE}|x|unset\n".encode()


def test_run_docker_gives_nodes_the_local_secrets(
    engine: docker.DockerClient,
    base_image: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    local_secrets.put({"TOKEN": VALUE, "SHARED": "secret"})
    local_secrets.put({"token": "from-ref"}, name="github")
    with co.Serial(env={"SHARED": "node"}) as root:
        co.Exec(
            'echo "$TOKEN|$SHARED|$GH|$K8SCO_NODE_PATH"',
            name="show",
            env={"GH": co.SecretRef("github", "token")},
        )
    spec = runner.RunSpec(root, str(tmp_path), {"file": "test.py"}, images={"/show": base_image})
    result = runner.run(spec, PlainProgress(lambda _: None), runs_dir=tmp_path / "runs", cpus=2)
    log = result.run.log_path("/show").read_text()
    assert result.root is State.DONE, log
    assert log == f"{VALUE}|secret|from-ref|/show\n"
