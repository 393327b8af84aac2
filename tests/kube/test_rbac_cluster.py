"""manifests/30-rbac.yaml against the fake cluster's RBAC authorization: the controller runs a
Pipeline with its service account's rights and nothing more; a user with k8sco-user runs one
through the cluster's controller; the embedded controller needs k8sco-embedded-controller,
says so before creating anything without it, and runs a Pipeline with it.

The static inventory (tests/test_rbac.py) checks the rules against every call of the code;
this checks them against what a run does.
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
from k8sco.errors import ClusterError, UsageError
from k8sco.kube import access, pipelines
from k8sco.kube.client import Cluster
from k8sco.render.constants import CONTROLLER_NAME, SYSTEM_NAMESPACE
from k8sco.render.pipeline import render_pipeline

REPO = Path(__file__).resolve().parents[2]
TEAM = "team-r"
ALICE = "alice"
SERVICE_ACCOUNT = f"system:serviceaccount:{SYSTEM_NAMESPACE}:{CONTROLLER_NAME}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _binding(role: str, namespace: str, kind: str = "ClusterRole") -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"{ALICE}-{role}", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": ALICE}],
    }


@pytest.fixture
def fake_cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    (tmp_path / "app").mkdir()
    with FakeCluster(
        log_dir=str(tmp_path / "logs"), path_map={"/app": str(tmp_path / "app")}
    ) as cluster:
        admin = Kubectl(cluster.write_kubeconfig(tmp_path / "admin"), tmp_path / "kube-cache")
        admin("apply", "-f", str(REPO / "manifests"))
        cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TEAM}})
        # What a user of the namespace has: k8sco-user (aggregated into "edit" in a real
        # cluster) and nothing else of k8sco's.
        cluster.create(_binding("k8sco-user", TEAM))
        yield cluster
    assert not cluster.internal_errors, "\n".join(cluster.internal_errors)


def _alice(fake_cluster: FakeCluster, tmp_path: Path) -> Cluster:
    path = fake_cluster.write_kubeconfig(tmp_path / "alice", namespace=TEAM, user=ALICE)
    return Cluster(str(path), namespace=TEAM)


def _tree() -> co.Serial:
    root = co.Serial()
    root["hello"] = co.Exec("echo hello")
    root["again"] = co.Exec("echo again")
    return root


def _phase(fake_cluster: FakeCluster, name: str) -> str | None:
    obj = fake_cluster.get("pipelines.k8sco.io", name, TEAM) or {}
    value = (obj.get("status") or {}).get("phase")
    return value if value in ("Succeeded", "Failed") else None


def test_the_controller_runs_a_pipeline_with_its_service_accounts_rights(
    fake_cluster: FakeCluster, tmp_path: Path
) -> None:
    kubeconfig = fake_cluster.write_kubeconfig(
        tmp_path / "pod", namespace=SYSTEM_NAMESPACE, user=SERVICE_ACCOUNT
    )
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("K8SCO_")}
    env.update(
        KUBECONFIG=str(kubeconfig),
        K8SCO_CONTROLLER_NAMESPACE=SYSTEM_NAMESPACE,
        K8SCO_CONTROLLER_ID=f"{CONTROLLER_NAME}-rbac",
        K8SCO_LEASE_NAME=CONTROLLER_NAME,
        K8SCO_WATCH_NAMESPACES="*",
        K8SCO_HEALTH_PORT=str(port),
        PYTHONPATH=str(REPO),
    )
    log_path = tmp_path / "controller.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "k8sco", "controller"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    alice = _alice(fake_cluster, tmp_path)
    try:
        fake_cluster.wait_for(lambda: _healthy(port) or proc.poll() is not None, timeout=30)
        assert proc.poll() is None, log_path.read_text()
        pipelines.create(alice, render_pipeline(_tree(), "by-sa", TEAM, image="busybox:1.36"))
        try:
            final = fake_cluster.wait_for(lambda: _phase(fake_cluster, "by-sa"), timeout=60)
        except TimeoutError:
            raise AssertionError(
                f"not run; the controller's log:\n{log_path.read_text()}"
            ) from None
        assert final == "Succeeded", fake_cluster.get("pipelines.k8sco.io", "by-sa", TEAM)
        assert "Forbidden" not in log_path.read_text() and "403" not in log_path.read_text()
    finally:
        proc.terminate()
        proc.wait(15)
        alice.close()


def test_an_editor_cannot_write_a_pipelines_status(
    fake_cluster: FakeCluster, tmp_path: Path
) -> None:
    alice = _alice(fake_cluster, tmp_path)
    try:
        pipelines.create(alice, render_pipeline(_tree(), "forged", TEAM, image="busybox:1.36"))
        assert access.allowed(alice, "patch", "k8sco.io", "pipelines", TEAM, "status") is False
        with pytest.raises(ClusterError) as err:
            alice.request(
                "PATCH",
                f"{alice.ns_path('/apis/k8sco.io/v1alpha1', 'pipelines', TEAM)}/forged/status",
                body={"status": {"phase": "Succeeded"}},
                content_type="application/merge-patch+json",
                retry=False,
            )
        assert err.value.status == 403
    finally:
        alice.close()


def test_embedded_mode_needs_its_role_and_runs_with_it(
    fake_cluster: FakeCluster, tmp_path: Path
) -> None:
    from k8sco.cli.cluster import apply_tree

    alice = _alice(fake_cluster, tmp_path)
    try:
        with pytest.raises(UsageError, match="ClusterRole k8sco-embedded-controller"):
            apply_tree(alice, _tree(), "pipe", "emb", "busybox:1.36", False, "embedded")
        assert fake_cluster.get("pipelines.k8sco.io", "emb", TEAM) is None  # nothing created
        fake_cluster.create(_binding("k8sco-embedded-controller", TEAM))
        code = apply_tree(alice, _tree(), "pipe", "emb", "busybox:1.36", False, "embedded")
        assert code == 0, fake_cluster.get("pipelines.k8sco.io", "emb", TEAM)
        assert _phase(fake_cluster, "emb") == "Succeeded"
    finally:
        alice.close()


def test_the_manifests_objects_are_what_the_fake_authorizes_with() -> None:
    # A guard on this file's premise: the roles it binds are the manifests' own.
    roles = {
        d["metadata"]["name"]
        for d in yaml.safe_load_all((REPO / "manifests" / "30-rbac.yaml").read_text())
        if d and d["kind"] == "ClusterRole"
    }
    assert {"k8sco-user", "k8sco-embedded-controller", "k8sco-controller"} <= roles
