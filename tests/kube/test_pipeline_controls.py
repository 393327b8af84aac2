"""k8sco.kube.pipelines.control: a live control appended to a Pipeline's spec.controls,
checked against its tree first (nothing written on error), and never lost to a control
another client appended meanwhile (the patch carries the resourceVersion it read)."""

from __future__ import annotations

from typing import Any

import pytest

import k8sco as co
from k8sco import controls
from k8sco.errors import PipelineError
from k8sco.kube import pipelines
from k8sco.render.pipeline import render_pipeline

from .fakeapi import FakeApi

COLLECTION = "/apis/k8sco.io/v1alpha1/namespaces/default/pipelines"


class Racing(FakeApi):
    """Another client appends a control between our read and our first write."""

    raced = False

    def request(self, method: str, path: str, **kw: Any) -> Any:
        if method == "PATCH" and not self.raced:
            self.raced = True
            obj = self.objects[path]
            obj["spec"]["controls"] = [{"action": "skip", "path": "/b", "token": "theirs"}]
            obj["metadata"]["resourceVersion"] = "moved-on"
        return super().request(method, path, **kw)


def stored(api: FakeApi) -> dict[str, Any]:
    return api.objects[f"{COLLECTION}/demo"]


def setup(api: FakeApi) -> None:
    with co.Serial() as root:
        co.Exec("exit 3", name="a")
        co.Exec("echo b", name="b")
    api.put(COLLECTION, render_pipeline(root, "demo", "default", image="img:1"))


def test_a_control_appended_meanwhile_is_kept_and_ours_follows_it() -> None:
    api = Racing(lambda: 0.0)
    setup(api)
    pipelines.control(api, "demo", controls.make("modify", "/b", {"cpu": 2}))  # type: ignore[arg-type]
    items = stored(api)["spec"]["controls"]
    assert items[0]["token"] == "theirs"
    assert items[1]["action"] == "modify" and items[1]["set"] == {"cpu": 2}
    assert len(items[1]["token"]) == 32
    assert api.count("PATCH", "pipelines/demo") == 2  # the first was refused (409)


def test_a_bad_control_writes_nothing_and_a_reset_clears_stop() -> None:
    api = FakeApi(lambda: 0.0)
    setup(api)
    with pytest.raises(PipelineError, match="/a: parameter 'cpu'"):
        pipelines.control(api, "demo", controls.make("modify", "/a", {"cpu": "lots"}))  # type: ignore[arg-type]
    assert "controls" not in stored(api)["spec"]
    assert api.count("PATCH", "pipelines") == 0
    stored(api)["spec"]["stop"] = True
    pipelines.control(api, "demo", controls.make("reset", "/a"))  # type: ignore[arg-type]
    assert stored(api)["spec"]["stop"] is False
    assert stored(api)["spec"]["controls"][0]["action"] == "reset"
