"""Shared containers (k8sco/sequence.py): which Exec nodes form a group, the in-image runner
``k8sco sequence``, its termination message and log delimiters, and the per-member Job-like
records the controller decides on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fakecluster.containerenv import expand

import k8sco as co
from k8sco import sequence
from k8sco.engine import State
from k8sco.errors import PipelineError
from k8sco.reconcile.observe import job_state
from k8sco.render.jobs import command_argv


def shared() -> co.Serial:
    with co.Serial() as root:
        co.Exec("echo out", name="out")
        with co.Serial(name="g", same_container=co.SameContainer.NEW):
            co.Exec("echo hi > f.txt; echo one", name="one")
            with co.Parallel(name="p"):
                co.Exec("cat f.txt; exit 3", name="two")
                co.Exec("echo three $K8SCO_NODE_PATH $$X", name="three", env={"X": "x"})
                with co.Serial(name="own", container_reuse_context=co.ContainerReuseContext.NEW):
                    co.Exec("echo inner", name="inner")
                co.Exec("echo free", name="free", same_container=co.SameContainer.ESCAPE)
            co.Exec("echo four", name="four")
    return root


def test_the_parameter_and_its_older_spelling() -> None:
    assert co.Serial(same_container=co.SameContainer.NEW).params == {
        "container_reuse_context": "new"
    }
    assert co.Serial(same_container=co.SameContainer.INHERIT).params == {}
    assert co.Serial(container_reuse_context=None).params == {}
    node = co.Parallel(container_reuse_context="global")
    assert node.container_reuse_context == co.ContainerReuseContext.GLOBAL
    assert co.Node.deserialize(node.serialize()).params == {"container_reuse_context": "global"}
    assert co.SameContainer.ESCAPE is co.ContainerReuseContext.GLOBAL
    with pytest.raises(PipelineError, match="older spelling of 'container_reuse_context'"):
        co.Serial(same_container="new", container_reuse_context="new")
    with pytest.raises(PipelineError, match=r"container_reuse_context' must be co\.Container"):
        co.Serial(container_reuse_context="same")
    assert co.Exec("docker ps", requires_docker=True).get("requires_docker") is True
    with co.Serial(requires_docker=True) as root:
        co.Exec("x", name="x")
    assert root["x"].get("requires_docker") is True  # inherited, as in Conducto
    from k8sco.cli.script import apply_defaults  # co.main(requires_docker=True), as Conducto's

    plain = co.Serial()
    apply_defaults(plain, {"requires_docker": True})
    assert plain.get("requires_docker") is True


def test_groups_follow_the_nearest_node_that_sets_a_context() -> None:
    root = shared()
    assert sequence.groups(root) == {
        "/g": ["/g/one", "/g/p/two", "/g/p/three", "/g/four"],
        "/g/p/own": ["/g/p/own/inner"],
    }
    assert sequence.head_of(root["/g/p/two"]) == "/g"
    assert sequence.head_of(root["/g/p/free"]) is None
    assert sequence.head_of(root["/out"]) is None
    assert sequence.job_path(root, "/g/four") == "/g"
    assert sequence.job_path(root, "/out") == "/out"
    assert sequence.member_index(root, "/g/p/three") == 2
    assert sequence.member_index(root, "/g/p/free") is None
    alone = co.Exec("echo", container_reuse_context=co.ContainerReuseContext.NEW)
    assert sequence.head_of(alone) is None and sequence.groups(alone) == {}


def run_group(tmp_path: Path, root: co.Node, head: str) -> tuple[int, bytes, str]:
    spec = expand(command_argv(sequence.spec(root, head))[-1], {})  # as the pod gets it
    message = tmp_path / "termination-log"
    proc = subprocess.run(
        [sys.executable, "-m", "k8sco", "sequence", spec],
        cwd=tmp_path,
        env={**os.environ, sequence.TERMINATION_ENV: str(message)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    return proc.returncode, proc.stdout, message.read_text()


def flat() -> co.Serial:
    """shared() without the nested contexts (which run in Jobs of their own on a cluster)."""
    with co.Serial() as root, co.Serial(name="g", same_container=co.SameContainer.NEW):
        co.Exec("echo hi > f.txt; echo one", name="one")
        with co.Parallel(name="p"):
            co.Exec("cat f.txt; exit 3", name="two")
            co.Exec("echo three $K8SCO_NODE_PATH $X", name="three", env={"X": "x"})
        co.Exec("echo four", name="four")
    return root


def test_the_runner_runs_members_in_order_in_one_directory_and_stops_as_a_serial(
    tmp_path: Path,
) -> None:
    root = flat()
    code, log, message = run_group(tmp_path, root, "/g")
    assert code == 1  # /g failed
    report = sequence.decode_message(message)
    assert report is not None and report.complete
    # one, two (fails: the Parallel goes on), three; then /g stops: no four
    assert sorted(report.outcomes) == [0, 1, 2]
    assert [report.outcomes[i].code for i in range(3)] == [0, 3, 0]
    assert sequence.slice_log(log, 1) == b"hi\n"  # the file the first member wrote
    assert sequence.slice_log(log, 2) == b"three /g/p/three x\n"  # its own path and env
    assert sequence.slice_log(log, 3) is None  # never started
    from_log = sequence.log_report(log)
    assert from_log.complete and sorted(from_log.outcomes) == [0, 1, 2]
    assert from_log.outcomes[1].code == 3
    assert len(message.encode()) <= sequence.MESSAGE_LIMIT


def test_a_spec_survives_kubernetes_variable_expansion() -> None:
    with co.Serial(same_container=co.SameContainer.NEW) as root:
        co.Exec("echo $(HOSTNAME) $$ $HOME", name="x")
    # What the kubelet does to a container's command (the fake cluster's model of
    # third_party/forked/golang/expansion): $(VAR) is the variable's value, $$ is $.
    argv = command_argv(["k8sco", "sequence", sequence.spec(root, "/")])
    kube = expand(argv[-1], {"HOSTNAME": "pod-1"})
    assert json.loads(kube)["tree"]["children"][0][1]["command"] == "echo $(HOSTNAME) $$ $HOME"


def test_the_termination_message_stays_within_the_kubelets_4_kib() -> None:
    few = {i: sequence.Outcome(0, 1000.0 + i, 1000.5 + i) for i in range(3)}
    text = sequence.encode_message(few, complete=True)
    back = sequence.decode_message(text)
    assert back is not None and back.complete
    assert back.outcomes[2].code == 0 and back.outcomes[2].start == pytest.approx(1002.0)
    many = {i: sequence.Outcome(i % 256, 1e9 + i * 10, 1e9 + i * 10 + 9) for i in range(400)}
    marker = sequence.encode_message(many, complete=True)
    assert len(marker.encode()) <= sequence.MESSAGE_LIMIT
    assert sequence.decode_message(marker) is None  # read the log instead
    assert sequence.decode_message("last lines of a log") is None
    assert sequence.decode_message("") is None


def test_member_lines_follow_a_stream_to_the_members_end() -> None:
    lines = [
        b"[k8sco-sequence] start 0 1.000 /g/a",
        b"a",
        b"[k8sco-sequence] end 0 2.000 0",
        b"[k8sco-sequence] start 1 2.000 /g/b",
        b"b1",
        b"[k8sco-sequence] end 1 2.500 1",
        b"[k8sco-sequence] start 1 2.500 /g/b",  # its retry (retries=1)
        b"b2",
        b"[k8sco-sequence] end 1 3.000 1",
        b"[k8sco-sequence] done",
    ]
    assert list(sequence.member_lines(iter(lines), 1)) == [b"b1", b"b2"]
    assert list(sequence.member_lines(iter(lines), 0)) == [b"a"]
    assert sequence.slice_log(b"\n".join(lines) + b"\n", 1) == b"b1\nb2\n"
    report = sequence.log_report(b"\n".join(lines) + b"\n")
    assert report.outcomes[1] == sequence.Outcome(1, 2.0, 3.0)
    assert report.complete


def group_job(status: dict[str, Any]) -> dict[str, Any]:
    meta = {
        "name": "p-g-x",
        "uid": "u1",
        "annotations": {"k8sco.io/path": "/g", sequence.ANNOTATION_SEQUENCE: "4"},
    }
    return {"metadata": meta, "status": status}


def test_member_jobs_turn_one_group_job_into_each_members_record() -> None:
    root = shared()
    other = {"metadata": {"name": "p-out"}, "status": {"succeeded": 1}}
    running = group_job({"active": 1, "ready": 1, "startTime": "2026-01-01T00:00:00Z"})
    seen = sequence.member_jobs(root, {"/g": running, "/out": other}, lambda job: None)
    assert set(seen) == {"/out", "/g/one"}  # the first member runs; the rest wait
    assert job_state(seen["/g/one"]).state is State.RUNNING

    ended = group_job(
        {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "X"}]}
    )
    report = sequence.Report(
        {0: sequence.Outcome(0, 10.0, 11.0), 1: sequence.Outcome(3, 11.0, 12.0)}, True
    )
    seen = sequence.member_jobs(root, {"/g": ended}, lambda job: report)
    assert set(seen) == {"/g/one", "/g/p/two"}  # the others were not to run
    assert job_state(seen["/g/one"]).state is State.DONE
    two = job_state(seen["/g/p/two"])
    assert (two.state, two.reason, two.started) == (State.ERROR, "exit code 3", 11.0)

    # The pod died mid-way (no end): the member running then fails as the Job did, the
    # members after it did not run.
    partial = sequence.Report({0: sequence.Outcome(0, 10.0, 11.0)}, False)
    seen = sequence.member_jobs(root, {"/g": ended}, lambda job: partial)
    assert job_state(seen["/g/p/two"]).reason == "X"
    assert job_state(seen["/g/p/three"]).reason == "not run: its group's pod ended before it"
    assert seen["/g/four"]["metadata"]["name"] == "p-g-x"  # deleting it deletes the group's

    # A Job that succeeded, whose pod is gone (no report): every node succeeded with it.
    complete = group_job({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
    seen = sequence.member_jobs(root, {"/g": complete}, lambda job: None)
    assert {p: job_state(j).state for p, j in seen.items()} == dict.fromkeys(
        ["/g/one", "/g/p/two", "/g/p/three", "/g/four"], State.DONE
    )


def test_the_spec_carries_what_the_group_inherits_from_above(tmp_path: Path) -> None:
    with (
        co.Serial(retries=1, max_time=120) as root,
        co.Serial(name="g", same_container=co.SameContainer.NEW),
    ):
        co.Exec("echo try >> tries; test $(wc -l < tries) -ge 2", name="flaky")
    sub = co.Node.from_dict(
        json.loads(expand(command_argv(sequence.spec(root, "/g"))[-1], {}))["tree"]
    )
    assert (sub["flaky"].get("retries"), sub["flaky"].get("max_time")) == (1, 120)
    code, log, _message = run_group(tmp_path, root, "/g")
    assert code == 0, log  # its second try, in the pod, as retries=1 above the group says
    assert (tmp_path / "tries").read_text() == "try\ntry\n"


def test_a_member_past_its_max_time_is_stopped_and_fails_as_timed_out(tmp_path: Path) -> None:
    with co.Serial(same_container=co.SameContainer.NEW, stop_on_error=False) as root:
        co.Exec("sleep 60", name="slow", max_time=1)
        co.Exec("echo next", name="next")
    code, _log, message = run_group(tmp_path, root, "/")
    report = sequence.decode_message(message)
    assert code == 1 and report is not None and report.complete
    assert report.outcomes[0].code is None  # stopped by the runner: no exit code of its own
    assert report.outcomes[1].code == 0
    ended = group_job({"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]})
    ended["metadata"]["annotations"]["k8sco.io/path"] = "/"
    seen = sequence.member_jobs(root, {"/": ended}, lambda job: report)
    assert job_state(seen["/slow"]).reason == "max time exceeded"
    assert job_state(seen["/next"]).state is State.DONE
