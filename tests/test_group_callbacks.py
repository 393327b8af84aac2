"""On a cluster a shared container (container_reuse_context=NEW) is one Job: a callback
that retries or skips one of its nodes would need a new Job for part of it, which the
controller cannot make (a retry re-ran every node as a retry of each, a skip left the
nodes after it queued forever). Such a tree is refused when it is rendered, in one line
naming the node; locally (k8sco run) these callbacks work (tests/local)."""

from __future__ import annotations

import pytest

import k8sco as co
from k8sco.errors import PipelineError
from k8sco.render.jobs import render_job
from k8sco.render.pipeline import render_all


def grouped(callback: co.callback.Callback, on: str) -> co.Serial:
    with co.Serial() as root:
        with co.Serial(name="box", same_container=co.SameContainer.NEW) as box:
            co.Exec("echo one", name="one")
            co.Exec("exit 3", name="two")
        co.Exec("echo after", name="after")
    node = {"root": root, "box": box, "two": root["box/two"]}[on]
    node.on_error(callback)
    return root


@pytest.mark.parametrize(
    "callback",
    [
        co.callback.retry(2),
        co.callback.retry_then_skip(1),
        co.callback.retry_with_double_mem(1),
        co.callback.handle_memory_errors(),
        co.callback.skip_some_errors(1),
    ],
    ids=lambda c: c.name,
)
@pytest.mark.parametrize("on", ["two", "box"])
def test_a_retry_or_skip_callback_on_a_node_of_a_shared_container_is_refused(
    callback: co.callback.Callback, on: str
) -> None:
    root = grouped(callback, on)
    with pytest.raises(PipelineError) as err:
        render_job(root, "/box/two", "p", "ns")
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("/box/one: " if on == "box" else "/box/two: "), text
    assert f"co.callback.{callback.name}" in text and "retries=" in text
    with pytest.raises(PipelineError):
        render_all(root, "p", "ns")


def test_inherited_from_above_the_group_is_refused_too() -> None:
    root = grouped(co.callback.retry(1, inherited=True), "root")
    with pytest.raises(PipelineError, match=r"^/box/one: co.callback.retry \(set on /\)"):
        render_job(root, "/box/one", "p", "ns")


def test_notifications_and_retries_outside_the_group_are_fine() -> None:
    root = grouped(co.callback.slack_status("#ci", inherited=True), "root")
    root["after"].on_error(co.callback.retry(2))
    render_job(root, "/box/one", "p", "ns")
    render_all(root, "p", "ns")
