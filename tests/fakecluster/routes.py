"""The API front: maps Kubernetes REST paths and verbs onto discovery, the registry, watch
streams and pod logs; counts requests and injects faults. Control endpoints under /_fake/."""

from __future__ import annotations

import dataclasses
import json
import threading
import traceback
from dataclasses import dataclass
from typing import Any

from . import discovery, errors, logs, patching
from .errors import ApiError
from .faults import Faults, RequestCounter
from .podspec import evict
from .rbac import Attributes, Rbac, User, forbidden
from .registry import DeleteOptions, Registry, WriteContext
from .resources import Resources, ResourceType
from .selectors import FieldSelector, Filter, LabelSelector
from .server import Request
from .tables import row_object, to_table, wants_table
from .watch import DropStream, Watch, WatchRequest

_WRITE_CONTENT_TYPES = (
    "application/json",
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "",
)


@dataclass(frozen=True)
class Target:
    rt: ResourceType
    namespace: str | None  # None: a cluster-scoped resource, or all namespaces
    name: str | None
    subresource: str
    watch_path: bool


class Api:
    def __init__(
        self,
        registry: Registry,
        watch: Watch,
        faults: Faults,
        requests: RequestCounter,
        closing: threading.Event,
        log_provider: logs.LogProvider | None,
        watch_timeout: float = 1800.0,
        rbac: Rbac | None = None,
    ) -> None:
        self.registry = registry
        self.resources: Resources = registry.resources
        self.watch = watch
        self.faults = faults
        self.requests = requests
        self.closing = closing
        self.log_provider = log_provider
        self.watch_timeout = watch_timeout
        self.rbac = rbac
        self.server_address = ""
        self.internal_errors: list[str] = []

    # -- entry --------------------------------------------------------------------------

    def handle(self, req: Request) -> None:
        try:
            req.body()  # always consume the body, or it would be read as the next request
            self._route(req)
        except ApiError as e:
            if not req.responded:
                req.send_json(e.code, e.status(), e.headers)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            req.handler.close_connection = True
        except Exception:
            self.internal_errors.append(traceback.format_exc())
            if not req.responded:
                req.send_json(500, errors.internal("fakecluster: unexpected error").status())
            else:
                req.handler.close_connection = True

    def _route(self, req: Request) -> None:
        path = req.path.rstrip("/") or "/"
        if path.startswith("/_fake/"):
            return self._control(req, path)
        user = self.rbac.authenticate(req.headers.get("Authorization")) if self.rbac else None
        req.user = user
        if user is not None and not self._is_resource_path(path):
            verb = req.method.lower()
            attrs = Attributes(user, verb, False, path=req.path)
            assert self.rbac is not None
            if not self.rbac.allowed(attrs)[0]:
                raise forbidden(attrs, None)
        simple = self._simple(path)
        if simple is not None:
            if req.method not in ("GET", "HEAD"):
                raise errors.method_not_allowed(req.method)
            if isinstance(simple, bytes):
                return req.send_bytes(200, "text/plain; charset=utf-8", simple)
            return req.send_json(200, simple)
        target = self._target(path.strip("/").split("/"))
        verb = self._verb(req, target)
        label = target.rt.plural + (f"/{target.subresource}" if target.subresource else "")
        self.requests.record(verb, label)
        if user is not None:
            attrs = self._attributes(user, req, verb, target)
            assert self.rbac is not None
            if not self.rbac.allowed(attrs)[0]:
                raise forbidden(attrs, target.rt)
        injected = self.faults.for_request(verb, label)
        if injected is not None and not injected.after_commit:
            raise self._fault(injected.code, verb, target)
        if injected is not None:  # apply the write, but answer with the error
            getattr(self, f"_{verb}")(_Muted(req), target)
            raise self._fault(injected.code, verb, target)
        getattr(self, f"_{verb}")(req, target)
        return None

    def _is_resource_path(self, path: str) -> bool:
        """Resource requests as apiserver's RequestInfoFactory tells them from discovery:
        /api/v1/<resource>… and /apis/<group>/<version>/<resource>…."""
        parts = path.strip("/").split("/")
        return (parts[0] == "api" and len(parts) > 2) or (parts[0] == "apis" and len(parts) > 3)

    def _attributes(self, user: User, req: Request, verb: str, t: Target) -> Attributes:
        name = t.name or ""
        if verb in ("list", "watch") and not name:
            # RequestInfo takes the name of a list/watch from a metadata.name field selector.
            for term in (req.query.get("fieldSelector") or "").split(","):
                key, _, value = term.partition("=")
                if key.strip() == "metadata.name" and not value.startswith("="):
                    name = value.strip()
                elif key.strip() == "metadata.name":
                    name = value[1:].strip()
        return Attributes(
            user,
            verb,
            True,
            namespace=t.namespace or "",
            api_group=t.rt.group,
            resource=t.rt.plural,
            subresource=t.subresource,
            name=name,
        )

    def _review(self, req: Request, body: Any) -> dict[str, Any]:
        """A SelfSubjectAccessReview, answered for the requesting user."""
        review = dict(body or {})
        spec = review.get("spec") or {}
        user: User | None = req.user
        if user is None or self.rbac is None:
            review["status"] = {"allowed": True, "reason": "fakecluster: cluster admin"}
            return review
        res, nonres = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if res is not None:
            attrs = Attributes(
                user,
                res.get("verb") or "",
                True,
                namespace=res.get("namespace") or "",
                api_group=res.get("group") or "",
                resource=res.get("resource") or "",
                subresource=res.get("subresource") or "",
                name=res.get("name") or "",
            )
        elif nonres is not None:
            attrs = Attributes(user, nonres.get("verb") or "", False, path=nonres.get("path") or "")
        else:
            raise errors.unprocessable(
                'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: '
                'spec.resourceAttributes: Invalid value: "null": exactly one of '
                "nonResourceAttributes or resourceAttributes must be specified"
            )
        allowed, reason = self.rbac.allowed(attrs)
        review["status"] = {"allowed": allowed, **({"reason": reason} if reason else {})}
        return review

    def _fault(self, code: int, verb: str, t: Target) -> ApiError:
        """An injected error, with the body the apiserver would send for that code."""
        rt, name = t.rt, t.name or ""
        if code == 429:
            return errors.too_many_requests(self.faults.config.retry_after_seconds)
        if code == 403:
            where = f' in the namespace "{t.namespace}"' if t.namespace else ""
            resource = rt.plural + (f"/{t.subresource}" if t.subresource else "")
            problem = (
                f'User "system:anonymous" cannot {verb} resource "{resource}" in API group '
                f'"{rt.group}"{where}'
            )
            return errors.forbidden(rt, name, problem)
        if code == 404:
            return errors.not_found(rt, name)
        if code == 409:
            return errors.conflict(rt, name)
        if code == 410:
            return errors.expired("too old resource version")
        if code in (500, 503, 504):
            reason = {500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}[code]
            message = {
                500: "Internal error occurred: fakecluster: injected fault",
                503: "the server is currently unable to handle the request",
                504: "the server was unable to return a response in the time allotted",
            }[code]
            return ApiError(code, reason, message, {"causes": [{"message": "injected fault"}]})
        return ApiError(
            code, "BadRequest" if code == 400 else "Unknown", f"fakecluster: injected {code}"
        )

    def _simple(self, path: str) -> Any:
        res = self.resources
        if path == "/version":
            return discovery.VERSION
        if path in ("/healthz", "/livez", "/readyz"):
            return b"ok"
        if path == "/api":
            return discovery.api_versions(self.server_address)
        if path == "/apis":
            return discovery.api_group_list(res)
        if path == "/openapi/v3":
            return discovery.openapi_v3_root(res)
        if path.startswith("/openapi/v3/"):
            doc = discovery.openapi_v3_group_version(res, path[len("/openapi/v3/") :])
            if doc is None:
                raise errors.unknown_resource()
            return doc
        if path == "/":
            return {"paths": ["/api", "/api/v1", "/apis", "/openapi/v3", "/version"]}
        parts = path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 2:
            return discovery.api_group(res, parts[1]) or _raise(errors.unknown_resource())
        if (parts[0] == "api" and len(parts) == 2) or (parts[0] == "apis" and len(parts) == 3):
            group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            return discovery.api_resource_list(res, group, version) or _raise(
                errors.unknown_resource()
            )
        return None

    def _target(self, parts: list[str]) -> Target:
        if parts[0] == "api" and len(parts) > 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) > 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise errors.unknown_resource()
        watch_path = rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            rt = self.resources.lookup(group, version, rest[2])
            if rt is not None and rt.namespaced:
                namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise errors.unknown_resource()
        rt = self.resources.lookup(group, version, rest[0])
        if rt is None:
            raise errors.unknown_resource()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        if (rt.namespaced and namespace is None and name is not None) or (
            sub and sub not in rt.subresources
        ):
            raise errors.unknown_resource()
        return Target(rt, namespace, name, sub, watch_path)

    def _verb(self, req: Request, t: Target) -> str:
        m = req.method
        if m in ("GET", "HEAD"):
            if t.name is None or t.watch_path:
                watching = t.watch_path or req.query.get("watch") in ("true", "1")
                return "watch" if watching else "list"
            return "get"
        if (
            m == "POST"
            and (t.name is None or t.subresource == "eviction")
            and (t.namespace or not t.rt.namespaced)
        ):
            return "create"
        if m == "PUT" and t.name is not None:
            return "update"
        if m == "PATCH" and t.name is not None:
            return "patch"
        if m == "DELETE" and not t.subresource and (t.namespace or not t.rt.namespaced):
            return "delete" if t.name is not None else "deletecollection"
        raise errors.method_not_allowed(m)

    # -- reads --------------------------------------------------------------------------

    def _get(self, req: Request, t: Target) -> None:
        assert t.name is not None
        obj = self.registry.get(t.rt, t.namespace or "", t.name)
        if t.subresource == "log":
            return self._log(req, obj)
        if wants_table(req.accept):
            include = req.query.get("includeObject", "Metadata")
            return req.send_json(200, to_table(t.rt, [obj], include_object=include))
        if "as=PartialObjectMetadata;" in req.accept.replace(" ", "") + ";":
            # The object's metadata alone, as kubernetes staging/src/k8s.io/apiserver/pkg/
            # endpoints/handlers/response.go asPartialObjectMetadata answers (meta.k8s.io/v1).
            return req.send_json(200, row_object(obj, "Metadata"))
        return req.send_json(200, obj)

    def _filter(self, req: Request, t: Target) -> Filter:
        fields = FieldSelector.parse(req.query.get("fieldSelector"), t.rt)
        if t.watch_path and t.name is not None:
            fields = FieldSelector((*fields.terms, ("metadata.name", "=", t.name)))
        return Filter(
            t.rt, t.namespace, LabelSelector.parse(req.query.get("labelSelector")), fields
        )

    def _list(self, req: Request, t: Target) -> None:
        items, rv = self.registry.select(self._filter(req, t))
        if wants_table(req.accept):
            include = req.query.get("includeObject", "Metadata")
            return req.send_json(200, to_table(t.rt, items, rv, include))
        if not t.rt.is_custom:  # typed lists carry no per-item apiVersion/kind
            for item in items:
                item.pop("apiVersion", None)
                item.pop("kind", None)
        body = {
            "kind": f"{t.rt.kind}List",
            "apiVersion": t.rt.group_version,
            "metadata": {"resourceVersion": rv},
            "items": items,
        }
        return req.send_json(200, body)

    def _watch(self, req: Request, t: Target) -> None:
        q = req.query
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else self.watch_timeout
        wreq = WatchRequest(
            flt=self._filter(req, t),
            resource_version=q.get("resourceVersion"),
            bookmarks=q.get("allowWatchBookmarks") in ("true", "1"),
            timeout=timeout,
            send_initial_events=q.get("sendInitialEvents") in ("true", "1"),
            table=wants_table(req.accept),
            include_object=q.get("includeObject", "Metadata"),
        )
        start = self.watch.start(wreq)
        req.start_stream("application/json")
        try:
            self.watch.run(wreq, start, req.write_chunks)
        except DropStream:
            return req.abort()
        req.end_stream()
        return None

    def _log(self, req: Request, pod: dict[str, Any]) -> None:
        q = req.query
        lreq = logs.LogRequest(
            container=q.get("container") or None,
            follow=q.get("follow") in ("true", "1"),
            previous=q.get("previous") in ("true", "1"),
            tail_lines=int(q["tailLines"]) if q.get("tailLines") else None,
            limit_bytes=int(q["limitBytes"]) if q.get("limitBytes") else None,
        )
        source = logs.resolve(self.log_provider, pod, lreq)
        if not lreq.follow:
            return req.send_bytes(200, "text/plain", logs.read_all(source, lreq))
        uid = pod["metadata"]["uid"]
        key, ns, name = ("", "pods"), pod["metadata"]["namespace"], pod["metadata"]["name"]

        def gone() -> bool:
            current = self.registry.store.get(key, ns, name)
            return current is None or current["metadata"]["uid"] != uid

        req.start_stream("text/plain")
        logs.follow(source, lreq, req.write_chunk, self.closing, gone)
        req.end_stream()
        return None

    # -- writes -------------------------------------------------------------------------

    def _ctx(self, req: Request) -> WriteContext:
        q = req.query
        dry = q.get("dryRun")
        if dry not in (None, "", "All"):
            raise errors.bad_request(f'Invalid dry run value: "{dry}": supported values: "All"')
        validation = q.get("fieldValidation") or "Warn"
        if validation not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(
                f"fieldValidation must be one of Strict, Warn, Ignore; got {validation}"
            )
        manager = q.get("fieldManager") or ""
        if not manager and req.content_type != patching.APPLY_PATCH:
            manager = req.user_agent.split("/")[0][:128] or "unknown"
        return WriteContext(
            dry_run=dry == "All", field_manager=manager, field_validation=validation
        )

    def _body(self, req: Request, allowed: tuple[str, ...]) -> Any:
        if req.content_type not in allowed:
            raise errors.unsupported_media_type(req.content_type, [a for a in allowed if a])
        try:
            return req.decoded_body()
        except ValueError as e:
            raise errors.bad_request(f"failed to decode the request body: {e}") from e

    def _create(self, req: Request, t: Target) -> None:
        body = self._body(req, _WRITE_CONTENT_TYPES)
        if t.subresource == "eviction":
            assert t.name is not None
            return req.send_json(201, evict(self.registry, t.rt, t.namespace or "", t.name, body))
        if t.rt.plural == "selfsubjectaccessreviews":
            return req.send_json(201, self._review(req, body))
        ctx = self._ctx(req)
        obj = self.registry.create(t.rt, t.namespace or "", body, ctx)
        return req.send_json(201, obj, warnings=ctx.warnings)

    def _update(self, req: Request, t: Target) -> None:
        assert t.name is not None
        body = self._body(req, _WRITE_CONTENT_TYPES)
        ctx = self._ctx(req)
        obj = self.registry.update(t.rt, t.namespace or "", t.name, body, t.subresource, ctx)
        return req.send_json(200, obj, warnings=ctx.warnings)

    def _patch(self, req: Request, t: Target) -> None:
        assert t.name is not None
        body = self._body(req, patching.PATCH_TYPES)
        ctx = self._ctx(req)
        force = req.query.get("force") in ("true", "1")
        obj = self.registry.patch(
            t.rt, t.namespace or "", t.name, req.content_type, body, t.subresource, ctx, force
        )
        return req.send_json(200, obj, warnings=ctx.warnings)

    def _delete_options(self, req: Request) -> DeleteOptions:
        body: dict[str, Any] = {}
        if req.body().strip():
            body = self._body(req, _WRITE_CONTENT_TYPES) or {}
        q = req.query
        pre = body.get("preconditions") or {}
        grace = q.get("gracePeriodSeconds", body.get("gracePeriodSeconds"))
        orphan = q.get("orphanDependents", body.get("orphanDependents"))
        if isinstance(orphan, str):
            orphan = orphan == "true"
        if "All" in (body.get("dryRun") or []):
            req.query["dryRun"] = "All"
        return DeleteOptions(
            propagation_policy=q.get("propagationPolicy") or body.get("propagationPolicy"),
            orphan_dependents=orphan,
            grace_period_seconds=int(grace) if grace is not None else None,
            precondition_uid=pre.get("uid"),
            precondition_rv=pre.get("resourceVersion"),
        )

    def _delete(self, req: Request, t: Target) -> None:
        assert t.name is not None
        options = self._delete_options(req)
        code, body = self.registry.delete(t.rt, t.namespace or "", t.name, options, self._ctx(req))
        return req.send_json(code, body)

    def _deletecollection(self, req: Request, t: Target) -> None:
        options = self._delete_options(req)
        ctx = self._ctx(req)
        items, rv = self.registry.select(self._filter(req, t))
        deleted = []
        for item in items:
            meta = item["metadata"]
            try:
                _, body = self.registry.delete(
                    t.rt, meta.get("namespace", ""), meta["name"], options, ctx
                )
            except ApiError as e:
                if e.code != 404:
                    raise
                continue
            deleted.append(item if body.get("kind") == "Status" else body)
        body = {
            "kind": f"{t.rt.kind}List",
            "apiVersion": t.rt.group_version,
            "metadata": {"resourceVersion": rv},
            "items": deleted,
        }
        return req.send_json(200, body)

    # -- control ------------------------------------------------------------------------

    def _control(self, req: Request, path: str) -> None:
        if path == "/_fake/requests" and req.method == "GET":
            counts = [
                {"verb": v, "resource": r, "count": n}
                for (v, r), n in sorted(self.requests.snapshot().items())
            ]
            return req.send_json(
                200,
                {
                    "counts": counts,
                    "total": self.requests.count(),
                    "writes": self.requests.writes(),
                },
            )
        if path == "/_fake/requests/reset" and req.method == "POST":
            self.requests.reset()
            return req.send_json(200, {})
        if path == "/_fake/faults":
            if req.method in ("PUT", "POST", "PATCH"):
                try:
                    self.faults.configure(**(req.decoded_body() or {}))
                except (TypeError, ValueError) as e:
                    raise errors.bad_request(str(e)) from e
            injected = [
                {"verb": v, "resource": r, "code": c, "count": n}
                for (v, r, c), n in sorted(self.faults.injected.items())
            ]
            body = {
                "config": dataclasses.asdict(self.faults.config),
                "injected": injected,
                "droppedWatches": self.faults.dropped_watches,
                "silencedWatches": self.faults.silenced_watches,
            }
            return req.send_json(200, json.loads(json.dumps(body)))
        if path == "/_fake/faults/reset" and req.method == "POST":
            self.faults.reset()
            return req.send_json(200, {})
        raise errors.unknown_resource()


class _Muted:
    """A request whose answers are dropped (for faults injected after the write)."""

    responded = False

    def __init__(self, req: Request) -> None:
        self._req = req

    def __getattr__(self, name: str) -> Any:
        return getattr(self._req, name)

    def send_json(self, *args: Any, **kwargs: Any) -> None:
        pass


def _raise(error: ApiError) -> Any:
    raise error
