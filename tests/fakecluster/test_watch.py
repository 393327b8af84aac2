"""list + watch: resourceVersions, 410 Expired, selectors, bookmarks, drops."""

from __future__ import annotations

import threading

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from .cluster import FakeCluster
from .test_api import configmap


def collect(func, *args, count: int, timeout: int = 5, **kwargs) -> list[tuple[str, str]]:
    """(type, name) of the first ``count`` events of a watch."""
    w = watch.Watch()
    seen = []
    for event in w.stream(func, *args, timeout_seconds=timeout, **kwargs):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) >= count:
            w.stop()
    return seen


def test_watch_without_rv_starts_with_synthetic_added(k8s_client: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s_client)
    for name in ("a", "b"):
        core.create_namespaced_config_map("default", configmap(name))
    assert collect(core.list_namespaced_config_map, "default", count=2) == [
        ("ADDED", "a"),
        ("ADDED", "b"),
    ]


def test_watch_from_rv_sends_only_later_events(k8s_client: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s_client)
    core.create_namespaced_config_map("default", configmap("old"))
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", configmap("new"))
    core.patch_namespaced_config_map("new", "default", {"data": {"k": "v"}})
    core.delete_namespaced_config_map("old", "default")
    events = collect(core.list_namespaced_config_map, "default", count=3, resource_version=rv)
    assert events == [("ADDED", "new"), ("MODIFIED", "new"), ("DELETED", "old")]


def test_watch_streams_live_changes(k8s_client: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s_client)
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    timer = threading.Timer(
        0.2, lambda: core.create_namespaced_config_map("default", configmap("later"))
    )
    timer.start()
    try:
        assert collect(
            core.list_namespaced_config_map, "default", count=1, resource_version=rv
        ) == [("ADDED", "later")]
    finally:
        timer.join()


def test_too_old_resource_version_is_410(tmp_path) -> None:
    with FakeCluster(history_window=3, kubelet=False) as cluster, cluster.api_client() as api:
        core = client.CoreV1Api(api)
        rv = core.list_namespaced_config_map("default").metadata.resource_version
        for i in range(5):
            core.create_namespaced_config_map("default", configmap(f"c{i}"))
        with pytest.raises(ApiException) as exc:
            collect(core.list_namespaced_config_map, "default", count=1, resource_version=rv)
        assert exc.value.status == 410
        assert "too old resource version" in exc.value.reason
        # A recent RV still works.
        recent = core.list_namespaced_config_map("default").metadata.resource_version
        core.delete_namespaced_config_map("c0", "default")
        assert collect(
            core.list_namespaced_config_map, "default", count=1, resource_version=recent
        ) == [("DELETED", "c0")]


def test_selectors_filter_and_transitions(k8s_client: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s_client)
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "x", "labels": {"app": "a"}}}
    )
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "y", "labels": {"app": "b"}}}
    )
    core.patch_namespaced_config_map(
        "y", "default", {"metadata": {"labels": {"app": "a"}}}
    )  # enters
    core.patch_namespaced_config_map(
        "x", "default", {"metadata": {"labels": {"app": "c"}}}
    )  # leaves
    events = collect(
        core.list_namespaced_config_map,
        "default",
        count=3,
        resource_version=rv,
        label_selector="app=a",
    )
    assert events == [("ADDED", "x"), ("ADDED", "y"), ("DELETED", "x")]

    def names(sel):
        return [
            c.metadata.name
            for c in core.list_namespaced_config_map("default", label_selector=sel).items
        ]

    assert names("app in (a,c)") == ["x", "y"]
    assert names("app notin (a)") == ["x"]
    assert names("app!=a") == ["x"]
    assert names("app,!missing") == ["x", "y"]
    fields = core.list_namespaced_config_map("default", field_selector="metadata.name=y").items
    assert [c.metadata.name for c in fields] == ["y"]
    with pytest.raises(ApiException) as exc:
        core.list_namespaced_config_map("default", field_selector="data.k=v")
    assert exc.value.status == 400 and "field label not supported: data.k" in exc.value.body


def test_pod_and_event_field_selectors(
    fake_cluster: FakeCluster, k8s_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(k8s_client)
    pod = {
        "metadata": {"name": "p"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "i:1", "command": ["true"]}],
        },
    }
    core.create_namespaced_pod("default", pod)
    fake_cluster.wait_for(
        lambda: fake_cluster.get("pods", "p", "default")["status"]["phase"] == "Succeeded"
    )
    assert [
        p.metadata.name
        for p in core.list_namespaced_pod("default", field_selector="status.phase=Succeeded").items
    ] == ["p"]
    assert core.list_namespaced_pod("default", field_selector="status.phase!=Succeeded").items == []
    events = core.list_namespaced_event(
        "default", field_selector="involvedObject.name=p,involvedObject.kind=Pod"
    ).items
    assert {e.reason for e in events} >= {"Scheduled", "Started"}


def test_bookmarks() -> None:
    with FakeCluster(bookmark_interval=0.1, kubelet=False) as cluster, cluster.api_client() as api:
        core = client.CoreV1Api(api)
        w = watch.Watch()
        kinds = []
        for event in w.stream(
            core.list_namespaced_config_map,
            "default",
            allow_watch_bookmarks=True,
            timeout_seconds=3,
        ):
            kinds.append(event["type"])
            if event["type"] == "BOOKMARK":
                w.stop()
        assert kinds == ["BOOKMARK"]


def test_watch_drops_after_n_events(
    fake_cluster: FakeCluster, k8s_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(k8s_client)
    for i in range(4):
        core.create_namespaced_config_map("default", configmap(f"c{i}"))
    fake_cluster.faults.configure(watch_drop_after_events=2)
    resp = core.list_namespaced_config_map(
        "default", watch=True, _preload_content=False, timeout_seconds=5
    )
    lines = [line for line in resp.read().splitlines() if line]
    resp.release_conn()
    assert len(lines) == 2 and fake_cluster.faults.dropped_watches == 1


def test_send_initial_events_ends_with_a_bookmark(
    fake_cluster: FakeCluster, k8s_client: client.ApiClient
) -> None:
    import http.client
    import json

    client.CoreV1Api(k8s_client).create_namespaced_config_map("default", configmap("x"))
    conn = http.client.HTTPConnection(fake_cluster.host, fake_cluster.port, timeout=5)
    query = (
        "watch=true&sendInitialEvents=true&allowWatchBookmarks=true"
        "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1"
    )
    conn.request("GET", f"/api/v1/namespaces/default/configmaps?{query}")
    events = [json.loads(line) for line in conn.getresponse().read().splitlines() if line]
    conn.close()
    assert [e["type"] for e in events[:2]] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
