"""Callbacks on the fake cluster with the controller in this process: a retry is a new Job
under the attempt's name, an OOMKilled pod is retried with twice the memory, and
notifications are sent by the controller once its status write has landed."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fakecluster import FakeCluster

import k8sco as co
from k8sco.engine import Graph, NodeState, State
from k8sco.kube import pipelines
from k8sco.kube.client import Cluster
from k8sco.kube.controller import Controller
from k8sco.reconcile import callbacks as cbs
from k8sco.render.crd import crd
from k8sco.render.pipeline import recorded_states, render_pipeline

REPO = Path(__file__).resolve().parents[2]
FLAKY = 'echo "attempt ${K8SCO_ATTEMPT:-1}"; test "${K8SCO_ATTEMPT:-1}" -ge 3'
# About 150 MiB resident: more than 128Mi, less than twice that.
HOG = f"{sys.executable} -c 'import time; b = b\"x\" * (150 * 2**20); time.sleep(1)'"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeCluster, Cluster, Path]]:
    with FakeCluster(path_map={"/app": str(tmp_path)}) as fake:
        fake.create(crd())
        kubeconfig = tmp_path / "kubeconfig"
        fake.write_kubeconfig(kubeconfig)
        cluster = Cluster(str(kubeconfig))
        yield fake, cluster, kubeconfig
        cluster.close()


def run_to_end(fake: FakeCluster, cluster: Cluster, root: co.Node, name: str) -> dict[str, Any]:
    pipelines.create(cluster, render_pipeline(root, name, "default", image="img:1"))
    ctl = Controller(cluster, "default", min_interval=0.0)
    thread = threading.Thread(target=ctl.run, kwargs={"until_finished": True}, daemon=True)
    thread.start()
    try:
        fake.wait_for(
            lambda: (
                (pipelines.get(cluster, name).get("status") or {}).get("phase")
                in ("Succeeded", "Failed")
            ),
            timeout=120,
        )
        # The notifications' removal is the last write: wait for it too.
        fake.wait_for(
            lambda: not (pipelines.get(cluster, name).get("status") or {}).get(cbs.NOTIFY_KEY),
            timeout=60,
        )
    finally:
        ctl.stop.set()
        thread.join(timeout=10)
    return pipelines.get(cluster, name)


def record(root: co.Node, pipeline: dict[str, Any], path: str) -> NodeState:
    return recorded_states(Graph.from_tree(root), pipeline["status"])[path]


def jobs_of(fake: FakeCluster, path: str) -> list[dict[str, Any]]:
    jobs = [
        j
        for j in fake.objects("jobs.batch", "default")
        if j["metadata"]["annotations"]["k8sco.io/path"] == path
    ]
    return sorted(jobs, key=cbs.job_attempt)


def test_each_retry_is_a_job_of_its_own(world: tuple[FakeCluster, Cluster, Path]) -> None:
    fake, cluster, kubeconfig = world
    root = co.Serial()
    root["flaky"] = co.Exec(FLAKY)
    root["flaky"].on_error(co.callback.retry(3))
    root["after"] = co.Exec("echo after")
    done = run_to_end(fake, cluster, root, "retry")
    assert done["status"]["phase"] == "Succeeded", done["status"].get("message")
    rec = record(root, done, "/flaky")
    assert (rec.state, rec.retried, rec.attempts) == (State.DONE, 2, 3)
    assert [h["s"] for h in rec.history] == ["error", "error"]
    names = [j["metadata"]["name"] for j in jobs_of(fake, "/flaky")]
    assert names == [cbs.attempt_name("retry", "/flaky", n) for n in range(3)]
    status = subprocess.run(
        [sys.executable, "-m", "k8sco", "status", "retry", "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert "3 attempts" in status.stdout, status.stdout + status.stderr


def test_an_oom_killed_pod_is_retried_with_twice_the_memory(
    world: tuple[FakeCluster, Cluster, Path],
) -> None:
    fake, cluster, _ = world
    root = co.Serial()
    root["hog"] = co.Exec(HOG, mem="128Mi")
    root["hog"].on_error(co.callback.retry_with_double_mem(2))
    done = run_to_end(fake, cluster, root, "oom")
    assert done["status"]["phase"] == "Succeeded", done["status"].get("message")
    rec = record(root, done, "/hog")
    assert (rec.retried, rec.mem) == (1, 256 * 2**20)
    assert rec.history[0]["oom"] is True and "OOMKilled" in rec.history[0]["r"]
    first, second = jobs_of(fake, "/hog")
    limits = [
        j["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        for j in (first, second)
    ]
    assert [lim["memory"] for lim in limits] == ["128Mi", "256Mi"]


def test_without_an_oom_handle_memory_errors_leaves_the_failure(
    world: tuple[FakeCluster, Cluster, Path],
) -> None:
    fake, cluster, _ = world
    root = co.Serial()
    root["plain"] = co.Exec("exit 3")
    root["plain"].on_error(co.callback.handle_memory_errors())
    done = run_to_end(fake, cluster, root, "nooom")
    assert done["status"]["phase"] == "Failed"
    assert record(root, done, "/plain").retried == 0
    assert len(jobs_of(fake, "/plain")) == 1


def test_the_controller_sends_notifications_with_their_keys(
    world: tuple[FakeCluster, Cluster, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, cluster, _ = world
    posts: list[tuple[dict[str, str], dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            posts.append((dict(self.headers), body))
            self.send_response(200)
            self.send_header("Content-Length", "11")
            self.end_headers()
            self.wfile.write(b'{"ok":true}')

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("K8SCO_SLACK_URL", f"http://127.0.0.1:{server.server_address[1]}/post")
    monkeypatch.setenv("K8SCO_SLACK_TOKEN", "token")
    try:
        root = co.Serial()
        root["a"] = co.Exec("exit 1")
        root["a"].on_error(co.callback.retry_then_skip(1))
        root["a"].on_state_change(co.callback.slack_status("#a"))
        root.on_done(co.callback.slack_status("#done"))
        done = run_to_end(fake, cluster, root, "notes")
    finally:
        server.shutdown()
        server.server_close()
    assert done["status"]["phase"] == "Succeeded"
    texts = [(body["channel"], body["text"]) for _, body in posts]
    assert ("#done", "k8sco notes /: done") in texts
    skipped = [t for c, t in texts if c == "#a" and ": skipped" in t]
    assert len(skipped) == 1 and "(attempt 2)" in skipped[0]
    keys = [h["Idempotency-Key"] for h, _ in posts]
    assert len(keys) == len(set(keys))  # one controller sends each once


def test_a_controller_dying_between_the_retry_job_and_its_status_retries_once(
    world: tuple[FakeCluster, Cluster, Path],
) -> None:
    """The first controller creates the second attempt's Job, then "dies" before the status
    write that records the retry lands; the next one adopts that Job: no third Job, and the
    node is retried once."""
    fake, cluster, _ = world
    root = co.Serial()
    root["n"] = co.Exec('test "${K8SCO_ATTEMPT:-1}" -ge 2')
    root["n"].on_error(co.callback.retry(3))
    pipelines.create(cluster, render_pipeline(root, "dies", "default", image="img:1"))
    first = Controller(cluster, "default", min_interval=0.0)
    write = first._patch_status
    dropped = threading.Event()

    def patch_status(pipeline: Any, patch: Any) -> bool:
        if any(isinstance(r, dict) and r.get("c") for r in (patch.get("nodes") or {}).values()):
            dropped.set()  # the write that records the retry never lands
            return False
        return write(pipeline, patch)

    first._patch_status = patch_status  # type: ignore[method-assign]
    thread = threading.Thread(target=first.run, kwargs={"until_finished": True}, daemon=True)
    thread.start()
    try:
        fake.wait_for(dropped.is_set, timeout=60)
        fake.wait_for(lambda: len(jobs_of(fake, "/n")) == 2, timeout=60)
    finally:
        first.stop.set()
        thread.join(timeout=10)
    assert record(root, pipelines.get(cluster, "dies"), "/n").retried == 0  # as it died
    second = Controller(cluster, "default", min_interval=0.0)
    thread = threading.Thread(target=second.run, kwargs={"until_finished": True}, daemon=True)
    thread.start()
    try:
        fake.wait_for(
            lambda: (
                (pipelines.get(cluster, "dies").get("status") or {}).get("phase") == "Succeeded"
            ),
            timeout=60,
        )
    finally:
        second.stop.set()
        thread.join(timeout=10)
    rec = record(root, pipelines.get(cluster, "dies"), "/n")
    assert (rec.state, rec.retried) == (State.DONE, 1)
    assert [cbs.job_attempt(j) for j in jobs_of(fake, "/n")] == [0, 1]
    pods = [p for p in fake.objects("pods", "default") if "dies" in p["metadata"]["name"]]
    assert len(pods) == 2  # one per attempt: nothing ran twice


def test_a_notification_not_known_sent_is_sent_again_with_its_key(
    world: tuple[FakeCluster, Cluster, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first controller sends, then "dies" before removing the notification from the
    status; the next one sends it again, under the same key: at least once."""
    fake, cluster, _ = world
    keys: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            keys.append(self.headers["Idempotency-Key"])
            self.send_response(200)
            self.send_header("Content-Length", "11")
            self.end_headers()
            self.wfile.write(b'{"ok":true}')

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("K8SCO_SLACK_URL", f"http://127.0.0.1:{server.server_address[1]}/post")
    monkeypatch.setenv("K8SCO_SLACK_TOKEN", "token")
    root = co.Serial()
    root["a"] = co.Exec("true")
    root.on_done(co.callback.slack_status("#done"))
    pipelines.create(cluster, render_pipeline(root, "twice", "default", image="img:1"))
    first = Controller(cluster, "default", min_interval=0.0)
    write = first._patch_status

    def patch_status(pipeline: Any, patch: Any) -> bool:
        if set(patch) == {cbs.NOTIFY_KEY}:
            return False  # the removal never lands
        return write(pipeline, patch)

    first._patch_status = patch_status  # type: ignore[method-assign]
    thread = threading.Thread(target=first.run, kwargs={"until_finished": True}, daemon=True)
    thread.start()
    try:
        fake.wait_for(lambda: len(keys) == 1, timeout=60)
    finally:
        first.stop.set()
        thread.join(timeout=10)
        assert (pipelines.get(cluster, "twice").get("status") or {}).get(cbs.NOTIFY_KEY)
    second = Controller(cluster, "default", min_interval=0.0)
    thread = threading.Thread(target=second.run, kwargs={"until_finished": True}, daemon=True)
    thread.start()
    try:
        fake.wait_for(
            lambda: not (pipelines.get(cluster, "twice").get("status") or {}).get(cbs.NOTIFY_KEY),
            timeout=60,
        )
    finally:
        second.stop.set()
        thread.join(timeout=10)
        server.shutdown()
        server.server_close()
    assert len(keys) == 2 and keys[0] == keys[1]
