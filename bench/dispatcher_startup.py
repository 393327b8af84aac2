"""Start-up of the dispatcher against plain Python, for one tiny native function.

Compares, in a temporary code root holding ``primes.py`` (which imports k8sco, as a
pipeline file does)::

    baseline:    python -c "import primes; primes.seive(30)"
    dispatcher:  k8sco call primes.py:seive --n=30

Each command runs ``--runs`` times (interleaved, after warm-up runs, output discarded);
the script prints both medians and their ratio (target: at most 1.05). No assertions:
this is a measurement, not a test.

By default the children may cache bytecode (in a temporary ``PYTHONPYCACHEPREFIX``), as an
installed k8sco in an image has its ``.pyc`` files; ``--no-bytecode`` makes every run
compile k8sco and ``primes.py`` from source (``PYTHONDONTWRITEBYTECODE`` and no cache).

    python bench/dispatcher_startup.py --runs 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRIMES = '''\
import k8sco as co


def seive(n: int) -> list[int]:
    """The primes up to n."""
    is_prime = [True] * (n + 1)
    found = []
    for i in range(2, n + 1):
        if is_prime[i]:
            found.append(i)
            for j in range(i * i, n + 1, i):
                is_prime[j] = False
    return found
'''


def _time_once(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``argv``."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, argv)
    return wall, usage.ru_utime + usage.ru_stime


def measure(runs: int, bytecode: bool, python: str, k8sco: str) -> dict[str, float]:
    """Median wall and CPU seconds of the baseline and the dispatcher over ``runs``
    interleaved runs each."""
    with tempfile.TemporaryDirectory(prefix="k8sco-bench-") as tmp:
        root = Path(tmp, "code")
        root.mkdir()
        (root / "primes.py").write_text(PRIMES)
        env = dict(os.environ)
        if bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp, "pycache"))
        else:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            env.pop("PYTHONPYCACHEPREFIX", None)
        baseline = [python, "-c", "import primes; primes.seive(30)"]
        dispatcher = [k8sco, "call", "primes.py:seive", "--n=30"]
        for _ in range(3):  # warm the page cache (and the bytecode cache, if any)
            _time_once(baseline, root, env)
            _time_once(dispatcher, root, env)
        times: dict[str, list[float]] = {"base": [], "call": [], "base cpu": [], "call cpu": []}
        for _ in range(runs):
            for key, argv in (("base", baseline), ("call", dispatcher)):
                wall, cpu = _time_once(argv, root, env)
                times[key].append(wall)
                times[f"{key} cpu"].append(cpu)
    return {key: statistics.median(values) for key, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="runs of each command (30)")
    parser.add_argument(
        "--no-bytecode", action="store_true", help="compile from source on every run"
    )
    parser.add_argument("--python", default=sys.executable, help="the interpreter to compare")
    parser.add_argument(
        "--k8sco",
        default=str(Path(sys.executable).with_name("k8sco")),
        help="the k8sco console script (default: next to the interpreter)",
    )
    args = parser.parse_args()
    found = measure(args.runs, not args.no_bytecode, args.python, args.k8sco)
    mode = "no bytecode cache" if args.no_bytecode else "bytecode cached"
    print(f"runs: {args.runs} each, {mode}; medians of wall time, and of CPU time (user +")
    print("system of the process: steadier on a machine shared with other work)")
    for label, key in (
        ("python -c 'import primes; primes.seive(30)'", "base"),
        ("k8sco call primes.py:seive --n=30", "call"),
    ):
        print(
            f"{label + ':':<45} wall {found[key] * 1000:6.1f} ms, "
            f"CPU {found[key + ' cpu'] * 1000:6.1f} ms"
        )
    print(f"ratio wall: {found['call'] / found['base']:.3f} (target <= 1.05)")
    print(f"ratio CPU:  {found['call cpu'] / found['base cpu']:.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
