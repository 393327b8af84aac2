"""batch/v1 Jobs in the apiserver: defaults, validation, immutability (k8s-jobs.md §1, §3)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .errors import FieldError
from .kinds import Hooks, Obj
from .meta import validate_label_name, validate_labels
from .podspec import default_pod_spec, validate_pod_spec
from .resources import ResourceType
from .selectors import LabelSelector

if TYPE_CHECKING:
    from .registry import Registry, WriteContext

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_NAME_LABEL = "job-name"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
JOB_CONTROLLER = "kubernetes.io/job-controller"
MAX_INT32 = 2147483647

_IMMUTABLE = (
    "selector",
    "completionMode",
    "podFailurePolicy",
    "backoffLimitPerIndex",
    "managedBy",
    "successPolicy",
)
# Template fields that may change while a Job is suspended and has never started.
_SCHEDULING_FIELDS = ("nodeSelector", "tolerations", "affinity", "schedulingGates")


def default_job(job: Obj) -> None:
    spec = job.setdefault("spec", {})
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = spec["parallelism"] = 1
    elif spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("manualSelector", False)
    pfp = spec.get("podFailurePolicy")
    spec.setdefault("podReplacementPolicy", "Failed" if pfp else "TerminatingOrFailed")
    for rule in (pfp or {}).get("rules") or []:
        for pattern in rule.get("onPodConditions") or []:
            pattern.setdefault("status", "True")
    template = spec.setdefault("template", {})
    if isinstance(template, dict):
        tmeta = template.setdefault("metadata", {})
        if not job["metadata"].get("labels") and tmeta.get("labels"):
            job["metadata"]["labels"] = dict(tmeta["labels"])
        if isinstance(template.get("spec"), dict):
            default_pod_spec(template["spec"])


def generate_selector(job: Obj) -> None:
    spec = job["spec"]
    if spec.get("manualSelector"):
        return
    meta = job["metadata"]
    tmeta = spec["template"].setdefault("metadata", {})
    labels = tmeta.setdefault("labels", {})
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(key, meta["name"])
    for key in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        labels.setdefault(key, meta["uid"])
    spec.setdefault("selector", {"matchLabels": {CONTROLLER_UID_LABEL: meta["uid"]}})


def _non_negative(
    spec: dict[str, Any], field: str, errs: list[FieldError], minimum: int = 0
) -> None:
    value = spec.get(field)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        errs.append(
            FieldError.invalid(
                f"spec.{field}", value, f"must be greater than or equal to {minimum}"
            )
        )


def validate_job(job: Obj) -> list[FieldError]:
    spec = job.get("spec")
    if not isinstance(spec, dict):
        return [FieldError.required("spec")]
    errs: list[FieldError] = []
    template = spec.get("template")
    if not isinstance(template, dict) or not template:
        return [FieldError.required("spec.template")]
    tspec = template.get("spec") or {}
    errs += validate_pod_spec(tspec, "spec.template.spec", ("Never", "OnFailure"))
    rp = tspec.get("restartPolicy")
    if rp in (None, "", "Always"):
        errs.append(
            FieldError.required(
                "spec.template.spec.restartPolicy", 'valid values: "OnFailure", "Never"'
            )
        )
    elif rp not in ("Never", "OnFailure"):
        errs.append(
            FieldError.unsupported("spec.template.spec.restartPolicy", rp, ["OnFailure", "Never"])
        )
    for field in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
        _non_negative(spec, field, errs)
    _non_negative(spec, "activeDeadlineSeconds", errs, minimum=1)
    labels = (template.get("metadata") or {}).get("labels") or {}
    errs += validate_labels("spec.template.labels", labels)
    selector = spec.get("selector")
    if not selector:
        errs.append(FieldError.required("spec.selector"))
    elif not LabelSelector.from_object(selector).matches(labels):
        errs.append(
            FieldError.invalid(
                "spec.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            )
        )
    mode = spec.get("completionMode")
    if mode not in ("NonIndexed", "Indexed"):
        errs.append(FieldError.unsupported("spec.completionMode", mode, ["NonIndexed", "Indexed"]))
    if mode == "Indexed" and spec.get("completions") is None:
        errs.append(FieldError.required("spec.completions", "when completion mode is Indexed"))
    errs += _validate_pod_failure_policy(spec, rp)
    policy = spec.get("podReplacementPolicy")
    allowed = ["Failed"] if spec.get("podFailurePolicy") else ["TerminatingOrFailed", "Failed"]
    if policy not in allowed:
        errs.append(FieldError.unsupported("spec.podReplacementPolicy", policy, allowed))
    managed_by = spec.get("managedBy")
    if managed_by is not None and (not isinstance(managed_by, str) or len(managed_by) > 63):
        errs.append(FieldError("Too long", "spec.managedBy", "may not be more than 63 bytes"))
    return errs


def _validate_pod_failure_policy(spec: dict[str, Any], restart_policy: Any) -> list[FieldError]:
    pfp = spec.get("podFailurePolicy")
    if not pfp:
        return []
    errs = []
    if restart_policy != "Never":
        errs.append(
            FieldError.invalid(
                "spec.template.spec.restartPolicy",
                restart_policy,
                'only "Never" is supported when podFailurePolicy is specified',
            )
        )
    rules = pfp.get("rules") or []
    if len(rules) > 20:
        errs.append(
            FieldError("Too many", "spec.podFailurePolicy.rules", "must have at most 20 items")
        )
    for i, rule in enumerate(rules):
        path = f"spec.podFailurePolicy.rules[{i}]"
        action = rule.get("action")
        if action not in ("FailJob", "FailIndex", "Ignore", "Count"):
            errs.append(
                FieldError.unsupported(
                    f"{path}.action", action, ["Count", "FailIndex", "FailJob", "Ignore"]
                )
            )
        if action == "FailIndex" and spec.get("backoffLimitPerIndex") is None:
            errs.append(
                FieldError.invalid(
                    f"{path}.action", action, "requires the backoffLimitPerIndex to be set"
                )
            )
        codes, conds = rule.get("onExitCodes"), rule.get("onPodConditions")
        if (codes is None) == (conds is None):
            errs.append(
                FieldError.invalid(
                    path, None, "specifying one of OnExitCodes and OnPodConditions is required"
                )
            )
        if codes is not None:
            op, values = codes.get("operator"), codes.get("values") or []
            if op not in ("In", "NotIn"):
                errs.append(
                    FieldError.unsupported(f"{path}.onExitCodes.operator", op, ["In", "NotIn"])
                )
            if values != sorted(set(values)):
                errs.append(
                    FieldError.invalid(
                        f"{path}.onExitCodes.values", values, "must be ordered and unique"
                    )
                )
            if op == "In" and 0 in values:
                errs.append(
                    FieldError.invalid(
                        f"{path}.onExitCodes.values", 0, "must not be 0 for the In operator"
                    )
                )
    return errs


class JobHooks(Hooks):
    instance: JobHooks
    # batch/v1 keeps OrphanDependents as the default for back-compatibility (k8s-jobs.md §3).
    default_propagation = "Orphan"

    def prepare_create(self, reg: Registry, rt: ResourceType, obj: Obj, ctx: WriteContext) -> None:
        obj["status"] = {}
        if not isinstance(obj.get("spec"), dict) or not isinstance(
            obj["spec"].get("template"), dict
        ):
            return
        default_job(obj)
        generate_selector(obj)
        name = obj["metadata"]["name"]
        if validate_label_name("metadata.name", name):
            ctx.warnings.append(
                "metadata.name: this is used in Pod names and hostnames, which can result in "
                "surprising behavior; a DNS label is recommended: "
                f"{json.dumps([e.detail for e in validate_label_name('metadata.name', name)])}"
            )

    def validate_create(
        self, reg: Registry, rt: ResourceType, obj: Obj, ctx: WriteContext
    ) -> list[FieldError]:
        return validate_job(obj)

    def admit_create(self, reg: Registry, rt: ResourceType, obj: Obj, ctx: WriteContext) -> None:
        from .podsecurity import check_pod_security

        _default_labels_on_read(obj)

        # PodSecurity only warns for workloads; their pods are refused later (§5).
        ns = reg.store.get(("", "namespaces"), "", obj["metadata"]["namespace"]) or {}
        labels = (ns.get("metadata") or {}).get("labels") or {}
        for key in ("pod-security.kubernetes.io/enforce", "pod-security.kubernetes.io/warn"):
            level = labels.get(key)
            if level in ("baseline", "restricted"):
                tspec = obj["spec"]["template"].get("spec") or {}
                problems = check_pod_security(tspec, level)
                if problems:
                    ctx.warnings.append(
                        f'would violate PodSecurity "{level}:latest": ' + ", ".join(problems)
                    )
                    return

    def prepare_update(
        self, reg: Registry, rt: ResourceType, new: Obj, old: Obj, sub: str, ctx: WriteContext
    ) -> None:
        _default_labels_on_read(new)

    def validate_update(
        self, reg: Registry, rt: ResourceType, new: Obj, old: Obj, sub: str, ctx: WriteContext
    ) -> list[FieldError]:
        if sub == "status" or ctx.internal:
            return []
        errs = validate_job(new)
        spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        for field in _IMMUTABLE:
            if spec.get(field) != old_spec.get(field):
                errs.append(
                    FieldError.invalid(f"spec.{field}", spec.get(field), "field is immutable")
                )
        if spec.get("completions") != old_spec.get("completions"):
            indexed = spec.get("completionMode") == "Indexed"
            if not indexed or spec.get("completions") != spec.get("parallelism"):
                errs.append(
                    FieldError.invalid(
                        "spec.completions", spec.get("completions"), "field is immutable"
                    )
                )
        if spec.get("template") != old_spec.get("template"):
            never_started = old_spec.get("suspend") and not (old.get("status") or {}).get(
                "startTime"
            )
            if not never_started or _strip_mutable(spec.get("template")) != _strip_mutable(
                old_spec.get("template")
            ):
                errs.append(FieldError.invalid("spec.template", "...", "field is immutable"))
        return errs


def _default_labels_on_read(job: Obj) -> None:
    # The apiserver defaults a Job's empty labels from its template labels again whenever it
    # decodes the stored object, so stored Jobs show the generated job-name/controller-uid
    # labels (but validation at create time only saw the user's labels).
    template = (job.get("spec") or {}).get("template") or {}
    labels = (template.get("metadata") or {}).get("labels")
    if not job["metadata"].get("labels") and labels:
        job["metadata"]["labels"] = dict(labels)


def _strip_mutable(template: Any) -> Any:
    if not isinstance(template, dict):
        return template
    out = json.loads(json.dumps(template))
    meta = out.get("metadata") or {}
    meta.pop("labels", None)
    meta.pop("annotations", None)
    for field in _SCHEDULING_FIELDS:
        (out.get("spec") or {}).pop(field, None)
    return out


JobHooks.instance = JobHooks()
