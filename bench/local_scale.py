"""The local runner at scale: ``k8sco run`` of a Serial of Parallels of trivial shell
commands (``true``) against ``xargs -P2`` running the same commands through ``/bin/sh -c``,
as the runner does (plain output, not a terminal: one line per transition).

Per size: wall time, CPU (user + system of the process and everything it waited for) and
peak RSS (the largest process of the tree), for both, and the ratios k8sco / xargs. Also the
runner's own CPU per node, which stays flat when the per-node overhead does not grow with
the tree (issue 12, item 3).

    python bench/local_scale.py [--sizes 1000,10000] [--width 1000] [--cpus 2]

``--source DIR`` measures the k8sco package in ``DIR`` instead (a copy of the tree from
before a change: ``cp -r k8sco /tmp/before/``), ahead of the editable install, which
PYTHONPATH does not override.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PIPELINE = """
import k8sco as co


def pipe() -> co.Serial:
    root = co.Serial()
    left = {n}
    part = 0
    while left:
        size = min(left, {width})
        with co.Parallel() as group:
            for i in range(size):
                co.Exec("true", name=f"n{{i}}")
        root[f"p{{part}}"] = group
        left -= size
        part += 1
    return root
"""


@dataclass(frozen=True)
class Usage:
    wall: float
    cpu: float  # seconds, user + system, the process and its waited-for descendants
    rss_mb: float  # peak resident set of the largest process of the tree


def measure(argv: list[str], cwd: str, stdin: bytes | None = None) -> Usage:
    """Run ``argv`` to the end; its resource usage from wait4 (its own and its waited-for
    children's), so nothing else of this process is counted. Peak RSS through GNU time
    where there is one: a child forked from this process starts with this process's pages
    counted (ru_maxrss survives exec)."""
    with tempfile.TemporaryDirectory(prefix="k8sco-scale-m-") as tmp:
        rss_file = Path(tmp) / "rss"
        timed = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *argv]
        gnu_time = os.access("/usr/bin/time", os.X_OK)
        start = time.perf_counter()
        with open(Path(tmp) / "stderr", "wb+") as err:
            proc = subprocess.Popen(
                timed if gnu_time else argv,
                cwd=cwd,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            if stdin is not None:
                assert proc.stdin is not None
                proc.stdin.write(stdin)
                proc.stdin.close()
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                err.seek(0)
                text = err.read().decode(errors="replace")
                raise SystemExit(f"{argv[:4]} exited {proc.returncode}: {text[-2000:]}")
        rss_kb = float(rss_file.read_text().split()[-1]) if gnu_time else usage.ru_maxrss
    return Usage(wall, usage.ru_utime + usage.ru_stime, rss_kb / 1024)


# `k8sco` from another copy of the package: the editable install's finder (on sys.meta_path)
# would otherwise win over sys.path.
BOOT = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]; "
    "sys.path.insert(0, sys.argv.pop(1)); from k8sco._entry import main; sys.exit(main())"
)


def k8sco_run(n: int, width: int, source: str | None) -> Usage:
    with tempfile.TemporaryDirectory(prefix="k8sco-scale-") as tmp:
        (Path(tmp) / "scale.py").write_text(PIPELINE.format(n=n, width=width))
        argv = [sys.executable, "-m", "k8sco", "run", "scale.py:pipe"]
        if source is not None:
            check = "import k8sco; print(k8sco.__file__)"
            where = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    BOOT.replace("from k8sco._entry import main; sys.exit(main())", check),
                    source,
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            assert where.startswith(str(Path(source).resolve())), where
            argv = [sys.executable, "-c", BOOT, source, "run", "scale.py:pipe"]
        return measure(argv, tmp)


def xargs_run(n: int, cpus: int) -> Usage:
    with tempfile.TemporaryDirectory(prefix="k8sco-scale-") as tmp:
        commands = b"true\n" * n
        # One /bin/sh -c per command, as the runner starts a shell-string node.
        argv = ["xargs", "-P", str(cpus), "-d", "\n", "-n", "1", "/bin/sh", "-c"]
        return measure(argv, tmp, stdin=commands)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated node counts")
    parser.add_argument("--width", type=int, default=1000, help="nodes per Parallel")
    parser.add_argument(
        "--cpus", type=int, default=2, help="xargs -P (the runner uses the machine's cores)"
    )
    parser.add_argument("--source", help="a directory holding another copy of the k8sco package")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rows = []
    for n in sizes:
        ours = k8sco_run(n, args.width, args.source)
        theirs = xargs_run(n, args.cpus)
        rows.append((n, ours, theirs))
        print(f"... {n} nodes: k8sco {ours.wall:.1f}s, xargs {theirs.wall:.1f}s", flush=True)
    print(
        f"\n{'nodes':>7} | {'k8sco wall':>10} {'xargs wall':>10} {'ratio':>6} | "
        f"{'k8sco cpu':>9} {'xargs cpu':>9} {'ratio':>6} | "
        f"{'k8sco MB':>8} {'xargs MB':>8} {'ratio':>6} | {'ms cpu/node':>11}"
    )
    for n, ours, theirs in rows:
        print(
            f"{n:>7} | {ours.wall:>9.1f}s {theirs.wall:>9.1f}s {ours.wall / theirs.wall:>5.2f}x | "
            f"{ours.cpu:>8.1f}s {theirs.cpu:>8.1f}s {ours.cpu / theirs.cpu:>5.2f}x | "
            f"{ours.rss_mb:>8.0f} {theirs.rss_mb:>8.1f} {ours.rss_mb / theirs.rss_mb:>5.1f}x | "
            f"{1000 * (ours.cpu - theirs.cpu) / n:>11.2f}"
        )
    print(
        "\nms cpu/node: (k8sco cpu - xargs cpu) / nodes, the runner's own cost per node; "
        "flat across sizes when the per-node overhead does not grow with the tree."
    )


if __name__ == "__main__":
    main()
