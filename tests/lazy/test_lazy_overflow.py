"""co.Lazy trees too big for the Pipeline, on the fake cluster (real client, real HTTP): they
go to ConfigMaps the Pipeline owns (k8sco/kube/lazystore.py), written before the status
write that references them, hash-checked when read back; the Pipeline stays within its
budget at every write; a rerun regenerates in place; a controller SIGKILLed between the
ConfigMap write and the status write runs each node once when restarted.

Containers here exit at once (the Generate container prints its tree first), and the runner
counts what each container was started with, so "runs once" is counted where it happens."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakecluster import FakeCluster
from fakecluster.runners import ContainerLaunch, Exited

import k8sco as co
from k8sco import lazy as co_lazy
from k8sco.kube import lazystore, pipelines
from k8sco.kube import overflow as kube_overflow
from k8sco.kube.client import PIPELINES, Cluster
from k8sco.kube.controller import Controller
from k8sco.render import overflow
from k8sco.render.constants import PLURAL
from k8sco.render.crd import crd
from k8sco.render.pipeline import recorded_states, render_pipeline

pytestmark = pytest.mark.slow  # hundreds of Jobs through the fake cluster: about a minute

REPO = Path(__file__).resolve().parents[2]
COMMAND_BYTES = 4000  # hex: compresses to about half, so the trees stay big once gzipped


def size(obj: Any) -> int:
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode())


def wide(count: int, tag: str, fail: str | None = None) -> co.Parallel:
    """``count`` nodes with long, distinct commands (``fail``: the name of one that fails
    the first time it runs)."""
    out = co.Parallel()
    for i in range(count):
        noise = "".join(
            hashlib.sha256(f"{tag}/{i}/{j}".encode()).hexdigest()
            for j in range(COMMAND_BYTES // 64)
        )
        word = "fail-once" if f"n{i}" == fail else "ok"
        out[f"n{i}"] = co.Exec(f": {noise}; echo {tag} {i} {word}")
    return out


def commands(tree: co.Node) -> list[str]:
    return [str(node.command) for node in tree.stream() if isinstance(node, co.Exec)]


class Runner:
    """Containers that exit at once. The n-th Generate container prints ``trees[n]`` (the
    last one after that); every other container is counted by its command, and one whose
    command says ``fail-once`` exits 1 the first time."""

    def __init__(self, *trees: co.Node) -> None:
        self.lines = [f"k8sco: generated\n\n{co_lazy.marker(t)}\n".encode() for t in trees]
        self.generates = 0
        self.launched: Counter[str] = Counter()
        self.lock = threading.Lock()

    def start(self, launch: ContainerLaunch) -> Exited:
        with self.lock:
            if launch.env.get(co_lazy.ENV_FLAG) == "1":
                launch.log_path.write_bytes(self.lines[min(self.generates, len(self.lines) - 1)])
                self.generates += 1
                return Exited(0)
            command = launch.argv[-1]
            self.launched[command] += 1
            first = self.launched[command] == 1
            return Exited(1 if first and command.endswith("fail-once") else 0)


class Sizes:
    """Every version of one Pipeline the API server stores, through a watch."""

    def __init__(self, cluster: Cluster, name: str) -> None:
        self.cluster, self.name = cluster, name
        self.sizes: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        path = self.cluster.ns_path(PIPELINES, PLURAL, "default")
        query = {"fieldSelector": f"metadata.name={self.name}"}
        while not self.stop.is_set():
            for event in self.cluster.watch(path, resource_version="0", selector=query, timeout=1):
                self.sizes.append(size(event["object"]))
                if self.stop.is_set():
                    return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[FakeCluster, Runner]]:
    runner: Runner = request.param
    with FakeCluster(runner=runner, log_dir=str(tmp_path / "logs")) as fake:
        fake.create(crd())
        yield fake, runner
    assert not fake.internal_errors, "\n".join(fake.internal_errors)


def lazy_root() -> co.Serial:
    root = co.Serial()
    root["l"] = co.Lazy("python gen.py")
    return root


def run_controller(cluster: Cluster, name: str) -> None:
    controller = Controller(cluster, "default", only=name, lazy_on_cluster=True)
    thread = threading.Thread(target=controller.run, kwargs={"until_finished": True})
    thread.start()
    try:
        thread.join(300)
        assert not thread.is_alive(), "the pipeline did not finish"
    finally:
        controller.stop.set()
        thread.join(10)


def lazy_maps(fake: FakeCluster, name: str) -> dict[str, dict[str, Any]]:
    return {
        m["metadata"]["name"]: m
        for m in fake.objects("configmaps", "default")
        if m["metadata"]["labels"].get("k8sco.io/overflow") == lazystore.KIND
        and m["metadata"]["labels"].get("k8sco.io/pipeline") == name
    }


FIRST = wide(600, "first", fail="n7")  # about 1.2 MiB gzipped: two ConfigMaps
SECOND = wide(300, "second")  # about 0.6 MiB: one


@pytest.mark.parametrize("world", [Runner(FIRST, SECOND)], indirect=True)
def test_a_tree_too_big_for_the_pipeline_runs_from_configmaps_and_reruns_in_place(
    world: tuple[FakeCluster, Runner], tmp_path: Path
) -> None:
    fake, runner = world
    client = Cluster(str(fake.write_kubeconfig(tmp_path / "kubeconfig")))
    name = "big"
    sizes = Sizes(client, name)
    try:
        pipes = client.ns_path(PIPELINES, PLURAL, "default")
        client.request(
            "POST", pipes, body=render_pipeline(lazy_root(), name, "default", image="img:1")
        )
        run_controller(client, name)
        obj = fake.get("pipelines.k8sco.io", name, "default")
        assert obj is not None
        status = obj["status"]
        # Every generated node ran once; n7 failed, so the pipeline did.
        assert dict(runner.launched) == dict.fromkeys(commands(FIRST), 1)
        assert status["phase"] == "Failed" and status["counts"]["error"] == 1, status
        assert status["progress"] == "601/601"  # finished, failed or not
        entry = status["lazy"]["/l"]
        assert "tree" not in entry and entry["ref"]["parts"] == 2
        assert entry["ref"]["bytes"] > overflow.OBJECT_MAX  # no single object could hold it
        uid = obj["metadata"]["uid"]
        maps = lazy_maps(fake, name)
        assert sorted(maps) == [lazystore.configmap_name(name, uid, "/l", i) for i in range(2)]
        for cm in maps.values():
            assert cm["metadata"]["ownerReferences"][0]["uid"] == uid
            assert size(cm) <= overflow.OBJECT_MAX
        # Readers (k8sco status, logs, rerun) see the generated nodes like any other.
        graph_states = recorded_states(
            _graph(client, obj), kube_overflow.read_status(client, obj)["status"]
        )
        assert len([p for p in graph_states if p.startswith("/l/Execute/n")]) == 600

        # Rerun the Lazy node: the Generate runs again, its new tree replaces the old one's
        # ConfigMaps in place, and only the new tree's nodes run.
        runner.launched.clear()
        pipelines.rerun(client, name, "/l")
        run_controller(client, name)
        obj = fake.get("pipelines.k8sco.io", name, "default")
        assert obj is not None
        status = obj["status"]
        assert status["phase"] == "Succeeded", status
        assert status["progress"] == "301/301"
        assert dict(runner.launched) == dict.fromkeys(commands(SECOND), 1)
        new = status["lazy"]["/l"]
        assert new["ref"]["parts"] == 1 and new["ref"]["sha256"] != entry["ref"]["sha256"]
        maps = lazy_maps(fake, name)
        assert sorted(maps) == [lazystore.configmap_name(name, uid, "/l", i) for i in range(2)]
        assert not maps[lazystore.configmap_name(name, uid, "/l", 1)].get("binaryData")
    finally:
        sizes.close()
        client.close()
    # The Pipeline stayed within its budget at every write, the expansion's included.
    assert len(sizes.sizes) > 3 and max(sizes.sizes) <= overflow.PIPELINE_BUDGET, sizes.sizes


def _graph(client: Cluster, obj: dict[str, Any]) -> Any:
    from k8sco.engine import Graph

    return Graph.from_tree(kube_overflow.load_tree(client, obj))


KILLED = wide(200, "killed")  # about 0.4 MiB gzipped: over what status.lazy holds inline


@pytest.mark.parametrize("world", [Runner(KILLED)], indirect=True)
def test_a_controller_killed_between_the_configmap_and_the_status_write_runs_each_node_once(
    world: tuple[FakeCluster, Runner], tmp_path: Path
) -> None:
    fake, runner = world
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    client = Cluster(str(kubeconfig))
    name = "killed"
    log = tmp_path / "controller.log"

    def start() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                [
                    *(sys.executable, "-m", "k8sco", "controller"),
                    *("--kubeconfig", str(kubeconfig), "-n", "default"),
                    *("--lease-namespace", "default", "--identity", "killed"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(REPO), "K8SCO_LAZY_CLUSTER": "1"},
            )

    # Every status write fails: the controller gets as far as the expansion's ConfigMap
    # and no further.
    fake.faults.configure(
        write_error_rate=1.0, write_error_codes=(500,), resources=["pipelines/status"]
    )
    pipes = client.ns_path(PIPELINES, PLURAL, "default")
    client.request("POST", pipes, body=render_pipeline(lazy_root(), name, "default", image="img:1"))
    proc = start()
    try:
        try:
            fake.wait_for(lambda: len(lazy_maps(fake, name)) == 1, timeout=120)
        except TimeoutError:
            raise AssertionError(log.read_text()[-3000:]) from None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        obj = fake.get("pipelines.k8sco.io", name, "default")
        assert obj is not None and "lazy" not in (obj.get("status") or {})
        assert fake.requests.count("create", "jobs") == 1  # the Generate Job only
        made = lazy_maps(fake, name)

        fake.faults.reset()
        proc = start()

        def finished() -> str | None:
            found = fake.get("pipelines.k8sco.io", name, "default") or {}
            phase = (found.get("status") or {}).get("phase")
            return phase if phase in ("Succeeded", "Failed") else None

        try:
            assert fake.wait_for(finished, timeout=180) == "Succeeded"
        except TimeoutError:
            raise AssertionError(log.read_text()[-3000:]) from None
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        client.close()
    obj = fake.get("pipelines.k8sco.io", name, "default")
    assert obj is not None
    assert obj["status"]["progress"] == "201/201"
    assert dict(runner.launched) == dict.fromkeys(commands(KILLED), 1)
    assert runner.generates == 1
    assert fake.requests.count("create", "jobs") == 201  # no Job created twice
    # The ConfigMap the killed controller wrote is the one the status references.
    maps = lazy_maps(fake, name)
    assert list(maps) == list(made)
    assert next(iter(maps.values()))["binaryData"] == next(iter(made.values()))["binaryData"]
    assert obj["status"]["lazy"]["/l"]["ref"]["parts"] == 1
