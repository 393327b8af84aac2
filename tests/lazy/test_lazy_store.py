"""Where the controller keeps generated trees (k8sco/kube/lazystore.py), on the in-memory
API: inline while they fit, otherwise in ConfigMaps written before the status that
references them, read back only when they match it; over a cap, the Generate node fails
saying so and nothing is written."""

from __future__ import annotations

import base64
import gzip
from typing import Any

import pytest
from kube.fakeapi import api_error
from kube.test_controller import JOBS, KEY, PIPES

from k8sco.engine import State
from k8sco.errors import ClusterError
from k8sco.kube import lazystore
from k8sco.kube.controller import Controller
from k8sco.render import limits
from lazy.test_lazy_cluster import LazyWorld, generated, tree_log

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def expanded(w: LazyWorld, count: int = 3) -> None:
    w.sync()
    w.finish("/first")
    w.sync()
    w.finish("/l/Generate", log=tree_log(generated(count)))
    w.sync()


def lazy_maps(w: LazyWorld) -> list[dict[str, Any]]:
    return [
        m
        for m in w.api.items(CONFIGMAPS)
        if m["metadata"]["labels"].get("k8sco.io/overflow") == lazystore.KIND
    ]


def test_a_small_tree_stays_in_the_status() -> None:
    w = LazyWorld()
    expanded(w)
    assert set(w.pipeline["status"]["lazy"]["/l"]) == {"job", "tree"}
    assert lazy_maps(w) == []


def test_a_tree_over_the_inline_cap_is_written_to_a_configmap_before_the_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lazystore, "INLINE_MAX", 100)
    w = LazyWorld()
    expanded(w)
    entry = w.pipeline["status"]["lazy"]["/l"]
    assert "tree" not in entry and entry["ref"]["parts"] == 1
    (cm,) = lazy_maps(w)
    uid = w.pipeline["metadata"]["uid"]
    assert cm["metadata"]["name"] == lazystore.configmap_name("demo", uid, "/l", 0)
    assert cm["metadata"]["ownerReferences"][0]["uid"] == uid
    data = base64.b64decode(cm["binaryData"][lazystore.KEY])
    assert b'"n2"' in gzip.decompress(data)
    # The ConfigMap's create came before the status write that references it.
    calls = w.api.calls
    created = calls.index(("POST", CONFIGMAPS))
    patches = [i for i, (m, p) in enumerate(calls) if m == "PATCH" and p.endswith("/status")]
    assert [i for i in patches if i > created]
    w.sync()
    assert w.jobs() == ["/first", "/l/Execute/n0", "/l/Execute/n1", "/l/Execute/n2", "/l/Generate"]
    # A restarted controller reads the tree back from the ConfigMap.
    w.ctl = Controller(w.api, "default", clock=w.clock, lazy_on_cluster=True)
    w.sync()
    assert w.states()["/l/Execute/n2"] is State.QUEUED
    assert w.api.count("POST", JOBS) == 5


def test_a_status_write_lost_after_the_configmap_write_reuses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lazystore, "INLINE_MAX", 100)
    w = LazyWorld()
    w.sync()
    w.finish("/first")
    w.sync()
    w.finish("/l/Generate", log=tree_log(generated(2)))
    w.api.fail("PATCH", "/pipelines/demo/status", api_error(500, "etcd timeout"))
    w.ctl._replace("pipelines", "default", w.api.items(PIPES))
    w.ctl._replace("jobs", "default", w.api.items(JOBS))
    with pytest.raises(ClusterError, match="etcd timeout"):
        w.ctl.sync(KEY)
    assert len(lazy_maps(w)) == 1 and "lazy" not in (w.pipeline.get("status") or {})
    w.ctl = Controller(w.api, "default", clock=w.clock, lazy_on_cluster=True)  # a restart
    w.sync()
    w.sync()
    assert len(lazy_maps(w)) == 1 and "ref" in w.pipeline["status"]["lazy"]["/l"]
    assert w.jobs() == ["/first", "/l/Execute/n0", "/l/Execute/n1", "/l/Generate"]
    assert w.api.count("POST", JOBS) == 4


def test_a_configmap_changed_by_hand_fails_the_pipeline_saying_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lazystore, "INLINE_MAX", 100)
    w = LazyWorld()
    expanded(w)
    (cm,) = lazy_maps(w)
    other = base64.b64encode(gzip.compress(b'{"k8sco":1}')).decode()
    w.api.objects[f"{CONFIGMAPS}/{cm['metadata']['name']}"]["binaryData"] = {lazystore.KEY: other}
    w.ctl = Controller(w.api, "default", clock=w.clock, lazy_on_cluster=True)
    w.sync()
    status = w.pipeline["status"]
    assert status["phase"] == "Failed"
    assert (
        "the ConfigMaps holding the tree generated for /l do not match status.lazy"
        in (status["message"])
    )


def test_expansions_over_the_cap_of_status_lazy_fail_their_node_and_write_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lazystore, "INLINE_MAX", 0)
    monkeypatch.setattr(lazystore, "STATUS_MAX", 50)
    w = LazyWorld()
    expanded(w)
    status = w.pipeline["status"]
    assert status["phase"] == "Failed"
    assert (
        "/l/Generate: the generated trees of this pipeline (1 expansions) would take"
        in (status["message"])
    )
    assert "over the cap of 50 bytes" in status["message"]
    assert lazy_maps(w) == [] and "lazy" not in status


def test_a_tree_over_the_total_node_cap_writes_no_configmap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lazystore, "INLINE_MAX", 0)
    monkeypatch.setattr(limits, "MAX_NODES", 12)
    w = LazyWorld()
    expanded(w, 10)
    status = w.pipeline["status"]
    assert status["phase"] == "Failed"
    assert "over the total cap of 12 nodes of one pipeline" in status["message"]
    assert w.api.count("POST", CONFIGMAPS) == 0
