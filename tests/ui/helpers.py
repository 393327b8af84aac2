"""What the UI tests share: a pipeline file, local runs, a started server and an SSE reader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from k8sco.ui import server, sources

K8SCO = [sys.executable, "-m", "k8sco"]
REPO = Path(__file__).resolve().parents[2]

# A pipeline with a doc, inherited env, a markdown block in a log, a failing node and a node
# that runs until the file ``go`` appears next to the pipeline.
PIPELINE = textwrap.dedent(
    """
    import os
    import k8sco as co

    HERE = os.path.dirname(os.path.abspath(__file__))


    def main() -> co.Serial:
        with co.Serial(env={"STAGE": "ci"}, doc="# Demo\\nThe **whole** pipeline") as root:
            with co.Parallel(name="work", env={"LEVEL": "2"}):
                co.Exec(
                    "echo plain; echo '<ConductoMarkdown>'; echo '# Result'; "
                    "echo '*ok* <b>x</b>'; echo '</ConductoMarkdown>'",
                    name="report",
                )
                co.Exec("echo broken >&2; exit 3", name="fails")
                co.Exec(
                    f"echo waiting; while [ ! -e '{HERE}/go' ]; do sleep 0.05; done; echo released",
                    name="waits",
                )
        root.stop_on_error = False
        return root


    if __name__ == "__main__":
        co.main(default=main)
    """
)


def write_pipeline(directory: Path) -> Path:
    file = directory / "pipe.py"
    file.write_text(PIPELINE)
    return file


def start_run(directory: Path) -> subprocess.Popen[bytes]:
    """``k8sco run --plain pipe.py`` in ``directory``, in the background."""
    write_pipeline(directory)
    return subprocess.Popen(
        [*K8SCO, "run", "--plain", "pipe.py"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def finished_run(directory: Path) -> str:
    """A finished run in ``directory`` (one node failed); its run id."""
    (directory / "go").touch()
    proc = start_run(directory)
    assert proc.wait(timeout=120) == 1
    return os.readlink(directory / ".k8sco" / "runs" / "latest")


@contextmanager
def ui_server(
    directory: Path | None = None,
    cluster: sources.ClusterPipelines | None = None,
    **options: Any,
) -> Iterator[server.UIServer]:
    local = sources.LocalRuns(directory / ".k8sco" / "runs") if directory is not None else None
    settings = server.Settings(local=local, cluster=cluster, **options)
    srv = server.serve(settings, 0)
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def base(srv: server.UIServer) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as res:
            return res.status, dict(res.headers), res.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get_json(url: str) -> Any:
    status, _, body = get(url)
    assert status == 200, body
    return json.loads(body)


def post(
    url: str,
    body: Any,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": content_type, **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class Events:
    """A server-sent event stream, read event by event."""

    def __init__(self, url: str, timeout: float = 60) -> None:
        self.res = urllib.request.urlopen(url, timeout=timeout)
        assert self.res.headers["Content-Type"] == "text/event-stream"

    def next(self) -> tuple[str, Any]:
        name, data = "message", []
        while True:
            line = self.res.readline()
            if not line:
                raise EOFError("the stream ended")
            text = line.decode().rstrip("\n")
            if not text:
                if data:
                    return name, json.loads("\n".join(data))
                continue
            if text.startswith(":"):
                continue
            key, _, value = text.partition(": ")
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)

    def until(self, name: str, predicate: Any = lambda _: True) -> Any:
        """The data of the first ``name`` event that satisfies ``predicate``."""
        while True:
            got, data = self.next()
            if got == name and predicate(data):
                return data

    def close(self) -> None:
        self.res.close()
