"""Pods: defaults, validation, ServiceAccount and PodSecurity admission, graceful deletion,
and the eviction subresource."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import errors
from .errors import FieldError
from .images import default_pull_policy
from .kinds import Hooks, Obj
from .meta import condition, validate_label_name
from .podsecurity import check_pod_security
from .resources import ResourceType
from .store import clone

if TYPE_CHECKING:
    from .registry import Registry, WriteContext

TERMINAL_PHASES = ("Succeeded", "Failed")


def default_pod_spec(spec: dict[str, Any]) -> None:
    """The defaults kube-apiserver applies to a PodSpec (pods and pod templates)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if not isinstance(container, dict):
            continue
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        # pkg/apis/core/v1/defaults.go (SetDefaults_Container): Always for :latest or no tag.
        container.setdefault(
            "imagePullPolicy", default_pull_policy(str(container.get("image") or ""))
        )
        resources = container.setdefault("resources", {})
        limits = resources.get("limits") or {}
        if limits:  # requests default to limits
            requests = resources.setdefault("requests", {})
            for name, value in limits.items():
                requests.setdefault(name, value)
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("fieldRef")
            if ref is not None:
                ref.setdefault("apiVersion", "v1")


def validate_pod_spec(spec: Any, path: str, restart_policies: tuple[str, ...]) -> list[FieldError]:
    if not isinstance(spec, dict):
        return [FieldError.required(f"{path}.containers")]
    errs: list[FieldError] = []
    containers = spec.get("containers")
    if not containers:
        errs.append(FieldError.required(f"{path}.containers"))
    seen: set[str] = set()
    for i, c in enumerate(containers or []):
        cpath = f"{path}.containers[{i}]"
        name = c.get("name") if isinstance(c, dict) else None
        if not name:
            errs.append(FieldError.required(f"{cpath}.name"))
        else:
            errs += validate_label_name(f"{cpath}.name", name)
            if name in seen:
                errs.append(FieldError("Duplicate value", f"{cpath}.name", "", name, True))
            seen.add(name)
        if not isinstance(c, dict) or not c.get("image"):
            errs.append(FieldError.required(f"{cpath}.image"))
    rp = spec.get("restartPolicy")
    if rp not in restart_policies and restart_policies == ("Always", "OnFailure", "Never"):
        errs.append(FieldError.unsupported(f"{path}.restartPolicy", rp, list(restart_policies)))
    grace = spec.get("terminationGracePeriodSeconds")
    if isinstance(grace, int) and grace < 0:
        errs.append(
            FieldError.invalid(
                f"{path}.terminationGracePeriodSeconds", grace, "must be greater than or equal to 0"
            )
        )
    return errs


def qos_class(spec: dict[str, Any]) -> str:
    containers = spec.get("containers") or []
    requests = [((c.get("resources") or {}).get("requests") or {}) for c in containers]
    limits = [((c.get("resources") or {}).get("limits") or {}) for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    guaranteed = all(
        lim.get(r) is not None and lim.get(r) == req.get(r)
        for req, lim in zip(requests, limits, strict=True)
        for r in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


class PodHooks(Hooks):
    instance: PodHooks

    def prepare_create(self, reg: Registry, rt: ResourceType, obj: Obj, ctx: WriteContext) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        # ServiceAccount admission (mutating): default the account, refuse a missing one.
        sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        spec["serviceAccountName"] = spec["serviceAccount"] = sa
        ns = obj["metadata"]["namespace"]
        if reg.store.get(("", "serviceaccounts"), ns, sa) is None:
            raise errors.forbidden(
                rt,
                obj["metadata"]["name"],
                f'error looking up service account {ns}/{sa}: serviceaccount "{sa}" not found',
            )
        default_pod_spec(spec)
        status = obj.get("status") if ctx.internal else None
        obj["status"] = status or {"phase": "Pending", "qosClass": qos_class(spec)}

    def validate_create(
        self, reg: Registry, rt: ResourceType, obj: Obj, ctx: WriteContext
    ) -> list[FieldError]:
        return validate_pod_spec(obj.get("spec"), "spec", ("Always", "OnFailure", "Never"))

    def admit_create(self, reg: Registry, rt: ResourceType, obj: Obj, ctx: WriteContext) -> None:
        ns = reg.store.get(("", "namespaces"), "", obj["metadata"]["namespace"]) or {}
        labels = (ns.get("metadata") or {}).get("labels") or {}
        enforce = labels.get("pod-security.kubernetes.io/enforce")
        warn = labels.get("pod-security.kubernetes.io/warn")
        for level, refuse in ((enforce, True), (warn, False)):
            if level not in ("baseline", "restricted"):
                continue
            problems = check_pod_security(obj.get("spec") or {}, level)
            if not problems:
                continue
            text = f'violates PodSecurity "{level}:latest": ' + ", ".join(problems)
            if refuse:
                raise errors.forbidden(rt, obj["metadata"]["name"], text)
            ctx.warnings.append("would " + text)

    def validate_update(
        self, reg: Registry, rt: ResourceType, new: Obj, old: Obj, sub: str, ctx: WriteContext
    ) -> list[FieldError]:
        if ctx.internal or sub == "status":
            return []
        before, after = clone(old.get("spec") or {}), clone(new.get("spec") or {})
        for spec in (before, after):
            for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                c.pop("image", None)
            spec.pop("activeDeadlineSeconds", None)
            spec.pop("tolerations", None)
        if before != after:
            return [
                FieldError.forbidden(
                    "spec",
                    "pod updates may not change fields other than `spec.containers[*].image`,"
                    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
                    "`spec.tolerations` (only additions to existing tolerations),"
                    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                    "previously negative)",
                )
            ]
        return []

    def spec_changed(self, rt: ResourceType, new: Obj, old: Obj) -> bool:
        return False

    def grace_period(self, obj: Obj, requested: int | None) -> int:
        spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase")
        if not spec.get("nodeName") or phase in TERMINAL_PHASES:
            return 0  # never started on a node: nothing to wait for
        if requested is not None:
            return max(0, requested)
        return int(spec.get("terminationGracePeriodSeconds", 30))


PodHooks.instance = PodHooks()


def evict(reg: Registry, rt: ResourceType, namespace: str, name: str, body: Any) -> Obj:
    """POST pods/NAME/eviction: mark the disruption, then delete gracefully (no PDBs)."""
    from .registry import DeleteOptions, WriteContext

    with reg.store.lock:
        pod = reg.store.get(rt.key, namespace, name)
        if pod is None:
            raise errors.not_found(rt, name)
        if (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES:
            new = clone(pod)
            conds = [
                c
                for c in new.setdefault("status", {}).get("conditions", [])
                if c["type"] != "DisruptionTarget"
            ]
            cond = condition(
                "DisruptionTarget", "True", "EvictionByEvictionAPI", "Eviction API: evicting"
            )
            cond["lastProbeTime"] = None
            conds.append(cond)
            new["status"]["conditions"] = conds
            reg.update(rt, namespace, name, new, "status", WriteContext(internal=True))
        grace = ((body or {}).get("deleteOptions") or {}).get("gracePeriodSeconds")
        reg.delete(rt, namespace, name, DeleteOptions(grace_period_seconds=grace))
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
