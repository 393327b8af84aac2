"""co.Lazy on Kubernetes: the controller expands Lazy nodes (their trees recorded in
status.lazy, status.nodes re-keyed in the same write); with K8SCO_LAZY_CLUSTER=0 they are
refused in one line, by `k8sco apply`/`render` and by the controller, never run half-way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from kube.fakeapi import FakeApi, api_error
from kube.test_controller import JOBS, KEY, PIPES, Clock

import k8sco as co
from k8sco import lazy as co_lazy
from k8sco.cli.app import cli
from k8sco.engine import Graph, State
from k8sco.kube.controller import Controller
from k8sco.kube.overflow import load_tree
from k8sco.render.constants import ANNOTATION_PATH
from k8sco.render.names import job_name
from k8sco.render.pipeline import encode_tree, recorded_states, render_pipeline


def lazy_pipeline() -> co.Serial:
    root = co.Serial()
    root["first"] = co.Exec("echo first")
    root["l"] = co.Lazy("python gen.py")
    return root


def test_the_controller_fails_a_lazy_pipeline_without_creating_a_job_when_off() -> None:
    clock = Clock()
    api = FakeApi(clock)
    obj = render_pipeline(co.Serial(), "demo", "default", image="img:1")
    obj["spec"].update(encode_tree(lazy_pipeline()))  # as another k8sco could write it
    obj["metadata"]["generation"] = 1
    api.put(PIPES, obj)
    ctl = Controller(api, "default", clock=clock, lazy_on_cluster=False)
    ctl._replace("pipelines", "default", api.items(PIPES))
    ctl._replace("jobs", "default", api.items(JOBS))
    ctl.sync(KEY)
    status = api.objects[f"{PIPES}/demo"]["status"]
    assert status["phase"] == "Failed"
    assert status["message"].startswith("/l: co.Lazy runs on the local runner only")
    assert api.items(JOBS) == []


LAZY_FILE = (
    "import k8sco as co\n\n\ndef p() -> co.Serial:\n"
    "    root = co.Serial()\n    root['l'] = co.Lazy('python gen.py')\n    return root\n"
)


def test_render_of_a_lazy_pipeline_gives_the_pipeline_and_the_generate_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(co_lazy.ENV_CLUSTER, raising=False)
    (tmp_path / "pipe.py").write_text(LAZY_FILE)
    done = CliRunner().invoke(cli, ["render", "pipe.py", "--image", "img:1"])
    assert done.exit_code == 0, done.output
    docs = list(yaml.safe_load_all(done.output))
    assert [d["kind"] for d in docs] == ["Pipeline", "Job"]
    assert docs[1]["metadata"]["annotations"][ANNOTATION_PATH] == "/l/Generate"


def test_render_refuses_a_lazy_pipeline_in_one_line_when_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(co_lazy.ENV_CLUSTER, "0")
    (tmp_path / "pipe.py").write_text(
        "import k8sco as co\n\n\ndef p() -> co.Serial:\n"
        "    root = co.Serial()\n    root['l'] = co.Lazy('python gen.py')\n    return root\n"
    )
    done = CliRunner().invoke(cli, ["render", "pipe.py"])
    assert done.exit_code == 2
    assert done.output.strip().splitlines() == [
        "k8sco: /l: co.Lazy runs on the local runner only (k8sco run); the Kubernetes "
        "controller does not expand Lazy nodes yet"
    ]


# --- with K8SCO_LAZY_CLUSTER=1: the controller expands Lazy nodes -------------------------

PODS = "/api/v1/namespaces/default/pods"
DONE = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
FAILED = {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]}


def generated(count: int = 3, nested: bool = False) -> co.Parallel:
    out = co.Parallel()
    for i in range(count):
        out[f"n{i}"] = co.Exec(f"echo {i}")
    if nested:
        out["inner"] = co.Lazy("python inner.py")
    return out


class LazyWorld:
    """A Lazy pipeline on the in-memory API, the controller expanding it."""

    def __init__(self, root: co.Serial | co.Parallel | None = None) -> None:
        self.clock = Clock()
        self.api = FakeApi(self.clock)
        tree = root if root is not None else lazy_pipeline()
        obj = render_pipeline(co.Serial(), "demo", "default", image="img:1")
        obj["spec"].update(encode_tree(tree))
        obj["metadata"]["generation"] = 1
        self.api.put(PIPES, obj)
        self.ctl = Controller(self.api, "default", clock=self.clock, lazy_on_cluster=True)

    def sync(self) -> None:
        self.ctl._replace("pipelines", "default", self.api.items(PIPES))
        self.ctl._replace("jobs", "default", self.api.items(JOBS))
        self.ctl.sync(KEY)
        self.clock.now += 1

    @property
    def pipeline(self) -> dict[str, Any]:
        return self.api.objects[f"{PIPES}/demo"]

    def graph(self) -> Graph:
        return Graph.from_tree(load_tree(self.api, self.pipeline))

    def states(self) -> dict[str, State]:
        got = recorded_states(self.graph(), self.pipeline["status"])
        return {path: rec.state for path, rec in got.items()}

    def job(self, path: str) -> dict[str, Any]:
        return self.api.objects[f"{JOBS}/{job_name('demo', path)}"]

    def jobs(self) -> list[str]:
        return sorted(j["metadata"]["annotations"][ANNOTATION_PATH] for j in self.api.items(JOBS))

    def finish(self, path: str, status: dict[str, Any] = DONE, log: str | None = None) -> None:
        job = self.job(path)
        job["status"] = status
        job["metadata"]["resourceVersion"] += "x"
        if log is not None:
            pod = f"{job['metadata']['name']}-abcde"
            self.api.put(
                PODS,
                {
                    "metadata": {
                        "name": pod,
                        "labels": {"controller-uid": job["metadata"]["uid"]},
                    },
                    "status": {"phase": "Succeeded"},
                },
            )
            self.api.objects[f"{PODS}/{pod}/log"] = log  # type: ignore[assignment]


def tree_log(tree: co.Node) -> str:
    return f"k8sco: generated some node(s)\n\n{co_lazy.marker(tree)}\n"


def test_the_controller_splices_a_generated_tree_and_runs_it() -> None:
    w = LazyWorld()
    w.sync()
    assert w.jobs() == ["/first"]
    w.finish("/first")
    w.sync()
    assert w.jobs() == ["/first", "/l/Generate"]
    w.finish("/l/Generate", log=tree_log(generated()))
    w.sync()
    # The write that records the expansion creates no Job: it re-keys status.nodes.
    assert w.jobs() == ["/first", "/l/Generate"]
    assert sorted(w.pipeline["status"]["lazy"]) == ["/l"]
    states = w.states()
    assert states.pop("/first") is states.pop("/l/Generate") is State.DONE
    assert states == {f"/l/Execute/n{i}": State.QUEUED for i in range(3)}  # created next
    w.sync()
    assert w.jobs() == ["/first", "/l/Execute/n0", "/l/Execute/n1", "/l/Execute/n2", "/l/Generate"]
    env = w.job("/l/Execute/n1")["spec"]["template"]["spec"]["containers"][0]
    assert env["image"] == "img:1" and env["command"][-1] == "echo 1"
    for i in range(3):
        w.finish(f"/l/Execute/n{i}")
    w.sync()
    assert w.pipeline["status"]["phase"] == "Succeeded"
    assert w.pipeline["status"]["progress"] == "5/5"


def test_generated_nodes_inherit_env_and_resources_of_the_lazy_node() -> None:
    root = co.Serial(env={"A": "1"}, cpu=2)
    root["l"] = co.Lazy("python gen.py")
    w = LazyWorld(root)
    w.sync()
    w.finish("/l/Generate", log=tree_log(generated(1)))
    w.sync()
    w.sync()
    container = w.job("/l/Execute/n0")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "A", "value": "1"} in container["env"]
    assert container["resources"]["requests"]["cpu"] in ("2", 2)


def test_nested_lazy_nodes_expand_parents_first() -> None:
    w = LazyWorld()
    w.sync()
    w.finish("/first")
    w.sync()
    w.finish("/l/Generate", log=tree_log(generated(1, nested=True)))
    w.sync()
    w.sync()
    assert "/l/Execute/inner/Generate" in w.jobs()
    w.finish("/l/Execute/inner/Generate", log=tree_log(generated(2)))
    w.sync()
    w.sync()
    assert "/l/Execute/inner/Execute/n1" in w.jobs()
    assert sorted(w.pipeline["status"]["lazy"]) == ["/l", "/l/Execute/inner"]
    for path in w.jobs():
        if w.job(path).get("status") is None:
            w.finish(path)
    w.sync()
    w.sync()
    assert w.pipeline["status"]["phase"] == "Succeeded"


@pytest.mark.parametrize(
    ("log", "reason"),
    [
        ("no tree here\n", "the Lazy generator printed no tree"),
        ("<__k8sco_tree>!!!</__k8sco_tree>\n", "the Lazy generator's tree is not base64"),
    ],
)
def test_a_generator_without_a_usable_tree_fails_its_node(log: str, reason: str) -> None:
    w = LazyWorld()
    w.sync()
    w.finish("/first")
    w.sync()
    w.finish("/l/Generate", log=log)
    w.sync()
    status = w.pipeline["status"]
    assert status["phase"] == "Failed"
    assert status["message"].startswith(f"/l/Generate: {reason}")
    assert "lazy" not in status


def test_a_generated_tree_over_the_total_cap_fails_saying_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from k8sco.render import limits

    monkeypatch.setattr(limits, "MAX_NODES", 12)  # the generated tree alone is 11
    w = LazyWorld()
    w.sync()
    w.finish("/first")
    w.sync()
    w.finish("/l/Generate", log=tree_log(generated(10)))
    w.sync()
    status = w.pipeline["status"]
    assert status["phase"] == "Failed"
    assert "would make the pipeline 15 nodes, over the total cap of 12 nodes" in status["message"]
    assert w.jobs() == ["/first", "/l/Generate"]


def test_a_failed_generator_fails_its_node_and_nothing_is_generated() -> None:
    w = LazyWorld()
    w.sync()
    w.finish("/first")
    w.sync()
    w.finish("/l/Generate", status=FAILED)
    w.sync()
    assert w.pipeline["status"]["phase"] == "Failed"
    assert "lazy" not in w.pipeline["status"]


def test_a_restarted_controller_finds_the_expansion_and_creates_each_job_once() -> None:
    w = LazyWorld()
    w.sync()
    w.finish("/first")
    w.sync()
    w.finish("/l/Generate", log=tree_log(generated(3)))
    w.sync()  # expansion written; then the process dies before creating any Job
    w.ctl = Controller(w.api, "default", clock=w.clock, lazy_on_cluster=True)
    w.sync()
    w.ctl = Controller(w.api, "default", clock=w.clock, lazy_on_cluster=True)
    w.sync()
    assert w.api.count("POST", JOBS) == 5
    assert len(w.jobs()) == 5


def test_a_conflicting_expansion_write_creates_nothing_and_is_decided_again() -> None:
    w = LazyWorld()
    w.sync()
    w.finish("/first")
    w.sync()
    w.finish("/l/Generate", log=tree_log(generated(2)))
    w.api.fail("PATCH", "/pipelines/demo/status", api_error(409, "modified", "Conflict"))
    w.sync()
    assert "lazy" not in (w.pipeline.get("status") or {})
    assert w.jobs() == ["/first", "/l/Generate"]
    w.sync()
    w.sync()
    assert w.jobs() == ["/first", "/l/Execute/n0", "/l/Execute/n1", "/l/Generate"]


def test_rerun_of_a_lazy_node_regenerates_its_subtree() -> None:
    w = LazyWorld()
    w.sync()
    w.finish("/first")
    w.sync()
    w.finish("/l/Generate", log=tree_log(generated(2)))
    w.sync()
    w.sync()
    old_generate = w.job("/l/Generate")["metadata"]["uid"]
    w.finish("/l/Execute/n0")
    w.finish("/l/Execute/n1", status=FAILED)
    w.sync()
    assert w.pipeline["status"]["phase"] == "Failed"

    w.pipeline["spec"]["rerun"] = {"path": "/l", "token": "t1"}
    w.pipeline["metadata"]["generation"] += 1
    w.pipeline["metadata"]["resourceVersion"] += "s"
    # The controller's Job cache lags behind the deletions it asks for.
    w.ctl._replace("pipelines", "default", w.api.items(PIPES))
    w.ctl.sync(KEY)
    assert w.pipeline["status"]["lazy"] == {"/l": {"held": old_generate}}
    assert w.api.items(JOBS) == [w.api.objects[f"{JOBS}/{job_name('demo', '/first')}"]]
    w.ctl._replace("pipelines", "default", w.api.items(PIPES))
    w.ctl.sync(KEY)  # the old Generate Job still cached: held, not taken for the new run
    assert w.jobs() == ["/first"]
    assert w.states() == {"/first": State.DONE}

    w.sync()  # now the cache has seen the deletions
    assert "lazy" not in w.pipeline["status"]
    assert w.jobs() == ["/first", "/l/Generate"]
    assert w.job("/l/Generate")["metadata"]["uid"] != old_generate
    w.finish("/l/Generate", log=tree_log(generated(3)))
    w.sync()
    w.sync()
    assert w.jobs() == ["/first", "/l/Execute/n0", "/l/Execute/n1", "/l/Execute/n2", "/l/Generate"]
    for i in range(3):
        w.finish(f"/l/Execute/n{i}")
    w.sync()
    assert w.pipeline["status"]["phase"] == "Succeeded"
    assert w.pipeline["status"]["progress"] == "5/5"


def test_rerun_leaves_a_lazy_node_that_succeeded_as_it_is() -> None:
    root = co.Parallel()
    root["first"] = co.Exec("echo first")
    root["l"] = co.Lazy("python gen.py")
    w = LazyWorld(root)
    w.sync()
    w.finish("/first", status=FAILED)
    w.finish("/l/Generate", log=tree_log(generated(1)))
    w.sync()
    w.sync()
    w.finish("/l/Execute/n0")
    w.sync()
    assert w.pipeline["status"]["phase"] == "Failed"
    lazy_before = w.pipeline["status"]["lazy"]
    w.pipeline["spec"]["rerun"] = {"path": "/", "token": "t1"}
    w.pipeline["metadata"]["generation"] += 1
    w.sync()
    assert w.pipeline["status"]["lazy"] == lazy_before
    assert w.states()["/l/Execute/n0"] is State.DONE
    assert w.jobs() == ["/l/Execute/n0", "/l/Generate"]  # /first: deleted, to run again


def test_a_generate_recorded_done_without_its_tree_fails_rather_than_passes() -> None:
    w = LazyWorld()
    w.sync()
    w.finish("/first")
    w.sync()
    w.finish("/l/Generate", log=tree_log(generated(2)))
    w.sync()
    status = w.pipeline["status"]
    del status["lazy"]  # what an older CRD's pruning does
    status["nodes"] = {"1": {"s": "done"}, "3": {"s": "done"}}  # /first, /l/Generate
    w.pipeline["metadata"]["resourceVersion"] += "p"
    w.sync()
    status = w.pipeline["status"]
    assert status["phase"] == "Failed"
    assert "its generated tree is not in the Pipeline's status.lazy" in status["message"]
