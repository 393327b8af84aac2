"""Rendering shared containers (render/group.py) and requires_docker pods
(render/podspec.py with_docker): one Job per group, a Docker-in-Docker sidecar only when
allowed, Pod Security "restricted" unchanged for every other node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from kube_schemas import validate_k8s

import k8sco as co
from k8sco import sequence
from k8sco.cli.app import cli
from k8sco.errors import PipelineError, UsageError
from k8sco.render import podspec
from k8sco.render.jobs import render_job
from k8sco.render.names import job_name
from k8sco.render.pipeline import render_all


def tree() -> co.Serial:
    with co.Serial() as root:
        co.Exec("echo before", name="before")
        with co.Serial(name="box", same_container=co.SameContainer.NEW, env={"A": "1"}):
            co.Exec("echo one", name="one", cpu=2)
            with co.Parallel(name="p"):
                co.Exec("echo two", name="two", mem=4, max_time=60)
                co.Exec(
                    "echo three",
                    name="three",
                    env={"B": "2", "TOKEN": co.SecretRef("api", "token")},
                    max_time=30,
                )
        co.Exec("echo after", name="after")
    return root


def test_a_group_renders_as_one_job_named_after_its_head() -> None:
    root = tree()
    docs = render_all(root, "p", "ns")
    jobs = {d["metadata"]["annotations"]["k8sco.io/path"]: d for d in docs[1:]}
    assert list(jobs) == ["/before", "/after", "/box"]
    box = jobs["/box"]
    assert box["metadata"]["name"] == job_name("p", "/box")
    assert box["metadata"]["annotations"][sequence.ANNOTATION_SEQUENCE] == "3"
    spec = box["spec"]
    assert spec["backoffLimit"] == 0  # each member's retries run in the pod
    assert spec["activeDeadlineSeconds"] == 4 * 3600 + 60 + 30  # the members' max_time
    container = spec["template"]["spec"]["containers"][0]
    assert container["command"][:2] == ["k8sco", "sequence"]
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}  # the largest
    assert container["terminationMessagePath"] == sequence.TERMINATION_LOG
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["A"] == "1" and "B" not in env  # a member's own env is set by the runner
    token = next(e for e in container["env"] if e["name"] == "TOKEN")  # but not its secrets
    assert token["valueFrom"]["secretKeyRef"] == {"name": "api", "key": "token"}
    assert env[sequence.TERMINATION_ENV] == sequence.TERMINATION_LOG
    assert env["K8SCO_NODE_PATH"] == "/box"
    # The controller renders a member's Job through render_job: the same group Job.
    assert render_job(root, "/box/p/three", "p", "ns") == box
    assert not podspec.restricted_violations(spec["template"]["spec"])
    validate_k8s(box)


def test_a_group_needs_one_container_for_all_its_nodes() -> None:
    with co.Serial(container_reuse_context=co.ContainerReuseContext.NEW) as root:
        co.Exec("a", name="a", image="alpine:3")
        co.Exec("b", name="b", image="busybox:1")
    with pytest.raises(PipelineError, match=r"^/b: its image differs from /a's, .* set image on /"):
        render_all(root, "p", "ns")


def test_a_context_inside_a_group_is_refused_on_a_cluster() -> None:
    with co.Serial(same_container=co.SameContainer.NEW) as root:
        co.Exec("a", name="a")
        co.Exec("b", name="b", same_container=co.SameContainer.ESCAPE)
    with pytest.raises(PipelineError, match=r"^/b: a container_reuse_context inside"):
        render_all(root, "p", "ns")


def docker_tree() -> co.Serial:
    with co.Serial() as root:
        co.Exec("docker ps", name="d", requires_docker=True)
        co.Exec("echo plain", name="plain")
    return root


def containers(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in [*pod.get("initContainers", []), *pod["containers"]]}


def test_requires_docker_is_refused_unless_allowed_naming_node_and_setting() -> None:
    with pytest.raises(PipelineError) as err:
        render_all(docker_tree(), "p", "ns")
    message = str(err.value)
    assert message.startswith("/d: requires_docker=True needs a privileged Docker-in-Docker")
    assert "K8SCO_ALLOW_DOCKER" in message and "\n" not in message


def test_requires_docker_gets_a_dind_sidecar_and_every_other_pod_stays_restricted() -> None:
    docs = render_all(docker_tree(), "p", "ns", allow_docker=True)
    by_path = {d["metadata"]["annotations"]["k8sco.io/path"]: d for d in docs[1:]}
    plain = by_path["/plain"]["spec"]["template"]["spec"]
    assert "initContainers" not in plain and not podspec.restricted_violations(plain)
    pod = by_path["/d"]["spec"]["template"]["spec"]
    found = containers(pod)
    sidecar, main = found[podspec.DIND_CONTAINER], found["main"]
    assert sidecar["image"] == podspec.DIND_IMAGE
    assert sidecar["restartPolicy"] == "Always"  # a native sidecar: the Job still completes
    assert sidecar["securityContext"]["privileged"] is True
    assert "startupProbe" in sidecar  # the node starts once dockerd answers
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert env["DOCKER_HOST"] == podspec.DOCKER_HOST
    # The pod is "privileged" (not even baseline); the node's own container is unchanged.
    assert podspec.baseline_violations(pod)
    assert not podspec.restricted_violations(podspec.without_docker(pod))
    assert main["securityContext"] == plain["containers"][0]["securityContext"]
    validate_k8s(by_path["/d"])


def test_the_setting_names_namespaces_or_all() -> None:
    assert podspec.docker_allowed("*", "ns")
    assert podspec.docker_allowed("a, ns", "ns")
    assert not podspec.docker_allowed("a,b", "ns")
    assert not podspec.docker_allowed("", "ns")
    assert not podspec.docker_allowed(None, "ns")
    with pytest.raises(UsageError, match=r"K8SCO_ALLOW_DOCKER='a,b c': 'b c' is not a namespace"):
        podspec.docker_allowed("a,b c", "a")


def test_pod_spec_patches_of_a_docker_node_still_pass_its_level() -> None:
    with co.Serial() as root:
        co.Exec("x", name="x", requires_docker=True, pod_spec={"hostNetwork": True})
    with pytest.raises(PipelineError, match=r"^/x: the pod would not pass Pod Security"):
        render_all(root, "p", "ns", allow_docker=True)


DOCKER_PIPELINE = """\
import k8sco as co


def pipeline() -> co.Serial:
    with co.Serial() as root:
        co.Exec("docker ps", name="uses docker", requires_docker=True)
    return root
"""


def test_k8sco_render_refuses_requires_docker_unless_the_setting_allows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "docker_flow.py").write_text(DOCKER_PIPELINE)
    target = f"{tmp_path / 'docker_flow.py'}:pipeline"
    monkeypatch.delenv(podspec.ALLOW_DOCKER_ENV, raising=False)
    refused = CliRunner().invoke(cli, ["render", target, "-n", "ci"])
    assert refused.exit_code != 0 and refused.stdout == ""
    assert "/uses docker: requires_docker=True needs" in refused.stderr
    assert "K8SCO_ALLOW_DOCKER" in refused.stderr
    monkeypatch.setenv(podspec.ALLOW_DOCKER_ENV, "other,ci")
    allowed = CliRunner().invoke(cli, ["render", target, "-n", "ci"])
    assert allowed.exit_code == 0, allowed.stderr
    job = list(yaml.safe_load_all(allowed.stdout))[1]
    assert containers(job["spec"]["template"]["spec"])[podspec.DIND_CONTAINER]
