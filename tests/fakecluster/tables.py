"""Server-side Tables (``Accept: application/json;as=Table;g=meta.k8s.io;v=v1``), as kubectl's
``get`` asks for them: the real printer columns of the kinds k8sco uses, the CRD's
additionalPrinterColumns for custom resources, and NAME/AGE otherwise."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from . import crds
from .meta import age, human_duration, parse_time
from .resources import ResourceType

Obj = dict[str, Any]
_NAME_DESC = "Name must be unique within a namespace."


def _col(
    name: str, kind: str = "string", priority: int = 0, fmt: str = "", desc: str = ""
) -> dict[str, Any]:
    return {"name": name, "type": kind, "format": fmt, "description": desc, "priority": priority}


def _cond_true(obj: Obj, ctype: str) -> bool:
    return any(
        c.get("type") == ctype and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


def job_cells(job: Obj, now: float) -> list[Any]:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    if _cond_true(job, "Complete"):
        state = "Complete"
    elif _cond_true(job, "Failed"):
        state = "Failed"
    elif job["metadata"].get("deletionTimestamp"):
        state = "Terminating"
    elif _cond_true(job, "Suspended"):
        state = "Suspended"
    elif _cond_true(job, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    duration = "" if start is None else human_duration((end or now) - start)
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    return [
        job["metadata"]["name"],
        state,
        completions,
        duration,
        age(job["metadata"].get("creationTimestamp"), now),
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
        ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
    ]


def pod_status_text(pod: Obj) -> str:
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    running = False
    for cs in reversed(status.get("containerStatuses") or []):
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state:
            term = state["terminated"]
            reason = term.get("reason") or (
                f"Signal:{term['signal']}"
                if term.get("signal")
                else f"ExitCode:{term.get('exitCode')}"
            )
        elif "running" in state and cs.get("ready"):
            running = True
    if reason == "Completed" and running:
        reason = "Running"
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def pod_cells(pod: Obj, now: float) -> list[Any]:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    ready = sum(1 for cs in statuses if cs.get("ready"))
    restarts = sum(cs.get("restartCount", 0) for cs in statuses)
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        pod_status_text(pod),
        str(restarts),
        age(pod["metadata"].get("creationTimestamp"), now),
        status.get("podIP") or "<none>",
        (pod.get("spec") or {}).get("nodeName") or "<none>",
        "<none>",
        "<none>",
    ]


def _event_cells(ev: Obj, now: float) -> list[Any]:
    inv = ev.get("involvedObject") or {}
    last = ev.get("lastTimestamp") or ev.get("eventTime") or ev["metadata"].get("creationTimestamp")
    return [
        age(last, now),
        ev.get("type", ""),
        ev.get("reason", ""),
        f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}",
        ev.get("message", ""),
    ]


def _deployment_cells(d: Obj, now: float) -> list[Any]:
    spec, status = d.get("spec") or {}, d.get("status") or {}
    return [
        d["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        age(d["metadata"].get("creationTimestamp"), now),
    ]


_Cells = Callable[[Obj, float], list[Any]]
_BUILTIN: dict[tuple[str, str], tuple[list[dict[str, Any]], _Cells]] = {
    ("batch", "jobs"): (
        [
            _col("Name", fmt="name", desc=_NAME_DESC),
            _col("Status", desc="Status of the job."),
            _col("Completions", desc="The completion status of the job."),
            _col("Duration", desc="Time required to complete the job."),
            _col(
                "Age",
                desc="CreationTimestamp is a timestamp representing the server time when this "
                "object was created.",
            ),
            _col("Containers", priority=1, desc="Names of each container in the template."),
            _col("Images", priority=1, desc="Images referenced by each container in the template."),
            _col(
                "Selector", priority=1, desc="Query over pods that should match the number of pods."
            ),
        ],
        job_cells,
    ),
    ("", "pods"): (
        [
            _col("Name", fmt="name", desc=_NAME_DESC),
            _col("Ready", desc="The aggregate readiness state of this pod for accepting traffic."),
            _col("Status", desc="The aggregate status of the containers in this pod."),
            _col(
                "Restarts",
                desc="The number of times the containers in this pod have been restarted.",
            ),
            _col("Age"),
            _col("IP", priority=1, desc="IP address allocated to the pod."),
            _col("Node", priority=1, desc="Name of the node the pod is assigned to."),
            _col("Nominated Node", priority=1),
            _col("Readiness Gates", priority=1),
        ],
        pod_cells,
    ),
    ("", "namespaces"): (
        [_col("Name", fmt="name", desc=_NAME_DESC), _col("Status"), _col("Age")],
        lambda o, now: [
            o["metadata"]["name"],
            (o.get("status") or {}).get("phase", ""),
            age(o["metadata"].get("creationTimestamp"), now),
        ],
    ),
    ("", "events"): (
        [_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message")],
        _event_cells,
    ),
    ("apps", "deployments"): (
        [
            _col("Name", fmt="name", desc=_NAME_DESC),
            _col("Ready"),
            _col("Up-to-date", "integer"),
            _col("Available", "integer"),
            _col("Age"),
        ],
        _deployment_cells,
    ),
    ("", "nodes"): (
        [_col("Name", fmt="name"), _col("Status"), _col("Roles"), _col("Age"), _col("Version")],
        lambda o, now: [
            o["metadata"]["name"],
            "Ready" if _cond_true(o, "Ready") else "NotReady",
            "<none>",
            age(o["metadata"].get("creationTimestamp"), now),
            ((o.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", ""),
        ],
    ),
    ("", "configmaps"): (
        [_col("Name", fmt="name"), _col("Data", "integer"), _col("Age")],
        lambda o, now: [
            o["metadata"]["name"],
            len(o.get("data") or {}) + len(o.get("binaryData") or {}),
            age(o["metadata"].get("creationTimestamp"), now),
        ],
    ),
    ("coordination.k8s.io", "leases"): (
        [_col("Name", fmt="name"), _col("Holder"), _col("Age")],
        lambda o, now: [
            o["metadata"]["name"],
            (o.get("spec") or {}).get("holderIdentity", ""),
            age(o["metadata"].get("creationTimestamp"), now),
        ],
    ),
    ("apiextensions.k8s.io", "customresourcedefinitions"): (
        [_col("Name", fmt="name"), _col("Created At", "date")],
        lambda o, now: [o["metadata"]["name"], o["metadata"].get("creationTimestamp")],
    ),
}
_DEFAULT: tuple[list[dict[str, Any]], _Cells] = (
    [_col("Name", fmt="name", desc=_NAME_DESC), _col("Age")],
    lambda o, now: [o["metadata"]["name"], age(o["metadata"].get("creationTimestamp"), now)],
)


def _custom(rt: ResourceType) -> tuple[list[dict[str, Any]], _Cells]:
    assert rt.crd is not None
    printer = crds.printer_columns(rt.crd, rt.version)
    if not printer:
        return _DEFAULT
    columns = [_col("Name", fmt="name", desc=_NAME_DESC)] + [
        _col(
            c["name"],
            c.get("type", "string"),
            c.get("priority", 0),
            c.get("format", ""),
            c.get("description", ""),
        )
        for c in printer
    ]

    def cells(obj: Obj, now: float) -> list[Any]:
        row: list[Any] = [obj["metadata"]["name"]]
        for c in printer:
            value = crds.jsonpath(obj, c.get("jsonPath", ""))
            if value is None:
                row.append(None)
            elif c.get("type") == "date":
                row.append(age(str(value), now))
            elif c.get("type") == "integer" and isinstance(value, int | float):
                row.append(int(value))
            elif isinstance(value, dict | list):
                row.append(json.dumps(value, separators=(",", ":")))
            else:
                row.append(value)
        return row

    return columns, cells


def columns_for(rt: ResourceType) -> tuple[list[dict[str, Any]], _Cells]:
    if rt.is_custom:
        return _custom(rt)
    return _BUILTIN.get(rt.key, _DEFAULT)


def row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def to_table(
    rt: ResourceType,
    objs: list[Obj],
    resource_version: str = "",
    include_object: str = "Metadata",
    with_columns: bool = True,
) -> Obj:
    columns, cells = columns_for(rt)
    now = time.time()
    table: Obj = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version} if resource_version else {},
        "columnDefinitions": columns if with_columns else None,
        "rows": [{"cells": cells(o, now), "object": row_object(o, include_object)} for o in objs],
    }
    return table


def wants_table(accept: str) -> bool:
    return "as=Table" in accept.replace(" ", "")
