"""ResourceQuota object counts: admission and the quota controller's status.used.

Admission (staging/src/k8s.io/apiserver/pkg/admission/plugin/resourcequota/controller.go,
CheckRequest) refuses a create that would take any ``count/<resource>.<group>`` (or
``pods``) over ``spec.hard`` with a 403 whose message is ``exceeded quota: <name>,
requested: <r>=1, used: <r>=<n>, limited: <r>=<hard>`` (resources sorted, comma-joined),
behind apierrors.NewForbidden's ``<resource>.<group> "<name>" is forbidden: ``. It runs as
the last admission plugin, before the storage's AlreadyExists check. The quota controller
(pkg/controller/resourcequota) keeps ``status.hard`` / ``status.used`` up to date; pods in
a terminal phase do not count (pkg/quota/v1/evaluator/core/pods.go, QuotaV1Pod). Only
object counts are evaluated; other keys (requests.cpu, …) are reported as used 0.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import errors
from .loops import Loop
from .podspec import TERMINAL_PHASES
from .resources import Key, ResourceType
from .scheduling import parse_quantity
from .store import Event, clone

if TYPE_CHECKING:
    from .registry import Registry

QUOTAS = ("", "resourcequotas")


def _counted_key(resource: str) -> Key | None:
    """The store key a quota resource name counts ("count/jobs.batch" → ("batch", "jobs"))."""
    if resource == "pods":
        return ("", "pods")
    if not resource.startswith("count/"):
        return None
    plural, _, group = resource[len("count/") :].partition(".")
    return (group, plural)


def _names_for(rt: ResourceType) -> set[str]:
    names = {f"count/{rt.plural}" + (f".{rt.group}" if rt.group else "")}
    if rt.key == ("", "pods"):
        names.add("pods")
    return names


def _fmt(value: Decimal) -> str:
    return str(int(value)) if value == value.to_integral_value() else str(value)


def usage(reg: Registry, namespace: str, resource: str) -> int:
    key = _counted_key(resource)
    if key is None:
        return 0
    if key == ("", "pods"):
        return sum(
            1
            for p in reg.store.objects(key, namespace)
            if (p.get("status") or {}).get("phase") not in TERMINAL_PHASES
        )
    return reg.store.count(key, namespace)


def admit(reg: Registry, rt: ResourceType, obj: dict[str, Any]) -> None:
    """Raise 403 when creating ``obj`` would exceed a ResourceQuota of its namespace."""
    if not rt.namespaced or rt.key == QUOTAS:
        return
    namespace = obj["metadata"].get("namespace", "")
    if not reg.store.count(QUOTAS, namespace):
        return
    names = _names_for(rt)
    for quota in reg.store.objects(QUOTAS, namespace):
        hard = (quota.get("spec") or {}).get("hard") or {}
        relevant = sorted(n for n in hard if n in names)
        failed = []
        for resource in relevant:
            used = usage(reg, namespace, resource)
            with contextlib.suppress(ValueError):
                if Decimal(used + 1) > parse_quantity(hard[resource]):
                    failed.append((resource, used, parse_quantity(hard[resource])))
        if failed:
            requested = ",".join(f"{r}=1" for r, _, _ in failed)
            used_text = ",".join(f"{r}={u}" for r, u, _ in failed)
            limited = ",".join(f"{r}={_fmt(h)}" for r, _, h in failed)
            raise errors.forbidden(
                rt,
                obj["metadata"].get("name") or "",
                f"exceeded quota: {quota['metadata']['name']}, requested: {requested}, "
                f"used: {used_text}, limited: {limited}",
            )


class QuotaController:
    """Keeps every ResourceQuota's status (hard, used) current, a moment after changes."""

    def __init__(self, registry: Registry, errors_out: list[str]) -> None:
        self.registry = registry
        self.store = registry.store
        self.loop = Loop("fakecluster-quota", self._process, errors_out)

    def on_event(self, ev: Event) -> None:
        namespace = ev.obj["metadata"].get("namespace")
        # Only namespaces with a quota have a status to keep (the quota's own events
        # included: a new quota gets its first status, a changed one a new hard).
        if namespace and (ev.key == QUOTAS or self.store.count(QUOTAS, namespace)):
            self.loop.add(namespace)

    def _process(self, item: Hashable) -> None:
        assert isinstance(item, str)
        with self.store.lock:
            for quota in self.store.objects(QUOTAS, item):
                hard = dict((quota.get("spec") or {}).get("hard") or {})
                used = {r: str(usage(self.registry, item, r)) for r in hard}
                status = {"hard": hard, "used": used}
                if quota.get("status") == status:
                    continue
                new = clone(quota)
                new["status"] = status
                from .registry import WriteContext

                rt = self.registry.rt(QUOTAS)
                with contextlib.suppress(errors.ApiError):
                    self.registry.update(
                        rt,
                        item,
                        quota["metadata"]["name"],
                        new,
                        "status",
                        WriteContext(internal=True),
                    )
