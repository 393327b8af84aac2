"""The transport: a silent watch ends instead of hanging; an empty log is an empty log."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from k8sco.errors import ClusterUnreachable
from k8sco.kube import pipelines
from k8sco.kube.client import Cluster


class SilentServer:
    """Answers every request with the headers of a chunked watch stream, one event, and
    then nothing, never closing: a half-open connection as the client sees it."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            # A client that reconnects while close() runs must not leave a connection
            # nobody closes (an unclosed socket warns in whichever test runs next).
            with self.lock:
                if self.closed:
                    conn.close()
                    return
                self.conns.append(conn)
            try:
                conn.recv(65536)
                head = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"
                )
                chunk = b"%x\r\n%s\r\n" % (len(self.body), self.body) if self.body else b""
                conn.sendall(head + chunk)
            except OSError:
                pass  # closed by close(), or by the client

    def close(self) -> None:
        with self.lock:
            self.closed = True
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() (Linux)
            self.sock.close()
            for conn in self.conns:
                conn.close()
        self.thread.join(timeout=5)


@pytest.fixture
def silent(tmp_path: Path) -> Iterator[tuple[SilentServer, Cluster]]:
    event = b'{"type":"ADDED","object":{"metadata":{"name":"x","resourceVersion":"a1"}}}\n'
    server = SilentServer(event)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.port}"}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    cluster = Cluster(str(tmp_path / "kubeconfig"))
    yield server, cluster
    cluster.close()
    server.close()


def test_a_watch_that_goes_silent_is_noticed_and_raises(
    silent: tuple[SilentServer, Cluster],
) -> None:
    """kubernetes-client/python #1148: without a client-side read timeout this hangs."""
    _, cluster = silent
    cluster.watch_grace = 0.5
    seen: list[dict[str, Any]] = []
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            for event in cluster.watch("/api/v1/pods", resource_version="", selector={}, timeout=1):
                seen.append(event)
        except BaseException as exc:  # handed to the test's thread
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=60)  # a hang, not a slow answer, is what this guards against
    assert not thread.is_alive(), "the watch hung on a silent connection"
    assert [e["object"]["metadata"]["name"] for e in seen] == ["x"]
    assert len(outcome) == 1 and isinstance(outcome[0], ClusterUnreachable)


class Response:
    status = 200
    headers: ClassVar[dict[str, str]] = {}

    def read(self) -> bytes:
        return b""


def test_an_empty_log_is_empty_text_not_a_dict(silent: tuple[SilentServer, Cluster]) -> None:
    _, cluster = silent
    cluster._send = lambda *a, **k: Response()  # type: ignore[method-assign]
    assert cluster.request("GET", "/api/v1/namespaces/default/pods/p/log", raw=True) == ""
    assert list(pipelines.logs(cluster, "p")) == []


def test_a_pod_whose_container_never_started_says_why() -> None:
    waiting = {
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": "main",
                    "state": {
                        "waiting": {"reason": "ErrImagePull", "message": "pull access denied"}
                    },
                }
            ],
        }
    }
    assert pipelines.not_started(waiting) == (
        "its container has not started (ErrImagePull: pull access denied)"
    )
    start_error = {
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {
                    "name": "main",
                    "state": {
                        "terminated": {
                            "reason": "StartError",
                            "exitCode": 128,
                            "message": 'exec: "nope": executable file not found in $PATH',
                        }
                    },
                }
            ],
        }
    }
    why = pipelines.not_started(start_error)
    assert why is not None and "StartError" in why and "executable file not found" in why
    ran = {
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {"name": "main", "state": {"terminated": {"reason": "Error", "exitCode": 1}}}
            ],
        }
    }
    assert pipelines.not_started(ran) is None


def test_a_body_that_stops_coming_is_a_cluster_error(silent: tuple[SilentServer, Cluster]) -> None:
    """A read timeout while the body is read (headers came, the rest did not) is
    ClusterUnreachable, which callers retry, never a bare urllib3 error: one of those killed
    the lease thread of a controller under load and it stopped reconciling."""
    _, cluster = silent
    with pytest.raises(ClusterUnreachable, match="cannot reach the Kubernetes API"):
        cluster.request("GET", "/apis/coordination.k8s.io/v1/leases", timeout=0.5, retry=False)


class Counting(ThreadingHTTPServer):
    """Answers ``{}`` once ``together`` requests are in, and counts the connections."""

    daemon_threads = True

    def __init__(self, together: int) -> None:
        server = self
        self.accepted = 0
        self.gate = threading.Barrier(together, timeout=10)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the API server

            def do_GET(self) -> None:
                server.gate.wait()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        self.accepted += 1
        return super().get_request()


def test_concurrent_requests_keep_their_connections_for_the_next_ones(tmp_path: Path) -> None:
    """The controller's workers and Job creates send many requests at once: each keeps its
    connection (the client's default pool, 5 per CPU, closed those past it after one use)."""
    together = 24
    server = Counting(together)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}
        ],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    cluster = Cluster(str(tmp_path / "kubeconfig"))
    try:
        with ThreadPoolExecutor(together) as pool:
            for _ in range(2):
                answers = list(
                    pool.map(lambda _: cluster.request("GET", "/api/v1"), range(together))
                )
                assert answers == [{}] * together
        assert server.accepted == together
    finally:
        cluster.close()
        server.shutdown()
        server.server_close()
