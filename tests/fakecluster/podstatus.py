"""The pod status a kubelet reports for the containers it runs (pure)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .meta import format_time

if TYPE_CHECKING:
    from .kubelet import Instance, PodRun


def pod_status(pod: dict[str, Any], run: PodRun, stopping: bool) -> dict[str, Any]:
    """The status a kubelet would report for ``run``."""
    status = dict(pod.get("status") or {})  # only its keys are replaced below
    policy = pod["spec"].get("restartPolicy", "Always")
    statuses, states = [], []
    for container in pod["spec"].get("containers") or []:
        crun = run.containers[container["name"]]
        inst = crun.current
        cs: dict[str, Any] = {
            "name": crun.name,
            "image": crun.image,
            # No image ID before the image is there (ErrImagePull, ImagePullBackOff, …).
            "imageID": f"fake://{crun.image}" if inst is not None else "",
            "restartCount": crun.restart_count,
            "started": False,
            "ready": False,
        }
        if inst is not None and inst.container_id:
            cs["containerID"] = inst.container_id
        if inst is not None and inst.exited.is_set():
            term = terminated_state(inst)
            final = stopping or policy == "Never" or (policy == "OnFailure" and inst.exit_code == 0)
            if crun.waiting and not final:
                cs["state"] = {"waiting": {"reason": crun.waiting[0], "message": crun.waiting[1]}}
                cs["lastState"] = {"terminated": term}
                states.append("restarting")
            elif not final:  # exited, the restart is not decided yet: not terminal
                cs["state"] = {"terminated": term}
                states.append("restarting")
            else:
                cs["state"] = {"terminated": term}
                states.append("succeeded" if inst.exit_code == 0 else "failed")
        elif inst is not None:
            cs["state"] = {"running": {"startedAt": inst.started_at}}
            cs["started"] = cs["ready"] = True
            states.append("running")
        else:
            reason, message = crun.waiting or ("ContainerCreating", "")
            cs["state"] = {
                "waiting": {"reason": reason, **({"message": message} if message else {})}
            }
            states.append("waiting")
        if crun.previous is not None and "lastState" not in cs:
            cs["lastState"] = {"terminated": terminated_state(crun.previous)}
        cs.setdefault("lastState", {})
        statuses.append(cs)
    terminal = all(s in ("succeeded", "failed") for s in states)
    if terminal:
        phase = "Succeeded" if all(s == "succeeded" for s in states) else "Failed"
    elif "running" in states or "restarting" in states:
        phase = "Running"
    else:
        phase = "Pending"
    ready = bool(states) and all(s == "running" for s in states)
    not_ready = (
        ("PodCompleted", "")
        if terminal
        else (
            "ContainersNotReady",
            "containers with unready status: ["
            + " ".join(c["name"] for c in statuses if not c["ready"])
            + "]",
        )
    )
    conds = [
        pod_condition("PodReadyToStartContainers", "False" if terminal else "True"),
        pod_condition("Initialized", "True", "PodCompleted" if terminal else ""),
        pod_condition("Ready", "True") if ready else pod_condition("Ready", "False", *not_ready),
        pod_condition("ContainersReady", "True")
        if ready
        else pod_condition("ContainersReady", "False", *not_ready),
        pod_condition("PodScheduled", "True"),
    ]
    status.update(
        phase=phase,
        conditions=merge_conditions(status, conds),
        containerStatuses=statuses,
        hostIP="127.0.0.1",
        hostIPs=[{"ip": "127.0.0.1"}],
        podIP=run.ip,
        podIPs=[{"ip": run.ip}],
        startTime=run.started_at,
    )
    return status


def terminated_state(inst: Instance) -> dict[str, Any]:
    term: dict[str, Any] = {
        "exitCode": inst.exit_code,
        "reason": inst.reason or ("Completed" if inst.exit_code == 0 else "Error"),
        "startedAt": inst.started_at,
        "finishedAt": inst.finished_at or inst.started_at,
    }
    if inst.message:
        term["message"] = inst.message
    if inst.container_id:
        term["containerID"] = inst.container_id
    return term


def waiting_status(container: dict[str, Any], reason: str, message: str) -> dict[str, Any]:
    waiting = {"reason": reason, **({"message": message} if message else {})}
    image = container.get("image", "")
    return {
        "name": container.get("name"),
        "image": image,
        "imageID": "",
        "restartCount": 0,
        "started": False,
        "ready": False,
        "state": {"waiting": waiting},
        "lastState": {},
    }


def pod_condition(ctype: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": ctype,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": format_time(time.time()),
    }
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def conditions_by_type(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status.get("conditions") or []}


def merge_conditions(status: dict[str, Any], updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replace conditions by type, keeping lastTransitionTime when the status is unchanged."""
    current = conditions_by_type(status)
    for cond in updates:
        old = current.get(cond["type"])
        if old is not None and (old.get("status"), old.get("reason"), old.get("message")) == (
            cond.get("status"),
            cond.get("reason"),
            cond.get("message"),
        ):
            continue
        current[cond["type"]] = cond
    return list(current.values())
