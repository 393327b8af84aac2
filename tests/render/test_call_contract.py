"""The ``k8sco call`` command line is a stable contract between the k8sco that renders a
native-function node's Job (the CLI that applies it and the controller that creates it)
and the k8sco inside the node's image, which may be older: an image built with an older
k8sco must still run under a newer controller, and the reverse.

The contract, pinned by tests/golden/call-contract.json:

- the container's ``command`` is ``["k8sco", "call", "<file relative to the code root>:
  <function>", "--<param>=<value>", ...]`` (a bare ``--<flag>``/``--no-<flag>`` for
  booleans, a bare ``--<name>`` for None), ``workingDir`` the code root, no ``args``; the
  controller passes the command of the tree through unchanged;
- each value is encoded by its type hint as ``k8sco.native``'s docstring says; the golden
  file holds, for every kind of hint, the exact argument and the value the dispatcher
  hands the function.

Changing the output is a breaking change: an argument form may be added (decoded by new
dispatchers) but the forms in the golden file must keep decoding to the same values, and
new renderers must not emit a form that older dispatchers do not decode.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from typing import Any

import pytest
from kube_schemas import REPO, golden

import k8sco as co
from k8sco import dispatch, modules, tree
from k8sco.render import render_job

DATA = REPO / "tests" / "data"
GOLDEN = REPO / "tests" / "golden" / "call-contract.json"
funcs = modules.import_file(str(DATA / "dispatch_funcs.py"))

CASES: dict[str, dict[str, Any]] = {
    "no arguments": {},
    "str, int, float": {"s": "a b=c, 'd'", "i": -7, "f": 2.5},
    "bool true": {"flag": True},
    "bool false": {"flag": False},
    "lists": {"ints": [1, 2, 3], "strs": ["a,b", "c\\d", ""]},
    "tuples": {"pair": (4, "x"), "many": (0.5, 1.0)},
    "dict": {"mapping": {"k": [1, None], "z": "ü"}},
    "None": {"maybe": None, "maybe_text": None, "maybe_flag": None},
    "enum and literal": {"color": funcs.Color.GREEN, "mode": "slow"},
    "dates": {
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        "day": dt.date(2026, 1, 2),
        "clock": dt.time(3, 4, 5),
    },
    "path and from_str": {"path": pathlib.Path("data/in.csv"), "point": funcs.Point(1, -2)},
    "newtype, nested, bytes": {"user": funcs.UserId(42), "nested": [[1], [2, 3]], "raw": b"hi"},
}


def contract() -> list[dict[str, Any]]:
    token = tree.set_code_root(str(DATA))
    try:
        out = []
        for case, kwargs in CASES.items():
            node = co.Exec(funcs.kinds, **kwargs)
            root = co.Serial()
            root["node"] = node
            job = render_job(root, "/node", "contract", "default", image="img:1")
            container = job["spec"]["template"]["spec"]["containers"][0]
            out.append(
                {
                    "case": case,
                    "command": container["command"],
                    "args": container.get("args"),
                    "workingDir": container["workingDir"],
                    "received": {k: repr(v) for k, v in kwargs.items()},
                }
            )
        return out
    finally:
        tree.reset_code_root(token)


def test_rendered_command_lines_match_the_contract() -> None:
    text = json.dumps(contract(), ensure_ascii=False, indent=1) + "\n"
    golden(GOLDEN, text)


@pytest.mark.parametrize("case", list(CASES))
def test_the_dispatcher_decodes_every_command_line_of_the_contract(
    case: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Read from the golden file, not rendered now: these are the command lines Jobs
    # created by earlier k8sco versions carry.
    entry = next(e for e in json.loads(GOLDEN.read_text(encoding="utf-8")) if e["case"] == case)
    command = entry["command"]
    assert command[:3] == ["k8sco", "call", "dispatch_funcs.py:kinds"]
    assert entry["args"] is None and entry["workingDir"] == "/app"
    monkeypatch.chdir(DATA)
    assert dispatch.main(command[2:]) == 0
    capsys.readouterr()
    received = {k: repr(v) for k, v in funcs.RECEIVED.items() if k in entry["received"]}
    assert received == entry["received"]


def test_the_usage_names_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    assert dispatch.main(["--help"]) == 0
    usage = capsys.readouterr().out
    assert "k8sco call FILE.py:FUNC [--name=value ...]" in usage
