"""k8sco.controls, pure: what reset, skip, unskip and modify do to a tree and its records,
and how a cluster's ``spec.controls`` are folded (skips, modifications) and applied once
(resets)."""

from __future__ import annotations

import pytest

import k8sco as co
from k8sco import controls
from k8sco.engine import Graph, NodeState, State, evaluate
from k8sco.errors import PipelineError, UsageError

FAILED = NodeState(State.ERROR, 1, 1.0, 2.0, 3, "exit code 3")
DONE = NodeState(State.DONE, 1, 1.0, 2.0, 0)


def tree() -> co.Serial:
    with co.Serial() as root:
        co.Exec("exit 3", name="fails")
        co.Exec("echo after", name="after")
        with co.Parallel(name="group"):
            co.Exec("echo one", name="one")
            co.Exec("echo two", name="two")
    return root


def states(root: co.Node, recorded: dict[str, NodeState]) -> dict[str, State]:
    return evaluate(Graph.from_tree(root), recorded, 10.0).states


def test_a_skipped_failure_lets_its_serial_go_on_and_unskip_shows_it_again() -> None:
    root = tree()
    recorded = {"/fails": FAILED}
    assert states(root, recorded)["/"] is State.ERROR
    assert evaluate(Graph.from_tree(root), recorded, 10.0).ready == []

    controls.apply(root, controls.make("skip", "fails"))
    ev = evaluate(Graph.from_tree(root), recorded, 10.0)
    assert ev.states["/fails"] is State.SKIPPED
    assert ev.ready == ["/after"]  # the Serial goes on
    assert recorded["/fails"] == FAILED  # the record is kept, as Conducto's error_skipped

    controls.apply(root, controls.make("unskip", "/fails"))
    assert states(root, recorded)["/fails"] is State.ERROR
    assert states(root, recorded)["/"] is State.ERROR


def test_a_skipped_pending_node_never_runs_and_unskip_under_a_skipped_parent_says_which() -> None:
    root = tree()
    controls.apply(root, controls.make("skip", "/group"))
    recorded = {"/fails": DONE, "/after": DONE}
    ev = evaluate(Graph.from_tree(root), recorded, 10.0)
    assert ev.ready == []
    assert ev.states["/group/one"] is State.SKIPPED and ev.root is State.DONE
    with pytest.raises(PipelineError, match="/group/one is skipped because /group is"):
        controls.apply(root, controls.make("unskip", "/group/one"))


def test_reset_drops_every_record_under_the_path_done_ones_too() -> None:
    graph = Graph.from_tree(tree())
    recorded = {"/fails": DONE, "/group/one": DONE, "/group/two": FAILED}
    kept, dropped = controls.reset_records(graph, recorded, "/group")
    assert kept == {"/fails": DONE}
    assert sorted(dropped) == ["/group/one", "/group/two"]
    assert evaluate(graph, kept, 10.0).states["/group"] is not State.DONE


def test_modify_sets_checked_parameters_and_the_command() -> None:
    root = tree()
    values = controls.parse_sets(["cpu=2", "max_time=1h", 'env={"A": "1"}', "mem=500Mi"])
    controls.apply(root, controls.make("modify", "/after", values, command="echo new"))
    node = root["/after"]
    assert isinstance(node, co.Exec)
    assert node.command == "echo new"
    assert node.get("cpu") == 2 and node.get("max_time") == 3600 and node.get("env") == {"A": "1"}
    assert Graph.from_tree(root).cpu[Graph.from_tree(root).index["/after"]] == 2


@pytest.mark.parametrize(
    ("values", "command", "path", "message"),
    [
        ({"cpu": -1}, None, "/after", "/after: parameter 'cpu' must be a positive number"),
        ({"cpuz": 1}, None, "/after", "/after: unknown parameter 'cpuz'"),
        ({"max_time": "soon"}, None, "/after", "/after: parameter 'max_time'"),
        ({"image": "x:1"}, None, "/after", "/after: parameter 'image' cannot be modified live"),
        ({"stop_on_error": False}, None, "/after", "'stop_on_error' applies to Serial nodes"),
        ({}, "echo x", "/group", "/group: --command applies to Exec nodes, not a Parallel"),
        ({"cpu": 2}, "   ", "/after", "/after: the new command: Exec: the command is empty"),
        ({"cpu": 2}, None, "/nope", "no node '/nope'"),
    ],
)
def test_a_bad_modification_is_one_line_naming_path_and_parameter_and_changes_nothing(
    values: dict[str, object], command: str | None, path: str, message: str
) -> None:
    root = tree()
    before = root.serialize()
    with pytest.raises(PipelineError) as err:
        controls.apply(root, controls.make("modify", path, values, command))
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert root.serialize() == before  # the valid cpu=2 of a failing control is not kept


def test_make_refuses_what_is_not_a_control() -> None:
    with pytest.raises(UsageError, match="unknown control 'sleep'"):
        controls.make("sleep", "/")
    with pytest.raises(UsageError, match="give --set NAME=VALUE and/or --command"):
        controls.make("modify", "/after")
    with pytest.raises(UsageError, match="go with modify only"):
        controls.make("skip", "/after", {"cpu": 2})
    with pytest.raises(UsageError, match="give NAME=VALUE"):
        controls.parse_sets(["cpu"])


def test_spec_controls_fold_in_order_and_skip_what_is_not_in_the_tree_yet() -> None:
    items = [
        {"action": "skip", "path": "/fails", "token": "a"},
        {"action": "modify", "path": "/after", "token": "b", "set": {"cpu": 3}},
        {"action": "skip", "path": "/lazy/Execute/x", "token": "c"},  # not expanded yet
        {"action": "unskip", "path": "/fails", "token": "d"},
        {"action": "reset", "path": "/", "token": "e"},
    ]
    root = controls.overridden(tree(), items)
    assert root["/after"].get("cpu") == 3 and not root["/fails"].get("skip")
    with pytest.raises(PipelineError, match=r"spec.controls\[0\]: /after: parameter 'cpu'"):
        controls.overridden(tree(), [{"action": "modify", "path": "/after", "set": {"cpu": 0}}])
    with pytest.raises(PipelineError, match=r"spec.controls\[0\]: unknown action 'nap'"):
        controls.overridden(tree(), [{"action": "nap", "path": "/"}])


def test_cluster_resets_apply_each_control_once_by_its_token() -> None:
    graph = Graph.from_tree(tree())
    recorded = {"/fails": DONE, "/after": DONE}
    spec = {
        "controls": [
            {"action": "reset", "path": "/fails", "token": "t1"},
            {"action": "skip", "path": "/after", "token": "t2"},
        ]
    }
    kept, dropped = controls.cluster_resets(graph, recorded, spec, {})
    assert dropped == ["/fails"] and kept == {"/after": DONE}
    assert controls.last_token(spec, {}) == "t2"
    # Recorded as applied: nothing again, whatever the records are now.
    status = {controls.STATUS_TOKEN: "t2"}
    assert controls.cluster_resets(graph, recorded, spec, status) == (recorded, [])
    # Only those after the recorded one.
    spec["controls"].append({"action": "reset", "path": "/after", "token": "t3"})
    kept, dropped = controls.cluster_resets(graph, recorded, spec, status)
    assert dropped == ["/after"] and kept == {"/fails": DONE}
    # A recorded token no longer in the list (edited by hand): never a reset twice.
    assert controls.cluster_resets(graph, recorded, spec, {controls.STATUS_TOKEN: "zz"})[1] == []


def test_a_control_round_trips_through_its_json_form() -> None:
    ctl = controls.make("modify", "a//b/", {"cpu": 2}, "echo x", token="t")
    assert ctl.path == "/a/b"
    assert controls.Control.from_dict(ctl.to_dict()) == ctl


def test_a_reset_keeps_what_a_lazy_node_generated_and_runs_its_nodes_again() -> None:
    with co.Serial() as root:
        root["lazy"] = co.Lazy("echo generated")
    root["lazy/Execute"]["x"] = co.Exec("echo x")
    graph = Graph.from_tree(root)
    recorded = {"/lazy/Generate": DONE, "/lazy/Execute/x": DONE}
    kept, dropped = controls.reset_records(graph, recorded, "/")
    assert dropped == ["/lazy/Execute/x"] and kept == {"/lazy/Generate": DONE}
    # Not expanded yet: its Generate runs again like any node.
    with co.Serial() as fresh:
        fresh["lazy"] = co.Lazy("echo generated")
    _, dropped = controls.reset_records(Graph.from_tree(fresh), {"/lazy/Generate": DONE}, "/")
    assert dropped == ["/lazy/Generate"]


def test_on_a_cluster_a_node_of_a_shared_container_is_skipped_with_its_container() -> None:
    # Its container is one Job there: the nodes after a skipped one would need another.
    with co.Serial() as root:
        with co.Serial(name="box", same_container=co.SameContainer.NEW):
            co.Exec("echo one", name="one")
            with co.Parallel(name="par"):
                co.Exec("exit 3", name="two")
        co.Exec("echo after", name="after")
    for path in ("/box/par/two", "/box/par"):
        controls.check(root, controls.make(controls.SKIP, path))  # locally: fine
        for action in (controls.SKIP, controls.UNSKIP):
            with pytest.raises(PipelineError) as err:
                controls.check(root, controls.make(action, path), cluster=True)
            assert str(err.value).startswith(f"{path}: on a cluster ")
            assert f"{action} /box (its shared container)" in str(err.value)
    for path in ("/box", "/after", "/"):
        controls.check(root, controls.make(controls.SKIP, path), cluster=True)
    controls.check(root, controls.make(controls.RESET, "/box/one"), cluster=True)
    controls.check(root, controls.make(controls.MODIFY, "/box/one", command="echo 1"), cluster=True)
