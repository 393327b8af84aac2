"""The controller as installed serves every namespace.

It is started with exactly the command and environment of the Deployment in
``manifests/40-deployment.yaml`` and of ``helm template charts/k8sco`` with default
values (``fieldRef`` values resolved as the kubelet would), against the fake cluster with
those manifests applied, and must run a Pipeline in a namespace other than its own. Two
things differ from a pod, and only because this is a process on a shared machine: the API
server is reached through a kubeconfig (whose namespace is the pod's, as in-cluster), and
the health port is a free one rather than 8080.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakecluster import FakeCluster
from fakecluster.fixtures import Kubectl

import k8sco as co
from k8sco.kube import pipelines
from k8sco.kube.client import Cluster
from k8sco.render.constants import CONTROLLER_NAME, SYSTEM_NAMESPACE
from k8sco.render.pipeline import render_pipeline

REPO = Path(__file__).resolve().parents[2]
POD = f"{CONTROLLER_NAME}-7d9c6b5f4-x2x4q"
OTHER = "team-x"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((REPO / "manifests").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def helm_template() -> list[dict[str, Any]]:
    proc = subprocess.run(
        [str(REPO / "scripts" / "get-helm.sh")], capture_output=True, text=True, timeout=600
    )
    helm = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode != 0 or not Path(helm).is_file():
        pytest.skip("HELM UNAVAILABLE - scripts/get-helm.sh failed: " + proc.stderr[-300:])
    out = subprocess.run(
        [helm, "template", "k8sco", str(REPO / "charts" / "k8sco"), "--include-crds"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def controller_container(docs: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    (deployment,) = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == CONTROLLER_NAME
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return deployment["metadata"]["namespace"], container


def pod_env(container: dict[str, Any], namespace: str) -> dict[str, str]:
    """The container's env as the kubelet gives it to a pod named POD in ``namespace``."""
    fields = {"metadata.namespace": namespace, "metadata.name": POD}
    env: dict[str, str] = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            env[var["name"]] = fields[var["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


@pytest.fixture
def fake_cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    """The fake, with the code root (/app, the nodes' working directory) mapped."""
    (tmp_path / "app").mkdir()
    with FakeCluster(
        log_dir=str(tmp_path / "logs"), path_map={"/app": str(tmp_path / "app")}
    ) as cluster:
        yield cluster
    assert not cluster.internal_errors, "\n".join(cluster.internal_errors)


@pytest.fixture(params=["manifests", "helm"])
def installed(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return manifests() if request.param == "manifests" else helm_template()


@pytest.fixture
def controller(
    installed: list[dict[str, Any]],
    fake_cluster: FakeCluster,
    tmp_path: Path,
) -> Iterator[Path]:
    kubeconfig = fake_cluster.write_kubeconfig(tmp_path / "admin.kubeconfig")
    kubectl = Kubectl(kubeconfig, tmp_path / "kube-cache")
    objects = tmp_path / "install.yaml"
    objects.write_text(yaml.safe_dump_all(installed))
    kubectl("apply", "-f", str(objects))
    namespace, container = controller_container(installed)
    assert container["command"][0] == "k8sco"
    argv = [sys.executable, "-m", "k8sco", *container["command"][1:], *container.get("args", [])]
    env = {k: v for k, v in os.environ.items() if not k.startswith("K8SCO_")}
    env.update(pod_env(container, namespace))
    port = _free_port()
    env["K8SCO_HEALTH_PORT"] = str(port)
    env["KUBECONFIG"] = str(
        fake_cluster.write_kubeconfig(tmp_path / "pod.kubeconfig", namespace=namespace)
    )
    env["PYTHONPATH"] = str(REPO)
    log = (tmp_path / "controller.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    log.close()
    try:
        fake_cluster.wait_for(lambda: _healthy(port) or proc.poll() is not None, timeout=30)
        assert proc.poll() is None, (tmp_path / "controller.log").read_text()
        fake_cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OTHER}})
        yield kubeconfig
    finally:
        proc.terminate()
        proc.wait(15)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def test_the_installed_controller_runs_pipelines_of_any_namespace(
    controller: Path,
    installed: list[dict[str, Any]],
    fake_cluster: FakeCluster,
    tmp_path: Path,
) -> None:
    namespace, _ = controller_container(installed)
    assert namespace == SYSTEM_NAMESPACE != OTHER
    root = co.Serial()
    root["hello"] = co.Exec("echo hello")
    cluster = Cluster(str(controller), namespace=OTHER)
    try:
        pipelines.create(cluster, render_pipeline(root, "elsewhere", OTHER, image="busybox:1.36"))

        def phase() -> str | None:
            obj = fake_cluster.get("pipelines.k8sco.io", "elsewhere", OTHER) or {}
            value = (obj.get("status") or {}).get("phase")
            return value if value in ("Succeeded", "Failed") else None

        try:
            final = fake_cluster.wait_for(phase, timeout=60, interval=0.2)
        except TimeoutError:
            log = (tmp_path / "controller.log").read_text()
            raise AssertionError(f"the controller never ran it; its log:\n{log}") from None
        status = (fake_cluster.get("pipelines.k8sco.io", "elsewhere", OTHER) or {})["status"]
        assert final == "Succeeded", status
    finally:
        cluster.close()
