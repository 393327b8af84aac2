"""co.Lazy on Kubernetes: refused in one line, by `k8sco apply`/`render` and by the
controller (for a Pipeline written by other means), never run half-way."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from kube.fakeapi import FakeApi
from kube.test_controller import JOBS, KEY, PIPES, Clock

import k8sco as co
from k8sco.cli.app import cli
from k8sco.kube.controller import Controller
from k8sco.render.pipeline import encode_tree, render_pipeline


def lazy_pipeline() -> co.Serial:
    root = co.Serial()
    root["first"] = co.Exec("echo first")
    root["l"] = co.Lazy("python gen.py")
    return root


def test_the_controller_fails_a_lazy_pipeline_without_creating_a_job() -> None:
    clock = Clock()
    api = FakeApi(clock)
    obj = render_pipeline(co.Serial(), "demo", "default", image="img:1")
    obj["spec"].update(encode_tree(lazy_pipeline()))  # as another k8sco could write it
    obj["metadata"]["generation"] = 1
    api.put(PIPES, obj)
    ctl = Controller(api, "default", clock=clock)
    ctl._replace("pipelines", "default", api.items(PIPES))
    ctl._replace("jobs", "default", api.items(JOBS))
    ctl.sync(KEY)
    status = api.objects[f"{PIPES}/demo"]["status"]
    assert status["phase"] == "Failed"
    assert status["message"].startswith("/l: co.Lazy runs on the local runner only")
    assert api.items(JOBS) == []


def test_render_refuses_a_lazy_pipeline_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pipe.py").write_text(
        "import k8sco as co\n\n\ndef p() -> co.Serial:\n"
        "    root = co.Serial()\n    root['l'] = co.Lazy('python gen.py')\n    return root\n"
    )
    done = CliRunner().invoke(cli, ["render", "pipe.py"])
    assert done.exit_code == 2
    assert done.output.strip().splitlines() == [
        "k8sco: /l: co.Lazy runs on the local runner only (k8sco run); the Kubernetes "
        "controller does not expand Lazy nodes yet"
    ]
