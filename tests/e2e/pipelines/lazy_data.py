"""A co.Lazy pipeline whose generated nodes exchange data through ``co.data.pipeline``
(tests/e2e/test_lazy_data.py runs it with the controller's S3 store)."""

from __future__ import annotations

import k8sco as co


def put_value(key: str, value: str) -> None:
    co.data.pipeline.puts(key, value.encode())
    print(f"put {key}")


def get_value(key: str) -> None:
    print("got " + co.data.pipeline.gets(key).decode())


def gen_exchange() -> co.Serial:
    out = co.Serial()
    out["put"] = co.Exec(put_value, "shared/answer", "forty-two")
    out["get"] = co.Exec(get_value, "shared/answer")
    return out


def exchange() -> co.Serial:
    root = co.Serial()
    root["l"] = co.Lazy(gen_exchange)
    return root
