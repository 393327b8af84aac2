"""Functions for the dispatcher tests, called as ``k8sco call dispatch_funcs.py:NAME ...``.

Each reports what it received so a test can compare it with what it sent: in-process
through ``RECEIVED``, across a process through its printed return value.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import json
import pathlib
import sys
from typing import Any, Literal, NewType, Optional

import k8sco as co

RECEIVED: dict[str, Any] = {}  # the arguments of the last call made in this process


class Color(enum.Enum):
    RED = "r"
    GREEN = "g"


class Point:
    """A value class that travels through ``to_str``/``from_str``."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def to_str(self) -> str:
        return f"{self.x}:{self.y}"

    @classmethod
    def from_str(cls, text: str) -> Point:
        x, y = text.split(":")
        return cls(int(x), int(y))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __hash__(self) -> int:
        return hash((self.x, self.y))

    def __repr__(self) -> str:
        return f"Point({self.x}, {self.y})"


UserId = NewType("UserId", int)


def show(value: str) -> str:
    """Echo a str as JSON of its repr (ASCII, one line, whatever the text holds)."""
    return json.dumps(repr(value))


def show_list(values: list[str]) -> str:
    return json.dumps(repr(values))


def kinds(
    s: str = "",
    i: int = 0,
    f: float = 0.0,
    flag: bool = False,
    ints: list[int] | None = None,
    strs: list[str] | None = None,
    pair: tuple[int, str] = (0, ""),
    many: tuple[float, ...] = (),
    mapping: dict[str, Any] | None = None,
    maybe: Optional[int] = 5,  # noqa: UP045 (the typing spelling is what is tested)
    maybe_text: str | None = "x",
    maybe_flag: bool | None = False,
    color: Color = Color.RED,
    when: dt.datetime | None = None,
    day: dt.date | None = None,
    clock: dt.time | None = None,
    path: pathlib.Path | None = None,
    point: Point | None = None,
    mode: Literal["fast", "slow"] = "fast",
    user: UserId = UserId(0),
    nested: list[list[int]] | None = None,
    raw: bytes = b"",
) -> str:
    """Record every argument; return their reprs as JSON."""
    received = dict(locals())
    RECEIVED.clear()
    RECEIVED.update(received)
    return json.dumps({name: repr(value) for name, value in received.items()})


def seive(n: int) -> list[int]:
    """The primes up to n."""
    is_prime = [True] * (n + 1)
    found = []
    for i in range(2, n + 1):
        if is_prime[i]:
            found.append(i)
            for j in range(i * i, n + 1, i):
                is_prime[j] = False
    return found


def options(max_n: int, verbose: bool = False, label: str | None = None) -> dict[str, Any]:
    """Has a dashed alias (--max-n), a flag and an Optional."""
    return {"max_n": max_n, "verbose": verbose, "label": label}


def fail(message: str) -> None:
    raise RuntimeError(message)


async def add_later(a: int, b: int = 1) -> int:
    await asyncio.sleep(0)
    return a + b


async def fail_later() -> None:
    await asyncio.sleep(0)
    raise ValueError("async boom")


def heavy_modules() -> list[str]:
    """Which of the modules `k8sco call` must not import are loaded in this process."""
    return sorted(m for m in ("click", "rich", "yaml", "kubernetes", "docker") if m in sys.modules)


def build_node() -> str:
    """A node built inside a dispatched function: its command is relative to the cwd."""
    return json.dumps(co.Exec(seive, 3).command)


def quiet() -> None:
    """Returns None: nothing is printed."""


if __name__ == "__main__":
    raise SystemExit("k8sco call must import this file, not run it as __main__")
