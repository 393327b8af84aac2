"""The UI's HTTP server: the page, a JSON API, server-sent event streams and the controls.

The standard library's ``ThreadingHTTPServer`` is enough here: a handful of routes, one
user (or a team behind ``kubectl port-forward``), a thread per open stream. A framework
would add a dependency to every install of k8sco for nothing the page needs.

Routes::

    GET  /                        the page (the per-server control token in a <meta>)
    GET  /static/<file>           its script and style sheet (k8sco/ui/static/)
    GET  /api/events/list         SSE: ``list`` each time the pipelines or their phases change
    GET  /api/events/tree?p=REF   SSE: ``tree`` (the shape, once), then ``states`` per change
    GET  /api/events/log?p=REF&path=/x   SSE: ``log`` chunks, ``end`` when the node is done
    GET  /api/node?p=REF&path=/x  JSON: one node's detail
    POST /api/control             JSON ``{"p", "action", "path"}``: rerun, stop, delete, and
                                  reset, skip, unskip, modify (``"set"``, ``"command"``)

Cross-site requests: a POST must carry the per-server token (``X-K8sco-Token``, read from the
page, which another site cannot read), a JSON body (not a form a foreign page can submit
without a preflight), and an ``Origin`` equal to this server when it has one. Every request
must name this server in ``Host`` (a DNS-rebinding page names its own host). Bound to
anything but a loopback address, every request must also carry the access token printed at
start (``?token=`` once, then a cookie).
"""

from __future__ import annotations

import hmac
import http.cookies
import ipaddress
import json
import logging
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from k8sco.errors import K8scoError, UsageError
from k8sco.ui import sources, views

log = logging.getLogger("k8sco.ui")

STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
# Nothing from anywhere but this server; no inline script or style; no framing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEARTBEAT = 15.0  # seconds between SSE comments that keep proxies from closing a stream
COOKIE = "k8sco_ui"


@dataclass
class Settings:
    """What ``k8sco ui`` was started with."""

    local: sources.LocalRuns | None
    cluster: sources.ClusterPipelines | None
    read_only: bool = False
    host: str = "127.0.0.1"
    # Required on every request when bound to a non-loopback address (printed at start).
    access_token: str | None = None
    control_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    cluster_error: str | None = None  # why there is no cluster, shown on the page


class UIServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], settings: Settings) -> None:
        super().__init__(address, Handler)
        self.settings = settings
        self.stopping = threading.Event()
        self.index = _index_html(settings)

    def shutdown(self) -> None:
        self.stopping.set()
        super().shutdown()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else str(host)
        if ":" in shown:
            shown = f"[{shown}]"
        url = f"http://{shown}:{port}/"
        if self.settings.access_token:
            url += f"?token={self.settings.access_token}"
        return url


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _index_html(settings: Settings) -> bytes:
    text = resources.files("k8sco.ui").joinpath("static/index.html").read_text("utf-8")
    text = text.replace("{{control_token}}", settings.control_token)
    text = text.replace("{{read_only}}", "true" if settings.read_only else "false")
    return text.encode()


def _static(name: str) -> bytes:
    return resources.files("k8sco.ui").joinpath(f"static/{name}").read_bytes()


class Refused(Exception):
    """A request this server will not serve: its status and a one-line reason."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class Handler(BaseHTTPRequestHandler):
    server: UIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # --- dispatch ---------------------------------------------------------------------

    def do_GET(self) -> None:
        self._serve(self._get)

    def do_POST(self) -> None:
        self._serve(self._post)

    def _serve(self, route: Any) -> None:
        try:
            self._check_host()
            self._check_access()
            route()
        except Refused as exc:
            self._send_json({"error": str(exc)}, exc.status)
        except UsageError as exc:
            self._send_json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
        except K8scoError as exc:
            self._send_json({"error": str(exc)}, HTTPStatus.BAD_GATEWAY)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _get(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/":
            self._send(self.server.index, "text/html; charset=utf-8", self._token_cookie(query))
        elif url.path.startswith("/static/") and url.path[8:] in STATIC:
            name = url.path[8:]
            self._send(_static(name), STATIC[name])
        elif url.path == "/api/node":
            self._send_json(self._node(query))
        elif url.path == "/api/events/list":
            self._stream(self._list_events())
        elif url.path == "/api/events/tree":
            self._stream(self._tree_events(_arg(query, "p")))
        elif url.path == "/api/events/log":
            self._stream(self._log_events(_arg(query, "p"), _arg(query, "path")))
        else:
            raise Refused(HTTPStatus.NOT_FOUND, f"no page {url.path}")

    def _post(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/api/control":
            raise Refused(HTTPStatus.NOT_FOUND, f"no page {url.path}")
        self._check_same_origin()
        body = self._json_body()
        settings = self.server.settings
        if settings.read_only:
            raise Refused(HTTPStatus.FORBIDDEN, "this UI is read-only (started with --read-only)")
        ref, action = str(body.get("p", "")), str(body.get("action", ""))
        path = str(body.get("path") or "/")
        extra = {k: body[k] for k in ("set", "command") if k in body}  # modify's
        message = self._source(ref).control(_ident(ref), action, path, extra)
        log.info("control %s %s %s: %s", action, ref, path, message)
        self._send_json({"message": message})

    # --- guards -----------------------------------------------------------------------

    def _check_host(self) -> None:
        if self.server.settings.access_token:
            return  # reached by any name (a load balancer, a tunnel): the access token guards
        got = (self.headers.get("Host") or "").lower()
        name = got.rpartition(":")[0] if not got.endswith("]") else got
        name = name or got
        host = str(self.server.server_address[0]).lower()
        # The name only, not the port: `kubectl port-forward 9000:8765` reaches the port
        # 8765 of an in-cluster UI as localhost:9000. A DNS-rebinding page names its own host.
        if name not in {host, f"[{host}]", "localhost", "127.0.0.1", "[::1]"}:
            raise Refused(HTTPStatus.FORBIDDEN, f"unexpected Host {got!r} (DNS rebinding?)")

    def _check_access(self) -> None:
        token = self.server.settings.access_token
        if not token:
            return
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        given = query.get("token")
        if given is None:
            cookies = http.cookies.SimpleCookie(self.headers.get("Cookie") or "")
            given = cookies[COOKIE].value if COOKIE in cookies else None
        if given is None or not hmac.compare_digest(given, token):
            raise Refused(
                HTTPStatus.UNAUTHORIZED, "open the URL k8sco ui printed (it carries the token)"
            )

    def _token_cookie(self, query: dict[str, str]) -> dict[str, str]:
        if self.server.settings.access_token and "token" in query:
            return {"Set-Cookie": f"{COOKIE}={query['token']}; HttpOnly; SameSite=Strict; Path=/"}
        return {}

    def _check_same_origin(self) -> None:
        given = self.headers.get("X-K8sco-Token") or ""
        if not hmac.compare_digest(given, self.server.settings.control_token):
            raise Refused(HTTPStatus.FORBIDDEN, "missing or wrong X-K8sco-Token (reload the page)")
        origin = self.headers.get("Origin")
        if origin is not None:
            host = urllib.parse.urlsplit(origin).netloc.lower()
            if host != (self.headers.get("Host") or "").lower():
                raise Refused(HTTPStatus.FORBIDDEN, f"cross-site request from {origin}")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/json":
            raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send application/json")

    def _json_body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= 64 * 1024:
            raise Refused(HTTPStatus.BAD_REQUEST, "a control's body is a small JSON object")
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            raise Refused(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise Refused(HTTPStatus.BAD_REQUEST, "the body is not a JSON object")
        return body

    # --- data -------------------------------------------------------------------------

    def _source(self, ref: str) -> Any:
        settings = self.server.settings
        if ref.startswith("local:") and settings.local is not None:
            return settings.local
        if ref.startswith("kube:") and settings.cluster is not None:
            return settings.cluster
        raise UsageError(f"no pipeline {ref!r} here")

    def _opened(self, ref: str) -> sources.Opened:
        source = self._source(ref)
        if isinstance(source, sources.LocalRuns):
            return source.open(_ident(ref))
        found: tuple[sources.Opened, dict[str, Any]] = source.open(ref)
        return found[0]

    def _node(self, query: dict[str, str]) -> dict[str, Any]:
        ref = _arg(query, "p")
        opened = self._opened(ref)
        path = sources.check_path(opened, _arg(query, "path"))
        snap = self._source(ref).snapshot(_ident(ref), recent=True)
        job = None
        jobs = opened.tree.get("jobs")
        if jobs is not None:
            job = jobs[opened.graph.index[path]]
        view = views.node_view(opened.root, opened.graph, path, snap.recorded, time.time(), job)
        view["controls"] = (
            [] if self.server.settings.read_only else list(self._source(ref).controls)
        )
        return view

    def _list_events(self) -> Iterator[tuple[str, Any] | None]:
        settings = self.server.settings
        watch = settings.cluster.list_watch() if settings.cluster is not None else None
        last: Any = None
        try:
            while True:
                now = time.time()
                rows = settings.local.summaries(now) if settings.local is not None else []
                error = settings.cluster_error
                if watch is not None:
                    watch.changed.clear()
                    rows += watch.rows()
                    error = watch.error
                payload = {"pipelines": rows, "error": error, "readOnly": settings.read_only}
                key = json.dumps(payload, sort_keys=True, default=str)
                yield ("list", payload) if key != last else None
                last = key
                # Local runs are looked at every POLL*2 seconds; a cluster's change wakes
                # the stream at once.
                if watch is not None:
                    watch.changed.wait(sources.POLL * 2)
                elif self.server.stopping.wait(sources.POLL * 2):
                    return
                if self.server.stopping.is_set():
                    return
        finally:
            if watch is not None:
                watch.close()

    def _tree_events(self, ref: str) -> Iterator[tuple[str, Any] | None]:
        source = self._source(ref)
        opened = self._opened(ref)
        tree = dict(
            opened.tree,
            ref=ref,
            controls=[] if self.server.settings.read_only else list(source.controls),
        )
        yield ("tree", tree)
        for snap in source.changes(_ident(ref), self.server.stopping):
            if snap is None:
                yield None
                continue
            latest = self._opened(ref)  # a live control (skip) changes how states derive
            if latest.tree.get("paths") != opened.tree.get("paths"):
                yield ("tree", dict(tree, **latest.tree))
            opened = latest
            yield ("states", snap.view(opened, time.time()))

    def _log_events(self, ref: str, path: str) -> Iterator[tuple[str, Any] | None]:
        source = self._source(ref)
        for chunk in source.log(_ident(ref), path, self.server.stopping):
            yield ("log", {"text": chunk})
        yield ("end", {})

    # --- output -----------------------------------------------------------------------

    def _headers(self, status: HTTPStatus, ctype: str, extra: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        for key, value in extra.items():
            self.send_header(key, value)

    def _send(self, data: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self._headers(HTTPStatus.OK, ctype, extra or {})
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_json(self, value: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        data = json.dumps(value).encode()
        self._headers(status, "application/json", {})
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, events: Iterator[tuple[str, Any] | None]) -> None:
        """Server-sent events until the client goes, the server stops or the events end.
        A failure after the stream started is sent as an ``error`` event."""
        first = next(events)  # errors before the stream starts become a plain HTTP answer
        self._headers(HTTPStatus.OK, "text/event-stream", {"Connection": "close"})
        self.end_headers()
        self.close_connection = True
        quiet = time.monotonic()
        try:
            item: tuple[str, Any] | None = first
            while True:
                if item is not None:
                    name, value = item
                    self.wfile.write(f"event: {name}\ndata: {json.dumps(value)}\n\n".encode())
                    self.wfile.flush()
                    quiet = time.monotonic()
                elif time.monotonic() - quiet >= HEARTBEAT:
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    quiet = time.monotonic()
                try:
                    item = next(events)
                except StopIteration:
                    return
                except K8scoError as exc:
                    self.wfile.write(f"event: error\ndata: {json.dumps(str(exc))}\n\n".encode())
                    self.wfile.flush()
                    return
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()


def _arg(query: dict[str, str], name: str) -> str:
    value = query.get(name)
    if not value:
        raise UsageError(f"missing ?{name}=")
    return value


def _ident(ref: str) -> str:
    """What a source names the pipeline by: a local run's id, a cluster pipeline's ref."""
    return ref.partition(":")[2] if ref.startswith("local:") else ref


def serve(settings: Settings, port: int) -> UIServer:
    """A started server (in a daemon thread); ``shutdown()`` it when done."""
    server = UIServer((settings.host, port), settings)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="k8sco-ui")
    thread.start()
    return server
