"""The fake kubelet's $(VAR) expansion against upstream's own cases, and k8sco's escaping of
container commands against the fake: what a user writes reaches the container unchanged."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakecluster.containerenv import expand
from k8sco.render.jobs import command_argv

ENV = {"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)", "VAR_EMPTY": ""}


# From kubernetes/kubernetes third_party/forked/golang/expansion/expand_test.go.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(VAR_A)-$(VAR_A)", "A-A"),
        ("$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
        ("f000-$$VAR_A", "f000-$VAR_A"),
        ("$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"),
        ("$(VAR_REF)", "$(VAR_A)"),
        ("foo$(VAR_EMPTY)bar", "foobar"),
        ("foo$(VAR_Awhoops!", "foo$(VAR_Awhoops!"),
        ("$?_boo_$!", "$?_boo_$!"),
        ("$VAR_A", "$VAR_A"),
        ("$(VAR_DNE)", "$(VAR_DNE)"),
        ("$$$$$$(VAR_A)", "$$$(VAR_A)"),
        ("$$$$$$$(VAR_A)", "$$$A"),
        ("${VAR_A}", "${VAR_A}"),
        ("$(VAR_C)_______$(", "C_______$("),
        ("$(VAR_A)foobarzab$", "Afoobarzab$"),
        ("--$($($($($--", "--$($($($($--"),
        ("$(foo$$var)", "$(foo$$var)"),
    ],
)
def test_expansion_follows_upstream(text: str, expected: str) -> None:
    assert expand(text, ENV) == expected


@given(st.text(alphabet="$(){}_aA1 é\n", max_size=30))
def test_an_escaped_command_reaches_the_container_as_written(text: str) -> None:
    env = {"a": "X", "A": "Y", "": "Z", "a)": "W", "é": "V"}
    argv = command_argv(text)
    assert [expand(arg, env) for arg in argv] == ["/bin/sh", "-c", text]
    assert [expand(arg, env) for arg in command_argv(["k8sco", text])] == ["k8sco", text]
