"""Callbacks on the local runner: retries are new attempts (K8SCO_ATTEMPT tells the node
which), skips let the Serial go on, an exit by SIGKILL counts as out of memory (process
mode's best effort), and notifications reach a local server standing in for Slack."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import k8sco as co
from k8sco.engine import State
from k8sco.local import runner
from k8sco.local.progress import PlainProgress

FLAKY = 'echo "attempt ${K8SCO_ATTEMPT:-1}"; test "${K8SCO_ATTEMPT:-1}" -ge 3'
GIB = 2**30


def run(root: co.Node, tmp_path: Path) -> runner.RunResult:
    spec = runner.RunSpec(root=root, code_root=str(tmp_path), meta={"file": "test.py"})
    return runner.run(
        spec, PlainProgress(lambda _: None), runs_dir=tmp_path / ".k8sco" / "runs", cpus=4
    )


def test_retry_runs_new_attempts_until_one_succeeds(tmp_path: Path) -> None:
    root = co.Serial()
    root["flaky"] = co.Exec(FLAKY)
    root["flaky"].on_error(co.callback.retry(3))
    root["after"] = co.Exec("echo after")
    result = run(root, tmp_path)
    assert result.exit_code == 0
    rec = result.recorded["/flaky"]
    assert (rec.state, rec.retried, rec.attempts) == (State.DONE, 2, 3)
    assert [h["s"] for h in rec.history] == ["error", "error"]
    log = result.run.log_path("/flaky").read_text()
    assert "attempt 1" in log and "attempt 2" in log and "attempt 3" in log
    # Every attempt shows in `k8sco status`; the record is in the run directory.
    states = json.loads((result.run.path / "states.json").read_text())["nodes"]["/flaky"]
    assert states["retried"] == 2 and len(states["history"]) == 2
    status = subprocess.run(
        [sys.executable, "-m", "k8sco", "status", "--run", result.run.run_id],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert "3 attempts" in status.stdout


def test_without_the_callback_the_node_fails_once(tmp_path: Path) -> None:
    root = co.Serial()
    root["flaky"] = co.Exec(FLAKY)
    result = run(root, tmp_path)
    assert result.exit_code == 1
    assert result.recorded["/flaky"].attempts == 1


def test_retry_then_skip_lets_the_serial_go_on(tmp_path: Path) -> None:
    root = co.Serial()
    root["broken"] = co.Exec("exit 4")
    root["broken"].on_error(co.callback.retry_then_skip(1))
    root["after"] = co.Exec("echo after")
    result = run(root, tmp_path)
    assert result.exit_code == 0
    broken = result.recorded["/broken"]
    assert (broken.state, broken.attempts) == (State.SKIPPED, 2)
    assert result.recorded["/after"].state is State.DONE


def test_an_exit_by_sigkill_is_retried_with_twice_the_memory(tmp_path: Path) -> None:
    root = co.Serial()
    root["hog"] = co.Exec('test "${K8SCO_ATTEMPT:-1}" -ge 2 || kill -9 $$', mem=1)
    root["hog"].on_error(co.callback.retry_with_double_mem(2))
    result = run(root, tmp_path)
    assert result.exit_code == 0
    rec = result.recorded["/hog"]
    assert (rec.state, rec.retried, rec.mem) == (State.DONE, 1, 2 * GIB)
    assert rec.history[0]["oom"] is True


def test_inherited_callbacks_apply_below(tmp_path: Path) -> None:
    with co.Parallel() as root:
        co.Exec(FLAKY, name="a")
        co.Exec(FLAKY, name="b")
    root.on_error(co.callback.retry(2, inherited=True))
    result = run(root, tmp_path)
    assert result.exit_code == 0
    assert [result.recorded[p].retried for p in ("/a", "/b")] == [2, 2]


class Slack:
    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.posts.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "11")
                self.end_headers()
                self.wfile.write(b'{"ok":true}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/chat.postMessage"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Slack]:
    s = Slack()
    monkeypatch.setenv("K8SCO_SLACK_URL", s.url)
    monkeypatch.setenv("K8SCO_SLACK_TOKEN", "token")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    yield s
    s.server.shutdown()
    s.server.server_close()


def test_notifications_are_sent_for_the_states_asked(tmp_path: Path, slack: Slack) -> None:
    root = co.Serial()
    root["flaky"] = co.Exec(FLAKY)
    root["flaky"].on_error(co.callback.retry(2))
    root["flaky"].on_running(co.callback.slack_status("#runs"))
    root.on_done(co.callback.slack_status("#done", "all good"))
    result = run(root, tmp_path)
    assert result.exit_code == 0
    texts = [(body["channel"], body["text"]) for _, body in slack.posts]
    run_id = result.run.run_id
    assert texts == [
        ("#runs", f"k8sco {run_id} /flaky: running"),
        ("#runs", f"k8sco {run_id} /flaky: running (attempt 2)"),
        ("#runs", f"k8sco {run_id} /flaky: running (attempt 3)"),
        ("#done", f"all good\nk8sco {run_id} /: done"),
    ]
    keys = [headers["Idempotency-Key"] for headers, _ in slack.posts]
    assert len(set(keys)) == 4


def test_a_failing_notification_never_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("K8SCO_SLACK_URL", "http://127.0.0.1:9/nothing-listens-here")
    monkeypatch.setenv("K8SCO_SLACK_TOKEN", "token")
    root = co.Serial()
    root["a"] = co.Exec("true")
    root.on_done(co.callback.slack_status("#done"))
    result = run(root, tmp_path)
    assert result.exit_code == 0


def test_retries_count_within_each_attempt_as_a_jobs_backoff_limit(tmp_path: Path) -> None:
    root = co.Serial()
    root["n"] = co.Exec("exit 1", retries=1)
    root["n"].on_error(co.callback.retry(1))
    result = run(root, tmp_path)
    rec = result.recorded["/n"]
    assert (rec.state, rec.retried, rec.attempts) == (State.ERROR, 1, 4)  # 2 attempts of 2
