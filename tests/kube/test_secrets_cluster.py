"""Secrets on the fake cluster: `k8sco secrets set/list/delete` manage the namespace's Secret,
and a pipeline run by the controller, with its service account's rights (manifests/), gets
them in every node, secrets beating node env, while no value is in the Pipeline, a Job, the
controller's answers or the commands' output."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fakecluster import FakeCluster
from fakecluster.fixtures import Kubectl

import k8sco as co
from k8sco.cli.app import cli
from k8sco.kube import pipelines
from k8sco.kube import secrets as kube_secrets
from k8sco.kube.client import ACCEPT_METADATA, CORE, Cluster
from k8sco.kube.controller import Controller
from k8sco.render.constants import CONTROLLER_NAME, SYSTEM_NAMESPACE
from k8sco.render.pipeline import render_pipeline
from k8sco.secrets import ANNOTATION_KEYS, SECRET_NAME

REPO = Path(__file__).resolve().parents[2]
TEAM = "team-s"
VALUE = "s3cr3t-value-7f9d2c"
SERVICE_ACCOUNT = f"system:serviceaccount:{SYSTEM_NAMESPACE}:{CONTROLLER_NAME}"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeCluster, Path]]:
    (tmp_path / "app").mkdir()
    with FakeCluster(
        log_dir=str(tmp_path / "logs"), path_map={"/app": str(tmp_path / "app")}
    ) as fake:
        admin = fake.write_kubeconfig(tmp_path / "admin", namespace=TEAM)
        Kubectl(admin, tmp_path / "kube-cache")("apply", "-f", str(REPO / "manifests"))
        fake.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TEAM}})
        yield fake, admin
    assert not fake.internal_errors, "\n".join(fake.internal_errors)


def secrets_cli(admin: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["secrets", *args, "--kubeconfig", str(admin)])


def test_set_list_delete(world: tuple[FakeCluster, Path]) -> None:
    fake, admin = world
    done = secrets_cli(admin, "set", f"TOKEN={VALUE}", "B=2")
    assert done.exit_code == 0, done.output
    secret = fake.get("secrets", SECRET_NAME, TEAM)
    assert secret is not None
    assert secret["type"] == "Opaque"
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "k8sco"
    assert secret["metadata"]["annotations"][ANNOTATION_KEYS] == "B,TOKEN"
    assert base64.b64decode(secret["data"]["TOKEN"]).decode() == VALUE
    listed = secrets_cli(admin, "list")
    assert listed.output == "B\nTOKEN\n"
    assert VALUE not in done.output + listed.output
    assert secrets_cli(admin, "set", "B=3").exit_code == 0  # changes one, keeps the other
    cluster = Cluster(str(admin))
    try:
        assert kube_secrets.read(cluster, TEAM) == {"B": "3", "TOKEN": VALUE}
    finally:
        cluster.close()
    missing = secrets_cli(admin, "delete", "B", "NOPE")
    assert (
        missing.exit_code == 1 and "no secret NOPE in Secret team-s/k8sco-secrets" in missing.output
    )
    secret = fake.get("secrets", SECRET_NAME, TEAM)
    assert secret is not None and secret["metadata"]["annotations"][ANNOTATION_KEYS] == "TOKEN"
    assert secrets_cli(admin, "delete", "TOKEN").exit_code == 0
    assert fake.get("secrets", SECRET_NAME, TEAM) is None  # the last key takes the Secret
    assert secrets_cli(admin, "list").output == ""


def test_a_secret_k8sco_does_not_manage_is_left_alone(world: tuple[FakeCluster, Path]) -> None:
    fake, admin = world
    fake.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET_NAME, "namespace": TEAM},
            "data": {"X": base64.b64encode(b"1").decode()},
        }
    )
    refused = secrets_cli(admin, "set", "A=1")
    assert refused.exit_code == 2
    assert "is not managed by k8sco; label it app.kubernetes.io/managed-by=k8sco" in refused.output
    assert fake.get("secrets", SECRET_NAME, TEAM)["data"].keys() == {"X"}  # type: ignore[index]


class Recording(Cluster):
    """The controller's client, keeping every answer it got about Secrets."""

    answers: list[str]

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = super().request(method, path, **kwargs)
        if "/secrets" in path:
            self.answers.append(json.dumps(answer))
        return answer


def test_every_node_gets_the_secrets_and_nothing_holds_a_value(
    world: tuple[FakeCluster, Path], tmp_path: Path
) -> None:
    fake, admin = world
    user = Cluster(str(admin))
    kube_secrets.put(user, TEAM, {"TOKEN": VALUE, "SHARED": "secret"})
    kube_secrets.put(user, TEAM, {"token": "from-ref"}, name="github")
    with co.Serial(env={"SHARED": "node", "PLAIN": "node"}) as root:
        co.Exec(
            'echo "$TOKEN|$SHARED|$PLAIN|$GH|$K8SCO_NODE_PATH"',
            name="show",
            env={"GH": co.SecretRef("github", "token")},
        )
    pipelines.create(user, render_pipeline(root, "sec", TEAM, image="busybox:1.36"))
    sa = fake.write_kubeconfig(tmp_path / "sa", namespace=SYSTEM_NAMESPACE, user=SERVICE_ACCOUNT)
    controller_client = Recording(str(sa))
    controller_client.answers = []
    ctl = Controller(controller_client, TEAM, min_interval=0.0)
    thread = threading.Thread(target=ctl.run, kwargs={"until_finished": True}, daemon=True)
    thread.start()
    try:
        fake.wait_for(
            lambda: (
                (pipelines.get(user, "sec").get("status") or {}).get("phase")
                in ("Succeeded", "Failed")
            ),
            timeout=60,
        )
    finally:
        ctl.stop.set()
        thread.join(timeout=10)
        controller_client.close()
        user.close()
    pipeline = fake.get("pipelines.k8sco.io", "sec", TEAM)
    assert pipeline is not None
    assert pipeline["status"]["phase"] == "Succeeded", pipeline["status"].get("message")
    logs = subprocess.run(
        [sys.executable, "-m", "k8sco", "logs", "sec", "/show", "--kubeconfig", str(admin)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert logs.stdout == f"{VALUE}|secret|node|from-ref|/show\n", logs.stderr
    encoded = base64.b64encode(VALUE.encode()).decode()
    jobs = fake.objects("jobs.batch", TEAM)
    assert len(jobs) == 1
    for obj in (pipeline, jobs[0], *fake.objects("configmaps", TEAM)):
        text = json.dumps(obj)
        assert VALUE not in text and encoded not in text
    # The controller asked for the Secret's metadata and got key names, never a value.
    assert controller_client.answers, "the controller did not read the key names"
    assert all(VALUE not in a and encoded not in a for a in controller_client.answers)
    env = jobs[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == [
        "PLAIN",
        "GH",
        "SHARED",
        "TOKEN",
        "K8SCO_PIPELINE",
        "K8SCO_NODE_PATH",
    ]


def test_key_names_come_from_metadata_alone(world: tuple[FakeCluster, Path]) -> None:
    _, admin = world
    cluster = Cluster(str(admin))
    try:
        assert kube_secrets.key_names(cluster, TEAM) == ()  # no Secret: no secrets
        kube_secrets.put(cluster, TEAM, {"TOKEN": VALUE, "B": "2"})
        path = f"{cluster.ns_path(CORE, 'secrets', TEAM)}/{SECRET_NAME}"
        answer = cluster.request("GET", path, accept=ACCEPT_METADATA)
        assert answer["kind"] == "PartialObjectMetadata" and "data" not in answer
        assert kube_secrets.key_names(cluster, TEAM) == ("B", "TOKEN")
    finally:
        cluster.close()


def test_co_api_secrets_on_the_cluster(world: tuple[FakeCluster, Path]) -> None:
    fake, admin = world
    api = co.api.Secrets(kubeconfig=str(admin))
    assert api.get_user_secrets() == {}
    api.put_user_secrets({"TOKEN": VALUE, "N": 3})
    assert api.get_user_secrets() == {"N": "3", "TOKEN": VALUE}
    assert api.get_user_secrets(obfuscate=True) == {"N": co.api.MASK, "TOKEN": co.api.MASK}
    api.delete_user_secrets(["N", "NOPE"])
    assert api.get_user_secrets() == {"TOKEN": VALUE}
    secret = fake.get("secrets", SECRET_NAME, TEAM)
    assert secret is not None and secret["metadata"]["annotations"][ANNOTATION_KEYS] == "TOKEN"
