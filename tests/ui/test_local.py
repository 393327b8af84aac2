"""``k8sco ui`` over local runs: the list, a tree and its states, a node's detail and log,
live updates pushed while a run goes on, and the controls: rerun and stop for a run in
progress, delete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ui.helpers import (
    K8SCO,
    REPO,
    Events,
    base,
    finished_run,
    get,
    get_json,
    post,
    start_run,
    ui_server,
)


def test_the_page_and_its_assets_load_nothing_from_elsewhere(tmp_path: Path) -> None:
    with ui_server(tmp_path) as srv:
        status, headers, body = get(base(srv) + "/")
        assert status == 200
        csp = headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        page = body.decode()
        assert srv.settings.control_token in page
        for name in ("app.js", "app.css"):
            status, headers, asset = get(f"{base(srv)}/static/{name}")
            assert status == 200 and asset
            assert b"//cdn" not in asset and b"@import" not in asset
        assert 'src="/static/app.js"' in page and "<script>" not in page
        status, _, _ = get(base(srv) + "/static/../server.py")
        assert status == 404


def test_the_list_shows_a_finished_local_run(tmp_path: Path) -> None:
    run_id = finished_run(tmp_path)
    with ui_server(tmp_path) as srv:
        events = Events(base(srv) + "/api/events/list")
        data = events.until("list")
        events.close()
    [row] = data["pipelines"]
    assert row["ref"] == f"local:{run_id}"
    assert row["name"] == "pipe.py:main"
    assert row["phase"] == "error"  # one node failed
    assert row["progress"] == "3/3"  # finished, as a Pipeline's status counts them
    assert row["where"] == "local"


def test_the_tree_its_states_and_a_nodes_detail_and_log(tmp_path: Path) -> None:
    run_id = finished_run(tmp_path)
    ref = f"local:{run_id}"
    with ui_server(tmp_path) as srv:
        events = Events(f"{base(srv)}/api/events/tree?p={ref}")
        tree = events.until("tree")
        states = events.until("states")
        events.close()
        assert tree["paths"] == ["/", "/work", "/work/report", "/work/fails", "/work/waits"]
        assert tree["kinds"] == "SPEEE"
        assert tree["parents"] == [-1, 0, 1, 1, 1]
        assert "jobs" not in tree
        assert states["states"] == "eedd"[:2] + "ded"
        fails = tree["paths"].index("/work/fails")
        assert [fails, "exit code 3"] in states["reasons"]
        assert {t[0] for t in states["times"]} == {2, 3, 4}
        assert states["live"] is False

        node = get_json(f"{base(srv)}/api/node?p={ref}&path=/work/fails")
        assert node["command"] == "echo broken >&2; exit 3"
        assert node["exit_code"] == 3 and node["attempts"] == 1 and node["retries"] == 0
        params = {p["name"]: (p["value"], p["from"]) for p in node["params"]}
        assert params["env.STAGE"] == ("ci", "/")
        assert params["env.LEVEL"] == ("2", "/work")
        assert params["cpu"] == (1, "default")
        root = get_json(f"{base(srv)}/api/node?p={ref}&path=/")
        assert root["doc"] == "# Demo\nThe **whole** pipeline"
        assert root["kind"] == "Serial"

        log = Events(f"{base(srv)}/api/events/log?p={ref}&path=/work/report")
        text = ""
        while True:
            name, data = log.next()
            if name == "end":
                break
            text += data["text"]
        log.close()
        assert text == "plain\n<ConductoMarkdown>\n# Result\n*ok* <b>x</b>\n</ConductoMarkdown>\n"


def test_unknown_pipelines_and_nodes_are_refused_in_one_line(tmp_path: Path) -> None:
    run_id = finished_run(tmp_path)
    with ui_server(tmp_path) as srv:
        status, _, body = get(f"{base(srv)}/api/node?p=local:{run_id}&path=/nope")
        assert status == 400 and b"has no node '/nope'" in body
        status, _, body = get(f"{base(srv)}/api/events/tree?p=local:20990101-000000-abcd")
        assert status == 400 and b"no local run" in body
        status, _, body = get(f"{base(srv)}/api/events/tree?p=kube:default/x")
        assert status == 400 and b"no pipeline 'kube:default/x' here" in body
        status, _, body = get(f"{base(srv)}/api/events/log?p=local:{run_id}&path=/work")
        assert status == 400 and b"not an Exec node" in body


@pytest.mark.slow
def test_states_and_the_log_are_pushed_while_the_run_goes_on(tmp_path: Path) -> None:
    proc = start_run(tmp_path)
    try:
        runs = tmp_path / ".k8sco" / "runs"
        deadline = time.monotonic() + 60
        while not (runs / "latest").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        ref = "local:" + os.readlink(runs / "latest")
        with ui_server(tmp_path) as srv:
            events = Events(f"{base(srv)}/api/events/tree?p={ref}")
            events.until("tree")
            running = events.until("states", lambda s: s["states"][4] == "r")
            assert running["live"] is True
            log = Events(f"{base(srv)}/api/events/log?p={ref}&path=/work/waits")
            assert log.until("log")["text"] == "waiting\n"
            (tmp_path / "go").touch()
            done = events.until("states", lambda s: s["states"][4] == "d")
            assert done["states"][0] == "e"
            rest = ""
            while True:
                name, data = log.next()
                if name == "end":
                    break
                rest += data["text"]
            assert rest == "released\n"
            # The last write of states.json may be the one that recorded /work/waits done.
            final = done if not done["live"] else events.until("states", lambda s: not s["live"])
            assert final["finished"] is not None
            events.close()
            log.close()
        assert proc.wait(timeout=60) == 1
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_rerun_stop_and_delete_a_local_run(tmp_path: Path) -> None:
    proc = start_run(tmp_path)
    try:
        runs = tmp_path / ".k8sco" / "runs"
        deadline = time.monotonic() + 60
        while not (runs / "latest").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        ref = "local:" + os.readlink(runs / "latest")
        with ui_server(tmp_path) as srv:
            events = Events(f"{base(srv)}/api/events/tree?p={ref}")
            events.until("states", lambda s: s["states"][4] == "r")
            token = srv.settings.control_token
            run_id = ref.partition(":")[2]
            log = runs / run_id / "logs" / "work.fails.log"
            assert log.read_text() == "broken\n"
            status, body = post(
                base(srv) + "/api/control",
                {"p": ref, "action": "rerun", "path": "/work/nope"},
                {"X-K8sco-Token": token},
            )
            assert status == 400 and f"run {run_id} has no node '/work/nope'" in body["error"]
            status, body = post(
                base(srv) + "/api/control",
                {"p": ref, "action": "rerun", "path": "/work/fails"},
                {"X-K8sco-Token": token},
            )
            assert status == 200, body
            assert body["message"] == (
                f"run {run_id}: rerunning failed and killed nodes under /work/fails (1)"
            )
            deadline = time.monotonic() + 60
            while log.read_text() != "broken\nbroken\n":  # it ran again (and failed again)
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
            status, body = post(
                base(srv) + "/api/control", {"p": ref, "action": "stop"}, {"X-K8sco-Token": token}
            )
            assert status == 200, body
            killed = events.until("states", lambda s: s["states"][4] == "k")
            assert [4, "interrupted"] in killed["reasons"]
            events.close()
        assert proc.wait(timeout=60) == 130  # as Ctrl-C in its terminal
        with ui_server(tmp_path) as srv:
            status, body = post(
                base(srv) + "/api/control",
                {"p": ref, "action": "stop"},
                {"X-K8sco-Token": srv.settings.control_token},
            )
            assert status == 400 and "has finished" in body["error"]
            status, body = post(
                base(srv) + "/api/control",
                {"p": ref, "action": "rerun", "path": "/work/fails"},
                {"X-K8sco-Token": srv.settings.control_token},
            )
            assert status == 400 and "has finished" in body["error"]
            assert log.read_text() == "broken\nbroken\n"
            status, body = post(
                base(srv) + "/api/control",
                {"p": ref, "action": "delete"},
                {"X-K8sco-Token": srv.settings.control_token},
            )
            assert status == 200 and body["message"] == f"run {run_id} deleted"
            assert not (runs / run_id).exists()
            events = Events(base(srv) + "/api/events/list")
            assert events.until("list")["pipelines"] == []
            events.close()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()


def test_the_command_prints_the_url_and_serves_it(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*K8SCO, "ui", "--port", "0", "--no-cluster"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        lines = []
        while True:
            line = proc.stdout.readline().decode()
            assert line, f"k8sco ui ended: {lines} {proc.stderr.read() if proc.stderr else ''!r}"
            lines.append(line)
            if line.startswith("open "):
                break
        url = line.split()[1]
        assert url.startswith("http://127.0.0.1:")
        status, _, body = get(url)
        assert status == 200 and b"k8sco-token" in body
        assert f"local runs of {tmp_path}" in lines[0]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)  # and closes its pipes


def test_stop_never_signals_a_process_that_took_a_dead_runners_pid(tmp_path: Path) -> None:
    run_id = finished_run(tmp_path)
    run = tmp_path / ".k8sco" / "runs" / run_id
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "started": time.time() - 100}))
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        # As if the runner had been killed with SIGKILL mid-run and its pid reused since.
        states = json.loads((run / "states.json").read_text())
        states.update(finished=None, runner_pid=stranger.pid)
        (run / "states.json").write_text(json.dumps(states))
        with ui_server(tmp_path) as srv:
            status, body = post(
                base(srv) + "/api/control",
                {"p": f"local:{run_id}", "action": "stop"},
                {"X-K8sco-Token": srv.settings.control_token},
            )
        assert status == 400 and "its runner is gone" in body["error"]
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_a_huge_log_is_sent_from_its_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from k8sco.ui import sources

    run_id = finished_run(tmp_path)
    log = tmp_path / ".k8sco" / "runs" / run_id / "logs" / "work.report.log"
    log.write_text("".join(f"line {i}\n" for i in range(1000)))
    monkeypatch.setattr(sources, "LOG_TAIL", 100)
    with ui_server(tmp_path) as srv:
        events = Events(f"{base(srv)}/api/events/log?p=local:{run_id}&path=/work/report")
        note = events.until("log")["text"]
        rest = events.until("log")["text"]
        assert events.next()[0] == "end"
        events.close()
    size = log.stat().st_size
    assert (
        note
        == f"[k8sco: the first {size - 100} bytes are left out; k8sco logs /work/report has them]\n"
    )
    assert rest.startswith("line ") and rest.endswith("line 999\n") and len(rest) < 100
