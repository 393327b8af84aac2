"""Resource quantities and the scheduler's NodeResourcesFit check for the one node.

The message is the scheduler's FitError (pkg/scheduler/framework/types.go, FitError.Error:
"0/%v nodes are available: %v." with the sorted "<count> <reason>" list) followed by the
preemption PostFilter's (pkg/scheduler/framework/preemption/preemption.go: pods of equal
priority are never victims). The reason per resource is "Insufficient <name>"
(pkg/scheduler/framework/plugins/noderesources/fit.go).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

_SUFFIX = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?)$")


def parse_quantity(value: Any) -> Decimal:
    """A resource.Quantity string ("500m", "1.5Gi", "2e3", 4) as a number."""
    text = str(value).strip()
    found = _QUANTITY.match(text)
    if not found:
        raise ValueError(f"quantities must match the regular expression: {text!r}")
    number, exponent, suffix = found.groups()
    if exponent:
        return Decimal(number + exponent)
    return Decimal(number) * _SUFFIX[suffix or ""]


def parse_resources(values: Mapping[str, Any]) -> dict[str, Decimal]:
    return {name: parse_quantity(v) for name, v in values.items()}


def pod_requests(spec: Mapping[str, Any]) -> dict[str, Decimal]:
    """What a pod asks for: the sum over containers, at least each init container's ask
    (pkg/api/v1/resource/helpers.go, PodRequests), and one "pods" slot."""
    total: dict[str, Decimal] = {"pods": Decimal(1)}
    for c in spec.get("containers") or []:
        for name, value in (((c.get("resources") or {}).get("requests")) or {}).items():
            total[name] = total.get(name, Decimal(0)) + parse_quantity(value)
    for c in spec.get("initContainers") or []:
        for name, value in (((c.get("resources") or {}).get("requests")) or {}).items():
            total[name] = max(total.get(name, Decimal(0)), parse_quantity(value))
    return total


def insufficient(
    capacity: Mapping[str, Decimal],
    used: Iterable[Mapping[str, Decimal]],
    wanted: Mapping[str, Decimal],
) -> list[str]:
    """The resources the node lacks for ``wanted`` beside the pods already bound (``used``)."""
    allocated: dict[str, Decimal] = {}
    for ask in used:
        for name, value in ask.items():
            allocated[name] = allocated.get(name, Decimal(0)) + value
    short = []
    for name, value in wanted.items():
        if value <= 0:
            continue
        if name not in capacity:
            if name.startswith(("cpu", "memory", "ephemeral-storage", "pods")):
                continue
            short.append(name)  # an extended resource the node does not have at all
            continue
        if allocated.get(name, Decimal(0)) + value > capacity[name]:
            short.append(name)
    return sorted(short)


def unschedulable_message(short: list[str]) -> str:
    reasons = ", ".join(sorted(f"1 Insufficient {name}" for name in short))
    return (
        f"0/1 nodes are available: {reasons}. preemption: 0/1 nodes are available: 1 No "
        "preemption victims found for incoming pod."
    )


def format_capacity(capacity: Mapping[str, Decimal]) -> dict[str, str]:
    out = {}
    for name, value in capacity.items():
        if value == value.to_integral_value():
            out[name] = str(int(value))
        else:
            out[name] = f"{int(value * 1000)}m"
    return out
