"""co.callback and the nodes' on_* methods: Conducto's spellings, kept in the tree as data
(JSON, no pickle), refused at once when malformed."""

from __future__ import annotations

import json

import pytest

import k8sco as co
from k8sco.callback import Callback, Event


def test_every_on_method_registers_its_event_in_order() -> None:
    node = co.Exec("true")
    node.on_done(co.callback.email(to="a@example.com"))
    node.on_error(co.callback.retry(2))
    node.on_queued(co.callback.slack_status("#c"))
    node.on_running(co.callback.github_status("https://github.com/o/r", "abc"))
    node.on_killed(co.callback.retry_then_skip(1))
    node.on_state_change(co.callback.slack_status("#d", "changed"))
    events = [event for event, _ in node.callbacks]
    assert events == ["done", "error", "queued", "running", "killed", "stateChange"]
    assert node.callbacks[1] == [
        "error",
        ["retry", {"max_num_retries": 2, "inherited": False, "user_display": True}],
    ]


def test_callbacks_travel_with_the_tree_as_json() -> None:
    with co.Serial() as root:
        a = co.Exec("exit 1", name="a")
        a.on_error(co.callback.retry_with_double_mem(2))
        root.on_error(co.callback.skip_some_errors(1, inherited=True))
        root.on_done(co.callback.handle_memory_errors((1, 4), 60))
    text = root.serialize()
    json.loads(text)  # plain JSON
    again = co.Node.deserialize(text)
    assert again.serialize() == text
    assert again["a"].callbacks == a.callbacks
    entries = again.params["callbacks"]
    assert entries[0][1] == [
        "skip_some_errors",
        {"max_num_errors": 1, "inherited": True, "user_display": True},
    ]
    assert entries[1][1][1]["mem_limits"] == [1, 4]


def test_a_literal_parses_back_to_the_same_callback() -> None:
    cb = co.callback.slack_status("#builds", "hello", inherited=True)
    assert Callback.parse(cb.to_literal()) == cb
    assert cb.inherited
    assert Event("stateChange") is Event.STATE_CHANGE


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: co.callback.retry(-1), "max_num_retries must be a whole number"),
        (lambda: co.callback.retry(True), "max_num_retries must be a whole number"),
        (lambda: co.callback.retry(1, inherited="yes"), "inherited must be True or False"),
        (lambda: co.callback.email(), "give at least one recipient"),
        (lambda: co.callback.slack_status(""), "recipient must be a non-empty string"),
        (lambda: co.callback.handle_memory_errors((8,)), "mem_limits must be (lower, upper)"),
        (lambda: co.callback.handle_memory_errors((8, 4)), "mem_limits must be (lower, upper)"),
        (lambda: co.callback.github_status("https://github.com/o/r", ""), "sha must be"),
    ],
)
def test_bad_arguments_fail_when_the_callback_is_made(make: object, message: str) -> None:
    with pytest.raises(co.PipelineTypeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()  # type: ignore[operator]


def test_on_methods_take_callbacks_only() -> None:
    node = co.Exec("true")
    with pytest.raises(co.PipelineTypeError, match=r"on_error\(\) takes a co.callback value"):
        node.on_error("retry")
    with pytest.raises(co.PipelineTypeError, match=r"on_state_change\(\) takes"):
        node.on_state_change(None)


def test_a_serialized_tree_with_an_unknown_callback_is_refused() -> None:
    root = co.Serial()
    root["a"] = co.Exec("true")
    root["a"].on_error(co.callback.retry(1))
    text = root.serialize().replace('"retry"', '"reboot"')
    with pytest.raises(co.PipelineError, match="unknown callback 'reboot'"):
        co.Node.deserialize(text)
    bad_event = root.serialize().replace('"error"', '"exploded"')
    with pytest.raises(co.PipelineError, match="unknown callback event 'exploded'"):
        co.Node.deserialize(bad_event)
