"""Fault injection and request counters, from Python and over HTTP."""

from __future__ import annotations

import json
import threading
import urllib.request

from kubernetes import client
from kubernetes.client.rest import ApiException

from .cluster import FakeCluster
from .test_api import configmap


def test_write_faults_are_seen_by_the_client(
    fake_cluster: FakeCluster, k8s_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(k8s_client)
    fake_cluster.faults.configure(write_error_rate=0.2, seed=7)
    seen: dict[int, int] = {}
    retry_after = set()
    ok = 0
    for i in range(100):
        try:
            core.create_namespaced_config_map("default", configmap(f"c{i}"))
            ok += 1
        except ApiException as e:
            seen[e.status] = seen.get(e.status, 0) + 1
            if e.status == 429:
                retry_after.add(e.headers.get("Retry-After"))
                assert json.loads(e.body)["reason"] == "TooManyRequests"
            else:
                assert json.loads(e.body)["reason"] == "InternalError"
    assert set(seen) == {500, 429}
    assert 10 <= sum(seen.values()) <= 35  # about 20 of 100
    assert retry_after == {"1"}
    assert ok == len(
        fake_cluster.objects("configmaps", "default")
    )  # faults happen before the write
    assert fake_cluster.faults.injected_total() == sum(seen.values())
    assert fake_cluster.faults.injected_total(429) == seen[429]
    # Reads are not affected.
    assert len(core.list_namespaced_config_map("default").items) == ok


def test_errors_after_commit_leave_the_write_done(
    fake_cluster: FakeCluster, k8s_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(k8s_client)
    fake_cluster.faults.configure(
        write_error_rate=1.0, error_after_commit_rate=1.0, write_error_codes=[500]
    )
    try:
        core.create_namespaced_config_map("default", configmap("maybe"))
    except ApiException as e:
        assert e.status == 500
    else:
        raise AssertionError("expected an injected 500")
    fake_cluster.faults.reset()
    assert fake_cluster.get("configmaps", "maybe", "default") is not None
    try:  # the retry of an ambiguous create meets AlreadyExists
        core.create_namespaced_config_map("default", configmap("maybe"))
    except ApiException as e:
        assert e.status == 409
    else:
        raise AssertionError("expected AlreadyExists")


def test_faults_limited_to_resources(
    fake_cluster: FakeCluster, k8s_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(k8s_client)
    fake_cluster.faults.configure(write_error_rate=1.0, resources=["secrets"])
    core.create_namespaced_config_map("default", configmap("fine"))
    try:
        core.create_namespaced_secret("default", {"metadata": {"name": "s"}})
    except ApiException as e:
        assert e.status in (500, 429)
    else:
        raise AssertionError("expected a fault")


def test_request_counters(fake_cluster: FakeCluster, k8s_client: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s_client)
    fake_cluster.requests.reset()
    core.create_namespaced_config_map("default", configmap("a"))
    core.patch_namespaced_config_map("a", "default", {"data": {"x": "1"}})
    core.read_namespaced_config_map("a", "default")
    core.list_namespaced_config_map("default")
    core.delete_namespaced_config_map("a", "default")
    counts = fake_cluster.requests.snapshot()
    assert counts == {
        ("create", "configmaps"): 1,
        ("patch", "configmaps"): 1,
        ("get", "configmaps"): 1,
        ("list", "configmaps"): 1,
        ("delete", "configmaps"): 1,
    }
    assert fake_cluster.requests.writes() == 3 and fake_cluster.requests.writes("configmaps") == 3


def test_http_control_endpoints(fake_cluster: FakeCluster, k8s_client: client.ApiClient) -> None:
    def call(method: str, path: str, body: object = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            fake_cluster.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as response:
            return json.loads(response.read())

    call("POST", "/_fake/requests/reset")
    config = call(
        "PUT",
        "/_fake/faults",
        {"write_error_rate": 1.0, "write_error_codes": [429], "retry_after_seconds": 3},
    )
    assert config["config"]["write_error_rate"] == 1.0
    try:
        client.CoreV1Api(k8s_client).create_namespaced_config_map("default", configmap("x"))
    except ApiException as e:
        assert (e.status, e.headers["Retry-After"]) == (429, "3")
    else:
        raise AssertionError("expected 429")
    faults = call("GET", "/_fake/faults")
    assert faults["injected"] == [
        {"verb": "create", "resource": "configmaps", "code": 429, "count": 1}
    ]
    requests = call("GET", "/_fake/requests")
    assert requests["counts"] == [{"verb": "create", "resource": "configmaps", "count": 1}]
    assert requests["writes"] == 1
    call("POST", "/_fake/faults/reset")
    assert fake_cluster.faults.config.write_error_rate == 0.0


def test_random_watch_drops_end_streams(
    fake_cluster: FakeCluster, k8s_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(k8s_client)
    for i in range(20):
        core.create_namespaced_config_map("default", configmap(f"c{i}"))
    fake_cluster.faults.configure(watch_drop_rate=0.5, watch_drop_mode="reset", seed=3)
    streams = []
    for _ in range(5):
        resp = core.list_namespaced_config_map(
            "default", watch=True, _preload_content=False, timeout_seconds=2
        )
        try:
            data = resp.read()
        except Exception as e:  # a reset stream breaks mid-response
            data = repr(e).encode()
        finally:
            resp.release_conn()
        streams.append(data)
    assert fake_cluster.faults.dropped_watches == 5
    assert all(
        len([line for line in s.splitlines() if line.startswith(b"{")]) < 20 for s in streams
    )


def test_stop_leaves_no_threads_or_processes(tmp_path) -> None:
    before = set(threading.enumerate())
    cluster = FakeCluster().start()
    cluster.create(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "sleepy"},
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "c", "image": "i:1", "command": ["sleep", "30"]}],
                    }
                }
            },
        }
    )
    assert cluster.kubelet is not None
    cluster.wait_for(lambda: cluster.kubelet.processes())  # type: ignore[union-attr]
    [process] = cluster.kubelet.processes().values()
    with cluster.api_client() as api:  # a watch that is still open at stop()
        resp = client.CoreV1Api(api).list_namespaced_pod(
            "default", watch=True, _preload_content=False
        )
        cluster.stop()
        resp.read()
        resp.release_conn()
    leaked = set(threading.enumerate()) - before
    assert leaked == set(), [(t.name, t.daemon) for t in leaked]
    pid = int(process.container_id.removeprefix("process://"))
    try:
        __import__("os").kill(pid, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError(f"process {pid} survived stop()")
    assert cluster.internal_errors == []


def test_injected_forbidden_looks_like_rbac(
    fake_cluster: FakeCluster, k8s_client: client.ApiClient
) -> None:
    fake_cluster.faults.configure(
        write_error_rate=1.0, write_error_codes=(403,), resources=["configmaps"]
    )
    try:
        client.CoreV1Api(k8s_client).create_namespaced_config_map("default", configmap("x"))
    except ApiException as e:
        body = json.loads(e.body)
        assert (e.status, body["reason"]) == (403, "Forbidden")
        assert body["message"] == (
            'configmaps is forbidden: User "system:anonymous" cannot create resource '
            '"configmaps" in API group "" in the namespace "default"'
        )
    else:
        raise AssertionError("expected 403")
