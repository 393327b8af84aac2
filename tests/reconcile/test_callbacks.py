"""What callbacks do, decided purely (k8sco.reconcile.callbacks) and through the
controller's reconciliation (k8sco.reconcile.decide): a retry is a new attempt, decided
from the recorded status, so deciding again on the same inputs never retries twice."""

from __future__ import annotations

from typing import Any

import pytest

import k8sco as co
from k8sco.engine import Graph, NodeState, State
from k8sco.reconcile import callbacks as cbs
from k8sco.reconcile import reconcile
from k8sco.render import names
from k8sco.render.pipeline import job_for, recorded_states, render_pipeline

T0 = 1_800_000_000.0


def stamp(seconds: float) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def job(
    path: str,
    *,
    done: bool = False,
    failed: str | None = None,
    running: bool = False,
    deleting: bool = False,
) -> dict[str, Any]:
    """A Job of the Pipeline ``demo`` (uid u-1) as the API shows it."""
    status: dict[str, Any] = {"startTime": stamp(T0)}
    if running:
        status.update(active=1, ready=1)
    if done:
        status.update(succeeded=1, completionTime=stamp(T0 + 5))
        status["conditions"] = [{"type": "Complete", "status": "True"}]
    if failed:
        status.update(failed=1)
        status["conditions"] = [
            {
                "type": "Failed",
                "status": "True",
                "reason": failed,
                "lastTransitionTime": stamp(T0 + 5),
            },
        ]
    meta: dict[str, Any] = {
        "name": names.job_name("demo", path),
        "annotations": {"k8sco.io/path": path},
        "uid": f"uid{path}",
        "ownerReferences": [{"kind": "Pipeline", "name": "demo", "uid": "u-1"}],
    }
    if deleting:
        meta["deletionTimestamp"] = stamp(T0 + 6)
    return {"metadata": meta, "status": status}


def merged(old: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """What the API server stores after a JSON merge patch (RFC 7386)."""
    out = dict(old)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def pipeline_of(root: co.Node, status: dict[str, Any] | None = None) -> dict[str, Any]:
    obj = render_pipeline(root, "demo", "default", image="img:1", uid="u-1")
    obj["metadata"]["generation"] = 1
    if status is not None:
        obj["status"] = status
    return obj


GIB = 2**30


def failed(exit_code: int = 1, reason: str = "exit code 1", **kw: Any) -> NodeState:
    return NodeState(State.ERROR, 1, T0, T0 + 5, exit_code, reason, **kw)


def table_of(node: co.Node) -> cbs.Table:
    root = co.Serial()
    root["n"] = node
    return cbs.Table.of(root)


def test_retry_gives_new_attempts_then_the_failure_stands() -> None:
    node = co.Exec("false")
    node.on_error(co.callback.retry(2))
    table = table_of(node)
    first = cbs.after_failure(table, "/n", failed(), {}, oom=False)
    assert (first.state, first.retried, len(first.history)) == (State.PENDING, 1, 1)
    assert first.history[0]["x"] == 1 and first.history[0]["cb"] == "retry"
    assert first.reason == "attempt 1 exit code 1; retry 1 of 2"
    second = cbs.after_failure(table, "/n", failed(history=first.history, retried=1), {}, oom=False)
    assert (second.state, second.retried) == (State.PENDING, 2)
    third = failed(history=second.history, retried=2)
    assert cbs.after_failure(table, "/n", third, {}, oom=False) is third  # out of retries


def test_retry_then_skip_skips_when_out_of_retries() -> None:
    node = co.Exec("false")
    node.on_error(co.callback.retry_then_skip(1))
    table = table_of(node)
    again = cbs.after_failure(table, "/n", failed(), {}, oom=False)
    assert again.state is State.PENDING
    last = cbs.after_failure(table, "/n", failed(history=again.history, retried=1), {}, oom=False)
    assert last.state is State.SKIPPED
    assert last.reason is not None and "retry_then_skip" in last.reason


def test_double_mem_doubles_only_after_an_out_of_memory_kill() -> None:
    node = co.Exec("hog", mem=1)
    node.on_error(co.callback.retry_with_double_mem(3))
    table = table_of(node)
    oom = cbs.after_failure(table, "/n", failed(137, "failed: OOMKilled"), {}, oom=True)
    assert oom.mem == 2 * GIB and oom.history[0]["oom"] is True
    again = cbs.after_failure(
        table, "/n", failed(137, history=oom.history, retried=1, mem=oom.mem), {}, oom=True
    )
    assert again.mem == 4 * GIB
    plain = cbs.after_failure(table, "/n", failed(), {}, oom=False)
    assert plain.state is State.PENDING and plain.mem is None  # retried, same memory


def test_handle_memory_errors_follows_conductos_rules() -> None:
    node = co.Exec("hog", mem=2)
    node.on_error(co.callback.handle_memory_errors((8, 16), 100))
    table = table_of(node)
    not_oom = failed()
    assert cbs.after_failure(table, "/n", not_oom, {}, oom=False) is not_oom
    below = cbs.after_failure(table, "/n", failed(137), {}, oom=True)
    assert below.mem == 4 * GIB  # below the lower bound: retried, whatever came before
    at_4 = failed(137, retried=1, mem=4 * GIB, history=below.history)
    assert cbs.after_failure(table, "/n", at_4, {}, oom=True).mem == 8 * GIB
    # At the lower bound or above: once only.
    at_8 = failed(137, retried=2, mem=8 * GIB, history=(*below.history, *below.history))
    assert cbs.after_failure(table, "/n", at_8, {}, oom=True) is at_8
    big = co.Exec("hog", mem=8)
    big.on_error(co.callback.handle_memory_errors((8, 16), 100))
    first = cbs.after_failure(table_of(big), "/n", failed(137), {}, oom=True)
    assert first.mem == 16 * GIB
    # Never past the upper bound, nor after an attempt that ran longer than max_duration.
    huge = co.Exec("hog", mem=9)
    huge.on_error(co.callback.handle_memory_errors((8, 16), 100))
    over = failed(137)
    assert cbs.after_failure(table_of(huge), "/n", over, {}, oom=True) is over
    slow = NodeState(State.ERROR, 1, T0, T0 + 500, 137, "OOMKilled")
    assert cbs.after_failure(table, "/n", slow, {}, oom=True) is slow


def test_skip_some_errors_skips_up_to_its_count_below_its_node() -> None:
    with co.Parallel() as root:
        for name in "abc":
            co.Exec("false", name=name)
    root.on_error(co.callback.skip_some_errors(2))
    table = cbs.Table.of(root)
    a = cbs.after_failure(table, "/a", failed(), {}, oom=False)
    assert a.state is State.SKIPPED
    b = cbs.after_failure(table, "/b", failed(), {"/a": a}, oom=False)
    assert b.state is State.SKIPPED
    c = failed()
    assert cbs.after_failure(table, "/c", c, {"/a": a, "/b": b}, oom=False) is c


def test_inherited_callbacks_reach_the_nodes_below_and_plain_ones_do_not() -> None:
    with co.Serial() as root, co.Serial(name="s") as s:
        co.Exec("false", name="x")
    s.on_done(co.callback.slack_status("#c"))
    s.on_error(co.callback.slack_status("#e", inherited=True))
    table = cbs.Table.of(root)
    assert [e.callback.kwargs["recipient"] for e in table.at("/s/x")] == ["#e"]
    assert [e.event for e in table.at("/s")] == [co.callback.Event.DONE, co.callback.Event.ERROR]
    assert table.notifying() == {"/s", "/s/x"}


def test_notices_have_stable_keys_per_transition_and_attempt() -> None:
    node = co.Exec("false")
    node.on_state_change(co.callback.slack_status("#c"))
    table = table_of(node)
    run = NodeState(State.RUNNING, 1, T0)
    one = cbs.notices(table, "uid-1", "/n", State.QUEUED, State.RUNNING, run)
    assert len(one) == 1 and one[0].state == "running" and one[0].kind == "slack_status"
    assert one == cbs.notices(table, "uid-1", "/n", State.QUEUED, State.RUNNING, run)
    other_run = cbs.notices(table, "uid-2", "/n", State.QUEUED, State.RUNNING, run)
    retry = cbs.notices(table, "uid-1", "/n", State.QUEUED, State.RUNNING, run.with_(retried=1))
    assert len({one[0].key, other_run[0].key, retry[0].key}) == 3
    assert cbs.notices(table, "uid-1", "/n", State.RUNNING, State.RUNNING, run) == []
    assert cbs.Notice.from_dict(one[0].to_dict()) == one[0]


@pytest.mark.parametrize("pipeline", ["p", "a" * 63])
@pytest.mark.parametrize("path", ["/x", "/" + "long-name/" * 20 + "leaf"])
def test_attempt_names_are_dns_labels_unique_per_attempt(pipeline: str, path: str) -> None:
    base = names.job_name(pipeline, path)
    attempts = [cbs.attempt_name(pipeline, path, n) for n in range(12)]
    assert attempts[0] == base
    assert len(set(attempts)) == 12
    assert all(names.is_dns_label(n) for n in attempts)
    assert attempts[1].endswith("-a2") and attempts[11].endswith("-a12")
    assert attempts == [cbs.attempt_name(pipeline, path, n) for n in range(12)]


def test_an_attempts_job_has_its_name_annotation_env_and_memory() -> None:
    root = co.Serial()
    root["n"] = co.Exec("hog", mem=1)
    pipeline = pipeline_of(root)
    body = job_for(pipeline, root, "/n")
    rec = NodeState(State.QUEUED, 1, retried=1, mem=2 * GIB)
    out = cbs.attempt_job(body, "demo", rec)
    assert out["metadata"]["name"] == cbs.attempt_name("demo", "/n", 1)
    assert out["metadata"]["annotations"][cbs.ATTEMPT_ANNOTATION] == "2"
    assert cbs.job_attempt(out) == 1
    (container,) = out["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["memory"] == "2048Mi"
    assert container["resources"]["requests"]["memory"] == "2048Mi"
    assert {"name": "K8SCO_ATTEMPT", "value": "2"} in container["env"]
    assert body["metadata"]["name"] == names.job_name("demo", "/n")  # not changed in place


def test_the_cache_keeps_the_newest_attempts_job() -> None:
    first, second = job("/n", failed="BackoffLimitExceeded"), job("/n", running=True)
    second["metadata"]["uid"] = "uid-2"
    second["metadata"]["annotations"][cbs.ATTEMPT_ANNOTATION] = "2"
    assert cbs.newer(None, first) and cbs.newer(first, second)
    assert not cbs.newer(second, first)  # a late event of the earlier attempt
    deleting = job("/n", deleting=True)
    deleting["metadata"]["uid"] = "uid-3"
    deleting["metadata"]["annotations"][cbs.ATTEMPT_ANNOTATION] = "3"
    assert not cbs.newer(first, deleting)
    assert cbs.older_attempts(second, "demo") == [names.job_name("demo", "/n")]


# --- through the controller's reconciliation ----------------------------------------------------


def flaky_tree() -> co.Serial:
    root = co.Serial()
    root["n"] = co.Exec("false")
    root["n"].on_error(co.callback.retry(1))
    root["after"] = co.Exec("true")
    return root


def test_a_failed_job_becomes_a_new_attempt_once() -> None:
    root = flaky_tree()
    graph = Graph.from_tree(root)
    table = cbs.Table.of(root)
    running = reconcile(graph, pipeline_of(root), {}, T0, callbacks=table)
    status = merged({}, running.status or {})
    jobs = {"/n": job("/n", failed="BackoffLimitExceeded")}
    decided = reconcile(graph, pipeline_of(root, status), jobs, T0 + 6, callbacks=table)
    assert decided.create == ["/n"]
    assert decided.attempts["/n"].retried == 1
    # The same inputs again (a controller killed before its write landed): the same answer.
    again = reconcile(graph, pipeline_of(root, status), jobs, T0 + 7, callbacks=table)
    assert (again.create, again.attempts) == (decided.create, decided.attempts)
    # Once written, the first attempt's Job says nothing about the second attempt.
    status = merged(status, decided.status or {})
    rec = recorded_states(graph, status)["/n"]
    assert (rec.state, rec.retried, len(rec.history)) == (State.QUEUED, 1, 1)
    later = reconcile(graph, pipeline_of(root, status), jobs, T0 + 8, callbacks=table)
    assert later.create == ["/n"]  # created again (AlreadyExists is fine), not retried again
    assert recorded_states(graph, merged(status, later.status or {}))["/n"].retried == 1
    # The second attempt's Job fails too: out of retries, the pipeline fails.
    second = job("/n", failed="BackoffLimitExceeded")
    second["metadata"]["annotations"][cbs.ATTEMPT_ANNOTATION] = "2"
    second["metadata"]["uid"] = "uid-2"
    end = reconcile(graph, pipeline_of(root, status), {"/n": second}, T0 + 9, callbacks=table)
    final = recorded_states(graph, merged(status, end.status or {}))["/n"]
    assert (final.state, final.retried, final.attempts) == (State.ERROR, 1, 2)
    assert end.finished


def test_a_later_attempts_job_found_after_a_restart_is_adopted() -> None:
    root = flaky_tree()
    graph = Graph.from_tree(root)
    table = cbs.Table.of(root)
    status = merged({}, reconcile(graph, pipeline_of(root), {}, T0, callbacks=table).status or {})
    second = job("/n", running=True)
    second["metadata"]["annotations"][cbs.ATTEMPT_ANNOTATION] = "2"
    out = reconcile(graph, pipeline_of(root, status), {"/n": second}, T0 + 6, callbacks=table)
    rec = recorded_states(graph, merged(status, out.status or {}))["/n"]
    assert (rec.state, rec.retried) == (State.RUNNING, 1)
    assert out.create == []


def test_notifications_are_recorded_in_the_status_until_sent() -> None:
    root = co.Serial()
    root["n"] = co.Exec("true")
    root.on_done(co.callback.slack_status("#c"))
    graph = Graph.from_tree(root)
    table = cbs.Table.of(root)
    status = merged({}, reconcile(graph, pipeline_of(root), {}, T0, callbacks=table).status or {})
    assert cbs.NOTIFY_KEY not in status
    done = reconcile(
        graph, pipeline_of(root, status), {"/n": job("/n", done=True)}, T0 + 6, callbacks=table
    )
    pending = cbs.unsent(status, done.status)
    (notice,) = [cbs.Notice.from_dict(v) for v in pending.values()]
    assert (notice.path, notice.state, notice.kind) == ("/", "done", "slack_status")
    status = merged(status, done.status or {})
    # Carried by every later reconciliation until the sender removes it.
    again = reconcile(
        graph, pipeline_of(root, status), {"/n": job("/n", done=True)}, T0 + 7, callbacks=table
    )
    assert cbs.unsent(status, again.status) == pending
    sent = merged(status, {cbs.NOTIFY_KEY: {k: None for k in pending}})
    assert cbs.unsent(sent, None) == {}


def test_out_of_memory_is_read_from_the_backends_signal() -> None:
    killed = NodeState(State.ERROR, 1, exit_code=137, reason="failed")
    assert cbs.is_oom(killed.with_(reason="failed: OOMKilled (exit code 137)"), "")
    assert cbs.is_oom(killed, "OOMKilled (exit code 137)")  # a pod's terminated reason
    assert not cbs.is_oom(killed, "exit code 137")  # a pod killed otherwise
    assert cbs.is_oom(killed, None)  # process mode: an exit by SIGKILL, a best effort
    assert cbs.is_oom(killed.with_(exit_code=-9), None)
    assert not cbs.is_oom(killed.with_(exit_code=1), None)
