"""Notifications (k8sco.notify) against local servers standing in for Slack, GitHub and an
SMTP server: what they receive, with the idempotency key; a failure is logged, not raised."""

from __future__ import annotations

import json
import logging
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from k8sco.notify import Deliveries, Notifier, load_settings
from k8sco.reconcile.callbacks import NOTIFY_KEY, Notice


class Receiver:
    """An HTTP server that records each POST: (path, headers, JSON body)."""

    def __init__(self, answer: dict[str, Any] | None = None, status: int = 200) -> None:
        self.posts: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts.append((self.path, dict(self.headers), json.loads(body)))
                data = json.dumps(answer or {"ok": True}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def notice(kind: str, **args: Any) -> Notice:
    return Notice("k" * 32, kind, args, "/build/test", "error", 2, "exit code 1")


def test_slack_gets_the_message_with_its_key(receiver: Receiver) -> None:
    settings = {"K8SCO_SLACK_URL": receiver.url + "/api/chat.postMessage", "K8SCO_SLACK_TOKEN": "t"}
    sent = Notifier("demo", settings).send(notice("slack_status", recipient="#ci", message="hi"))
    assert sent
    ((path, headers, body),) = receiver.posts
    assert path == "/api/chat.postMessage"
    assert headers["Authorization"] == "Bearer t"
    assert headers["Idempotency-Key"] == "k" * 32
    assert body["channel"] == "#ci"
    assert body["text"] == "hi\nk8sco demo /build/test: error (attempt 2): exit code 1"


def test_github_gets_a_commit_status(receiver: Receiver) -> None:
    settings = {"K8SCO_GITHUB_API": receiver.url, "K8SCO_GITHUB_TOKEN": "g"}
    n = notice("github_status", url="https://github.com/owner/repo.git", sha="abc123")
    assert Notifier("demo", settings).send(n)
    ((path, _, body),) = receiver.posts
    assert path == "/repos/owner/repo/statuses/abc123"
    assert body["state"] == "failure"
    assert body["context"] == "k8sco/demo/build/test"


def test_a_refusal_is_logged_and_reported_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    refusing = Receiver({"ok": False, "error": "channel_not_found"})
    try:
        settings = {"K8SCO_SLACK_URL": refusing.url, "K8SCO_SLACK_TOKEN": "t"}
        with caplog.at_level(logging.WARNING, "k8sco.notify"):
            assert not Notifier("demo", settings).send(notice("slack_status", recipient="#x"))
    finally:
        refusing.close()
    assert "channel_not_found" in caplog.text
    with caplog.at_level(logging.WARNING, "k8sco.notify"):
        assert not Notifier("demo", {}).send(notice("slack_status", recipient="#x"))
    assert "K8SCO_SLACK_TOKEN is not set" in caplog.text


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) to take one message."""

    messages: ClassVar[list[tuple[list[str], str]]] = []

    def handle(self) -> None:
        def say(line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")

        say("220 test")
        rcpt: list[str] = []
        while True:
            line = self.rfile.readline().decode().strip()
            verb = line.split(" ")[0].upper()
            if verb in ("EHLO", "HELO"):
                say("250 test")
            elif verb == "MAIL":
                say("250 ok")
            elif verb == "RCPT":
                rcpt.append(line.split(":", 1)[1].strip("<> "))
                say("250 ok")
            elif verb == "DATA":
                say("354 go on")
                lines = []
                while (data := self.rfile.readline().decode()) != ".\r\n":
                    lines.append(data)
                _Smtp.messages.append((rcpt, "".join(lines)))
                say("250 queued")
            elif verb == "QUIT" or not line:
                say("221 bye")
                return
            else:
                say("250 ok")


def test_email_goes_through_smtp_with_the_key_as_message_id() -> None:
    _Smtp.messages = []
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings = {
            "K8SCO_SMTP_HOST": "127.0.0.1",
            "K8SCO_SMTP_PORT": str(server.server_address[1]),
        }
        n = notice("email", to=["a@example.com"], cc=["b@example.com"])
        assert Notifier("demo", settings).send(n)
    finally:
        server.shutdown()
        server.server_close()
    ((rcpt, text),) = _Smtp.messages
    assert rcpt == ["a@example.com", "b@example.com"]
    assert f"Message-ID: <{'k' * 32}@k8sco>" in text
    assert "Subject: k8sco demo /build/test: error (attempt 2): exit code 1" in text


def test_settings_come_from_an_owner_only_file_and_the_environment(tmp_path: Any) -> None:
    folder = tmp_path / "k8sco"
    folder.mkdir()
    file = folder / "notify.json"
    file.write_text(json.dumps({"K8SCO_SLACK_TOKEN": "from-file", "OTHER": "x"}))
    file.chmod(0o600)
    env = {"XDG_CONFIG_HOME": str(tmp_path), "K8SCO_GITHUB_TOKEN": "from-env"}
    assert load_settings(env) == {
        "K8SCO_SLACK_TOKEN": "from-file",
        "K8SCO_GITHUB_TOKEN": "from-env",
    }
    file.chmod(0o644)  # open to others: ignored, as the secrets file would be refused
    assert load_settings(env) == {"K8SCO_GITHUB_TOKEN": "from-env"}


def test_deliveries_send_once_per_controller_and_remove_what_was_sent(receiver: Receiver) -> None:
    settings = {"K8SCO_SLACK_URL": receiver.url, "K8SCO_SLACK_TOKEN": "t"}
    n = notice("slack_status", recipient="#ci").to_dict()
    removed: list[dict[str, Any]] = []
    deliveries = Deliveries(settings)
    status = {NOTIFY_KEY: {n["key"]: n}}
    assert deliveries.deliver("demo", "k", status, None, lambda p: removed.append(p) or True) == 1
    assert removed == [{NOTIFY_KEY: {n["key"]: None}}]
    # The removal did not land (a conflict): the next reconciliation carries it, not resent.
    assert deliveries.deliver("demo", "k", status, None, lambda p: removed.append(p) or True) == 0
    assert len(receiver.posts) == 1 and len(removed) == 2
    # A restarted controller (a new Deliveries) sends it again: at least once, same key.
    assert Deliveries(settings).deliver("demo", "k", status, None, lambda p: True) == 1
    assert [h["Idempotency-Key"] for _, h, _ in receiver.posts] == [n["key"]] * 2


def test_settings_come_from_the_mounted_secret_and_the_environment_wins(tmp_path: Any) -> None:
    # The controller's Deployment mounts the Secret k8sco-notify as one file per key.
    (tmp_path / "K8SCO_SLACK_TOKEN").write_text("xoxb-from-secret\n")
    (tmp_path / "K8SCO_GITHUB_TOKEN").write_text("from-secret")
    (tmp_path / "UNRELATED").write_text("ignored")
    env = {
        "K8SCO_NOTIFY_DIR": str(tmp_path),
        "K8SCO_GITHUB_TOKEN": "from-env",
        "XDG_CONFIG_HOME": str(tmp_path / "none"),
    }
    assert load_settings(env) == {
        "K8SCO_SLACK_TOKEN": "xoxb-from-secret",
        "K8SCO_GITHUB_TOKEN": "from-env",
    }
    assert load_settings({**env, "K8SCO_NOTIFY_DIR": str(tmp_path / "absent")}) == {
        "K8SCO_GITHUB_TOKEN": "from-env"
    }


@pytest.mark.parametrize(
    ("name", "value", "logged"),
    [
        ("K8SCO_SMTP_PORT", "smtp", "K8SCO_SMTP_PORT='smtp': give a port number"),
        ("K8SCO_SMTP_STARTTLS", "ture", "K8SCO_SMTP_STARTTLS='ture': give 1 or 0"),
    ],
)
def test_a_bad_smtp_setting_is_named_and_nothing_is_sent(
    caplog: pytest.LogCaptureFixture, name: str, value: str, logged: str
) -> None:
    # No server listens: a setting misread (a misspelt STARTTLS read as "off" would send the
    # password in clear) must stop the send before any connection.
    settings = {"K8SCO_SMTP_HOST": "127.0.0.1", "K8SCO_SMTP_PORT": "9", name: value}
    with caplog.at_level(logging.WARNING, "k8sco.notify"):
        assert not Notifier("demo", settings).send(notice("email", to=["a@example.com"]))
    assert logged in caplog.text
