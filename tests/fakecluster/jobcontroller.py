"""The simulated batch/v1 Job controller (k8s-jobs.md §1-3): pods from the template with
tracking finalizers, counting through uncountedTerminatedPods, backoffLimit and
podFailurePolicy, re-creation back-off, activeDeadlineSeconds, suspend, the v1.31+ order of
conditions (SuccessCriteriaMet → Complete, FailureTarget → Failed), events and the TTL."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ApiError
from .events import EventRecorder
from .jobspec import JOB_CONTROLLER
from .loops import Loop
from .meta import condition, format_time, parse_time
from .podspec import TERMINAL_PHASES
from .registry import DeleteOptions, Registry, WriteContext
from .store import Event, clone

PODS = ("", "pods")
JOBS = ("batch", "jobs")
TRACKING = "batch.kubernetes.io/job-tracking"
COMPONENT = "job-controller"
BACKOFF_MSG = "Job has reached the specified backoff limit"
DEADLINE_MSG = "Job was active longer than specified deadline"
COMPLETIONS_MSG = "Reached expected number of succeeded pods"
Obj = dict[str, Any]


@dataclass(frozen=True)
class JobControllerConfig:
    backoff_base: float = 0.1  # seconds; the real controller uses 10 s
    backoff_max: float = 6.0  # seconds; the real controller uses 600 s
    sync_batch_period: float = 0.05  # seconds; the real controller uses 1 s


def controller_ref(obj: Obj) -> dict[str, Any] | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def _true(conds: list[Obj], ctype: str) -> Obj | None:
    return next((c for c in conds if c.get("type") == ctype and c.get("status") == "True"), None)


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def _deleting(obj: Obj) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def match_pod_failure_policy(policy: Obj, pod: Obj) -> tuple[str | None, str]:
    """The action of the first matching rule for a Failed pod, and the message."""
    meta = pod["metadata"]
    who = f"{meta['namespace']}/{meta['name']}"
    status = pod.get("status") or {}
    containers = (status.get("initContainerStatuses") or []) + (
        status.get("containerStatuses") or []
    )
    for i, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action")
        codes = rule.get("onExitCodes")
        if codes:
            for cs in containers:
                if codes.get("containerName") and cs.get("name") != codes["containerName"]:
                    continue
                term = (cs.get("state") or {}).get("terminated")
                if not term or term.get("exitCode", 0) == 0:
                    continue
                hit = term["exitCode"] in (codes.get("values") or [])
                if hit == (codes.get("operator") == "In"):
                    return action, (
                        f"Container {cs.get('name')} for pod {who} failed with exit code "
                        f"{term['exitCode']} matching {action} rule at index {i}"
                    )
        for pattern in rule.get("onPodConditions") or []:
            for cond in status.get("conditions") or []:
                if cond.get("type") == pattern.get("type") and cond.get("status") == pattern.get(
                    "status", "True"
                ):
                    return (
                        action,
                        f"Pod {who} has condition {cond['type']} matching {action} rule at "
                        f"index {i}",
                    )
    return None, ""


class JobController:
    def __init__(
        self,
        registry: Registry,
        recorder: EventRecorder,
        errors: list[str],
        config: JobControllerConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.store = registry.store
        self.recorder = recorder
        self.config = config or JobControllerConfig()
        self.clock = clock
        self.loop = Loop("fakecluster-job-controller", self._process, errors)
        # job uid → (failures since the last success, time of the last failure)
        self._backoff: dict[str, tuple[int, float]] = {}
        # job uid → when its activeDeadlineSeconds runs out, as armed on the loop's timers:
        # armed once, not again at every sync (a running Job syncs several times).
        self._deadlines: dict[str, float] = {}

    def on_event(self, ev: Event) -> None:
        """Queue what the event concerns, as the real controller's event handlers do
        (pkg/controller/job/job_controller.go): a Job's creation, deletion or spec change
        (a new generation) is synced at once (enqueueSyncJobImmediately); its status
        updates and its pods' events wait syncJobBatchPeriod (enqueueSyncJobBatched), so
        that a burst of them makes one sync. A pod that finished is counted that much
        later, and the Job's SuccessCriteriaMet comes after it."""
        meta = ev.obj["metadata"]
        if ev.key == JOBS:
            item = ("job", meta["namespace"], meta["name"])
            old = ev.old["metadata"] if ev.old is not None else {}
            if ev.type == "MODIFIED" and meta.get("generation") == old.get("generation"):
                self._batched(item)
            else:
                self.loop.add(item)
            if ev.type == "DELETED":
                self._deadlines.pop(meta["uid"], None)
        elif ev.key == PODS:
            ref = controller_ref(ev.obj)
            if ref is not None and ref.get("kind") != "Job":
                ref = None
            if TRACKING in (meta.get("finalizers") or []) and not self._owned(meta, ref):
                # An orphan: its finalizer goes, as nobody will count it (the job
                # controller's updatePod, pkg/controller/job/job_controller.go).
                self.loop.add(("pod", meta["namespace"], meta["name"]))
            elif ref is not None:
                self._batched(("job", meta["namespace"], ref["name"]))

    def _batched(self, item: tuple[str, str, str]) -> None:
        self.loop.add_after(item, self.config.sync_batch_period, coalesce=True)

    def _owned(self, meta: Obj, ref: Obj | None) -> bool:
        """Whether the Job ``ref`` names exists (a read under the store's lock, in on_event:
        the lookup the pod loop would make later, made at once)."""
        if ref is None:
            return False
        job = self.store.get(JOBS, meta["namespace"], ref["name"])
        return job is not None and job["metadata"]["uid"] == ref.get("uid")

    def _process(self, item: Any) -> None:
        kind, namespace, name = item
        with self.store.lock:
            if kind == "pod":
                self._sync_pod(namespace, name)
                return
            job = self.store.get(JOBS, namespace, name)
            if job is not None:
                try:
                    self._sync(job)
                except ApiError as e:
                    if e.code not in (404, 409):
                        raise
                    self.loop.add_after(item, self.config.backoff_base)

    def _sync_pod(self, namespace: str, name: str) -> None:
        pod = self.store.get(PODS, namespace, name)
        if pod is None:
            return
        ref = controller_ref(pod)
        job = (
            self.store.get(JOBS, namespace, ref["name"])
            if ref and ref.get("kind") == "Job"
            else None
        )
        if job is None or job["metadata"]["uid"] != ref.get("uid"):  # type: ignore[union-attr]
            self._drop_finalizer(pod)  # orphaned: nobody will count it
        else:
            self.loop.add(("job", namespace, job["metadata"]["name"]))

    # -- the sync -------------------------------------------------------------------------

    def _sync(self, job: Obj) -> None:
        spec, meta = job.get("spec") or {}, job["metadata"]
        if spec.get("managedBy") not in (None, JOB_CONTROLLER):
            return
        uid, now = meta["uid"], self.clock()
        status = clone(job.get("status") or {})  # the sync's working copy
        conds: list[Obj] = status.setdefault("conditions", [])
        pods = self._pods(uid)
        if _true(conds, "Complete") or _true(conds, "Failed"):
            for pod in pods:
                self._drop_finalizer(pod)
            self._ttl(job, conds, now)
            return
        if spec.get("completionMode") == "Indexed":
            self._unsupported(job, "completionMode Indexed")
            return
        replace_failed_only = spec.get("podReplacementPolicy") == "Failed"
        failure = _true(conds, "FailureTarget")
        success = _true(conds, "SuccessCriteriaMet")
        finishing = failure is not None or success is not None

        # 1. Which finished pods still need counting.
        outcome: dict[str, str] = {}
        new_failure: tuple[str, str] | None = None
        for pod in pods:
            if TRACKING not in (pod["metadata"].get("finalizers") or []):
                continue
            phase = _phase(pod)
            if phase == "Succeeded":
                outcome[pod["metadata"]["uid"]] = "succeeded"
            elif phase == "Failed" or (_deleting(pod) and not replace_failed_only) or finishing:
                result = "failed"
                if phase == "Failed" and spec.get("podFailurePolicy") and not finishing:
                    action, message = match_pod_failure_policy(spec["podFailurePolicy"], pod)
                    if action == "Ignore":
                        result = "ignored"
                    elif action == "FailJob" and new_failure is None:
                        new_failure = ("PodFailurePolicy", message)
                outcome[pod["metadata"]["uid"]] = result
        succeeded = status.get("succeeded", 0) + sum(
            1 for o in outcome.values() if o == "succeeded"
        )
        failed = status.get("failed", 0) + sum(1 for o in outcome.values() if o == "failed")
        active = [p for p in pods if _phase(p) not in TERMINAL_PHASES and not _deleting(p)]

        # 2. Decide whether the Job is finishing (evaluation order of syncJob).
        if not finishing:
            completions = spec.get("completions")
            deadline = spec.get("activeDeadlineSeconds")
            start = parse_time(status.get("startTime"))
            if new_failure is not None:
                failure = condition("FailureTarget", "True", *new_failure)
            elif self._restarts_exceeded(spec, active) or failed > spec.get("backoffLimit", 6):
                failure = condition("FailureTarget", "True", "BackoffLimitExceeded", BACKOFF_MSG)
            elif (
                deadline
                and start is not None
                and not spec.get("suspend")
                and now - start >= deadline
            ):
                failure = condition("FailureTarget", "True", "DeadlineExceeded", DEADLINE_MSG)
            elif (completions is not None and succeeded >= completions) or (
                completions is None
                and succeeded > 0
                and not [p for p in active if p["metadata"]["uid"] not in outcome]
            ):
                success = condition(
                    "SuccessCriteriaMet", "True", "CompletionsReached", COMPLETIONS_MSG
                )
            if failure is not None or success is not None:
                conds.append(failure or success)  # type: ignore[arg-type]
                finishing = True
                for pod in active:  # active pods of a finishing Job count as failed
                    if TRACKING in (pod["metadata"].get("finalizers") or []):
                        outcome.setdefault(pod["metadata"]["uid"], "failed")
                failed = status.get("failed", 0) + sum(1 for o in outcome.values() if o == "failed")

        # 3. Count: record the UIDs, release the pods, then move them to the counters.
        if outcome:
            job = self._count(job, status, pods, outcome)
        if finishing:
            for pod in active:
                self._delete_pod(pod)
        elif spec.get("suspend"):
            self._suspend(job, status, active)
        else:
            self._run(job, status, active, pods, succeeded, now)

        # 4. Terminal condition once every pod is gone or counted.
        pods = self._pods(uid)
        terminating = [p for p in pods if _phase(p) not in TERMINAL_PHASES and _deleting(p)]
        active = [p for p in pods if _phase(p) not in TERMINAL_PHASES and not _deleting(p)]
        interim = failure or success
        final = None
        if interim is not None and not terminating and not self._uncounted(status):
            ctype = "Failed" if failure is not None else "Complete"
            final = condition(ctype, "True", interim.get("reason", ""), interim.get("message", ""))
            conds.append(final)
            if ctype == "Complete":
                status["completionTime"] = final["lastTransitionTime"]
            active = []
        _set_count(status, "active", len(active))
        status["ready"] = sum(1 for p in active if _pod_ready(p))
        status["terminating"] = len(terminating)
        status["uncountedTerminatedPods"] = self._uncounted(status) or {}
        if not conds:
            del status["conditions"]
        self._write_status(job, status)
        if final is not None:
            if final["type"] == "Complete":
                self.recorder.record(job, "Normal", "Completed", "Job completed", COMPONENT)
            else:
                self.recorder.record(
                    job, "Warning", final.get("reason", ""), final.get("message", ""), COMPONENT
                )
            self._backoff.pop(uid, None)
            self._deadlines.pop(uid, None)
            self._ttl(job, [final], now)

    def _pods(self, uid: str) -> list[Obj]:
        return [
            p
            for key, p in self.store.dependents(uid)
            if key == PODS and (controller_ref(p) or {}).get("uid") == uid
        ]

    @staticmethod
    def _uncounted(status: Obj) -> Obj:
        unc = status.get("uncountedTerminatedPods") or {}
        return {k: v for k, v in unc.items() if v}

    @staticmethod
    def _restarts_exceeded(spec: Obj, active: list[Obj]) -> bool:
        template = (spec.get("template") or {}).get("spec") or {}
        if template.get("restartPolicy") != "OnFailure":
            return False
        restarts = sum(
            cs.get("restartCount", 0)
            for p in active
            for cs in (p.get("status") or {}).get("containerStatuses") or []
        )
        limit = int(spec.get("backoffLimit", 6))
        return bool(restarts > 0 if limit == 0 else restarts >= limit)

    def _count(self, job: Obj, status: Obj, pods: list[Obj], outcome: dict[str, str]) -> Obj:
        unc = status.setdefault("uncountedTerminatedPods", {})
        for uid, result in outcome.items():
            if result != "ignored" and uid not in unc.get(result, []):
                unc.setdefault(result, []).append(uid)
        job = self._write_status(job, status)
        for pod in pods:
            if pod["metadata"]["uid"] in outcome:
                self._drop_finalizer(pod)
        failures, last = self._backoff.get(job["metadata"]["uid"], (0, 0.0))
        for result in ("succeeded", "failed"):
            counted = [u for u in unc.get(result, []) if u in outcome]
            if counted:
                _set_count(status, result, status.get(result, 0) + len(counted))
                unc[result] = [u for u in unc[result] if u not in outcome]
        if any(o == "succeeded" for o in outcome.values()):
            failures = 0
        newly_failed = sum(1 for o in outcome.values() if o == "failed")
        if newly_failed:
            failures, last = failures + newly_failed, self.clock()
        self._backoff[job["metadata"]["uid"]] = (failures, last)
        return job

    def _suspend(self, job: Obj, status: Obj, active: list[Obj]) -> None:
        for pod in active:  # released first: suspended pods count as neither succeeded nor failed
            self._drop_finalizer(pod)
            self._delete_pod(pod)
        conds = status["conditions"]
        if not _true(conds, "Suspended"):
            conds[:] = [c for c in conds if c.get("type") != "Suspended"]
            conds.append(condition("Suspended", "True", "JobSuspended", "Job suspended"))
            self.recorder.record(job, "Normal", "Suspended", "Job suspended", COMPONENT)

    def _run(
        self, job: Obj, status: Obj, active: list[Obj], pods: list[Obj], succeeded: int, now: float
    ) -> None:
        spec, meta = job["spec"], job["metadata"]
        conds = status["conditions"]
        if _true(conds, "Suspended"):
            for c in conds:
                if c.get("type") == "Suspended":
                    c.update(condition("Suspended", "False", "JobResumed", "Job resumed"))
            status["startTime"] = format_time(now)
            self.recorder.record(job, "Normal", "Resumed", "Job resumed", COMPONENT)
        status.setdefault("startTime", format_time(now))
        deadline = spec.get("activeDeadlineSeconds")
        if deadline:
            due = (parse_time(status["startTime"]) or now) + deadline
            # Again close to the end, in case the timer fired early (the loop's clock is
            # monotonic, startTime wall-clock).
            if self._deadlines.get(meta["uid"]) != due or due - now < 1.0:
                self._deadlines[meta["uid"]] = due
                self.loop.add_after(("job", meta["namespace"], meta["name"]), due - now + 0.01)
        if _deleting(job):
            return
        parallelism, completions = spec.get("parallelism", 1), spec.get("completions")
        if completions is None:  # a work queue: after one success, let the rest finish
            want = len(active) if succeeded > 0 else parallelism
        else:
            want = max(0, min(parallelism, completions - succeeded))
        if len(active) > want:
            newest = sorted(active, key=lambda p: p["metadata"]["creationTimestamp"], reverse=True)
            for pod in newest[: len(active) - want]:
                self._delete_pod(pod)
            return
        have = len(active)
        if spec.get("podReplacementPolicy") == "Failed":  # wait for terminating pods to finish
            have += sum(1 for p in pods if _deleting(p) and _phase(p) not in TERMINAL_PHASES)
        if have >= want:
            return
        failures, last = self._backoff.get(meta["uid"], (0, 0.0))
        if failures:
            delay = min(self.config.backoff_base * 2 ** (failures - 1), self.config.backoff_max)
            remaining = last + delay - now
            if remaining > 0:
                self.loop.add_after(("job", meta["namespace"], meta["name"]), remaining)
                return
        for _ in range(want - have):
            if not self._create_pod(job):
                break

    # -- writes ---------------------------------------------------------------------------

    def _create_pod(self, job: Obj) -> bool:
        meta = job["metadata"]
        template = clone(job["spec"].get("template") or {})
        tmeta = template.get("metadata") or {}
        pod: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": f"{meta['name']}-",
                "namespace": meta["namespace"],
                "labels": tmeta.get("labels") or {},
                "annotations": tmeta.get("annotations") or {},
                "finalizers": [TRACKING],
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": template.get("spec") or {},
        }
        if not pod["metadata"]["annotations"]:
            del pod["metadata"]["annotations"]
        try:
            created = self.registry.create(
                self.registry.rt(PODS), meta["namespace"], pod, WriteContext(internal=True)
            )
        except ApiError as e:
            self.recorder.record(
                job, "Warning", "FailedCreate", f"Error creating: {e.message}", COMPONENT
            )
            delay = min(self.config.backoff_base * 10, self.config.backoff_max)
            self.loop.add_after(("job", meta["namespace"], meta["name"]), delay)
            return False
        self.recorder.record(
            job,
            "Normal",
            "SuccessfulCreate",
            f"Created pod: {created['metadata']['name']}",
            COMPONENT,
        )
        return True

    def _delete_pod(self, pod: Obj) -> None:
        meta = pod["metadata"]
        current = self.store.get(PODS, meta["namespace"], meta["name"])
        if current is None or _deleting(current):
            return
        try:
            self.registry.delete(
                self.registry.rt(PODS),
                meta["namespace"],
                meta["name"],
                DeleteOptions(precondition_uid=meta["uid"]),
                WriteContext(internal=True),
            )
        except ApiError:
            return
        ref = controller_ref(pod) or {}
        job = self.store.get(JOBS, meta["namespace"], ref.get("name", ""))
        if job is not None:
            self.recorder.record(
                job, "Normal", "SuccessfulDelete", f"Deleted pod: {meta['name']}", COMPONENT
            )

    def _drop_finalizer(self, pod: Obj) -> None:
        meta = pod["metadata"]
        current = self.store.get(PODS, meta["namespace"], meta["name"])
        if current is None or TRACKING not in (current["metadata"].get("finalizers") or []):
            return
        new = {**current, "metadata": dict(current["metadata"])}
        finalizers = [f for f in new["metadata"]["finalizers"] if f != TRACKING]
        if finalizers:
            new["metadata"]["finalizers"] = finalizers
        else:
            del new["metadata"]["finalizers"]
        self.registry.update(
            self.registry.rt(PODS),
            meta["namespace"],
            meta["name"],
            new,
            "",
            WriteContext(internal=True),
        )

    def _write_status(self, job: Obj, status: Obj) -> Obj:
        current = self.store.get(JOBS, job["metadata"]["namespace"], job["metadata"]["name"])
        if current is None or current["metadata"]["uid"] != job["metadata"]["uid"]:
            return job
        status = {k: v for k, v in status.items() if k != "conditions" or v}
        if current.get("status") == status:
            return current
        new = {**current, "status": clone(status)}  # the sync goes on changing its own
        meta = new["metadata"]
        return self.registry.update(
            self.registry.rt(JOBS),
            meta["namespace"],
            meta["name"],
            new,
            "status",
            WriteContext(internal=True),
        )

    def _ttl(self, job: Obj, conds: list[Obj], now: float) -> None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        final = _true(conds, "Complete") or _true(conds, "Failed")
        if ttl is None or final is None:
            return
        finished = parse_time(final.get("lastTransitionTime")) or now
        meta = job["metadata"]
        if now < finished + ttl:
            self.loop.add_after(("job", meta["namespace"], meta["name"]), finished + ttl - now)
            return
        options = DeleteOptions(propagation_policy="Foreground", precondition_uid=meta["uid"])
        with contextlib.suppress(ApiError):
            self.registry.delete(
                self.registry.rt(JOBS),
                meta["namespace"],
                meta["name"],
                options,
                WriteContext(internal=True),
            )

    def _unsupported(self, job: Obj, what: str) -> None:
        message = f"the fakecluster job controller does not implement {what}"
        self.recorder.record(job, "Warning", "FakeUnsupported", message, COMPONENT)


def _set_count(status: Obj, field: str, value: int) -> None:
    if value:
        status[field] = value
    else:
        status.pop(field, None)


def _pod_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )
