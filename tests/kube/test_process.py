"""``k8sco controller``'s namespaces: flags and K8SCO_WATCH_NAMESPACES, read explicitly
(click would take an empty variable for an unset one)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from k8sco.cli.cluster import controller
from k8sco.errors import UsageError
from k8sco.kube import process
from k8sco.kube.process import watched_namespaces


@pytest.mark.parametrize(
    ("flag", "everywhere", "env", "expected"),
    [
        (None, False, {}, []),  # the context's namespace
        (None, False, {"K8SCO_WATCH_NAMESPACES": ""}, None),  # set but empty: all
        (None, False, {"K8SCO_WATCH_NAMESPACES": "*"}, None),
        (None, False, {"K8SCO_WATCH_NAMESPACES": " a, b ,"}, ["a", "b"]),
        ("c", False, {"K8SCO_WATCH_NAMESPACES": "*"}, ["c"]),  # the flag wins
        ("*", False, {}, None),
        (None, True, {"K8SCO_WATCH_NAMESPACES": "a"}, None),  # -A
    ],
)
def test_watched_namespaces(
    flag: str | None, everywhere: bool, env: dict[str, str], expected: list[str] | None
) -> None:
    assert watched_namespaces(flag, everywhere, env) == expected


def test_star_with_names_is_refused() -> None:
    with pytest.raises(UsageError, match=r"K8SCO_WATCH_NAMESPACES='a,\*'"):
        watched_namespaces(None, False, {"K8SCO_WATCH_NAMESPACES": "a,*"})


def test_the_command_passes_an_empty_variable_on_as_every_namespace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[process.ControllerSettings] = []
    monkeypatch.setattr(process, "run", seen.append)
    result = CliRunner().invoke(
        controller, [], env={"K8SCO_WATCH_NAMESPACES": "", "K8SCO_LEASE_NAME": "lead"}
    )
    assert result.exit_code == 0, result.output
    assert seen[0].namespaces is None
    assert seen[0].lease_name == "lead"
