"""``k8sco ui`` over a cluster's Pipelines (the fake cluster, with a controller in this
process): the list, the tree with each node's Job, states pushed by the Pipeline's watch, a
node's log from its pod, and rerun, stop and delete through k8sco.kube.pipelines, as the
CLI does them."""

from __future__ import annotations

import pytest

import k8sco as co
from k8sco.kube import pipelines
from k8sco.render.names import job_name
from k8sco.render.pipeline import render_pipeline
from k8sco.ui import sources
from ui.cluster import World
from ui.helpers import Events, base, get_json

pytestmark = pytest.mark.slow


def test_the_list_the_tree_its_jobs_states_and_a_log(world: World) -> None:
    events = Events(base(world.srv) + "/api/events/list")
    listing = events.until("list", lambda d: any(p["phase"] == "Failed" for p in d["pipelines"]))
    events.close()
    [row] = listing["pipelines"]
    assert row["ref"] == world.ref and row["name"] == "demo"
    assert row["where"].startswith("default @ ")
    assert row["progress"] == "2/2"

    events = Events(f"{base(world.srv)}/api/events/tree?p={world.ref}")
    shape = events.until("tree")
    assert shape["paths"] == ["/", "/hello", "/flaky"]
    assert shape["jobs"] == [None, job_name("demo", "/hello"), job_name("demo", "/flaky")]
    assert set(shape["controls"]) == {
        "rerun",
        "stop",
        "delete",
        "reset",
        "skip",
        "unskip",
        "modify",
    }
    states = events.until("states", lambda s: s["states"] == "ede")
    assert states["phase"] == "Failed" and states["live"] is False
    assert [2, "failed: exit code 1"] in states["reasons"]
    events.close()

    node = get_json(f"{base(world.srv)}/api/node?p={world.ref}&path=/flaky")
    assert node["job"] == job_name("demo", "/flaky")
    assert node["reason"] == "failed: exit code 1"

    log = Events(f"{base(world.srv)}/api/events/log?p={world.ref}&path=/hello")
    assert log.until("log")["text"] == "hello from the pod\n"
    assert log.next()[0] == "end"
    log.close()


def test_rerun_runs_the_failed_node_again(world: World) -> None:
    events = Events(f"{base(world.srv)}/api/events/tree?p={world.ref}")
    events.until("states", lambda s: s["states"] == "ede")
    status, body = world.control("rerun", "/nope")
    assert status == 400 and "has no node '/nope'" in body["error"]
    (world.directory / "ok").touch()
    try:
        status, body = world.control("rerun", "/flaky")
        assert status == 200, body
        assert body["message"] == "pipeline/demo: rerunning failed and killed nodes under /flaky"
        assert pipelines.get(world.cluster, "demo")["spec"]["rerun"]["path"] == "/flaky"
        done = events.until("states", lambda s: s["states"] == "ddd")
        assert done["phase"] == "Succeeded"
        assert [2, 2] in done["attempts"] or any(t[0] == 2 for t in done["times"])
    finally:
        events.close()


def test_stop_and_delete(world: World) -> None:
    status, body = world.control("stop")
    assert status == 200 and body["message"] == "pipeline/demo: stopping"
    assert pipelines.get(world.cluster, "demo")["spec"]["stop"] is True
    status, body = world.control("delete")
    assert status == 200 and body["message"] == "pipeline/demo deleted"
    world.fake.wait_for(
        lambda: not any(p["metadata"]["name"] == "demo" for p in pipelines.list_all(world.cluster)),
        timeout=30,
    )
    status, body = world.control("stop")
    assert status == 400 and "no pipeline 'demo'" in body["error"]


def test_all_namespaces(world: World) -> None:
    everywhere = sources.ClusterPipelines(world.cluster, None)
    assert [s["ref"] for s in everywhere.summaries(0.0)] == [world.ref]
    only_other = sources.ClusterPipelines(world.cluster, ["other"])
    assert only_other.summaries(0.0) == []
    with pytest.raises(co.errors.UsageError, match="not one this page shows"):
        only_other.snapshot(world.ref)


def test_the_list_follows_pipelines_created_and_deleted(world: World) -> None:
    from k8sco.render.pipeline import render_pipeline

    events = Events(base(world.srv) + "/api/events/list")
    events.until("list", lambda d: [p["name"] for p in d["pipelines"]] == ["demo"])
    second = co.Serial()
    second["a"] = co.Exec("true")
    pipelines.create(world.cluster, render_pipeline(second, "second", "default", image="x:1"))
    listed = events.until("list", lambda d: len(d["pipelines"]) == 2)
    assert {p["ref"] for p in listed["pipelines"]} == {world.ref, "kube:default/second"}
    status, _ = world.control("delete")
    assert status == 200
    gone = events.until("list", lambda d: len(d["pipelines"]) == 1)
    assert gone["pipelines"][0]["ref"] == "kube:default/second"
    events.close()


def test_the_log_of_a_node_retried_by_a_callback_is_its_current_attempts(world: World) -> None:
    root = co.Serial()
    node = root["try"] = co.Exec('echo "attempt $K8SCO_ATTEMPT"; test "$K8SCO_ATTEMPT" = 2')
    node.on_error(co.callback.retry(1))
    pipelines.create(world.cluster, render_pipeline(root, "retrying", "default", image="busybox:1"))
    world.fake.wait_for(
        lambda: (
            (pipelines.get(world.cluster, "retrying").get("status") or {}).get("phase")
            == "Succeeded"
        ),
        timeout=60,
    )
    log = Events(f"{base(world.srv)}/api/events/log?p=kube:default/retrying&path=/try")
    assert log.until("log")["text"] == "attempt 2\n"
    log.close()
