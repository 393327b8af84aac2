"""``image_pull_policy``: a node parameter rendered into the container's imagePullPolicy."""

from __future__ import annotations

import pytest
from kube_schemas import validate_k8s

import k8sco as co
from k8sco.errors import PipelineError
from k8sco.render import render_job


def policy(root: co.Node, path: str) -> str | None:
    job = render_job(root, path, "pipe", "team-a", image="reg.example/img:1")
    validate_k8s(job)
    value: str | None = job["spec"]["template"]["spec"]["containers"][0].get("imagePullPolicy")
    return value


def test_unset_leaves_the_cluster_default() -> None:
    root = co.Serial()
    root["a"] = co.Exec("true")
    assert policy(root, "/a") is None


@pytest.mark.parametrize("value", ["Always", "IfNotPresent", "Never"])
def test_each_value_is_rendered_and_inherited(value: str) -> None:
    root = co.Serial(image_pull_policy=value)
    root["a"] = co.Exec("true")
    root["b"] = co.Exec("true", image_pull_policy="Always")
    assert policy(root, "/a") == value
    assert policy(root, "/b") == "Always"


@pytest.mark.parametrize("bad", ["always", "Sometimes", "", 1, None])
def test_other_values_fail_when_the_tree_is_built(bad: object) -> None:
    with pytest.raises(
        PipelineError,
        match="parameter 'image_pull_policy' must be one of Always, IfNotPresent, Never",
    ):
        co.Exec("true", image_pull_policy=bad, name="a")
