"""Sending the notifications that callbacks ask for (``co.callback.email``, ``slack_status``,
``github_status``, ``github_pipeline_status``).

The decision of what to send is :func:`k8sco.reconcile.callbacks.notices` (pure); this
module does the I/O, with the standard library only (urllib, smtplib). Settings and
credentials are environment variables, read once when a :class:`Notifier` is made:

=========================  ===================================================================
``K8SCO_SLACK_TOKEN``      a bot token for Slack's ``chat.postMessage``
``K8SCO_SLACK_URL``        default ``https://slack.com/api/chat.postMessage``
``K8SCO_GITHUB_TOKEN``     a token that may set commit statuses
``K8SCO_GITHUB_API``       default ``https://api.github.com`` (GitHub Enterprise: its API URL)
``K8SCO_SMTP_HOST``        the SMTP server for ``email`` (``K8SCO_SMTP_PORT``, default 25;
                           ``K8SCO_SMTP_STARTTLS=1``; ``K8SCO_SMTP_USER``/``_PASSWORD``;
                           ``K8SCO_SMTP_FROM``, default ``k8sco@localhost``)
=========================  ===================================================================

Locally they may also sit in ``$XDG_CONFIG_HOME/k8sco/notify.json`` (a JSON object of those
names; owner-only, as the secrets file; the environment wins). On a cluster the controller
takes them from the Secret ``k8sco-notify`` in its namespace, mounted as files (optional)
into the folder ``K8SCO_NOTIFY_DIR`` names, one file per setting: a Secret as files, not as
environment variables, is not copied into every child process's environment and follows a
rotated Secret (the kubelet refreshes the files; env would need a restart).

A notification that cannot be sent (no credentials, a refusal, no answer within
``TIMEOUT`` seconds) is logged and dropped: it never fails a node or the pipeline. Each one
carries its idempotency key (``Idempotency-Key`` header; an e-mail's ``Message-ID``; in a
GitHub status, the same state is simply set again), since a controller restarted after a
crash sends again what it may have sent already.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import smtplib
import stat
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from k8sco.engine import NodeState, State
from k8sco.reconcile.callbacks import NOTIFY_KEY, Notice, Table, notices, unsent

log = logging.getLogger("k8sco.notify")

TIMEOUT = 10.0  # seconds for one notification's connection and answer
FILE_NAME = "notify.json"
SECRET_NAME = "k8sco-notify"  # the controller's Secret (manifests/, charts/k8sco)
SETTINGS = (
    "K8SCO_SLACK_TOKEN",
    "K8SCO_SLACK_URL",
    "K8SCO_GITHUB_TOKEN",
    "K8SCO_GITHUB_API",
    "K8SCO_SMTP_HOST",
    "K8SCO_SMTP_PORT",
    "K8SCO_SMTP_STARTTLS",
    "K8SCO_SMTP_USER",
    "K8SCO_SMTP_PASSWORD",
    "K8SCO_SMTP_FROM",
)

# A commit status's states (GitHub REST: POST /repos/{owner}/{repo}/statuses/{sha}).
_GITHUB_STATE = {
    "queued": "pending",
    "running": "pending",
    "pending": "pending",
    "done": "success",
    "skipped": "success",
    "error": "failure",
    "killed": "error",
}


def settings_file(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "k8sco" / FILE_NAME


def load_settings(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The notification settings: the local file's, overridden by the environment's."""
    env = os.environ if environ is None else environ
    out: dict[str, str] = {}
    file = settings_file(env)
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        fd = -1
    if fd >= 0:
        with os.fdopen(fd, "r", encoding="utf-8") as f:
            mode = os.fstat(f.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                log.warning(
                    "ignoring %s: it is open to other users (mode %04o); chmod 600 it",
                    file,
                    stat.S_IMODE(mode),
                )
            else:
                try:
                    data = json.load(f)
                except ValueError as exc:
                    log.warning("ignoring %s: not JSON (%s)", file, exc)
                    data = {}
                if isinstance(data, dict):
                    out.update({k: str(v) for k, v in data.items() if k in SETTINGS})
    folder = env.get("K8SCO_NOTIFY_DIR")
    if folder:
        for name in SETTINGS:
            try:
                value = (Path(folder) / name).read_text(encoding="utf-8").strip()
            except OSError:
                continue  # not in the Secret (or no Secret: the volume is optional)
            if value:
                out[name] = value
    out.update({k: env[k] for k in SETTINGS if env.get(k)})
    return out


Post = Callable[[str, bytes, Mapping[str, str]], bytes]


def _post(url: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
        data: bytes = answer.read()
        return data


@dataclass
class Notifier:
    """Sends :class:`Notice` values; ``pipeline`` names the pipeline in every message."""

    pipeline: str
    settings: Mapping[str, str]
    post: Post = _post

    @classmethod
    def from_env(cls, pipeline: str, environ: Mapping[str, str] | None = None) -> Notifier:
        return cls(pipeline, load_settings(environ))

    def send(self, notice: Notice) -> bool:
        """Send one notification; False (and a log line) when it could not be sent."""
        try:
            getattr(self, f"_{notice.kind}")(notice)
        except Exception as exc:  # a notification never fails a pipeline
            log.warning(
                "%s %s: %s notification (%s) not sent: %s",
                self.pipeline,
                notice.path,
                notice.kind,
                notice.state,
                exc,
            )
            return False
        return True

    def text(self, notice: Notice) -> str:
        attempt = f" (attempt {notice.attempt})" if notice.attempt > 1 else ""
        failed = notice.state in ("error", "killed", "skipped")
        reason = f": {notice.reason}" if notice.reason and failed else ""
        return f"k8sco {self.pipeline} {notice.path}: {notice.state}{attempt}{reason}"

    def _need(self, name: str) -> str:
        value = self.settings.get(name)
        if not value:
            raise ValueError(f"{name} is not set (the environment, or the k8sco-notify Secret)")
        return value

    def _json(self, url: str, payload: Mapping[str, Any], token: str, notice: Notice) -> bytes:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": notice.key,
            "User-Agent": "k8sco",
        }
        try:
            return self.post(url, json.dumps(payload).encode(), headers)
        except urllib.error.HTTPError as exc:
            raise ValueError(f"{url} answered HTTP {exc.code} {exc.reason}") from None

    def _slack_status(self, notice: Notice) -> None:
        args = notice.args
        text = self.text(notice)
        if args.get("message"):
            text = f"{args['message']}\n{text}"
        url = self.settings.get("K8SCO_SLACK_URL") or "https://slack.com/api/chat.postMessage"
        payload = {
            "channel": args["recipient"],
            "text": text,
            "metadata": {"event_type": "k8sco_node", "event_payload": {"key": notice.key}},
        }
        answer = self._json(url, payload, self._need("K8SCO_SLACK_TOKEN"), notice)
        try:
            data = json.loads(answer or b"{}")
        except ValueError:
            data = {}
        if isinstance(data, dict) and data.get("ok") is False:  # Slack answers 200 anyway
            raise ValueError(f"Slack refused it: {data.get('error')}")

    def _github_status(self, notice: Notice) -> None:
        self._github(notice, context=f"k8sco/{self.pipeline}{notice.path}")

    def _github_pipeline_status(self, notice: Notice) -> None:
        self._github(notice, context=f"k8sco/{self.pipeline}")

    def _github(self, notice: Notice, context: str) -> None:
        repo = _repository(str(notice.args["url"]))
        api = (self.settings.get("K8SCO_GITHUB_API") or "https://api.github.com").rstrip("/")
        sha = urllib.parse.quote(str(notice.args["sha"]), safe="")
        url = f"{api}/repos/{repo}/statuses/{sha}"
        payload = {
            "state": _GITHUB_STATE.get(notice.state, "error"),
            "context": context,
            "description": self.text(notice)[:140],  # GitHub's limit
        }
        self._json(url, payload, self._need("K8SCO_GITHUB_TOKEN"), notice)

    def _email(self, notice: Notice) -> None:
        host = self._need("K8SCO_SMTP_HOST")
        port_text = self.settings.get("K8SCO_SMTP_PORT") or "25"
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"K8SCO_SMTP_PORT={port_text!r}: give a port number")
        starttls = (self.settings.get("K8SCO_SMTP_STARTTLS") or "").strip().lower()
        if starttls not in ("", "0", "false", "no", "off", "1", "true", "yes", "on"):
            # Not a guess: a misspelt "True" read as off would send the password in clear.
            raise ValueError(f"K8SCO_SMTP_STARTTLS={starttls!r}: give 1 or 0")
        message = EmailMessage()
        message["Subject"] = self.text(notice)
        message["From"] = self.settings.get("K8SCO_SMTP_FROM") or "k8sco@localhost"
        to = list(notice.args.get("to") or [])
        cc = list(notice.args.get("cc") or [])
        if to:
            message["To"] = ", ".join(to)
        if cc:
            message["Cc"] = ", ".join(cc)
        message["Message-ID"] = f"<{notice.key}@k8sco>"  # receivers drop a resent duplicate
        message["X-K8sco-Idempotency-Key"] = notice.key
        message.set_content(
            f"{self.text(notice)}\n\npipeline: {self.pipeline}\nnode: {notice.path}\n"
            f"state: {notice.state}\nattempt: {notice.attempt}\n"
        )
        with smtplib.SMTP(host, int(port_text), timeout=TIMEOUT) as smtp:
            if starttls in ("1", "true", "yes", "on"):
                smtp.starttls()
            user = self.settings.get("K8SCO_SMTP_USER")
            if user:
                smtp.login(user, self.settings.get("K8SCO_SMTP_PASSWORD") or "")
            smtp.send_message(message, to_addrs=to + cc)


class Outbox:
    """Notifications sent from a background thread, in order, so that a slow receiver
    never holds up a run (the local runner's; the controller sends its own: kube/)."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self.sent: list[Notice] = []  # what was sent, for the runner's summary and tests
        self._queue: queue.Queue[Notice | None] = queue.Queue()
        self._thread = threading.Thread(target=self._drain, name="k8sco-notify", daemon=True)
        self._thread.start()

    def put(self, notice: Notice) -> None:
        self._queue.put(notice)

    def close(self, wait: float = 3 * TIMEOUT) -> None:
        """Send what is queued (for at most ``wait`` seconds), then stop."""
        self._queue.put(None)
        self._thread.join(wait)

    def _drain(self) -> None:
        while True:
            notice = self._queue.get()
            if notice is None:
                return
            if self.notifier.send(notice):
                self.sent.append(notice)


class Watcher:
    """Turns a run's state changes into notifications (k8sco.reconcile.callbacks.notices):
    the local runner tells it every change; it keeps what it needs, the states of the nodes
    whose callbacks notify."""

    def __init__(self, table: Table, pipeline_id: str, outbox: Callable[[], Outbox]) -> None:
        self.table = table
        self.pipeline_id = pipeline_id
        self.paths = table.notifying()
        self._outbox_factory = outbox
        self.outbox: Outbox | None = None
        self._states: dict[str, State] = {}

    def retable(self, table: Table) -> None:
        self.table, self.paths = table, table.notifying()

    def changed(self, states: Mapping[str, State], path: str, rec: NodeState) -> None:
        """``states``: the nodes whose state changed; ``rec``: the record of ``path``."""
        for p in self.paths.intersection(states) if self.paths else ():
            after = states[p]
            before = self._states.get(p, State.PENDING)
            self._states[p] = after
            for notice in notices(
                self.table, self.pipeline_id, p, before, after, rec if p == path else None
            ):
                if self.outbox is None:
                    self.outbox = self._outbox_factory()
                self.outbox.put(notice)

    def close(self) -> None:
        if self.outbox is not None:
            self.outbox.close()


class Deliveries:
    """The controller's sender. A reconciliation records each notification it decides in
    ``status.notify`` (in the same write as the state change: k8sco.reconcile.decide);
    once that write has landed they are sent here, then removed with a merge patch. A
    controller killed in between finds them in the status and sends them again: at least
    once, with the same key. Keys sent by this controller are not sent twice by it."""

    def __init__(self, settings: Mapping[str, str] | None = None, post: Post = _post) -> None:
        self.settings = load_settings() if settings is None else settings
        self.post = post
        self._sent: dict[Any, set[str]] = {}

    def deliver(
        self,
        pipeline: str,
        key: Any,
        status: Mapping[str, Any],
        patch: Mapping[str, Any] | None,
        remove: Callable[[dict[str, Any]], bool],
    ) -> int:
        """Send what ``status`` (as read) and ``patch`` (as written) leave in
        ``status.notify``; ``remove`` writes the merge patch that drops them. How many
        were sent now."""
        pending = unsent(status, patch)
        if not pending:
            self._sent.pop(key, None)
            return 0
        sent = self._sent.setdefault(key, set())
        notifier = Notifier(pipeline, self.settings, self.post)
        count = 0
        for note_key, data in pending.items():
            if note_key in sent:
                continue
            try:
                notice = Notice.from_dict(data)
            except (KeyError, TypeError, ValueError):
                log.warning("%s: dropping an unreadable notification %s", pipeline, note_key)
            else:
                notifier.send(notice)  # a failure is logged there and not retried
                count += 1
            sent.add(note_key)
        remove({NOTIFY_KEY: {k: None for k in pending}})
        return count

    def forget(self, key: Any) -> None:
        self._sent.pop(key, None)


def _repository(url: str) -> str:
    """``owner/repo`` from ``https://github.com/owner/repo(.git)``, an API URL or
    ``owner/repo`` itself."""
    parsed = urllib.parse.urlparse(url)
    path = parsed.path if parsed.scheme else url
    parts = [p for p in path.strip("/").split("/") if p]
    if parts[:1] == ["repos"]:
        parts = parts[1:]
    if len(parts) < 2:
        raise ValueError(f"github_status: {url!r} names no repository (owner/repo)")
    repo = parts[1][:-4] if parts[1].endswith(".git") else parts[1]
    return f"{parts[0]}/{repo}"


__all__ = [
    "SECRET_NAME",
    "SETTINGS",
    "Deliveries",
    "Notifier",
    "Outbox",
    "Watcher",
    "load_settings",
]
