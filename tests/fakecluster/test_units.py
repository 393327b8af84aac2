"""The pure pieces: selectors, patches, schema pruning, JSONPath, ages, printer cells; and
the work queue's timers."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from . import crds, meta, patching, tables
from .cluster import ClusterConfig
from .errors import ApiError
from .faults import Faults
from .loops import ApiFirst, Loop
from .registry import Registry
from .resources import BUILTINS, Resources
from .selectors import FieldSelector, Filter, LabelSelector
from .store import Store
from .watch import Watch, WatchRequest

PODS = next(rt for rt in BUILTINS if rt.plural == "pods")


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "c"}, False),
        ("a!=b", {}, True),  # != also matches objects without the key
        ("a in (x, y)", {"a": "y"}, True),
        ("a notin (x,y),b", {"a": "z", "b": ""}, True),
        ("!a", {"a": "1"}, False),
        ("a,b=c", {"a": "1", "b": "d"}, False),
        ("k8sco.io/pipeline=p1", {"k8sco.io/pipeline": "p1"}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert LabelSelector.parse(selector).matches(labels) is expected


def test_label_selector_errors_and_objects() -> None:
    with pytest.raises(ApiError) as exc:
        LabelSelector.parse("a=b c")
    assert exc.value.code == 400
    sel = LabelSelector.from_object(
        {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "DoesNotExist"}]}
    )
    assert str(sel) == "a=1,!b"
    assert sel.matches({"a": "1"}) and not sel.matches({"a": "1", "b": "2"})


def test_field_selectors() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "n"},
        "spec": {"hostNetwork": False},
        "status": {"phase": "Running"},
    }
    assert FieldSelector.parse("status.phase=Running,metadata.name!=q", PODS).matches(PODS, pod)
    assert FieldSelector.parse("spec.hostNetwork=false", PODS).matches(PODS, pod)
    with pytest.raises(ApiError) as exc:
        FieldSelector.parse("spec.containers=x", PODS)
    assert (exc.value.code, exc.value.message) == (
        400,
        "field label not supported: spec.containers",
    )


def test_strategic_merge_directives() -> None:
    live = {
        "metadata": {"finalizers": ["a"], "labels": {"x": "1", "y": "2"}},
        "spec": {
            "containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}],
            "tolerations": [{"key": "t"}],
        },
    }
    patch = {
        "metadata": {"finalizers": ["b"], "labels": {"y": None}},
        "spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [{"name": "a", "$patch": "delete"}, {"name": "c", "image": "c:1"}],
            "tolerations": [{"key": "u"}],
        },
    }
    merged = patching.strategic_merge_patch(live, patch)
    assert merged["metadata"] == {"finalizers": ["a", "b"], "labels": {"x": "1"}}
    assert [c["name"] for c in merged["spec"]["containers"]] == ["b", "c"]
    assert merged["spec"]["tolerations"] == [{"key": "u"}]  # no merge key: replaced
    replaced = patching.strategic_merge_patch(live, {"spec": {"$patch": "replace", "x": 1}})
    assert replaced["spec"] == {"x": 1}
    retained = patching.strategic_merge_patch({"a": 1, "b": 2}, {"$retainKeys": ["b", "c"], "c": 3})
    assert retained == {"b": 2, "c": 3}


def test_json_patch_operations() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}}
    ops = [
        {"op": "add", "path": "/a/-", "value": 3},
        {"op": "move", "from": "/b/c", "path": "/d"},
        {"op": "copy", "from": "/d", "path": "/e"},
        {"op": "remove", "path": "/a/0"},
        {"op": "test", "path": "/e", "value": 1},
    ]
    assert patching.json_patch(doc, ops) == {"a": [2, 3], "b": {}, "d": 1, "e": 1}
    with pytest.raises(patching.PatchError):
        patching.json_patch(doc, [{"op": "replace", "path": "/missing", "value": 1}])


def test_schema_pruning() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"keep": {"type": "string"}}},
            "status": {
                "type": "object",
                "properties": {
                    "nodes": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {"state": {"type": "string"}},
                        },
                    }
                },
            },
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "empty": {"type": "object"},
        },
    }
    obj = {
        "apiVersion": "v",
        "kind": "K",
        "metadata": {"name": "n"},
        "spec": {"keep": "x", "drop": 1},
        "status": {"nodes": {"/a": {"state": "done", "extra": 1}}},
        "free": {"any": {"thing": 1}},
        "empty": {"gone": 1},
        "top": 1,
    }
    pruned, dropped = crds.prune(obj, schema)
    assert pruned["spec"] == {"keep": "x"} and pruned["status"]["nodes"] == {
        "/a": {"state": "done"}
    }
    assert pruned["free"] == {"any": {"thing": 1}} and pruned["empty"] == {} and "top" not in pruned
    assert sorted(dropped) == ["empty.gone", "spec.drop", "status.nodes./a.extra", "top"]


def test_an_update_is_checked_where_it_differs_from_the_stored_object() -> None:
    """What a merge patch leaves alone is shared with the stored object and not walked
    again; what it changes is pruned and validated as before."""
    schema = {
        "type": "object",
        "properties": {
            "status": {
                "type": "object",
                "properties": {
                    "nodes": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {"s": {"type": "string", "enum": ["done", "error"]}},
                        },
                    }
                },
            }
        },
    }
    stored = {"metadata": {"name": "n"}, "status": {"nodes": {"0": {"s": "done"}}}}
    patched = patching.merge_patch(stored, {"status": {"nodes": {"1": {"s": "lost", "x": 1}}}})
    assert patched["status"]["nodes"]["0"] is stored["status"]["nodes"]["0"]
    pruned, dropped = crds.prune(patched, schema, stored)
    assert dropped == ["status.nodes.1.x"]
    assert pruned["status"]["nodes"]["0"] is stored["status"]["nodes"]["0"]
    errors = crds.validate(pruned, schema, stored)
    assert [e.field for e in errors] == ["status.nodes.1.s"]
    # A value the stored object holds is not checked again (it was, when it was stored)...
    stored["status"]["nodes"]["0"]["s"] = "lost"
    assert crds.validate(pruned, schema, stored) == errors
    # ...but an equal copy is: sharing, not equality, says a value was checked.
    copy = {"metadata": {"name": "n"}, "status": {"nodes": {"0": {"s": "lost"}}}}
    assert [e.field for e in crds.validate(copy, schema, stored)] == ["status.nodes.0.s"]


def test_jsonpath_subset() -> None:
    obj = {
        "status": {
            "conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]
        },
        "l": [1],
    }
    assert crds.jsonpath(obj, '.status.conditions[?(@.type=="Ready")].status') == "True"
    assert crds.jsonpath(obj, ".l[0]") == 1
    assert crds.jsonpath(obj, ".status.missing") is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600 + 60, "3h1m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 3600, "3d1h"),
        (400 * 86400, "400d"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert meta.human_duration(seconds) == text


def test_job_printer_cells() -> None:
    job = {
        "metadata": {"name": "j", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {
            "parallelism": 3,
            "template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}},
        },
        "status": {
            "succeeded": 1,
            "startTime": "2024-01-01T00:00:00Z",
            "conditions": [{"type": "Suspended", "status": "True"}],
        },
    }
    cells = tables.job_cells(job, meta.parse_time("2024-01-01T00:01:00Z") or 0)
    assert cells[:5] == ["j", "Suspended", "1/1 of 3", "60s", "60s"]


# -- the store's indexes: what they answer is what a scan would ------------------------------


def _cm(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}}


def test_store_label_index_follows_relabels_and_removals() -> None:
    key = ("", "configmaps")
    store = Store()
    store.put(key, _cm("a", "ns1", {"app": "x", "tier": "1"}))
    store.put(key, _cm("b", "ns1", {"app": "y"}))
    store.put(key, _cm("c", "ns2", {"app": "x"}))

    def names(objs: list[dict[str, Any]]) -> list[str]:
        return [o["metadata"]["name"] for o in objs]

    assert names(store.labeled(key, None, "app", ["x"])) == ["a", "c"]
    assert names(store.labeled(key, "ns1", "app", ["x", "y"])) == ["a", "b"]
    store.put(key, _cm("a", "ns1", {"app": "y"}))  # relabelled: a new object, a new dict
    assert names(store.labeled(key, None, "app", ["x"])) == ["c"]
    assert names(store.labeled(key, None, "tier", ["1"])) == []
    store.remove(key, _cm("c", "ns2", {}))
    assert names(store.labeled(key, None, "app", ["x"])) == []
    assert names(store.labeled(key, None, "app", ["y"])) == ["a", "b"]
    assert store.count(key, "ns1") == 2 and store.count(key, "ns2") == 0


def test_store_next_events_of_one_resource_catch_up_past_the_others() -> None:
    pods, events = ("", "pods"), ("", "events")
    store = Store(history_window=3)
    start = store.rv
    for i in range(10):  # more events of another resource than the history keeps
        store.put(events, _cm(f"e{i}", "ns", {}))
    rv, got = store.next_events(pods, start + 9, timeout=0)
    assert (rv, got) == (store.rv, [])
    store.put(pods, _cm("p", "ns", {}))
    rv, got = store.next_events(pods, rv, timeout=0)
    assert rv == store.rv and [e.key for e in got] == [pods]
    with pytest.raises(ApiError) as exc:  # a watch from a forgotten version: 410 Expired
        store.next_events(pods, start, timeout=0)
    assert exc.value.code == 410


def test_a_watch_writes_the_events_already_there_at_once() -> None:
    # kube-apiserver flushes a watch only when no other event waits in its channel
    # (handlers/watch.go): a burst of changes reaches the client in one write, each event
    # still a chunk (a line) of its own.
    store = Store()
    registry = Registry(store, Resources())
    closing = threading.Event()
    watch = Watch(store, registry, Faults(), closing, bookmark_interval=60)
    key = ("", "configmaps")
    req = WatchRequest(flt=Filter(registry.rt(key)), resource_version=store.format_rv(store.rv))
    writes: list[list[bytes]] = []

    def send(lines: Sequence[bytes]) -> None:
        writes.append(list(lines))

    thread = threading.Thread(target=watch.run, args=(req, watch.start(req), send))
    with store.lock:  # the watch cannot read the events until all five are stored
        thread.start()
        for i in range(5):
            store.put(key, _cm(f"c{i}", "ns", {}))
    deadline = time.monotonic() + 10
    while not writes and time.monotonic() < deadline:
        time.sleep(0.01)
    closing.set()
    store.close()
    thread.join(10)
    assert [[json.loads(line)["object"]["metadata"]["name"] for line in w] for w in writes] == [
        ["c0", "c1", "c2", "c3", "c4"]
    ]


def test_a_coalesced_wake_up_keeps_the_sooner_time_and_runs_once() -> None:
    """As client-go's delaying queue: an item waiting twice is processed once, at the
    sooner of its times (how the Job controller's batched syncs gather a pod's events)."""
    done: list[tuple[str, float]] = []
    errors: list[str] = []
    loop = Loop("test", lambda item: done.append((item, time.monotonic())), errors)
    loop.start()
    try:
        start = time.monotonic()
        loop.add_after("job", 0.6, coalesce=True)
        loop.add_after("job", 0.2, coalesce=True)
        loop.add_after("job", 0.4, coalesce=True)
        deadline = start + 10
        while not done and time.monotonic() < deadline:
            time.sleep(0.01)
        while time.monotonic() < start + 1.0:  # past every time asked for
            time.sleep(0.05)
    finally:
        loop.stop()
    assert [item for item, _ in done] == ["job"]
    assert done[0][1] - start >= 0.2
    assert not errors


def wait_until(check: Any, limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while not check() and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(check())


def test_with_api_first_a_loop_item_waits_for_the_requests_being_answered() -> None:
    gate = ApiFirst(cap=60.0)
    done: list[str] = []
    errors: list[str] = []
    loop = Loop("test", done.append, errors)
    loop.gate = gate
    loop.start()
    try:
        gate.begin()  # a request comes in
        loop.add("sync")
        time.sleep(0.3)
        assert done == []  # held while it is answered
        gate.end()
        assert wait_until(lambda: done == ["sync"])
    finally:
        loop.stop()
    assert not errors


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("api_first", math.inf),
        ("api_first", -0.001),
        ("job_sync_batch_period", math.nan),
        ("gc_delay", -1),
        ("bookmark_interval", 0),
        ("max_grace_seconds", "3"),
    ],
)
def test_cluster_config_refuses_a_time_it_cannot_wait(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"^ClusterConfig\.{option}: "):
        ClusterConfig(**{option: value})


def test_cluster_config_takes_zero_and_no_grace_cap() -> None:
    config = ClusterConfig(api_first=0, gc_delay=0, max_grace_seconds=None)
    assert (config.api_first, config.gc_delay, config.max_grace_seconds) == (0, 0, None)


def test_api_first_holds_an_item_at_most_its_cap() -> None:
    """Requests that never stop coming must not stop the simulated controllers."""
    gate = ApiFirst(cap=0.2)
    done: list[str] = []
    loop = Loop("test", done.append, [])
    loop.gate = gate
    loop.start()
    try:
        gate.begin()  # never answered
        loop.add("a")
        loop.add("b")
        assert wait_until(lambda: done == ["a", "b"])
    finally:
        loop.stop()
