"""co.Lazy on the local runner: real processes; the generator functions live in a file of
the code root (a temporary directory), as a pipeline's would."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import k8sco as co
from k8sco import tree
from k8sco.engine import State
from k8sco.local import runner
from k8sco.local.progress import PlainProgress
from k8sco.local.rundir import RunDir
from k8sco.render import limits

GEN = """
import k8sco as co


def fan(n: int) -> co.Parallel:
    with co.Parallel() as p:
        for i in range(n):
            co.Exec(f'echo "$STAGE {i}" > out.{i}; echo ran {i}', name=f"n{i}")
    return p


def nested(k: int) -> co.Serial:
    s = co.Serial()
    s["first"] = co.Exec("echo first >> order")
    s["inner"] = co.Lazy(fan, k)
    s["last"] = co.Exec("echo last >> order")
    return s


def exec_only() -> co.Serial:
    return co.Exec("true")


def broken() -> co.Serial:
    raise RuntimeError("the generator broke")


def native(k: int) -> co.Parallel:
    with co.Parallel() as p:
        for i in range(k):
            co.Exec(touch, f"native.{i}").set(name=f"t{i}")
    return p


def touch(name: str) -> None:
    open(name, "w").close()
"""


@pytest.fixture
def gen(tmp_path: Path) -> Iterator[types.ModuleType]:
    """gen.py in the code root, imported as a pipeline file would be."""
    file = tmp_path / "gen.py"
    file.write_text(GEN)
    name = f"lazygen_{abs(hash(str(tmp_path)))}"
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    token = tree.set_code_root(str(tmp_path))
    yield module
    tree.reset_code_root(token)
    sys.modules.pop(name, None)


def run(root: co.Node, tmp_path: Path) -> tuple[runner.RunResult, list[str]]:
    lines: list[str] = []
    spec = runner.RunSpec(root=root, code_root=str(tmp_path), meta={"file": "gen.py"})
    result = runner.run(
        spec, PlainProgress(lines.append), runs_dir=tmp_path / ".k8sco" / "runs", cpus=4
    )
    return result, lines


def test_generated_nodes_run_and_inherit_from_the_lazy_nodes_ancestors(
    tmp_path: Path, gen: types.ModuleType
) -> None:
    root = co.Serial(env={"STAGE": "ci"})
    root["before"] = co.Exec("echo before")
    root["l"] = co.Lazy(gen.fan, 3)
    result, _ = run(root, tmp_path)
    assert result.exit_code == 0, result.recorded
    assert [result.states[f"/l/Execute/n{i}"] for i in range(3)] == [State.DONE] * 3
    assert [(tmp_path / f"out.{i}").read_text() for i in range(3)] == [
        f"ci {i}\n" for i in range(3)
    ]
    assert "/l/Execute/n2" in result.graph.index


def test_the_run_directory_holds_the_generated_nodes_for_status_and_logs(
    tmp_path: Path, gen: types.ModuleType
) -> None:
    root = co.Serial()
    root["l"] = co.Lazy(gen.fan, 2)
    result, _ = run(root, tmp_path)
    again = RunDir.open(tmp_path / ".k8sco" / "runs", result.run.run_id)
    assert "/l/Execute/n1" in again.tree()
    assert again.log_path("/l/Execute/n1").read_text() == "ran 1\n"
    states, _ = again.states()
    assert states["/l/Execute/n1"].state is State.DONE
    # Log names already handed out stay; the new ones do not collide with them.
    meta = json.loads((again.path / "run.json").read_text())
    assert meta["logs"]["/l/Generate"] == "l.Generate.log"
    assert len(set(meta["logs"].values())) == len(meta["logs"])


def test_lazy_nodes_nest_and_a_generated_serial_runs_in_order(
    tmp_path: Path, gen: types.ModuleType
) -> None:
    root = co.Serial(env={"STAGE": "x"})
    root["l"] = co.Lazy(gen.nested, 2)
    result, lines = run(root, tmp_path)
    assert result.exit_code == 0
    assert isinstance(result.run.tree()["/l/Execute"], co.Serial)
    assert result.states["/l/Execute/inner/Execute/n1"] is State.DONE
    assert (tmp_path / "order").read_text() == "first\nlast\n"
    ran = [ln.split()[-2] if "(" in ln else ln.split()[-1] for ln in lines if " done " in ln]
    assert ran.index("/l/Execute/inner/Execute/n0") < ran.index("/l/Execute/last")


def test_generated_native_function_nodes_run(tmp_path: Path, gen: types.ModuleType) -> None:
    root = co.Serial()
    root["l"] = co.Lazy(gen.native, 2)
    result, _ = run(root, tmp_path)
    assert result.exit_code == 0, result.recorded
    assert (tmp_path / "native.0").exists() and (tmp_path / "native.1").exists()


def test_a_generator_that_raises_fails_its_node(tmp_path: Path, gen: types.ModuleType) -> None:
    root = co.Serial()
    root["l"] = co.Lazy(gen.broken)
    root["after"] = co.Exec("touch after.ran")
    result, _ = run(root, tmp_path)
    assert result.exit_code == 1
    assert result.states["/l/Generate"] is State.ERROR
    assert result.recorded["/l/Generate"].reason == "exit code 1"
    assert "the generator broke" in result.run.log_path("/l/Generate").read_text()
    assert not (tmp_path / "after.ran").exists()


def test_a_generator_that_returns_no_serial_or_parallel_fails_saying_so(
    tmp_path: Path, gen: types.ModuleType
) -> None:
    root = co.Serial()
    root["l"] = co.Lazy(gen.exec_only)
    result, _ = run(root, tmp_path)
    reason = result.recorded["/l/Generate"].reason or ""
    assert result.states["/l/Generate"] is State.ERROR
    assert "the Lazy generator returned Exec, not a co.Serial or co.Parallel" in reason


def test_a_command_that_prints_no_tree_fails_saying_so(tmp_path: Path) -> None:
    root = co.Serial()
    root["l"] = co.Lazy("echo hello")
    result, _ = run(root, tmp_path)
    rec = result.recorded["/l/Generate"]
    assert rec.state is State.ERROR and rec.exit_code == 0
    assert rec.reason is not None and rec.reason.startswith("the Lazy generator printed no tree")
    assert (
        "[k8sco] the Lazy generator printed no tree"
        in result.run.log_path("/l/Generate").read_text()
    )


def test_a_generated_tree_over_the_total_cap_fails_saying_so(
    tmp_path: Path, gen: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_NODES", 10)
    root = co.Serial()
    root["l"] = co.Lazy(gen.fan, 8)
    result, _ = run(root, tmp_path)
    rec = result.recorded["/l/Generate"]
    assert rec.state is State.ERROR
    assert rec.reason is not None and "over the total cap of 10 nodes" in rec.reason
    assert not any(p.startswith("/l/Execute/") for p in result.recorded)
    assert "/l/Execute/n0" not in result.run.tree()


def test_a_lazy_shell_command_prints_its_tree_through_co_main(tmp_path: Path) -> None:
    (tmp_path / "pipe.py").write_text(
        GEN + "\n\nif __name__ == '__main__':\n    co.main(default=fan)\n"
    )
    root = co.Serial(env={"STAGE": "sh"})
    root["l"] = co.lazy_shell(f"{sys.executable} pipe.py fan --n=2")
    result, _ = run(root, tmp_path)
    assert result.exit_code == 0, result.recorded
    assert (tmp_path / "out.1").read_text() == "sh 1\n"


CLI_PIPELINE = (
    GEN
    + """

def pipeline(n: int = 2) -> co.Serial:
    root = co.Serial(env={"STAGE": "cli"})
    root["l"] = co.Lazy(fan, n)
    return root
"""
)


def test_k8sco_run_status_and_logs_show_generated_nodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from k8sco.cli.app import cli

    (tmp_path / "pipe.py").write_text(CLI_PIPELINE)
    monkeypatch.chdir(tmp_path)

    def k8sco(*args: str) -> str:
        done = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert done.exit_code == 0, done.output
        return done.stdout

    assert "(3 done)" in k8sco("run", "pipe.py:pipeline", "--n=2")
    assert k8sco("logs", "/l/Execute/n1") == "ran 1\n"
    rows = [line.split()[:3] for line in k8sco("status").splitlines()[1:]]
    assert ["n1", "Exec", "done"] in rows and ["Execute", "Parallel", "done"] in rows


def test_the_live_tree_shows_generated_nodes_after_an_expansion(tmp_path: Path) -> None:
    import io

    from k8sco import engine, lazy
    from k8sco.local.progress import LiveProgress

    root = co.Serial()
    root["l"] = co.Lazy("python gen.py")
    out = io.StringIO()
    live = LiveProgress(engine.Graph.from_tree(root), file=out)
    generated = co.Parallel()
    generated["shown"] = co.Exec("true")
    graph = engine.Graph.from_tree(lazy.splice(root, "/l", generated))
    live.regraph(graph)
    live.tick(engine.evaluate(graph, {}, 0.0), {}, 1.0)
    live.close()
    assert "shown" in out.getvalue()


def test_a_lazy_node_may_be_the_root(tmp_path: Path, gen: types.ModuleType) -> None:
    result, _ = run(co.Lazy(gen.fan, 2), tmp_path)
    assert result.exit_code == 0
    assert result.states["/Execute/n1"] is State.DONE


def test_a_lazy_shell_command_whose_tree_is_an_exec_fails_saying_so(tmp_path: Path) -> None:
    (tmp_path / "pipe.py").write_text(
        GEN + "\n\nif __name__ == '__main__':\n    co.main(default=exec_only)\n"
    )
    root = co.Serial()
    root["l"] = co.lazy_shell(f"{sys.executable} pipe.py")
    result, _ = run(root, tmp_path)
    rec = result.recorded["/l/Generate"]
    assert rec.state is State.ERROR
    assert rec.reason == (
        "exit code 1: the Lazy generator returned Exec, not a co.Serial or co.Parallel: "
        "return the tree to run (annotate the function -> co.Serial)"
    )


DATA_GEN = """
import k8sco as co


def pair() -> co.Serial:
    s = co.Serial()
    s["write"] = co.Exec(write, "hello from a generated node")
    s["read"] = co.Exec(read)
    return s


def write(text: str) -> None:
    co.data.pipeline.puts("shared/msg", text.encode())


def read() -> None:
    with open("read.out", "wb") as f:
        f.write(co.data.pipeline.gets("shared/msg"))
"""


def test_generated_nodes_exchange_data_through_co_data_pipeline(tmp_path: Path) -> None:
    (tmp_path / "datagen.py").write_text(DATA_GEN)
    spec = importlib.util.spec_from_file_location("lazy_datagen", tmp_path / "datagen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lazy_datagen"] = module
    token = tree.set_code_root(str(tmp_path))
    try:
        spec.loader.exec_module(module)
        root = co.Serial()
        root["l"] = co.Lazy(module.pair)
    finally:
        tree.reset_code_root(token)
        sys.modules.pop("lazy_datagen", None)
    result, _ = run(root, tmp_path)
    assert result.exit_code == 0, result.recorded
    assert (tmp_path / "read.out").read_bytes() == b"hello from a generated node"
