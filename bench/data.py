"""co.data ``puts``/``gets``: latency and throughput for 1 KB and 10 MB objects, per backend,
side by side with what the backend costs without k8sco.

Rows (one run prints them all):

- ``plain file``: ``open(...).write`` / ``read`` in a temporary directory (the floor);
- ``file store``: ``co.data`` over the filesystem store in the same directory (also the
  PVC backend: the same code on a mounted volume);
- ``boto3 direct``: boto3 ``put_object`` / ``get_object`` against the S3 server (run in the
  server's own venv, ``.venv-s3``: boto3 cannot live beside kubernetes 37);
- ``s3 store``: ``co.data`` over k8sco's S3 store against the same server.

The S3 server is moto in server mode on 127.0.0.1 (tests/data_store/conftest.py says why):
an emulator in Python, so the S3 rows measure client overhead over a slow server, not S3.

    python bench/data.py [--small-ops 300] [--big-ops 10]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from k8sco.data.s3 import S3Store  # noqa: E402
from k8sco.data.stores import FileStore  # noqa: E402

KEYS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret"}

BOTO = r"""
import json, sys, time, boto3
endpoint, bucket, size, ops = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="bench", aws_secret_access_key="bench-secret")
data = b"x" * size
out = {"puts": [], "gets": []}
for i in range(ops + 2):
    t = time.perf_counter(); s3.put_object(Bucket=bucket, Key=f"boto/{i}", Body=data)
    if i >= 2: out["puts"].append(time.perf_counter() - t)
for i in range(ops + 2):
    t = time.perf_counter(); s3.get_object(Bucket=bucket, Key=f"boto/{i}")["Body"].read()
    if i >= 2: out["gets"].append(time.perf_counter() - t)
print(json.dumps(out))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _timed(fn: Callable[[int], object], ops: int) -> list[float]:
    for i in range(2):  # warm-up: connections, directories
        fn(-1 - i)
    out = []
    for i in range(ops):
        start = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - start)
    return out


def _row(name: str, size: int, puts: list[float], gets: list[float]) -> str:
    def cell(samples: list[float]) -> str:
        s = sorted(samples)
        p50 = statistics.median(s)
        p99 = s[min(len(s) - 1, int(len(s) * 0.99))]
        mbps = size / p50 / 1e6
        return f"{p50 * 1e3:8.3f} {p99 * 1e3:8.3f} {mbps:9.1f}"

    return f"{name:14} {_size(size):>6}  puts {cell(puts)}   gets {cell(gets)}"


def _size(n: int) -> str:
    return f"{n // 1024} KB" if n < 1 << 20 else f"{n >> 20} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-ops", type=int, default=300)
    parser.add_argument("--big-ops", type=int, default=10)
    args = parser.parse_args()
    server = os.environ.get("K8SCO_TEST_MOTO_SERVER") or str(REPO / ".venv-s3/bin/moto_server")
    port = _free_port()
    proc = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=2).close()
                break
            except OSError:
                time.sleep(0.1)
        env = {"K8SCO_S3_ENDPOINT": endpoint, **KEYS}
        s3 = S3Store.from_url("s3://bench/k8sco", env)
        s3.create_bucket()
        print(f"{'':14} {'':>6}        {'p50 ms':>8} {'p99 ms':>8} {'MB/s p50':>9}")
        with tempfile.TemporaryDirectory() as tmp:
            store = FileStore(Path(tmp) / "store")
            plain = Path(tmp) / "plain"
            plain.mkdir()
            for size, ops in ((1024, args.small_ops), (10 << 20, args.big_ops)):
                data = os.urandom(size)

                def plain_put(i: int, data: bytes = data) -> None:
                    (plain / f"o{i}").write_bytes(data)

                def plain_get(i: int) -> None:
                    (plain / f"o{i}").read_bytes()

                print(_row("plain file", size, _timed(plain_put, ops), _timed(plain_get, ops)))
                puts = _timed(lambda i, data=data: store.puts(f"o/{i}", data), ops)
                gets = _timed(lambda i: store.gets(f"o/{i}"), ops)
                print(_row("file store", size, puts, gets))
                boto = subprocess.run(
                    [
                        str(Path(server).parent / "python"),
                        "-c",
                        BOTO,
                        endpoint,
                        "bench",
                        str(size),
                        str(ops),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                got = json.loads(boto.stdout)
                print(_row("boto3 direct", size, got["puts"], got["gets"]))
                puts = _timed(lambda i, data=data: s3.puts(f"o/{i}", data), ops)
                gets = _timed(lambda i: s3.gets(f"o/{i}"), ops)
                print(_row("s3 store", size, puts, gets))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
