"""Issue 14's node API as Conducto 0.1.28 code uses it (conducto/pipeline.py, callback.py,
shared/constants.py), unchanged but for ``import k8sco as co``: callbacks, the container
reuse values and their older spelling, requires_docker and skip."""

from __future__ import annotations

import json

import pytest

import k8sco as co


@pytest.mark.parametrize(
    "param", ["requires_docker", "skip", "container_reuse_context", "same_container", "mem"]
)
def test_none_leaves_a_parameter_unset_as_in_conducto(param: str) -> None:
    # Conducto's Node.__init__ defaults them all to None and set() ignores None, so
    # wrappers pass their own None defaults through (co.Exec(cmd, requires_docker=rd)).
    for node in (co.Exec("echo", **{param: None}), co.Serial(**{param: None})):
        assert dict(node.params) == {}
    with co.Serial(requires_docker=True) as root:
        co.Exec("echo", name="child", requires_docker=None, skip=None)
    assert root["child"].get("requires_docker") is True  # inherited, not overridden
    assert root["child"].get("skip") is False


def test_the_reuse_values_and_their_older_spelling_are_conductos_strings() -> None:
    assert (co.ContainerReuseContext.NEW, co.ContainerReuseContext.GLOBAL) == ("new", "global")
    assert (co.SameContainer.NEW, co.SameContainer.ESCAPE) == ("new", "global")
    assert co.SameContainer.INHERIT is None
    assert str(co.SameContainer.NEW) == f"{co.ContainerReuseContext.NEW}" == "new"
    assert json.dumps(co.SameContainer.ESCAPE) == '"global"'
    node = co.Serial(same_container=co.SameContainer.NEW)
    assert node.container_reuse_context == "new"  # the attribute Conducto's describe() reads
    assert co.Serial(same_container="global").container_reuse_context == "global"
    assert co.Serial(same_container=co.SameContainer.INHERIT).container_reuse_context is None
    with pytest.raises(ValueError, match="same_container"):  # Conducto refuses both too
        co.Serial(same_container="new", container_reuse_context="global")


def test_callbacks_take_conductos_arguments_and_the_on_methods_return_none() -> None:
    node = co.Exec("echo")
    made = [
        co.callback.retry(2),
        co.callback.retry(max_num_retries=2, inherited=True, user_display=False),
        co.callback.retry_then_skip(1),
        co.callback.retry_with_double_mem(3),
        co.callback.skip_some_errors(max_num_errors=2),
        co.callback.handle_memory_errors(),
        co.callback.handle_memory_errors((4, 16), 600),
        co.callback.email("a@example.com", ["b@example.com"]),
        co.callback.email(to=["a@example.com"], cc=None),
        co.callback.slack_status("#ci", "built", True),
        co.callback.slack_status(recipient="U123"),
        co.callback.github_status("https://github.com/o/r", "abc123"),
        co.callback.github_pipeline_status(url="https://github.com/o/r", sha="abc123"),
    ]
    for on in ("on_done", "on_error", "on_queued", "on_running", "on_killed", "on_state_change"):
        assert getattr(node, on)(made[0]) is None  # Conducto's return None: no chaining
    assert [cb.inherited for cb in made[:2]] == [False, True]  # inherited=False by default
    assert made[0].to_literal() == [
        "retry",
        {"max_num_retries": 2, "inherited": False, "user_display": True},
    ]
    with pytest.raises(TypeError):
        co.callback.retry(2, True)  # type: ignore[misc]  # keyword-only, as in Conducto
    with pytest.raises(TypeError):  # Conducto asserts isinstance(callback, CallbackBase)
        node.on_error("retry")


def test_a_bad_same_container_is_named_as_the_user_spelt_it() -> None:
    with pytest.raises(ValueError) as err:
        co.Exec("echo", same_container="shared")
    assert "parameter 'same_container' must be" in str(err.value), err.value
