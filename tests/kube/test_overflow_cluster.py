"""Size limits and the decompression bomb on the fake cluster, through the real client,
``k8sco apply``'s code and the controller.

- A pipeline of nodes with 2 KB commands that all fail after 3 retries: every version of
  the Pipeline the API server stored (seen through a watch) stays within the budget, the
  tree and the node records that do not fit live in ConfigMaps the Pipeline owns, each
  within its bound, and ``k8sco status`` reads them back. The budgets are scaled down so
  that 40 nodes overflow as 10,000 would (tests/render/test_overflow.py holds the 10,000
  case purely; bench/overflow.py measures it end to end).
- The bomb of issue 9 (1.4 MB of base64, 1 GiB inflated) fails only its Pipeline, with one
  Event, while the controller process keeps a small peak memory and runs the next one.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fakecluster import FakeCluster

import k8sco as co
from k8sco.cli.app import cli
from k8sco.cli.cluster import apply_tree
from k8sco.kube import overflow as kube_overflow
from k8sco.kube.client import PIPELINES, Cluster
from k8sco.kube.controller import Controller
from k8sco.render import overflow
from k8sco.render.constants import PLURAL, SYSTEM_NAMESPACE
from k8sco.render.crd import crd
from k8sco.render.pipeline import render_pipeline

REPO = Path(__file__).resolve().parents[2]
NODES = 40
BUDGET = 2500  # the Pipeline's budget here, for 40 nodes (1 MiB - 64 KiB for real)
SLACK = 1024  # what metadata may add after the controller measured it (64 KiB for real)


def size(obj: Any) -> int:
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode())


@pytest.fixture
def fake_cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    """The fake, with the code root (/app, the nodes' working directory) mapped."""
    (tmp_path / "app").mkdir()
    with FakeCluster(
        log_dir=str(tmp_path / "logs"), path_map={"/app": str(tmp_path / "app")}
    ) as fake:
        yield fake
    assert not fake.internal_errors, "\n".join(fake.internal_errors)


@pytest.fixture
def cluster(fake_cluster: FakeCluster, tmp_path: Path) -> Iterator[Cluster]:
    fake_cluster.create(crd())
    client = Cluster(str(fake_cluster.write_kubeconfig(tmp_path / "kubeconfig")))
    yield client
    client.close()


def failing_tree() -> co.Parallel:
    root = co.Parallel()
    for i in range(NODES):
        text = "".join(hashlib.sha256(f"{i}/{j}".encode()).hexdigest() for j in range(32))
        root[f"node {i}"] = co.Exec(f": {text}; exit 1", retries=3)
    return root


class Sizes:
    """Every version of one Pipeline the server stores, through a watch."""

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


def test_a_failing_run_stays_within_budget_and_reads_back(
    cluster: Cluster,
    fake_cluster: FakeCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(overflow, "TREE_SPEC_MAX", 4096)
    monkeypatch.setattr(overflow, "TREE_PART", 8192)
    monkeypatch.setattr(overflow, "PIPELINE_BUDGET", BUDGET)
    monkeypatch.setattr(overflow, "SHARD_NODES", 10)
    name = "overflowing"
    sizes = Sizes(cluster, name)
    root = failing_tree()
    assert apply_tree(cluster, root, "f", name, "busybox:1.36", False, "cluster") == 0
    controller = Controller(cluster, "default", only=name)
    thread = threading.Thread(target=controller.run, kwargs={"until_finished": True})
    thread.start()
    try:
        thread.join(120)
        assert not thread.is_alive(), "the pipeline did not finish"
    finally:
        controller.stop.set()
        thread.join(10)
        sizes.close()

    obj = fake_cluster.get("pipelines.k8sco.io", name, "default")
    assert obj is not None
    status = obj["status"]
    assert status["phase"] == "Failed" and status["counts"]["error"] == NODES, status
    assert len(sizes.sizes) > 3 and max(sizes.sizes) <= BUDGET + SLACK, sizes.sizes
    uid = obj["metadata"]["uid"]
    maps = fake_cluster.objects("configmaps", "default")
    trees = [m for m in maps if m["metadata"]["labels"].get("k8sco.io/overflow") == "tree"]
    shards = [m for m in maps if m["metadata"]["labels"].get("k8sco.io/overflow") == "status"]
    assert len(trees) == obj["spec"]["treeRef"]["parts"] > 1
    assert overflow.level_of(status) >= 1 and shards
    for cm in trees + shards:
        assert cm["metadata"]["ownerReferences"][0]["uid"] == uid
        assert cm["metadata"]["labels"]["k8sco.io/pipeline"] == name
    assert max(size(cm) for cm in trees) <= 8192 * 4 // 3 + 2048

    whole = kube_overflow.read_status(cluster, obj)["status"]["nodes"]
    assert len(whole) == NODES
    assert {r["s"] for r in whole.values()} == {"error"}
    assert {r.get("a") for r in whole.values()} == {4}
    assert all(r.get("r") for r in whole.values())  # the reasons, from the ConfigMaps

    kubeconfig = str(tmp_path / "kubeconfig")
    result = CliRunner().invoke(cli, ["status", name, "--kubeconfig", kubeconfig, "-n", "default"])
    assert result.exit_code == 0, result.output
    assert result.output.count("error") >= NODES, result.output


def bomb() -> str:
    import base64
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(b'{"k8sco":1,"root":{"type":"Exec","command":"true"}}')]
    blank = b" " * (1024 * 1024)
    parts.extend(packer.compress(blank) for _ in range(1024))
    parts.append(packer.flush())
    return base64.b64encode(b"".join(parts)).decode()


LIMIT_AS = """
import resource, runpy, sys
limit = 1536 * 1024 * 1024  # a bound for this machine's sake: unbounded decoding needs more
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.argv = ["k8sco", *sys.argv[1:]]
runpy.run_module("k8sco", run_name="__main__")
"""


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_the_bomb_fails_its_pipeline_only_and_memory_stays_small(
    cluster: Cluster,
    fake_cluster: FakeCluster,
    tmp_path: Path,
) -> None:
    kubeconfig = fake_cluster.write_kubeconfig(tmp_path / "controller.kubeconfig")
    fake_cluster.create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM_NAMESPACE}}
    )  # where the controller's Lease lives
    log = tmp_path / "controller.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", LIMIT_AS, "controller", "--kubeconfig", str(kubeconfig)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)},
        )
    try:
        spec = {"schemaVersion": 1, "k8scoVersion": co.__version__, "treeGzip": bomb()}
        assert 1_300_000 < len(spec["treeGzip"]) < 1_500_000
        fake_cluster.create(
            {
                "apiVersion": "k8sco.io/v1alpha1",
                "kind": "Pipeline",
                "metadata": {"name": "bomb", "namespace": "default"},
                "spec": spec,
            }
        )
        fine = co.Serial()
        fine["ok"] = co.Exec("true")
        fake_cluster.create(render_pipeline(fine, "fine", "default", image="busybox:1.36"))

        def phase(name: str) -> str | None:
            obj = fake_cluster.get("pipelines.k8sco.io", name, "default") or {}
            value = (obj.get("status") or {}).get("phase")
            return value if value in ("Succeeded", "Failed") else None

        try:
            assert fake_cluster.wait_for(lambda: phase("bomb"), timeout=60) == "Failed"
            assert fake_cluster.wait_for(lambda: phase("fine"), timeout=60) == "Succeeded"
        except TimeoutError:
            raise AssertionError(log.read_text()[-3000:]) from None
        time.sleep(1.0)  # a few more reconciliations: still one Event
        status = (fake_cluster.get("pipelines.k8sco.io", "bomb", "default") or {})["status"]
        assert "decompresses to more than 32.0 MiB" in status["message"]
        events = [
            e
            for e in fake_cluster.objects("events", "default")
            if e["involvedObject"].get("name") == "bomb"
        ]
        assert [e["reason"] for e in events] == ["InvalidSpec"]
        assert proc.poll() is None, log.read_text()[-3000:]
        peak = peak_rss_mib(proc.pid)
        assert peak < 250, f"the controller's peak memory was {peak:.0f} MiB"
    finally:
        proc.terminate()
        proc.wait(15)


PIPELINE_FILE = """
import k8sco as co


def wide() -> co.Parallel:
    root = co.Parallel()
    for i in range(12):
        root[f"n{i}"] = co.Exec(f": {'ab' * 1000}{i}; exit 1")
    return root
"""


def apply_cli(tmp_path: Path, name: str) -> Any:
    (tmp_path / "flow.py").write_text(PIPELINE_FILE)
    args = ["apply", f"{tmp_path / 'flow.py'}:wide", "--name", name, "--image", "busybox:1.36"]
    args += ["--controller", "cluster", "--kubeconfig", str(tmp_path / "kubeconfig")]
    return CliRunner().invoke(cli, [*args, "-n", "default"])


def test_apply_refuses_a_tree_over_the_cap_before_creating_anything(
    cluster: Cluster, fake_cluster: FakeCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from k8sco.render import limits

    monkeypatch.setattr(limits, "MAX_NODES", 10)
    result = apply_cli(tmp_path, "too-big")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "more than 10 nodes" in lines[0], result.output
    assert fake_cluster.objects("pipelines.k8sco.io", "default") == []
    assert fake_cluster.objects("configmaps", "default") == []


def test_apply_leaves_nothing_when_the_tree_configmaps_are_refused(
    cluster: Cluster, fake_cluster: FakeCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from k8sco.render import pipeline

    monkeypatch.setattr(pipeline, "TREE_INLINE_MAX", 64)
    monkeypatch.setattr(overflow, "TREE_SPEC_MAX", 64)
    fake_cluster.deny_admission("configmaps", message="no configmaps here")
    result = apply_cli(tmp_path, "refused")
    assert result.exit_code == 2, result.output
    assert "cannot create the tree ConfigMaps of pipeline refused" in result.output
    assert "no configmaps here" in result.output
    assert fake_cluster.objects("pipelines.k8sco.io", "default") == []


def test_a_controller_fails_a_spec_of_a_newer_schema_naming_both_versions(
    cluster: Cluster, fake_cluster: FakeCluster
) -> None:
    from k8sco.render.pipeline import SCHEMA_VERSION

    root = co.Serial()
    root["ok"] = co.Exec("true")
    obj = render_pipeline(root, "future", "default", image="busybox:1.36")
    obj["spec"]["schemaVersion"] = SCHEMA_VERSION + 1
    fake_cluster.create(obj)
    controller = Controller(cluster, "default", only="future")
    thread = threading.Thread(target=controller.run, kwargs={"until_finished": True})
    thread.start()
    thread.join(60)
    controller.stop.set()
    thread.join(10)
    status = (fake_cluster.get("pipelines.k8sco.io", "future", "default") or {})["status"]
    assert status["phase"] == "Failed"
    assert f"schema version {SCHEMA_VERSION + 1}" in status["message"]
    assert f"(up to {SCHEMA_VERSION})" in status["message"]
    assert fake_cluster.objects("jobs.batch", "default") == []
    events = fake_cluster.objects("events", "default")
    assert [e["reason"] for e in events] == ["InvalidSpec"]
