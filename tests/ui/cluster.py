"""A fake cluster with a controller in this process, one Pipeline ``demo`` (a node that
passes, a node that fails until the file ``ok`` is in its working directory) and a UI
server over the cluster: the ``world`` fixture of the UI's cluster tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fakecluster import FakeCluster

import k8sco as co
from k8sco.kube import pipelines
from k8sco.kube.client import Cluster
from k8sco.kube.controller import Controller
from k8sco.render.crd import crd
from k8sco.render.pipeline import render_pipeline
from k8sco.ui import server, sources
from ui.helpers import base, post, ui_server


@dataclass
class World:
    fake: FakeCluster
    cluster: Cluster
    srv: server.UIServer
    ref: str
    directory: Path  # /app in the pods

    def control(self, action: str, path: str = "/") -> tuple[int, dict[str, str]]:
        status, body = post(
            base(self.srv) + "/api/control",
            {"p": self.ref, "action": action, "path": path},
            {"X-K8sco-Token": self.srv.settings.control_token},
        )
        return status, body


def tree() -> co.Serial:
    with co.Serial(stop_on_error=False) as root:
        co.Exec("echo hello from the pod", name="hello")
        # Fails until the pod's working directory (/app, the test's directory) has the file
        # `ok`: a rerun then passes.
        co.Exec("echo trying; cat ok 2>/dev/null; test -e ok", name="flaky")
    return root


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with FakeCluster(path_map={"/app": str(tmp_path)}) as fake:
        fake.create(crd())
        cluster = Cluster(str(fake.write_kubeconfig(tmp_path / "kubeconfig")))
        yield from _world(fake, cluster, tmp_path)
    assert not fake.internal_errors, "\n".join(fake.internal_errors)


def _world(fake: FakeCluster, cluster: Cluster, directory: Path) -> Iterator[World]:
    pipelines.create(cluster, render_pipeline(tree(), "demo", "default", image="busybox:1"))
    ctl = Controller(cluster, "default")
    thread = threading.Thread(target=ctl.run, daemon=True, name="controller")
    thread.start()
    try:
        with ui_server(cluster=sources.ClusterPipelines(cluster, ["default"])) as srv:
            yield World(fake, cluster, srv, "kube:default/demo", directory)
    finally:
        ctl.stop.set()
        thread.join(timeout=30)
        cluster.close()
