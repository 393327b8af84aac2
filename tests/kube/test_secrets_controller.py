"""The controller's secrets hook against the in-memory API: it reads the namespace Secret's
key names once per round of creates, afresh for a Pipeline's first Jobs and shared by the
namespace's Pipelines for SECRET_KEYS_TTL seconds after that; a missing Secret means none,
and an error reading them holds the creates back (a Job made without them would run with the
wrong environment)."""

from __future__ import annotations

from typing import Any

import k8sco as co
from k8sco.engine import Graph, State
from k8sco.kube.controller import SECRET_KEYS_TTL, Controller
from k8sco.reconcile.problems import Limits
from k8sco.render.names import job_name
from k8sco.render.pipeline import recorded_states, render_pipeline
from k8sco.secrets import ANNOTATION_KEYS, SECRET_NAME

from .fakeapi import FakeApi, api_error

T0 = 1_800_000_000.0
PIPES = "/apis/k8sco.io/v1alpha1/namespaces/default/pipelines"
JOBS = "/apis/batch/v1/namespaces/default/jobs"
SECRET = f"/api/v1/namespaces/default/secrets/{SECRET_NAME}"


class World:
    def __init__(self) -> None:
        with co.Parallel(env={"TOKEN": "node"}) as root:
            co.Exec("echo $TOKEN", name="a")
            co.Exec("echo $TOKEN", name="b")
        self.graph = Graph.from_tree(root)
        self.now = T0
        self.api = FakeApi(lambda: self.now)
        obj = render_pipeline(root, "demo", "default", image="img:1")
        obj["metadata"]["generation"] = 1
        self.api.put(PIPES, obj)
        self.ctl = Controller(
            self.api,
            "default",
            clock=lambda: self.now,
            limits=Limits(foreign_timeout=600, start_timeout=600),
        )

    def sync(self) -> None:
        self.ctl._replace("pipelines", "default", self.api.items(PIPES))
        self.ctl._replace("jobs", "default", self.api.items(JOBS))
        self.ctl.sync(("default", "demo"))

    def env(self, path: str) -> list[dict[str, Any]]:
        job = self.api.objects[f"{JOBS}/{job_name('demo', path)}"]
        return list(job["spec"]["template"]["spec"]["containers"][0]["env"])


def test_no_secret_means_no_secrets() -> None:
    w = World()
    w.sync()
    assert w.env("/a")[0] == {"name": "TOKEN", "value": "node"}
    assert w.api.count("GET", SECRET) == 1  # once for both Jobs


def test_the_secrets_keys_replace_the_nodes_values() -> None:
    w = World()
    w.api.objects[SECRET] = {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"name": SECRET_NAME, "annotations": {ANNOTATION_KEYS: "TOKEN,OTHER"}},
    }
    w.sync()
    for path in ("/a", "/b"):
        env = w.env(path)
        assert [e["name"] for e in env] == [
            "OTHER",
            "TOKEN",
            "K8SCO_PIPELINE",
            "K8SCO_NODE_PATH",
        ]
        assert env[1]["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME


def test_an_error_reading_the_keys_holds_the_jobs_back() -> None:
    w = World()
    w.api.fail("GET", SECRET, api_error(503, "the server is busy"), times=1)
    w.sync()
    assert w.api.count("POST", JOBS) == 0
    states = recorded_states(w.graph, w.api.objects[f"{PIPES}/demo"].get("status") or {})
    assert states["/a"].state is State.QUEUED
    assert states["/a"].reason == "waiting: the server is busy"
    w.now += 5
    w.sync()
    assert w.api.count("POST", JOBS) == 2


class Two:
    """Two Pipelines in one namespace, each a Serial of two nodes that read $TOKEN."""

    def __init__(self) -> None:
        self.now = T0
        self.api = FakeApi(lambda: self.now)
        self.ctl = Controller(
            self.api,
            "default",
            clock=lambda: self.now,
            limits=Limits(foreign_timeout=600, start_timeout=600),
        )

    def submit(self, name: str) -> None:
        with co.Serial() as root:
            co.Exec("echo $TOKEN", name="first")
            co.Exec("echo $TOKEN", name="then")
        obj = render_pipeline(root, name, "default", image="img:1")
        obj["metadata"]["generation"] = 1
        self.api.put(PIPES, obj)

    def sync(self, name: str) -> None:
        self.ctl._replace("pipelines", "default", self.api.items(PIPES))
        self.ctl._replace("jobs", "default", self.api.items(JOBS))
        self.ctl.sync(("default", name))

    def finish(self, name: str, path: str) -> None:
        job = self.api.objects[f"{JOBS}/{job_name(name, path)}"]
        job["status"] = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}

    def secret(self, keys: str) -> None:
        self.api.objects[SECRET] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"name": SECRET_NAME, "annotations": {ANNOTATION_KEYS: keys}},
        }

    def env_names(self, name: str, path: str) -> list[str]:
        job = self.api.objects[f"{JOBS}/{job_name(name, path)}"]
        return [e["name"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]]


def test_a_pipelines_first_jobs_read_the_keys_afresh() -> None:
    w = Two()
    w.submit("early")
    w.sync("early")
    w.secret("TOKEN")  # `k8sco secrets set` and then `k8sco apply`, a second later
    w.now += 1
    w.submit("late")
    w.sync("late")
    assert w.api.count("GET", SECRET) == 2
    assert "TOKEN" not in w.env_names("early", "/first")
    assert "TOKEN" in w.env_names("late", "/first")


def test_later_jobs_share_the_namespaces_read_until_it_is_too_old() -> None:
    w = Two()
    w.submit("a")
    w.sync("a")
    w.now += SECRET_KEYS_TTL - 2
    w.submit("b")
    w.sync("b")
    assert w.api.count("GET", SECRET) == 2  # each Pipeline's first Jobs: a read of their own
    w.secret("TOKEN")
    w.now += 3  # a's own read is too old, b's is not: b's serves a's next Job
    w.finish("a", "/first")
    w.sync("a")
    assert w.api.count("GET", SECRET) == 2
    assert "TOKEN" not in w.env_names("a", "/then")
    w.now += SECRET_KEYS_TTL - 2  # every read is too old now
    w.finish("b", "/first")
    w.sync("b")
    assert w.api.count("GET", SECRET) == 3
    assert "TOKEN" in w.env_names("b", "/then")
