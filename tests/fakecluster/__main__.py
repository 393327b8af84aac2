"""Run a FakeCluster until interrupted: ``python -m tests.fakecluster --port N --kubeconfig P``.

Faults and request counters are then controlled over HTTP under /_fake/ (see README.md).
"""

from __future__ import annotations

import argparse
import signal
import threading

from .cluster import FakeCluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakecluster", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--kubeconfig", help="write a kubeconfig for this cluster here")
    parser.add_argument(
        "--path-map",
        action="append",
        default=[],
        metavar="CONTAINER_PREFIX=HOST_DIR",
        help="map container paths (workingDir, absolute commands) to host directories",
    )
    parser.add_argument("--no-kubelet", action="store_true", help="never schedule or run pods")
    parser.add_argument("--backoff-base", type=float, default=0.1, help="Job pod back-off, seconds")
    parser.add_argument("--backoff-max", type=float, default=6.0, help="its cap, seconds")
    args = parser.parse_args(argv)
    path_map = dict(item.split("=", 1) for item in args.path_map)
    cluster = FakeCluster(
        host=args.host,
        port=args.port,
        path_map=path_map,
        kubelet=not args.no_kubelet,
        pod_backoff_base=args.backoff_base,
        pod_backoff_max=args.backoff_max,
    )
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with cluster:
        if args.kubeconfig:
            cluster.write_kubeconfig(args.kubeconfig)
        print(f"fakecluster serving on {cluster.url}", flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
