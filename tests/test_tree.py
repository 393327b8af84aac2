"""Building trees: names, paths, parameters and their inheritance, serialisation."""

from __future__ import annotations

import json

import pytest

import k8sco as co


def test_item_assignment_and_paths() -> None:
    root = co.Serial()
    root["build"] = co.Exec("make")
    root["test a"] = co.Parallel()
    root["test a/unit"] = co.Exec("pytest")
    assert root.path == "/"
    assert root["build"].path == "/build"
    assert root["test a/unit"].path == "/test a/unit"
    assert root["test a"]["/build"] is root["build"]  # a leading / starts at the root
    assert "test a/unit" in root
    assert "nope" not in root
    assert list(root.children) == ["build", "test a"]


def test_with_blocks_attach_named_nodes_to_the_innermost_block() -> None:
    with co.Serial() as root:
        co.Exec("echo 1", name="one")
        with co.Parallel(name="many"):
            co.Exec("echo 2", name="two")
        unnamed = co.Exec("echo 3")
    assert [n.path for n in root.stream()] == ["/", "/one", "/many", "/many/two"]
    assert unnamed.parent is None
    assert [n.path for n in root.stream(reverse=True)] == ["/one", "/many/two", "/many", "/"]


def test_set_name_inside_a_with_block_attaches_the_node() -> None:
    with co.Serial() as root:
        co.Exec("echo").set(name="later", cpu=2)
    assert root["later"].get("cpu") == 2


@pytest.mark.parametrize("bad", ["", "bad\nname", 3])
def test_bad_names_are_rejected(bad: object) -> None:
    root = co.Serial()
    with pytest.raises((ValueError, TypeError)):
        root[bad] = co.Exec("x")  # type: ignore[index]


def test_slash_in_a_name_needs_an_existing_parent() -> None:
    root = co.Serial()
    with pytest.raises(KeyError, match="no child named 'a'"):
        root["a/b"] = co.Exec("x")


def test_duplicate_sibling_names_the_path() -> None:
    root = co.Serial()
    root["p"] = co.Parallel()
    root["p/x"] = co.Exec("x")
    with pytest.raises(ValueError, match="/p/x: a sibling is already named 'x'"):
        root["p/x"] = co.Exec("y")


def test_a_node_has_one_parent_and_cannot_contain_itself() -> None:
    a, b = co.Serial(), co.Serial()
    node = co.Exec("x")
    a["n"] = node
    with pytest.raises(ValueError, match="already at /n"):
        b["n"] = node
    a["b"] = b
    with pytest.raises(ValueError, match="cannot contain itself"):
        b["a"] = a


def test_exec_cannot_have_children() -> None:
    node = co.Exec("x")
    with pytest.raises(ValueError, match="cannot have children"):
        node["y"] = co.Exec("y")


def test_name_outside_a_with_block_is_an_error() -> None:
    with pytest.raises(ValueError, match="only inside a `with` block"):
        co.Exec("x", name="a")


def test_defaults_and_inheritance() -> None:
    with co.Serial(cpu=4, env={"A": "1", "B": "1"}, image="base:1", max_time="1h") as root:
        with co.Parallel(name="p", env={"B": "2"}, mem=8):
            co.Exec("x", name="x", env={"C": "3"}, max_time=60)
        co.Exec("y", name="y")
    x, y = root["p/x"], root["y"]
    assert x.get("cpu") == 4
    assert x.get("mem") == 8
    assert y.get("mem") == 2  # the default
    assert x.get("gpu") == 0
    assert x.get("env") == {"A": "1", "B": "2", "C": "3"}
    assert x.get("image") == "base:1"
    assert x.get("max_time") == 60
    assert y.get("max_time") == 3600
    assert y.get("retries") == 0
    assert root.get("stop_on_error") is True


def test_skip_on_a_parent_applies_to_its_subtree() -> None:
    with co.Serial() as root, co.Parallel(name="p", skip=True):
        co.Exec("x", name="x")
    assert root["p/x"].get("skip") is True
    assert root.get("skip") is False


@pytest.mark.parametrize(
    ("params", "error", "words"),
    [
        ({"cpu": -1}, ValueError, "'cpu' must be a positive number"),
        ({"mem": "lots"}, ValueError, "'mem' must be a number or a Kubernetes quantity"),
        ({"max_time": "forever"}, ValueError, "'max_time' not a duration"),
        ({"max_concurrent": 0}, ValueError, "'max_concurrent' must be 1 or more"),
        ({"gpu": 1.5}, TypeError, "'gpu' expects a whole number"),
        ({"retries": -1}, ValueError, "'retries' must be 0 or more"),
        ({"env": {"A": 1}}, TypeError, "expects str keys and values"),
        ({"stop_on_error": False}, ValueError, "applies to Serial nodes only"),
        ({"colour": "red"}, TypeError, "unknown parameter 'colour'"),
    ],
)
def test_invalid_parameters_name_the_path_and_parameter(
    params: dict[str, object], error: type[Exception], words: str
) -> None:
    with co.Serial() as root, co.Parallel(name="p"), pytest.raises(error, match=words) as info:
        co.Exec("x", name="bad", **params)
    assert "/p/bad" in str(info.value)
    assert "bad" not in root["p"].children  # nothing half-built is left behind


def test_set_validates_and_names_the_node_path() -> None:
    root = co.Serial()
    root["a"] = co.Exec("x")
    with pytest.raises(ValueError, match=r"^/a: parameter 'cpu'"):
        root["a"].set(cpu=0)


def test_quantity_strings_and_durations() -> None:
    node = co.Exec("x", cpu="500m", mem="512Mi", max_time="1h30m")
    assert node.get("cpu") == "500m"
    assert node.get("mem") == "512Mi"
    assert node.get("max_time") == 5400


def test_shell_commands_are_dedented() -> None:
    node = co.Exec(
        """
        echo one
        echo two
        """
    )
    assert node.command == "echo one\necho two"


def test_serialize_round_trip_keeps_the_tree() -> None:
    with co.Serial(env={"A": "1"}, image=co.Image(image="python:3.11", name="py")) as root:
        with co.Parallel(name="p q", max_concurrent=3, tags=["t"]):
            co.Exec("echo 'hi there'", name="é", cpu="250m")
            co.Exec(["ls", "-l"], name="argv", retries=2)
        co.Exec("true", name="last", skip=True, doc="**why**")
    text = root.serialize()
    copy = co.Node.deserialize(text)
    assert copy.serialize() == text
    assert str(copy) == str(root)
    assert copy["p q/argv"].command == ["ls", "-l"]
    assert copy.get("image") == co.Image(image="python:3.11", name="py")
    assert json.loads(text)["k8sco"] == 1


def test_deserialize_rejects_other_text() -> None:
    with pytest.raises(ValueError, match="not a serialized k8sco tree"):
        co.Node.deserialize('{"hello": 1}')


def test_print_shows_paths_and_commands() -> None:
    with co.Serial() as root:
        co.Exec("echo hi", name="greet")
    assert str(root) == "Serial /\n  Exec /greet: echo hi"
    assert repr(root["greet"]) == "<Exec /greet>"


def test_nodes_are_not_iterable() -> None:
    with pytest.raises(TypeError, match="not iterable"):
        iter(co.Serial())
