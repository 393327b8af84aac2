"""The controller's status ConfigMaps (k8sco.kube.overflow.StatusStore) against an
in-memory API: written only when their content changes, guarded by resourceVersion, read
again when the Pipeline refers to another content than the copy in memory, and a missing
one fails the Pipeline rather than letting its nodes run again."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from k8sco.errors import Conflict, NotFound, PipelineError
from k8sco.kube.overflow import StatusStore
from k8sco.render import overflow

UID = "u-1"


class Api:
    """ConfigMaps in memory, with resourceVersions and the API's errors."""

    def __init__(self) -> None:
        self.maps: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.rv = 0

    def ns_path(self, group_path: str, plural: str, namespace: str | None = None) -> str:
        return f"{group_path}/namespaces/{namespace}/{plural}"

    def request(self, method: str, path: str, *, body: Any = None) -> Any:
        name = path.rsplit("/", 1)[1] if method in ("GET", "PUT") else body["metadata"]["name"]
        self.calls.append((method, name))
        if method == "GET":
            if name not in self.maps:
                raise NotFound(f"configmaps {name!r} not found")
            return copy.deepcopy(self.maps[name])
        if method == "POST" and name in self.maps:
            raise Conflict(f"configmaps {name!r} already exists")
        if method == "PUT":
            current = self.maps.get(name)
            if current is None:
                raise NotFound(name)
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                raise Conflict("the object has been modified")
        self.rv += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.rv)
        self.maps[name] = stored
        return copy.deepcopy(stored)


def pipeline(status: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "k8sco.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "p", "namespace": "ns", "uid": UID, "labels": {"a": "b"}},
        "spec": {"tree": "{}"},
    }
    if status is not None:
        obj["status"] = status
    return obj


def records(count: int, state: str = "running") -> dict[str, Any]:
    return {str(i): {"s": state, "t": i, "r": "x" * 100} for i in range(1, count + 1)}


@pytest.fixture(autouse=True)
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overflow, "PIPELINE_BUDGET", 3000)
    monkeypatch.setattr(overflow, "SHARD_NODES", 10)


def run(store: StatusStore, obj: dict[str, Any], nodes: dict[str, Any]) -> dict[str, Any]:
    """One reconciliation's write: the whole status as decided, the Pipeline patched."""
    view = store.view(obj)
    patch = overflow.merge_patch(view.get("status") or {}, {"phase": "Running", "nodes": nodes})
    inline = store.store(obj, patch)
    obj["status"] = overflow.apply_patch(obj.get("status") or {}, inline)
    return obj


def test_only_changed_configmaps_are_written_and_read_back_whole() -> None:
    api = Api()
    store = StatusStore(api)
    obj = run(store, pipeline(), records(30))
    assert overflow.level_of(obj["status"]) >= 1
    assert sorted(api.maps) == [overflow.status_configmap_name("p", UID, k) for k in range(4)]
    for cm in api.maps.values():
        assert cm["metadata"]["ownerReferences"][0]["uid"] == UID
        assert cm["metadata"]["labels"] == {
            "a": "b",
            "k8sco.io/pipeline": "p",
            "k8sco.io/overflow": "status",
        }
    api.calls.clear()
    changed = records(30)
    changed["12"] = {"s": "error", "t": 12, "r": "failed 4 times"}
    obj = run(store, obj, changed)
    assert api.calls == [("PUT", overflow.status_configmap_name("p", UID, 1))]
    fresh = StatusStore(api)  # a restarted controller reads them back
    assert fresh.view(obj)["status"]["nodes"] == changed


def test_a_copy_another_controller_changed_is_read_again() -> None:
    api = Api()
    mine, other = StatusStore(api), StatusStore(api)
    obj = run(mine, pipeline(), records(30))
    newer = records(30)
    newer["5"] = {"s": "done", "t": 5, "f": 9}
    obj = run(other, copy.deepcopy(obj), newer)  # the other leader wrote meanwhile
    assert mine.view(obj)["status"]["nodes"] == newer


def test_a_stale_write_conflicts() -> None:
    api = Api()
    mine, other = StatusStore(api), StatusStore(api)
    obj = run(mine, pipeline(), records(30))
    before = copy.deepcopy(obj)
    run(other, obj, {**records(30), "3": {"s": "done", "t": 3, "f": 4}})
    stale = {**records(30), "4": {"s": "done", "t": 4, "f": 5}}
    with pytest.raises(Conflict):
        run(mine, before, stale)


def test_a_missing_configmap_fails_the_pipeline() -> None:
    api = Api()
    obj = run(StatusStore(api), pipeline(), records(30))
    del api.maps[overflow.status_configmap_name("p", UID, 2)]
    with pytest.raises(PipelineError, match=r"status ConfigMap p-status-\w+-2 is gone"):
        StatusStore(api).view(obj)


def test_small_pipelines_make_no_request() -> None:
    api = Api()
    obj = run(StatusStore(api), pipeline(), records(3))
    assert api.calls == [] and "overflow" not in obj["status"]
