"""An in-memory API for the controller's unit tests: objects by URL, no HTTP. Requests may
come from several threads (the controller sends a batch of Job creates at once): each is
answered whole, one at a time, as one API server would.

It answers the few requests the controller makes (create, get, list, merge-patch status
with an optional resourceVersion precondition, delete) the way the API server does, with
opaque resourceVersions; ``fail`` makes the next matching requests raise the given error.
"""

from __future__ import annotations

import copy
import itertools
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from k8sco.errors import ClusterError, Conflict, NotFound


def api_error(status: int, message: str, reason: str = "") -> ClusterError:
    cls: type[ClusterError] = {404: NotFound, 409: Conflict}.get(status, ClusterError)
    err = cls(message)
    err.status, err.reason = status, reason
    err.retryable = status == 429 or status >= 500
    return err


def merge(old: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(old)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class FakeApi:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.objects: dict[str, dict[str, Any]] = {}  # collection URL + "/" + name
        self.calls: list[tuple[str, str]] = []
        self.failures: list[tuple[str, str, ClusterError, int]] = []
        self._rvs = itertools.count(1)
        self._lock = threading.RLock()

    # --- what tests use --------------------------------------------------------------

    def fail(self, method: str, url_part: str, error: ClusterError, times: int = 1) -> None:
        """The next ``times`` requests with ``method`` whose URL contains ``url_part``."""
        self.failures.append((method, url_part, error, times))

    def put(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` as a controller of the cluster would (no checks)."""
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", uuid.uuid4().hex)
        meta.setdefault("creationTimestamp", _stamp(self.clock()))
        meta["resourceVersion"] = self._rv()
        self.objects[f"{collection}/{meta['name']}"] = obj
        return copy.deepcopy(obj)

    def items(self, collection: str) -> list[dict[str, Any]]:
        prefix = collection + "/"
        return [
            copy.deepcopy(v)
            for k, v in self.objects.items()
            if k.startswith(prefix) and "/" not in k[len(prefix) :]
        ]

    def count(self, method: str, url_part: str) -> int:
        return sum(1 for m, u in self.calls if m == method and url_part in u)

    # --- the Api protocol -------------------------------------------------------------

    def ns_path(self, group_path: str, plural: str, namespace: str | None = None) -> str:
        return f"{group_path}/namespaces/{namespace or 'default'}/{plural}"

    def watch(
        self, path: str, *, resource_version: str, selector: Mapping[str, str], timeout: int
    ) -> Iterator[dict[str, Any]]:
        return iter(())

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
        retry: bool = True,
        raw: bool = False,
        accept: str = "application/json",
    ) -> Any:
        with self._lock:
            return self._answer(method, path, query, body)

    def _answer(self, method: str, path: str, query: Mapping[str, Any] | None, body: Any) -> Any:
        self.calls.append((method, path))
        for i, (m, part, error, times) in enumerate(self.failures):
            if m == method and part in path:
                if times <= 1:
                    del self.failures[i]
                else:
                    self.failures[i] = (m, part, error, times - 1)
                raise error
        if method == "POST":
            name = body["metadata"]["name"]
            if f"{path}/{name}" in self.objects:
                raise api_error(409, f'jobs.batch "{name}" already exists', "AlreadyExists")
            return self.put(path, copy.deepcopy(body))
        if method == "GET":
            if path in self.objects:
                return copy.deepcopy(self.objects[path])
            if path.rsplit("/", 1)[-1] not in ("pods", "events", "jobs", "pipelines"):
                raise api_error(404, f"{path} not found")
            return {"items": [o for o in self.items(path) if _selected(o, query or {})]}
        if method == "PATCH":
            target = path.removesuffix("/status")
            old = self.objects.get(target)
            if old is None:
                raise api_error(404, f"{target} not found")
            want = (body.get("metadata") or {}).get("resourceVersion")
            if want and want != old["metadata"]["resourceVersion"]:
                raise api_error(409, "the object has been modified", "Conflict")
            new = merge(old, {k: v for k, v in body.items() if k != "metadata"})
            new["metadata"]["resourceVersion"] = self._rv()
            self.objects[target] = new
            return copy.deepcopy(new)
        if method == "DELETE":
            if self.objects.pop(path, None) is None:
                raise api_error(404, f"{path} not found")
            return {}
        raise AssertionError(f"unexpected {method} {path}")

    def _rv(self) -> str:
        # Opaque: not numbers, and not in any order a client could rely on.
        return uuid.uuid5(uuid.NAMESPACE_OID, str(next(self._rvs))).hex[:10]


def _selected(obj: Mapping[str, Any], query: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata") or {}
    for term in filter(None, str(query.get("labelSelector", "")).split(",")):
        key, value = term.split("=", 1)
        if (meta.get("labels") or {}).get(key) != value:
            return False
    for term in filter(None, str(query.get("fieldSelector", "")).split(",")):
        key, value = term.split("=", 1)
        node: Any = obj
        for part in key.split("."):
            node = (node or {}).get(part) if isinstance(node, Mapping) else None
        if str(node) != value:
            return False
    return True


def _stamp(seconds: float) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
