"""Building trees: names, paths, parameters and their inheritance, serialisation."""

from __future__ import annotations

import json

import pytest

import k8sco as co
from k8sco import params
from k8sco import tree as tree_module


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
        ({"max_concurrent": 0}, ValueError, "'max_concurrent' must be from 1 to 2147483647"),
        ({"gpu": 1.5}, TypeError, "'gpu' expects a whole number"),
        ({"retries": -1}, ValueError, "'retries' must be from 0 to 2147483647"),
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


def _chain(depth: int) -> co.Serial:
    """A root with a chain of Serials ``depth`` levels below it (built top-down)."""
    root = node = co.Serial()
    for i in range(depth):
        child = co.Serial()
        node[f"n{i}"] = child
        node = child
    return root


def test_a_tree_as_deep_as_allowed_round_trips_and_one_level_more_is_refused() -> None:
    root = _chain(tree_module.MAX_DEPTH)
    back = co.Serial.deserialize(root.serialize())
    assert back.serialize() == root.serialize()
    deepest = max((n for n in back.stream()), key=lambda n: n.path.count("/"))
    assert deepest.path.count("/") == tree_module.MAX_DEPTH
    with pytest.raises(ValueError, match="101 levels deep; k8sco takes at most 100"):
        deepest["one"] = co.Exec("echo")


def test_a_deep_subtree_attached_below_a_deep_node_is_refused() -> None:
    top, bottom = _chain(60), _chain(60)  # built bottom-up: each fits alone, not together
    leaf = max(top.stream(), key=lambda n: n.path.count("/"))
    with pytest.raises(ValueError, match="levels deep"):
        leaf["more"] = bottom


def test_deserializing_a_hostile_tree_is_a_pipeline_error() -> None:
    nested = '{"k8sco": 1, "root": ' + '{"type": "Serial", "children": [["a", ' * 2000
    with pytest.raises(co.PipelineError, match="not a serialized k8sco tree"):
        co.Serial.deserialize(nested + "{}" + "]]}" * 2000 + "}")
    for bad in (
        '{"k8sco": 1, "root": {"type": "Serial", "children": [["a/b", {"type": "Serial"}]]}}',
        '{"k8sco": 1, "root": {"type": "Serial", "children": [[1, {"type": "Serial"}]]}}',
        '{"k8sco": 1, "root": {"type": "Serial", "children": {"a": 1}}}',
        '{"k8sco": 1, "root": {"type": "Exec"}}',
    ):
        with pytest.raises(co.UsageError):
            co.Serial.deserialize(bad)


@pytest.mark.parametrize(
    ("value", "cores"),
    [("500m", 0.5), ("1.5", 1.5), ("2k", 2000.0), ("1e3", 1000.0), ("+1", 1.0), ("100n", 1e-7)],
)
def test_cpu_quantities_follow_the_kubernetes_grammar(value: str, cores: float) -> None:
    assert co.Exec("x", cpu=value).get("cpu") == value
    assert params.cpu_cores(value) == pytest.approx(cores)


@pytest.mark.parametrize(
    ("value", "size"),
    [("512Mi", 512 * 2**20), ("1.5Gi", 3 * 2**29), ("2G", 2 * 10**9), ("1.G", 10**9)],
)
def test_mem_quantities_with_units_are_bytes(value: str, size: int) -> None:
    assert co.Exec("x", mem=value).get("mem") == value
    assert params.mem_bytes(value) == size


@pytest.mark.parametrize("name", ["PATH", "_x", "a.b", "my-var", "X1"])
def test_kubernetes_env_names_are_accepted(name: str) -> None:
    assert co.Exec("x", env={name: "v\nw\tz"}).get("env") == {name: "v\nw\tz"}


@pytest.mark.parametrize(
    "ref",
    [
        "python:3.11-slim",
        "ghcr.io/me/app:1",
        "localhost:5000/a/b",
        "[::1]:5000/x",
        "busybox@sha256:" + "a" * 64,
        "reg.example/img:1@sha256:" + "0" * 64,
    ],
)
def test_valid_image_references_are_accepted(ref: str) -> None:
    assert co.Exec("x", image=ref).get("image") == ref


def test_text_a_person_writes_is_kept() -> None:
    node = co.Exec("printf '\\033[31mred\\n'\necho 'مرحبا 👨‍👩‍👧'", name=None)
    assert "مرحبا" in str(node.command)
    root = co.Serial()
    root["été 😀 مرحبا"] = node
    assert root["été 😀 مرحبا"] is node


# --- parameters as attributes (Conducto's `node.cpu = 2`) ----------------------------------


def test_assigning_a_parameter_attribute_is_set() -> None:
    img = co.Image("python:3.11-slim", name="py")
    root = co.Serial()
    root["a"] = by_attr = co.Exec("echo a")
    root["b"] = by_set = co.Exec("echo a")
    by_attr.doc = "Says *a*."
    by_attr.cpu = 2
    by_attr.mem = "512Mi"
    by_attr.image = img
    by_attr.skip = True
    by_attr.env = {"A": "1"}
    by_set.set(doc="Says *a*.", cpu=2, mem="512Mi", image=img, skip=True, env={"A": "1"})
    assert by_attr.to_dict() == by_set.to_dict()
    assert (by_attr.doc, by_attr.cpu, by_attr.mem, by_attr.skip) == ("Says *a*.", 2, "512Mi", True)
    assert by_attr.image is img
    assert dict(by_attr.env) == {"A": "1"}


def test_reading_a_parameter_gives_what_is_set_on_the_node_as_conducto() -> None:
    root = co.Serial(cpu=4, image="python:3.11-slim", env={"A": "1"})
    root["x"] = x = co.Exec("true")
    # Conducto's Node.cpu/mem/doc are the node's own (None until set); its image is inherited.
    assert (x.cpu, x.mem, x.doc, x.max_time) == (None, None, None, None)
    assert (x.skip, dict(x.env), root.stop_on_error) == (False, {}, True)
    assert x.image == "python:3.11-slim"
    assert x.get("cpu") == 4  # the value in effect
    x.cpu = 1
    x.cpu = None  # unset: back to the inherited value
    assert (x.cpu, x.get("cpu"), x.params) == (None, 4, {})


def test_assigning_env_replaces_the_nodes_own_env() -> None:
    root = co.Serial(env={"A": "1"})
    root["x"] = x = co.Exec("true", env={"B": "2"})
    x.env = {"C": "3"}
    assert dict(x.env) == {"C": "3"}
    assert x.get("env") == {"A": "1", "C": "3"}
    with pytest.raises(TypeError):
        x.env["D"] = "4"  # type: ignore[index]  # a read-only view: assign a dict instead


@pytest.mark.parametrize(
    ("name", "value", "error", "message"),
    [
        ("cpu", -1, co.PipelineError, "^/x: parameter 'cpu' must be a positive number"),
        ("skip", "yes", co.PipelineTypeError, "^/x: parameter 'skip' expects True or False"),
        ("doc", 3, co.PipelineTypeError, "^/x: parameter 'doc' expects a string"),
        ("stop_on_error", False, co.PipelineError, "^/x: parameter 'stop_on_error' applies to"),
        ("cpus", 2, AttributeError, "^/x: Exec has no parameter or attribute 'cpus'"),
        ("name", "y", AttributeError, "name"),
        ("path", "/y", AttributeError, "path"),
        ("children", {}, AttributeError, "children"),
    ],
)
def test_a_bad_attribute_is_refused_naming_the_node(
    name: str, value: object, error: type[Exception], message: str
) -> None:
    root = co.Serial()
    root["x"] = x = co.Exec("true")
    before = x.to_dict()
    with pytest.raises(error, match=message):
        setattr(x, name, value)
    assert x.to_dict() == before
    assert (x.name, x.path, x.parent) == ("x", "/x", root)


def test_doc_travels_in_the_serialized_tree() -> None:
    root = co.Serial(doc="The root.\n\nMore.")
    root["x"] = x = co.Exec("true")
    x.doc = co.util.magic_doc(func=test_doc_travels_in_the_serialized_tree) or "none"
    back = co.Node.deserialize(root.serialize())
    assert back.doc == "The root.\n\nMore."
    assert back["x"].doc == x.doc
