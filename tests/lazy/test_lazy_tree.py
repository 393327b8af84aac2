"""co.Lazy as a tree: its shape, the marker line a generator prints, reading it back, and
splicing a generated tree into Execute (pure; the runners are tested elsewhere)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

import k8sco as co
from k8sco import lazy
from k8sco.engine import Graph
from k8sco.errors import PipelineError, PipelineTypeError
from k8sco.render import limits
from k8sco.render.pipeline import render_pipeline

HERE = Path(__file__).parent


def fan(n: int) -> co.Parallel:
    with co.Parallel() as p:
        for i in range(n):
            co.Exec(f"echo {i}", name=f"n{i}")
    return p


def test_lazy_is_a_serial_of_generate_and_an_empty_execute() -> None:
    node = co.Lazy("python gen.py", cpu=2)
    assert isinstance(node, co.Serial)
    assert list(node.children) == ["Generate", "Execute"]
    generate, execute = node["Generate"], node["Execute"]
    assert isinstance(generate, co.Exec) and generate.command == "python gen.py"
    assert generate.get("cpu") == 2
    assert generate.get("env") == {"K8SCO_LAZY": "1"}
    assert isinstance(execute, co.Parallel) and not execute.children
    assert lazy.is_lazy(node)


def test_lazy_of_a_function_runs_it_through_the_dispatcher() -> None:
    node = co.lazy_py(fan, 3)
    generate = node["Generate"]
    assert isinstance(generate, co.Exec)
    assert generate.command[:2] == ["k8sco", "call"]
    assert generate.command[2].endswith(":fan") and generate.command[3:] == ["--n=3"]


def test_aliases_are_conductos() -> None:
    shell = co.lazy_shell("python gen.py", env={"A": "1"})
    assert shell.get("env") == {"A": "1"}
    assert shell["Generate"].get("env") == {"A": "1", "K8SCO_LAZY": "1"}
    with pytest.raises(PipelineTypeError, match="lazy_py"):
        co.lazy_shell(fan)  # type: ignore[arg-type]
    with pytest.raises(PipelineTypeError, match="lazy_shell"):
        co.lazy_py("echo")  # type: ignore[arg-type]


def test_a_lazy_node_is_still_one_after_serialization() -> None:
    root = co.Serial()
    root["l"] = co.Lazy("python gen.py")
    back = co.Node.deserialize(root.serialize())
    assert lazy.lazy_paths(back) == ["/l"]
    assert lazy.is_generate(back, "/l/Generate")
    assert not lazy.is_generate(back, "/l/Execute")


def test_a_look_alike_without_the_marker_is_not_lazy() -> None:
    root = co.Serial()
    root["Generate"] = co.Exec("echo")
    root["Execute"] = co.Parallel()
    assert not lazy.is_lazy(root)
    assert not lazy.is_generate(root, "/Generate")


def test_the_marker_line_round_trips_the_tree() -> None:
    out = io.StringIO()
    tree = fan(3)
    assert lazy.emit(tree, out) is None
    text = "user output\n" + out.getvalue() + "more output\n"
    back = lazy.read_tree(text.encode())
    assert back.serialize() == tree.serialize()


def test_the_last_marker_line_wins() -> None:
    first, second = lazy.marker(fan(1)), lazy.marker(fan(2))
    back = lazy.read_tree(f"{first}\n{second}\n".encode())
    assert list(back.children) == ["n0", "n1"]


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (b"hello\n", "printed no tree"),
        (b"<__k8sco_tree>!!!</__k8sco_tree>\n", "not base64"),
        (b"<__k8sco_tree>aGVsbG8=</__k8sco_tree>\n", "not valid gzip"),
    ],
)
def test_unreadable_output_fails_with_a_clear_message(output: bytes, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        lazy.read_tree(output)


def test_a_printed_exec_is_refused() -> None:
    line = lazy.marker(co.Exec("true"))
    with pytest.raises(PipelineError, match=r"returned Exec, not a co\.Serial or co\.Parallel"):
        lazy.read_tree(line.encode())


def test_emit_refuses_what_is_not_a_serial_or_parallel() -> None:
    problem = lazy.emit(co.Exec("true"), io.StringIO())
    assert problem is not None and "returned Exec" in problem
    problem = lazy.emit(42, io.StringIO())
    assert problem is not None and "returned int" in problem


def test_splice_puts_the_generated_tree_into_execute() -> None:
    root = co.Serial(env={"STAGE": "ci"}, cpu=3)
    root["l"] = co.Lazy("python gen.py")
    generated = co.Serial(stop_on_error=False)
    generated["a"] = co.Exec("echo a")
    generated["b"] = co.Exec("echo b", env={"B": "1"})
    spliced = lazy.splice(root, "/l", generated)
    execute = spliced["/l/Execute"]
    assert isinstance(execute, co.Serial)  # the generated kind: its children run in order
    assert execute.get("stop_on_error") is False
    assert list(execute.children) == ["a", "b"]
    # Generated nodes inherit from the Lazy node's ancestors.
    assert spliced["/l/Execute/b"].get("env") == {"STAGE": "ci", "B": "1"}
    assert spliced["/l/Execute/a"].get("cpu") == 3
    # Every node that was there keeps its path, so records keyed by path stay valid.
    before = Graph.from_tree(root).paths
    after = Graph.from_tree(spliced).paths
    assert set(before) <= set(after)
    assert not root["/l/Execute"].children  # the original is untouched


def test_splice_refuses_a_tree_over_the_pipelines_total_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "MAX_NODES", 20)
    root = co.Serial()
    root["l"] = co.Lazy("python gen.py")
    root["other"] = fan(5)  # 10 nodes already
    with pytest.raises(
        PipelineError, match=r"would make the pipeline 21 nodes, over the total cap"
    ):
        lazy.splice(root, "/l", fan(11))
    assert lazy.splice(root, "/l", fan(10))  # 20 nodes: at the cap


def test_splice_refuses_a_name_clash_with_what_execute_holds() -> None:
    root = co.Lazy("python gen.py")
    root["Execute"]["n0"] = co.Exec("true")
    with pytest.raises(PipelineError, match="'n0'"):
        lazy.splice(root, "/", fan(2))


def test_unexpand_empties_execute_for_a_regeneration() -> None:
    root = co.Serial()
    root["l"] = co.Lazy("python gen.py")
    spliced = lazy.splice(root, "/l", fan(3))
    again = lazy.unexpand(spliced, "/l")
    assert again.serialize() == root.serialize()


def test_kubernetes_refuses_lazy_pipelines_in_one_line_when_turned_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = co.Serial()
    root["l"] = co.Lazy("python gen.py")
    monkeypatch.delenv("K8SCO_LAZY_CLUSTER", raising=False)
    render_pipeline(root, "p", "default")  # the controller expands them by default
    monkeypatch.setenv("K8SCO_LAZY_CLUSTER", "0")
    with pytest.raises(PipelineError, match=r"^/l: co.Lazy runs on the local runner only"):
        render_pipeline(root, "p", "default")


GEN = """
import k8sco as co

def fan(n: int) -> co.Parallel:
    with co.Parallel() as p:
        for i in range(n):
            co.Exec(f"echo {i}", name=f"n{i}")
    return p

def not_a_tree() -> co.Serial:
    return co.Exec("true")

def plain() -> int:
    return 7
"""


def _call(tmp_path: Path, *argv: str, lazy_env: bool) -> subprocess.CompletedProcess[bytes]:
    (tmp_path / "gen.py").write_text(GEN)
    env = dict(os.environ)
    env.pop("K8SCO_LAZY", None)
    if lazy_env:
        env["K8SCO_LAZY"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "k8sco", "call", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=False,
    )


def test_the_dispatcher_prints_the_tree_of_a_generate_node(tmp_path: Path) -> None:
    done = _call(tmp_path, "gen.py:fan", "--n=2", lazy_env=True)
    assert done.returncode == 0, done.stderr
    tree = lazy.read_tree(done.stdout)
    assert isinstance(tree, co.Parallel) and list(tree.children) == ["n0", "n1"]
    assert b"generated 2 node(s)" in done.stdout


def test_the_dispatcher_fails_a_generator_that_returns_no_tree(tmp_path: Path) -> None:
    done = _call(tmp_path, "gen.py:not_a_tree", lazy_env=True)
    assert done.returncode == 1
    assert b"the Lazy generator returned Exec, not a co.Serial or co.Parallel" in done.stderr


def test_the_dispatcher_prints_results_as_before_outside_generate_nodes(tmp_path: Path) -> None:
    done = _call(tmp_path, "gen.py:plain", lazy_env=False)
    assert done.returncode == 0 and done.stdout == b"7\n"


def test_docker_mode_gives_generated_nodes_the_lazy_nodes_image() -> None:
    root = co.Serial()
    root["l"] = co.Lazy("python gen.py")
    spliced = lazy.splice(root, "/l", fan(2))
    images = lazy.generated_images(
        {"/l/Generate": "img:1"}, spliced, Graph.from_tree(spliced), "/l"
    )
    assert images == {"/l/Generate": "img:1", "/l/Execute/n0": "img:1", "/l/Execute/n1": "img:1"}
    own = fan(1)
    own["n0"].image = "other:2"
    spliced = lazy.splice(root, "/l", own)
    with pytest.raises(PipelineError, match=r"^/l/Execute/n0: a generated node sets its own image"):
        lazy.generated_images({"/l/Generate": "img:1"}, spliced, Graph.from_tree(spliced), "/l")
