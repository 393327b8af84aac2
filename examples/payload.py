"""A dict travels to a native function through the node's command, as JSON.

python payload.py                     # print the tree and its commands
python payload.py --local             # run it
k8sco call payload.py:otherfunc --payload='{"items": []}' --label=x --tags=a,b
"""

from __future__ import annotations

import json

import k8sco as co

ORDER = {
    "order": 17,
    "customer": {"name": "Ada O'Neil", "note": 'ships "fragile", leaves at 5pm'},
    "items": [
        {"sku": "bolt-m6", "qty": 120, "price": 0.25},
        {"sku": "nut-m6", "qty": 120, "price": 0.1},
    ],
}


def otherfunc(payload: dict, label: str | None = None, tags: list[str] = []) -> None:  # noqa: B006 (never mutated)
    """Print what arrived: the label, the tags and the payload's total."""
    print(f"label: {label}")
    print(f"tags: {tags}")
    print(f"payload: {json.dumps(payload, sort_keys=True)}")
    total = sum(item["qty"] * item["price"] for item in payload.get("items", []))
    print(f"total: {total:.2f}")


def pipeline() -> co.Parallel:
    """The same function with a full payload, and with an empty one and no label."""
    with co.Parallel() as root:
        co.Exec(otherfunc, ORDER, label="order 17", tags=["rush", "a,b"]).set(name="order")
        co.Exec(otherfunc, {}).set(name="empty")
    return root


if __name__ == "__main__":
    co.main(default=pipeline)
