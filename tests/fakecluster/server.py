"""HTTP plumbing: a threading HTTP/1.1 server that tracks its connections (so ``stop()`` can
close keep-alive and streaming ones and join every handler thread), and the request and
response helpers the routes use. JSON in, JSON out; watch and log streams are chunked."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import TCPServer, ThreadingMixIn
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import yaml

from .loops import ApiFirst


class App(Protocol):
    def handle(self, request: Request) -> None: ...


class _Server(ThreadingMixIn, HTTPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    # The listen backlog. socketserver's default is 5: a client opening a burst of
    # connections (a controller sending 16 Job creates at once) had its SYNs past the fifth
    # dropped and retried a second later. kube-apiserver listens as Go does, with the
    # kernel's somaxconn (net/sock_linux.go, maxListenerBacklog).
    request_queue_size = socket.SOMAXCONN

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Condition()
        self.busy = 0  # requests being answered (streams included)
        self.gate: ApiFirst | None = None  # FakeCluster's, when its API requests go first
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall offline.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def wait_idle(self, timeout: float) -> None:
        """Let requests in progress finish (streams end by themselves once closing)."""
        with self.connections_lock:
            self.connections_lock.wait_for(lambda: self.busy == 0, timeout)

    def close_connections(self) -> None:
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-request is not our problem


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakecluster"
    timeout = 300  # idle keep-alive connections are closed after this many seconds
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and
        # delayed ACKs add ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _dispatch(self) -> None:
        with self.server.connections_lock:
            self.server.busy += 1
        try:
            request = Request(self)
            if self.server.gate is not None:
                request.gate = self.server.gate
                request.gate.begin()
            try:
                self.server.app.handle(request)
            finally:
                request.answered()
        finally:
            with self.server.connections_lock:
                self.server.busy -= 1
                self.server.connections_lock.notify_all()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass


class HttpServer:
    """Serves ``app`` on a background thread."""

    def __init__(
        self, app: App, host: str = "127.0.0.1", port: int = 0, gate: ApiFirst | None = None
    ) -> None:
        self._server = _Server((host, port), app)
        self._server.gate = gate
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            name="fakecluster-http",
            kwargs={"poll_interval": 0.1},
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.wait_idle(timeout=5.0)  # watch and log streams end cleanly
        self._server.close_connections()  # idle keep-alive connections
        self._server.server_close()  # joins the handler threads


class Request:
    """One HTTP request, with helpers to answer it."""

    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self.handler = handler
        self.method = handler.command
        url = urlsplit(handler.path)
        self.path = url.path
        self.query: dict[str, str] = dict(parse_qsl(url.query, keep_blank_values=True))
        self.headers = handler.headers
        self._body: bytes | None = None
        self.responded = False
        self.user: Any = None  # the authenticated rbac.User, None for an admin
        self.gate: ApiFirst | None = None  # told when this request is answered

    def answered(self) -> None:
        """Answered, or streaming from now on (ApiFirst)."""
        if self.gate is not None:
            self.gate.end()
            self.gate = None

    # -- input --------------------------------------------------------------------------

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    @property
    def accept(self) -> str:
        return self.headers.get("Accept") or ""

    @property
    def user_agent(self) -> str:
        return self.headers.get("User-Agent") or ""

    def body(self) -> bytes:
        if self._body is None:
            if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
                self._body = self._read_chunked()
            else:
                length = int(self.headers.get("Content-Length") or 0)
                self._body = self.handler.rfile.read(length) if length else b""
        return self._body

    def _read_chunked(self) -> bytes:
        data = b""
        rfile = self.handler.rfile
        while True:
            size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                rfile.readline()
                return data
            data += rfile.read(size)
            rfile.readline()

    def decoded_body(self) -> Any:
        """The body as JSON (or YAML for apply patches and YAML content types); None if empty."""
        raw = self.body()
        if not raw.strip():
            return None
        if "yaml" in self.content_type:
            return yaml.safe_load(raw)
        return json.loads(raw)

    # -- output -------------------------------------------------------------------------

    def send_json(
        self,
        code: int,
        obj: Any,
        headers: dict[str, str] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        body = json.dumps(obj, separators=(",", ":")).encode()
        self._start(code, "application/json", headers, warnings)
        self.handler.send_header("Content-Length", str(len(body)))
        self._end(body if self.method != "HEAD" else b"")

    def send_bytes(self, code: int, content_type: str, body: bytes) -> None:
        self._start(code, content_type, None, None)
        self.handler.send_header("Content-Length", str(len(body)))
        self._end(body)

    def _end(self, body: bytes) -> None:
        """The headers and the body in one write: each write gives up the GIL, and getting it
        back waits for the thread that holds it (up to the 5 ms switch interval), so a busy
        fake answered each request about one such wait later than it had to."""
        buffered = getattr(self.handler, "_headers_buffer", None)  # end_headers' own buffer
        if buffered is None:  # an HTTP/0.9 request: no headers
            self.handler.wfile.write(body)
        else:
            buffered.append(b"\r\n" + body)
            self.handler.flush_headers()
        self.handler.wfile.flush()

    def start_stream(self, content_type: str) -> None:
        self.answered()
        self._start(200, content_type, {"Transfer-Encoding": "chunked"}, None)
        self.handler.end_headers()
        self.handler.wfile.flush()

    def write_chunk(self, data: bytes) -> None:
        self.write_chunks((data,))

    def write_chunks(self, items: Sequence[bytes]) -> None:
        """One chunk for each of ``items``, sent in one write (a watch's pending events)."""
        data = b"".join(f"{len(d):x}\r\n".encode() + d + b"\r\n" for d in items if d)
        if data:
            self.handler.wfile.write(data)
            self.handler.wfile.flush()

    def end_stream(self) -> None:
        self.handler.wfile.write(b"0\r\n\r\n")
        self.handler.wfile.flush()

    def abort(self) -> None:
        """Cut the connection without finishing the response (an injected network fault)."""
        self.handler.close_connection = True
        with contextlib.suppress(OSError):
            self.handler.connection.shutdown(socket.SHUT_RDWR)

    def _start(
        self,
        code: int,
        content_type: str,
        headers: dict[str, str] | None,
        warnings: list[str] | None,
    ) -> None:
        self.responded = True
        self.handler.send_response(code)
        self.handler.send_header("Content-Type", content_type)
        self.handler.send_header("Cache-Control", "no-cache, private")
        for key, value in (headers or {}).items():
            self.handler.send_header(key, value)
        for text in warnings or []:
            self.handler.send_header(
                "Warning", f'299 - "{text.replace(chr(34), chr(92) + chr(34))}"'
            )
