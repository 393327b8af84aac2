"""Secrets, the pure part (k8sco/secrets.py): co.SecretRef, the Pipeline carries references
only, and the order of a Job's env (node env < secrets < framework variables)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import k8sco as co
from k8sco.errors import PipelineError
from k8sco.render.jobs import render_job
from k8sco.render.pipeline import decode_tree, job_for, render_all, render_pipeline
from k8sco.secrets import (
    SECRET_NAME,
    container_env,
    key_problem,
    keys_from_annotation,
    process_env,
)
from k8sco.tree import Node


def env_of(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["spec"]["template"]["spec"]["containers"][0]["env"])


def names(env: list[dict[str, Any]]) -> list[str]:
    return [e["name"] for e in env]


def tree() -> co.Serial:
    with co.Serial(env={"LEVEL": "debug", "TOKEN": "from-node"}) as root:
        co.Exec("echo $TOKEN", name="a", env={"GH": co.SecretRef("github", "token")})
    return root


def test_secret_ref_checks_its_names() -> None:
    assert co.SecretRef("github", "tls.crt").key == "tls.crt"
    with pytest.raises(PipelineError, match="not a Secret name"):
        co.SecretRef("GitHub", "token")
    with pytest.raises(PipelineError, match="not a Secret key"):
        co.SecretRef("github", "a/b")
    with pytest.raises(PipelineError, match="optional"):
        co.SecretRef("github", "token", optional="yes")  # type: ignore[arg-type]


def test_env_takes_a_secret_ref_and_nothing_else_that_is_not_a_string() -> None:
    node = co.Exec("true", env={"T": co.SecretRef("s", "k")})
    assert node.get("env") == {"T": co.SecretRef("s", "k")}
    with pytest.raises(co.PipelineTypeError, match=r"co\.SecretRef"):
        co.Exec("true", env={"T": 3})


def test_a_secret_ref_survives_the_pipeline_object_as_a_reference() -> None:
    root = tree()
    pipeline = render_pipeline(root, "p", "default", image="img:1")
    decoded = decode_tree(pipeline["spec"])
    assert decoded["/a"].get("env")["GH"] == co.SecretRef("github", "token")
    assert Node.deserialize(root.serialize())["/a"].get("env") == root["/a"].get("env")


def test_a_node_secret_ref_is_a_secret_key_ref() -> None:
    env = env_of(render_job(tree(), "/a", "p", "default", image="img:1"))
    assert {"name": "GH", "valueFrom": {"secretKeyRef": {"name": "github", "key": "token"}}} in env
    optional = co.Exec("true", env={"X": co.SecretRef("s", "k", optional=True)})
    root = co.Serial()
    root["o"] = optional
    env = env_of(render_job(root, "/o", "p", "default", image="img:1"))
    assert env[0]["valueFrom"]["secretKeyRef"] == {"name": "s", "key": "k", "optional": True}


def test_namespace_secrets_beat_node_env_and_lose_to_the_framework() -> None:
    job = render_job(
        tree(),
        "/a",
        "p",
        "default",
        image="img:1",
        secret_keys=["TOKEN", "ZED", "K8SCO_PIPELINE", "not-a-var"],
    )
    env = env_of(job)
    # The node's TOKEN gives way to the secret's; K8SCO_* and names no shell can read are
    # never secrets; the framework's variables come last, so they win in any case.
    assert names(env) == ["LEVEL", "GH", "TOKEN", "ZED", "K8SCO_PIPELINE", "K8SCO_NODE_PATH"]
    token = env[2]
    assert token == {
        "name": "TOKEN",
        "valueFrom": {"secretKeyRef": {"name": SECRET_NAME, "key": "TOKEN", "optional": True}},
    }
    assert env[4] == {"name": "K8SCO_PIPELINE", "value": "p"}
    assert "from-node" not in json.dumps(job)


def test_without_secret_keys_the_job_is_what_render_prints() -> None:
    root = tree()
    pipeline = render_pipeline(root, "p", "default", image="img:1")
    printed = render_all(root, "p", "default", image="img:1")[1]
    assert job_for(pipeline, root, "/a") == printed
    with_keys = job_for(pipeline, root, "/a", ("TOKEN",))
    assert sorted(names(env_of(with_keys))) == sorted(names(env_of(printed)))  # replaced
    assert env_of(with_keys) != env_of(printed)


def test_a_pod_spec_variable_keeps_its_value_over_a_secret() -> None:
    root = co.Serial()
    root["a"] = co.Exec(
        "true", pod_spec={"containers": [{"name": "main", "env": [{"name": "T", "value": "x"}]}]}
    )
    env = env_of(render_job(root, "/a", "p", "default", image="img:1", secret_keys=["T", "U"]))
    assert [e for e in env if e["name"] == "T"] == [{"name": "T", "value": "x"}]
    assert "U" in names(env)


def test_container_env_order() -> None:
    env = container_env(
        {"A": "1", "B": co.SecretRef("s", "b")},
        ["C", "A"],
        [{"name": "K8SCO_NODE_PATH", "value": "/x"}],
    )
    assert names(env) == ["B", "A", "C", "K8SCO_NODE_PATH"]


def test_keys_of_the_annotation() -> None:
    assert keys_from_annotation("B,A,,A,K8SCO_X,bad-name") == ("A", "B")
    assert keys_from_annotation(None) == ()
    assert key_problem("K8SCO_PIPELINE") is not None
    assert key_problem("1A") is not None
    assert key_problem("GITHUB_TOKEN") is None


def test_process_env_precedence() -> None:
    env = process_env(
        {"HOME": "/h", "TOKEN": "base", "K8SCO_PIPELINE": "old"},
        {"TOKEN": "node", "LEVEL": "1", "GH": co.SecretRef("github", "token")},
        {SECRET_NAME: {"TOKEN": "secret", "K8SCO_PIPELINE": "forged"}, "github": {"token": "g"}},
        {"K8SCO_PIPELINE": "run-1", "K8SCO_NODE_PATH": "/a"},
        "/a",
    )
    assert env == {
        "HOME": "/h",
        "TOKEN": "secret",
        "LEVEL": "1",
        "GH": "g",
        "K8SCO_PIPELINE": "run-1",
        "K8SCO_NODE_PATH": "/a",
    }


def test_process_env_names_a_missing_reference() -> None:
    with pytest.raises(PipelineError, match="/a: env\\['GH'\\] names key 'token' of Secret"):
        process_env({}, {"GH": co.SecretRef("github", "token")}, {}, {}, "/a")
    optional = {"GH": co.SecretRef("github", "token", optional=True)}
    assert process_env({}, optional, {}, {}, "/a") == {}
