"""Shared containers in a local run (process mode): the nodes of a
container_reuse_context=NEW group run one after another, in tree order, in the one working
directory every node of the run shares, each with its own state and log."""

from __future__ import annotations

from pathlib import Path

import k8sco as co
from k8sco.engine import State
from k8sco.local import runner
from k8sco.local.progress import PlainProgress


def run(root: co.Node, tmp_path: Path) -> runner.RunResult:
    spec = runner.RunSpec(root=root, code_root=str(tmp_path), meta={"file": "test.py"})
    return runner.run(
        spec, PlainProgress(lambda line: None), runs_dir=tmp_path / ".k8sco" / "runs", cpus=8
    )


def test_a_shared_group_runs_in_order_sharing_files_and_stops_as_its_serial(
    tmp_path: Path,
) -> None:
    with co.Serial(same_container=co.SameContainer.NEW) as root:
        co.Exec("echo hello > shared.txt; echo a >> order", name="a")
        with co.Parallel(name="p"):
            # Were they concurrent, b would find c's mark missing or the other way round.
            co.Exec("test ! -e c.mark && touch b.mark; echo b >> order", name="b")
            co.Exec("test -e b.mark && touch c.mark; cat shared.txt; exit 4", name="c")
        co.Exec("echo d >> order", name="d")
    result = run(root, tmp_path)
    assert result.exit_code == 1
    assert (tmp_path / "order").read_text().split() == ["a", "b"]
    assert (tmp_path / "c.mark").exists()
    assert result.states["/p/c"] is State.ERROR
    assert result.recorded["/p/c"].exit_code == 4
    assert result.states["/d"] is State.PENDING  # the failure stopped the Serial
    assert result.run.log_path("/p/c").read_text() == "hello\n"


def test_retry_callbacks_act_on_a_node_of_a_shared_group_locally(tmp_path: Path) -> None:
    # Refused on a cluster (one Job per group: tests/test_group_callbacks.py); a local run
    # runs each node as its own process, so a retry or a skip is of that node alone.
    with co.Serial(same_container=co.SameContainer.NEW) as root:
        co.Exec("echo shared > f.txt; echo one >> order", name="one")
        flaky = co.Exec('echo flaky >> order; test "${K8SCO_ATTEMPT:-1}" -ge 2', name="flaky")
        flaky.on_error(co.callback.retry(2))
        bad = co.Exec("echo bad >> order; exit 3", name="bad")
        bad.on_error(co.callback.retry_then_skip(1))
        co.Exec("cat f.txt; echo last >> order", name="last")
    result = run(root, tmp_path)
    assert result.exit_code == 0
    assert (tmp_path / "order").read_text().split() == [
        "one",
        "flaky",
        "flaky",
        "bad",
        "bad",
        "last",
    ]
    assert result.states["/bad"] is State.SKIPPED and result.states["/last"] is State.DONE
    assert result.recorded["/one"].retried == 0 and result.recorded["/flaky"].retried == 1
    assert result.run.log_path("/last").read_text() == "shared\n"
