"""The simulated node: a scheduler that binds pods to it and a kubelet that runs their
containers through a :class:`~runners.ContainerRunner`, reports phases and container states,
restarts per restartPolicy, and kills the processes of deleted pods (SIGTERM, grace, SIGKILL).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from .containerenv import expand, resolve_env
from .errors import ApiError
from .events import EventRecorder
from .images import ImageStore, default_pull_policy, pull_error
from .logs import LogSource
from .loops import Loop, Workers
from .meta import format_time
from .podspec import TERMINAL_PHASES
from .podstatus import (
    conditions_by_type,
    merge_conditions,
    pod_condition,
    pod_status,
    waiting_status,
)
from .registry import DeleteOptions, Registry, WriteContext
from .runners import ContainerLaunch, ContainerProcess, ContainerRunner, RunnerError, session_rss
from .scheduling import insufficient, parse_quantity, pod_requests, unschedulable_message
from .store import Event

PODS = ("", "pods")
MEMORY_POLL = 0.2  # seconds between looks at the memory of containers with a limit


@dataclass
class Instance:
    """One start of a container."""

    log_path: Path
    started_at: str
    handle: ContainerProcess | None = None
    exit_code: int | None = None
    reason: str = ""
    message: str = ""
    finished_at: str = ""
    exited: threading.Event = field(default_factory=threading.Event)
    oom: bool = False  # killed for exceeding its memory limit

    @property
    def container_id(self) -> str:
        return self.handle.container_id if self.handle else ""


@dataclass
class ContainerRun:
    name: str
    image: str
    current: Instance | None = None
    previous: Instance | None = None
    restart_count: int = 0
    waiting: tuple[str, str] | None = None  # (reason, message) while not running
    restart_at: float | None = None
    pull_failures: int = 0
    pull_retry_at: float | None = None  # the end of the image pull back-off
    pull_error: tuple[float, str] | None = None  # (shown until, message) after a failed pull


@dataclass
class PodRun:
    uid: str
    namespace: str
    name: str
    containers: dict[str, ContainerRun]
    started_at: str
    ip: str
    killing_since: float | None = None

    def live(self) -> list[Instance]:
        return [
            c.current
            for c in self.containers.values()
            if c.current and not c.current.exited.is_set()
        ]


class Kubelet:
    def __init__(
        self,
        registry: Registry,
        recorder: EventRecorder,
        runner: ContainerRunner,
        log_dir: Path,
        errors: list[str],
        node_name: str = "fakenode",
        max_grace_seconds: float | None = 3.0,
        restart_delay: float = 0.1,
        images: ImageStore | None = None,
        capacity: dict[str, Decimal] | None = None,
    ) -> None:
        self.registry = registry
        self.store = registry.store
        self.recorder = recorder
        self.runner = runner
        self.log_dir = log_dir
        self.node_name = node_name
        self.max_grace_seconds = max_grace_seconds
        self.restart_delay = restart_delay
        self.images = images or ImageStore()
        self.capacity = capacity if capacity is not None else {}
        self._unschedulable: set[tuple[str, str]] = set()  # under store.lock
        self.loop = Loop("fakecluster-kubelet", self._sync, errors)
        self._runs: dict[str, PodRun] = {}  # by pod uid
        self._uids: dict[tuple[str, str], set[str]] = {}  # (namespace, name) → uids in _runs
        # The specs of the pods bound to this node that still run, by uid (kept by on_event,
        # so that the scheduler need not scan every pod), and what they request.
        self._bound: dict[str, dict[str, Any]] = {}
        self._asks: dict[str, dict[str, Decimal]] = {}  # bound pods' requests, by uid
        self._allocated: dict[str, Decimal] = {}  # their sum
        self._lock = threading.Lock()
        self._waiters = Workers("fakecluster-wait", errors)
        # Containers with a memory limit, by process (session) id: see _watch_memory.
        self._limited: dict[int, tuple[Instance, int]] = {}
        self._oom_killer: threading.Thread | None = None
        self._ips = 0

    def on_event(self, ev: Event) -> None:
        if ev.key == PODS:
            meta = ev.obj["metadata"]
            if not self._reconcile_only(ev):
                self.loop.add((meta["namespace"], meta["name"]))
            phase = (ev.obj.get("status") or {}).get("phase")
            spec = ev.obj.get("spec") or {}
            bound = ev.type != "DELETED" and spec.get("nodeName") == self.node_name
            if bound and phase not in TERMINAL_PHASES:
                self._bound[meta["uid"]] = spec
            else:
                self._bound.pop(meta["uid"], None)
            if self._unschedulable and (ev.type == "DELETED" or phase in TERMINAL_PHASES):
                # Resources were freed: the scheduler moves unschedulable pods back to its
                # active queue on such events (pkg/scheduler/internal/queue).
                for key in self._unschedulable:
                    self.loop.add(key)

    def _reconcile_only(self, ev: Event) -> bool:
        """True for a change to a pod running here that the kubelet does not sync for: its
        pod config hands the pod workers a change of spec, labels, annotations or deletion
        (pkg/kubelet/config/config.go, checkAndUpdatePod and podsDifferSemantically); a
        change of status (the kubelet's own writes, most of them) or of finalizers is only
        reconciled. Not for a pod being deleted: this fake kubelet, like the real status
        manager, deletes it for good once its own write has made it terminal."""
        old = ev.old
        if ev.type != "MODIFIED" or old is None:
            return False
        new_meta, old_meta = ev.obj["metadata"], old["metadata"]
        return (
            (old.get("spec") or {}).get("nodeName") == self.node_name
            and not new_meta.get("deletionTimestamp")
            and not old_meta.get("deletionTimestamp")
            and ev.obj.get("spec") == old.get("spec")
            and new_meta.get("labels") == old_meta.get("labels")
            and new_meta.get("annotations") == old_meta.get("annotations")
            and new_meta.get("deletionGracePeriodSeconds")
            == old_meta.get("deletionGracePeriodSeconds")
        )

    # -- public ---------------------------------------------------------------------------

    def processes(self) -> dict[tuple[str, str, str], ContainerProcess]:
        """Live container processes by (namespace, pod, container)."""
        with self._lock:
            return {
                (run.namespace, run.name, c.name): c.current.handle
                for run in self._runs.values()
                for c in run.containers.values()
                if c.current and c.current.handle and not c.current.exited.is_set()
            }

    def log_source(self, pod: dict[str, Any], container: str, previous: bool) -> LogSource | None:
        with self._lock:
            run = self._runs.get(pod["metadata"]["uid"])
            c = run.containers.get(container) if run else None
            instance = (c.previous if previous else c.current) if c else None
        if instance is None:
            return None
        return LogSource(instance.log_path, instance.exited.is_set)

    def stop(self) -> None:
        self.loop.stop()
        with self._lock:
            instances = [i for run in self._runs.values() for i in run.live()]
        for instance in instances:
            if instance.handle:
                instance.handle.kill()
        self._waiters.stop()

    # -- the sync loop --------------------------------------------------------------------

    def _sync(self, item: Any) -> None:
        namespace, name = item
        pod = self.store.get(PODS, namespace, name)
        with self._lock:
            stale = [self._runs[uid] for uid in self._uids.get(item, ())]
        for run in stale:
            if pod is None or run.uid != pod["metadata"]["uid"]:
                self._forget(run)
        if pod is None:
            return
        try:
            self._sync_pod(pod)
        except ApiError as e:
            if e.code in (404, 409):  # the pod changed under us: look again
                self.loop.add(item)
                return
            raise

    def _sync_pod(self, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        status = pod.get("status") or {}
        run = self._runs.get(meta["uid"])
        if status.get("phase") in TERMINAL_PHASES:
            if run and run.live():
                self._signal(run, kill=True)
            if meta.get("deletionTimestamp"):
                self._final_delete(pod)
            return
        if not spec.get("nodeName"):
            if not meta.get("deletionTimestamp"):
                self._schedule(pod)
            return
        if spec["nodeName"] != self.node_name:
            return
        if meta.get("deletionTimestamp"):
            self._terminate(pod, run)
            return
        if run is None:
            self._start(pod)
            return
        self._reconcile(pod, run)

    def _schedule(self, pod: dict[str, Any]) -> None:
        status = dict(pod.get("status") or {})
        new = {**pod, "spec": dict(pod["spec"]), "status": status}
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        # The set is read by on_event, which runs under the store's lock on the writer's
        # thread: it is changed under that lock too.
        with self.store.lock:
            self._unschedulable.discard(key)
        short = self._insufficient(pod)
        if short and not new["spec"].get("schedulingGates"):
            with self.store.lock:
                self._unschedulable.add(key)
            message = unschedulable_message(short)
            cond = pod_condition("PodScheduled", "False", "Unschedulable", message)
            if conditions_by_type(status).get("PodScheduled", {}).get("message") != message:
                status["conditions"] = merge_conditions(status, [cond])
                self._write(new, internal_whole=True)
                self.recorder.record(
                    pod, "Warning", "FailedScheduling", message, "default-scheduler"
                )
            return
        if new["spec"].get("schedulingGates"):
            cond = pod_condition(
                "PodScheduled",
                "False",
                "SchedulingGated",
                "Scheduling is blocked due to non-empty scheduling gates",
            )
            if conditions_by_type(status).get("PodScheduled") != cond:
                status["conditions"] = merge_conditions(status, [cond])
                self._write(new, internal_whole=True)
            return
        new["spec"]["nodeName"] = self.node_name
        status["conditions"] = merge_conditions(status, [pod_condition("PodScheduled", "True")])
        status["containerStatuses"] = [
            waiting_status(c, "ContainerCreating", "") for c in new["spec"].get("containers") or []
        ]
        status["hostIP"] = "127.0.0.1"
        self._write(new, internal_whole=True)
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        self.recorder.record(
            pod,
            "Normal",
            "Scheduled",
            f"Successfully assigned {ns}/{name} to {self.node_name}",
            "default-scheduler",
        )

    def _insufficient(self, pod: dict[str, Any]) -> list[str]:
        """What the node lacks for ``pod`` beside the pods bound to it that still run."""
        if not self.capacity:
            return []
        with self.store.lock:
            bound = dict(self._bound)
        # The node's requested total is kept as pods come and go, as the scheduler's
        # NodeInfo keeps it (pkg/scheduler/framework/types.go, NodeInfo.Requested, updated
        # by AddPod/RemovePod): summing every bound pod for each new one was quadratic in
        # the pods running, a fifth of the fake's CPU with 1,000 pods running.
        for uid in self._asks.keys() - bound.keys():
            for name, value in self._asks.pop(uid).items():
                self._allocated[name] -= value
        for uid in bound.keys() - self._asks.keys():
            ask = self._asks[uid] = pod_requests(bound[uid])
            for name, value in ask.items():
                self._allocated[name] = self._allocated.get(name, Decimal(0)) + value
        return insufficient(self.capacity, [self._allocated], pod_requests(pod.get("spec") or {}))

    def _start(self, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        with self._lock:
            self._ips += 1
            ip = f"10.244.{self._ips // 250}.{self._ips % 250 + 2}"
        run = PodRun(meta["uid"], meta["namespace"], meta["name"], {}, format_time(time.time()), ip)
        for c in spec.get("containers") or []:
            run.containers[c["name"]] = ContainerRun(c["name"], c.get("image", ""))
        with self._lock:
            self._runs[run.uid] = run
            self._uids.setdefault((run.namespace, run.name), set()).add(run.uid)
        for c in spec.get("containers") or []:
            self._launch(pod, run, c)
        self._write_status(pod, run)

    def _ensure_image(
        self, pod: dict[str, Any], crun: ContainerRun, container: dict[str, Any]
    ) -> tuple[str, str] | None:
        """The waiting (reason, message) when the image is not there to run; see images.py."""
        image = container.get("image") or ""
        policy = container.get("imagePullPolicy") or default_pull_policy(image)
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        present = self.images.present(image)
        if policy == "Never" or (policy == "IfNotPresent" and present):
            if present:
                return None
            message = f'Container image "{image}" is not present with pull policy of Never'
            self.recorder.record(pod, "Warning", "ErrImageNeverPull", message, "kubelet")
            self.loop.add_after(key, self.images.pull_backoff)
            return ("ErrImageNeverPull", message)
        now = time.monotonic()
        if crun.pull_error is not None and now < crun.pull_error[0]:
            # The pod worker's next sync comes later than our own status write: the pull
            # error stays visible until then.
            self.loop.add_after(key, crun.pull_error[0] - now)
            return ("ErrImagePull", crun.pull_error[1])
        if crun.pull_retry_at is not None and now < crun.pull_retry_at:
            message = f'Back-off pulling image "{image}"'
            self.recorder.record(pod, "Normal", "BackOff", message, "kubelet")
            self.loop.add_after(key, crun.pull_retry_at - now)
            return ("ImagePullBackOff", message)
        self.recorder.record(pod, "Normal", "Pulling", f'Pulling image "{image}"', "kubelet")
        if self.images.pull(image):
            crun.pull_failures, crun.pull_retry_at = 0, None
            self.recorder.record(
                pod, "Normal", "Pulled", f'Successfully pulled image "{image}" in 0s', "kubelet"
            )
            return None
        error = pull_error(image)
        crun.pull_failures += 1
        delay = min(
            self.images.pull_backoff * 2 ** (crun.pull_failures - 1), self.images.pull_backoff_max
        )
        crun.pull_retry_at = now + delay
        self.recorder.record(
            pod, "Warning", "Failed", f'Failed to pull image "{image}": {error}', "kubelet"
        )
        self.recorder.record(pod, "Warning", "Failed", "Error: ErrImagePull", "kubelet")
        # The pod worker syncs again soon, inside the back-off: ImagePullBackOff.
        crun.pull_error = (now + min(delay / 2, 1.0), error)
        self.loop.add_after(key, min(delay / 2, 1.0))
        return ("ErrImagePull", error)

    def _launch(self, pod: dict[str, Any], run: PodRun, container: dict[str, Any]) -> None:
        crun = run.containers[container["name"]]
        problem = self._ensure_image(pod, crun, container)
        if problem is not None:
            crun.waiting = problem
            return
        try:
            env = resolve_env(self.registry, pod, container)
        except KeyError as e:
            crun.waiting = ("CreateContainerConfigError", str(e.args[0]))
            self.loop.add_after((run.namespace, run.name), 1.0)
            return
        # One flat file per container run (the real kubelet makes a directory per pod,
        # /var/log/pods/<ns>_<pod>_<uid>/<container>/: a mkdir was a tenth of the fake's
        # CPU per Job, and nothing reads this layout but the logs API).
        name = f"{run.namespace}_{run.name}_{run.uid}_{crun.name}.{crun.restart_count}.log"
        instance = Instance(self.log_dir / name, format_time(time.time()))
        argv = tuple(
            expand(a, env) for a in (container.get("command") or []) + (container.get("args") or [])
        )
        launch = ContainerLaunch(
            namespace=run.namespace,
            pod=run.name,
            pod_uid=run.uid,
            container=crun.name,
            image=crun.image,
            argv=argv,
            env=env,
            working_dir=container.get("workingDir"),
            log_path=instance.log_path,
        )
        crun.waiting = None
        crun.previous, crun.current = crun.current, instance
        # Created empty (the logs API reads it at once) with one call: Path.touch first
        # tries a utime, which fails for a new file, then opens it.
        os.close(os.open(instance.log_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
        try:
            instance.handle = self.runner.start(launch)
        except RunnerError as e:
            instance.exit_code, instance.reason, instance.message = 128, e.reason, e.message
            instance.finished_at = instance.started_at
            instance.exited.set()
            self.loop.add((run.namespace, run.name))
            return
        self.recorder.record(pod, "Normal", "Started", f"Started container {crun.name}", "kubelet")
        self._waiters.submit(self._wait, run, instance)
        limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
        pid = getattr(instance.handle, "pid", None)  # a LocalProcess (Docker limits its own)
        if limit is not None and isinstance(pid, int):
            with self._lock:
                self._limited[pid] = (instance, int(parse_quantity(limit)))
                if self._oom_killer is None or not self._oom_killer.is_alive():
                    self._oom_killer = threading.Thread(
                        target=self._watch_memory, name="fakecluster-oom", daemon=True
                    )
                    self._oom_killer.start()

    def _watch_memory(self) -> None:
        """The kernel's OOM killer for containers' cgroups, approximated: every MEMORY_POLL
        seconds, while containers with a memory limit run, the resident memory of each
        one's processes (its session: runners.session_rss) is compared with its limit, and
        past it they are killed with SIGKILL, as the cgroup's OOM kill does."""
        while True:
            time.sleep(MEMORY_POLL)
            with self._lock:
                for pid in [p for p, (i, _) in self._limited.items() if i.exited.is_set()]:
                    del self._limited[pid]
                if not self._limited:
                    self._oom_killer = None
                    return
                limited = dict(self._limited)
            used = session_rss()
            for pid, (instance, limit) in limited.items():
                if used.get(pid, 0) > limit and instance.handle is not None:
                    instance.oom = True  # before the kill: _wait reads it when it has ended
                    instance.handle.kill()

    def _wait(self, run: PodRun, instance: Instance) -> None:
        assert instance.handle is not None
        code = instance.handle.wait()
        if instance.oom:
            # As the kubelet reports a container its runtime saw OOM-killed: reason
            # "OOMKilled", exit code 137 (128 + SIGKILL). The reason comes from the runtime
            # (containerd internal/cri/server/events.go, oomExitReason) through
            # kubernetes pkg/kubelet/kuberuntime/kuberuntime_container.go.
            code = 137
        instance.exit_code = code
        instance.reason = "OOMKilled" if instance.oom else "Completed" if code == 0 else "Error"
        instance.finished_at = format_time(time.time())
        instance.exited.set()
        self.loop.add((run.namespace, run.name))

    def _reconcile(self, pod: dict[str, Any], run: PodRun) -> None:
        policy = pod["spec"].get("restartPolicy", "Always")
        now = time.monotonic()
        for container in pod["spec"].get("containers") or []:
            crun = run.containers.get(container["name"])
            if crun is None:
                continue
            if crun.current is None:  # could not resolve its env: try again
                self._launch(pod, run, container)
                continue
            inst = crun.current
            if not inst.exited.is_set():
                continue
            restart = policy == "Always" or (policy == "OnFailure" and inst.exit_code != 0)
            if not restart:
                continue
            if crun.restart_at is None:
                delay = min(self.restart_delay * 2**crun.restart_count, 300.0)
                crun.restart_at = now + delay
                crun.waiting = (
                    "CrashLoopBackOff",
                    f"back-off restarting failed container {crun.name}",
                )
                self.loop.add_after((run.namespace, run.name), delay)
            elif now >= crun.restart_at:
                crun.restart_at = None
                crun.restart_count += 1
                self._launch(pod, run, container)
        self._write_status(pod, run)

    def _terminate(self, pod: dict[str, Any], run: PodRun | None) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        if run is None or not run.live():
            if run is not None:
                self._write_status(pod, run, stopping=True)
                pod = self.store.get(PODS, *key) or pod
            self._final_delete(pod)
            return
        grace = float(pod["metadata"].get("deletionGracePeriodSeconds") or 0)
        if self.max_grace_seconds is not None:
            grace = min(grace, self.max_grace_seconds)
        now = time.monotonic()
        if run.killing_since is None:
            run.killing_since = now
            for c in run.containers.values():
                self.recorder.record(
                    pod, "Normal", "Killing", f"Stopping container {c.name}", "kubelet"
                )
            self._signal(run, kill=grace <= 0)
            self.loop.add_after(key, grace)
        elif now - run.killing_since >= grace:
            self._signal(run, kill=True)
        else:
            self.loop.add_after(key, grace - (now - run.killing_since))

    def _final_delete(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        rt = self.registry.rt(PODS)
        options = DeleteOptions(grace_period_seconds=0, precondition_uid=meta["uid"])
        self.registry.delete(
            rt, meta["namespace"], meta["name"], options, WriteContext(internal=True)
        )

    def _signal(self, run: PodRun, kill: bool) -> None:
        for instance in run.live():
            if instance.handle:
                if kill:
                    instance.handle.kill()
                else:
                    instance.handle.terminate()

    def _forget(self, run: PodRun) -> None:
        self._signal(run, kill=True)
        with self._lock:
            self._runs.pop(run.uid, None)
            uids = self._uids.get((run.namespace, run.name), set())
            uids.discard(run.uid)
            if not uids:
                self._uids.pop((run.namespace, run.name), None)

    # -- status ---------------------------------------------------------------------------

    def _write_status(self, pod: dict[str, Any], run: PodRun, stopping: bool = False) -> None:
        new = {
            **pod,
            "status": pod_status(
                pod, run, stopping or bool(pod["metadata"].get("deletionTimestamp"))
            ),
        }
        if new["status"] != pod.get("status"):
            self._write(new)

    def _write(self, new: dict[str, Any], internal_whole: bool = False) -> None:
        meta = new["metadata"]
        rt = self.registry.rt(PODS)
        sub = "" if internal_whole else "status"
        self.registry.update(
            rt, meta["namespace"], meta["name"], new, sub, WriteContext(internal=True)
        )
