"""The generic REST semantics of kube-apiserver's registry, over the store.

create / get / list / update / patch / delete, with resourceVersion concurrency, the status
subresource split, generation, generateName, finalizers and deletion propagation. Kind-specific
behaviour (defaults, validation, admission) lives in :mod:`kinds`. The server calls this for
HTTP requests; the simulated controllers call it directly (``internal=True``).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import admission, errors, patching, quota
from .admission import DenyRule
from .errors import FieldError
from .kinds import hooks_for
from .meta import format_time, generate_name, validate_labels, validate_subdomain
from .resources import Resources, ResourceType
from .selectors import Filter, Requirement
from .store import Store, clone

NAMESPACES = ("", "namespaces")
_SYSTEM_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")


@dataclass
class WriteContext:
    """Per-request options and outputs of a write."""

    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Warn"  # Strict | Warn | Ignore
    internal: bool = False  # a simulated controller, not an API client
    operation: str = "Update"  # or "Apply", for managedFields
    warnings: list[str] = field(default_factory=list)


@dataclass
class DeleteOptions:
    propagation_policy: str | None = None
    orphan_dependents: bool | None = None
    grace_period_seconds: int | None = None
    precondition_uid: str | None = None
    precondition_rv: str | None = None


class Registry:
    def __init__(self, store: Store, resources: Resources, seed: int | None = None) -> None:
        self.store = store
        self.resources = resources
        self.rng = random.Random(seed)
        self.clock = time.time
        self.deny_rules: list[DenyRule] = []  # FakeCluster.deny_admission
        # By custom resource: its schema in force, and the revision before its first use
        # (CustomResourceHooks._checked).
        self.schema_since: dict[tuple[str, str], tuple[Any, int]] = {}

    def rt(self, key: tuple[str, str]) -> ResourceType:
        rt = self.resources.preferred(key)
        if rt is None:
            raise errors.unknown_resource()
        return rt

    # -- reads --------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(rt.key, namespace if rt.namespaced else "", name)
        if obj is None:
            raise errors.not_found(rt, name)
        return self.present(rt, obj)

    def select(self, flt: Filter) -> tuple[list[dict[str, Any]], str]:
        with self.store.lock:
            items = [self.present(flt.rt, o) for o in self.candidates(flt) if flt.matches(o)]
            return items, self.store.format_rv(self.store.rv)

    def candidates(self, flt: Filter) -> list[dict[str, Any]]:
        """The stored objects, in list order, that may match ``flt``: those with the label
        value a selector requires (the store's label index), else all of the resource."""
        ns = flt.namespace if flt.rt.namespaced else None
        best: tuple[int, Requirement] | None = None
        for req in flt.labels.requirements:
            if req.op in ("=", "in"):
                count = self.store.count_labeled(flt.rt.key, req.key, req.values)
                if best is None or count < best[0]:
                    best = (count, req)
        if best is None:
            return self.store.objects(flt.rt.key, ns)
        return self.store.labeled(flt.rt.key, ns, best[1].key, best[1].values)

    def present(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """A stored object as seen through ``rt``'s version: a shallow copy, whose top-level
        keys the caller may set or drop, but whose values are the stored object's, never to
        be changed in place (use :func:`~store.clone` for a deep copy)."""
        out = dict(obj)
        if rt.is_custom:
            out["apiVersion"] = rt.group_version
        return out

    # -- create -------------------------------------------------------------------------

    def create(
        self, rt: ResourceType, namespace: str, body: Any, ctx: WriteContext | None = None
    ) -> dict[str, Any]:
        ctx = ctx or WriteContext()
        obj = self._decode(rt, body)
        meta = obj["metadata"]
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        for key in (*_SYSTEM_META, "resourceVersion", "generation", "selfLink", "managedFields"):
            meta.pop(key, None)
        hooks = hooks_for(rt)
        with self.store.lock:
            if rt.namespaced:
                self._check_namespace(rt, namespace, meta.get("name") or "")
            if not meta.get("name") and not meta.get("generateName"):
                raise errors.invalid(
                    rt,
                    "",
                    [FieldError.required("metadata.name", "name or generateName is required")],
                )
            # From the registry's generator, not uuid4(): no system call (which would give up
            # the GIL) per object, and repeatable with a seed.
            meta["uid"] = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            meta["creationTimestamp"] = format_time(self.clock())
            if rt.tracks_generation:
                meta["generation"] = 1
            if rt.has_status and rt.is_custom:
                obj.pop("status", None)
            if not meta.get("name"):
                meta["name"] = self._generated_name(rt, namespace, meta["generateName"])
            hooks.prepare_create(self, rt, obj, ctx)
            errs = self._validate_meta(rt, obj) + hooks.validate_create(self, rt, obj, ctx)
            if errs:
                raise errors.invalid(rt, meta["name"], errs)
            hooks.admit_create(self, rt, obj, ctx)
            # Validating webhooks run before ResourceQuota, the last plugin; both before the
            # storage layer answers AlreadyExists (kube-apiserver's admission plugin order).
            admission.check(self.deny_rules, rt, "CREATE", obj)
            quota.admit(self, rt, obj)
            if self.store.get(rt.key, meta.get("namespace", ""), meta["name"]) is not None:
                raise errors.already_exists(rt, meta["name"])
            self._manage(obj, ctx)
            if ctx.dry_run:
                return self.present(rt, obj)
            stored = self.store.put(rt.key, obj)
            hooks.after_put(self, rt, stored, None)
            return self.present(rt, stored)

    def _generated_name(self, rt: ResourceType, namespace: str, base: str) -> str:
        for _ in range(8):  # KEP-4420: the server retries generateName collisions
            name = generate_name(base, self.rng)
            if self.store.get(rt.key, namespace if rt.namespaced else "", name) is None:
                return name
        raise errors.already_exists(rt, name)

    def _check_namespace(self, rt: ResourceType, namespace: str, name: str) -> None:
        ns = self.store.get(NAMESPACES, "", namespace)
        if ns is None:
            raise errors.namespace_not_found(namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                rt,
                name,
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated",
            )

    # -- update -------------------------------------------------------------------------

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        subresource: str = "",
        ctx: WriteContext | None = None,
    ) -> dict[str, Any]:
        ctx = ctx or WriteContext()
        with self.store.lock:
            old = self.store.get(rt.key, namespace if rt.namespaced else "", name)
            if old is None:
                if rt.allow_create_on_update and not subresource:
                    return self.create(rt, namespace, body, ctx)
                raise errors.not_found(rt, name)
            new = self._decode(rt, body)
            if new["metadata"].get("name", name) != name:
                raise errors.bad_request(
                    f"the name of the object ({new['metadata'].get('name')}) does not match the "
                    f"name on the URL ({name})"
                )
            rv = new["metadata"].get("resourceVersion")
            if not rv and rt.is_custom and not ctx.internal:
                raise errors.invalid(rt, name, [_RV_REQUIRED])
            return self._replace(rt, old, new, subresource, ctx)

    def _replace(
        self,
        rt: ResourceType,
        old: dict[str, Any],
        new: dict[str, Any],
        subresource: str,
        ctx: WriteContext,
    ) -> dict[str, Any]:
        """Store ``new`` over ``old`` (the lock is held); ``new`` is owned by the caller."""
        name = old["metadata"]["name"]
        rv = new["metadata"].get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rt, name)
        hooks = hooks_for(rt)
        if subresource == "status":
            merged = dict(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
        elif rt.has_status and not ctx.internal:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        # Stored objects are never changed in place: ``new`` may share the old metadata
        # (the status write above, or a controller's shallow copy), so it gets its own.
        meta = new["metadata"] = dict(new["metadata"])
        old_meta = old["metadata"]
        for key in (*_SYSTEM_META, "generation", "namespace"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        meta["name"] = name
        meta["managedFields"] = old_meta.get("managedFields", [])  # _manage builds a new list
        errs: list[FieldError] = []
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                errs.append(
                    FieldError.forbidden(
                        "metadata.finalizers",
                        "no new finalizers can be added if the object is being deleted, found "
                        f"new finalizers {json.dumps(sorted(added))}",
                    )
                )
        hooks.prepare_update(self, rt, new, old, subresource, ctx)
        errs += self._validate_meta(rt, new, old) + hooks.validate_update(
            self, rt, new, old, subresource, ctx
        )
        if errs:
            raise errors.invalid(rt, name, errs)
        if not ctx.internal:
            admission.check(self.deny_rules, rt, "UPDATE", new)
        if rt.tracks_generation and hooks.spec_changed(rt, new, old):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if _same(new, old):
            return self.present(rt, old)  # a no-op write does not bump resourceVersion
        self._manage(new, ctx, subresource)
        if ctx.dry_run:
            return self.present(rt, new)
        if (
            meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and not meta.get("deletionGracePeriodSeconds")
            and not hooks.defers_delete(new)
        ):
            return self._remove(rt, new)
        stored = self.store.put(rt.key, new)
        hooks.after_put(self, rt, stored, old)
        return self.present(rt, stored)

    # -- patch --------------------------------------------------------------------------

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        patch_type: str,
        patch: Any,
        subresource: str = "",
        ctx: WriteContext | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        ctx = ctx or WriteContext()
        if patch_type == patching.STRATEGIC_PATCH and rt.is_custom:
            raise errors.unsupported_media_type(
                patch_type, [patching.JSON_PATCH, patching.MERGE_PATCH, patching.APPLY_PATCH]
            )
        if patch_type == patching.APPLY_PATCH and not ctx.field_manager:
            raise errors.bad_request(
                "PATCH requests with apply content type require a fieldManager"
            )
        with self.store.lock:
            old = self.store.get(rt.key, namespace if rt.namespaced else "", name)
            if old is None:
                if patch_type == patching.APPLY_PATCH and not subresource:
                    body = dict(patch)
                    body.setdefault("metadata", {})["name"] = name
                    ctx.operation = "Apply"
                    return self.create(rt, namespace, body, ctx)
                raise errors.not_found(rt, name)
            current = self.present(rt, old)
            try:
                if patch_type == patching.JSON_PATCH:
                    new = patching.json_patch(current, patch)
                elif patch_type == patching.MERGE_PATCH:
                    new = patching.merge_patch(current, patch)
                elif patch_type == patching.STRATEGIC_PATCH:
                    new = patching.strategic_merge_patch(current, patch)
                elif patch_type == patching.APPLY_PATCH:
                    new = patching.apply_patch(current, patch, strategic=not rt.is_custom)
                    ctx.operation = "Apply"
                else:
                    raise errors.unsupported_media_type(patch_type, list(patching.PATCH_TYPES))
            except patching.PatchError as e:
                if e.bad_request:
                    raise errors.bad_request(str(e)) from e
                raise errors.unprocessable(str(e)) from e
            if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
                raise errors.unprocessable("the patched object is not a Kubernetes object")
            self._check_type(rt, new)
            return self._replace(rt, old, new, subresource, ctx)

    # -- delete -------------------------------------------------------------------------

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        options: DeleteOptions | None = None,
        ctx: WriteContext | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Returns (HTTP code, body): the object while deletion is deferred, otherwise a
        Success Status (pods: the deleted object)."""
        options = options or DeleteOptions()
        ctx = ctx or WriteContext()
        hooks = hooks_for(rt)
        with self.store.lock:
            old = self.store.get(rt.key, namespace if rt.namespaced else "", name)
            if old is None:
                raise errors.not_found(rt, name)
            meta = old["metadata"]
            if options.precondition_uid and options.precondition_uid != meta.get("uid"):
                raise errors.conflict(
                    rt,
                    name,
                    f"Precondition failed: UID in precondition: {options.precondition_uid}, UID in "
                    f"object meta: {meta.get('uid')}",
                )
            if options.precondition_rv and options.precondition_rv != meta.get("resourceVersion"):
                raise errors.conflict(
                    rt,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: "
                    f"{options.precondition_rv}, ResourceVersion in object meta: "
                    f"{meta.get('resourceVersion')}",
                )
            if not ctx.internal:
                admission.check(self.deny_rules, rt, "DELETE", old)
            policy = options.propagation_policy
            if policy is None and options.orphan_dependents is not None:
                policy = "Orphan" if options.orphan_dependents else "Background"
            if policy is None:
                policy = hooks.default_propagation
            if policy not in ("Orphan", "Background", "Foreground"):
                raise errors.unprocessable(
                    f'DeleteOptions.propagationPolicy: Unsupported value: "{policy}": supported '
                    'values: "Foreground", "Background", "Orphan"'
                )
            grace = hooks.grace_period(old, options.grace_period_seconds)
            new = clone(old)
            nmeta = new["metadata"]
            finalizers = list(nmeta.get("finalizers") or [])
            if policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            if finalizers:
                nmeta["finalizers"] = finalizers
            deferred = bool(finalizers) or grace > 0 or hooks.defers_delete(old)
            if meta.get("deletionTimestamp"):
                # Already deleting: a shorter grace period may still finish it now.
                if grace == 0 and meta.get("deletionGracePeriodSeconds"):
                    nmeta["deletionGracePeriodSeconds"] = 0
                    if ctx.dry_run:
                        return 200, self.present(rt, new)
                    if not nmeta.get("finalizers"):
                        return self._deleted_answer(rt, self._remove(rt, new))
                    return 200, self.present(rt, self.store.put(rt.key, new))
                return 200, self.present(rt, old)
            if ctx.dry_run:
                return 200, self.present(rt, new)
            if not deferred:
                return self._deleted_answer(rt, self._remove(rt, new))
            nmeta["deletionTimestamp"] = format_time(self.clock() + grace)
            nmeta["deletionGracePeriodSeconds"] = grace
            if rt.tracks_generation:
                nmeta["generation"] = int(nmeta.get("generation", 1)) + 1
            hooks.prepare_delete(self, rt, new)
            stored = self.store.put(rt.key, new)
            hooks.after_put(self, rt, stored, old)
            code = 202 if options.orphan_dependents is False else 200
            return code, self.present(rt, stored)

    def _deleted_answer(self, rt: ResourceType, obj: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if rt.key == ("", "pods"):
            return 200, obj
        meta = obj["metadata"]
        return 200, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": meta["name"],
                "group": rt.group,
                "kind": rt.plural,
                "uid": meta.get("uid"),
            },
        }

    def _remove(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        removed = self.store.remove(rt.key, obj)
        hooks_for(rt).after_remove(self, rt, removed)
        return self.present(rt, removed)

    def remove_now(self, rt: ResourceType, namespace: str, name: str) -> None:
        """Remove an object regardless of finalizers and grace (namespace/CRD cleanup)."""
        with self.store.lock:
            obj = self.store.get(rt.key, namespace, name)
            if obj is not None:
                self._remove(rt, clone(obj))

    # -- helpers ------------------------------------------------------------------------

    def _decode(self, rt: ResourceType, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        obj = body  # the caller's to give: a decoded request body, or a controller's copy
        self._check_type(rt, obj)
        if not isinstance(obj.get("metadata"), dict):
            obj["metadata"] = {}
        return obj

    def _check_type(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        api_version = obj.get("apiVersion") or rt.group_version
        kind = obj.get("kind") or rt.kind
        if api_version != rt.group_version or kind != rt.kind:
            gv = rt.group_version
            if kind != rt.kind:
                raise errors.bad_request(
                    f"the API version in the data ({api_version}) does not match the expected API "
                    f"version ({gv})"
                    if api_version != gv
                    else f"the kind in the data ({kind}) does not match the expected kind "
                    f"({rt.kind})"
                )
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({gv})"
            )
        obj["apiVersion"], obj["kind"] = api_version, kind

    def _validate_meta(
        self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None = None
    ) -> list[FieldError]:
        """Name, labels and annotations. On an update (``old``) only what changed: the name
        is the stored one, and labels or annotations still the stored dict were checked when
        they were written."""
        meta = obj["metadata"]
        old_meta = old["metadata"] if old is not None else {}
        errs = self._validate_name(rt, meta["name"]) if old is None else []
        if old is None or meta.get("labels") is not old_meta.get("labels"):
            errs += validate_labels("metadata.labels", meta.get("labels"))
        if old is None or meta.get("annotations") is not old_meta.get("annotations"):
            for key, value in (meta.get("annotations") or {}).items():
                if not isinstance(value, str):
                    errs.append(
                        FieldError.invalid(f"metadata.annotations.{key}", value, "must be a string")
                    )
        return errs

    @staticmethod
    def _validate_name(rt: ResourceType, name: str) -> list[FieldError]:
        if rt.group == "rbac.authorization.k8s.io":
            # pkg/apis/rbac/validation: ValidateRBACName is path.IsValidPathSegmentName.
            if name in (".", "..") or "/" in name or "%" in name:
                return [FieldError.invalid("metadata.name", name, "may not contain '/' or '%'")]
            return []
        return validate_subdomain("metadata.name", name)

    def _manage(self, obj: dict[str, Any], ctx: WriteContext, subresource: str = "") -> None:
        operation = ctx.operation
        if ctx.internal or not ctx.field_manager:
            return
        meta = obj["metadata"]
        entries = [
            e
            for e in meta.get("managedFields") or []
            if (e.get("manager"), e.get("operation"), e.get("subresource", ""))
            != (ctx.field_manager, operation, subresource)
        ]
        entry: dict[str, Any] = {
            "manager": ctx.field_manager,
            "operation": operation,
            "apiVersion": obj.get("apiVersion"),
            "time": format_time(self.clock()),
            "fieldsType": "FieldsV1",
            "fieldsV1": {},
        }
        if subresource:
            entry["subresource"] = subresource
        entries.append(entry)
        meta["managedFields"] = entries


# apimachinery prints the missing int64 with %#v, hence the odd "0x0".
_RV_REQUIRED = FieldError(
    "Invalid value: 0x0", "metadata.resourceVersion", "must be specified for an update"
)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def strip(o: dict[str, Any]) -> dict[str, Any]:
        o = dict(o)
        meta = dict(o.get("metadata") or {})
        meta.pop("resourceVersion", None)
        meta.pop("managedFields", None)
        o["metadata"] = meta
        return o

    return strip(a) == strip(b)
