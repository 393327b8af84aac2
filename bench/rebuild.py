"""Image rebuild costs: a no-op rebuild against ``docker image inspect``, and a code-only
rebuild against a full build.

In a temporary code root holding ``primes.py``, for ``Image(copy_dir=".", reqs_py=["six"])``:

    no-op:      Builder.build() of an image whose tag exists (a fresh Builder each time: it
                hashes the copied files and k8sco's wheel, and asks the engine for the tag)
    inspect:    ``docker image inspect <tag>`` (the CLI, as a user would check by hand)
    code-only:  Builder.build() after one copied file changed (every layer but the code cached)
    full:       Builder.build() with no layer cache (base image present; pip downloads)

The no-op and inspect commands run ``--runs`` times, interleaved, after a warm-up; the script
prints medians and the no-op/inspect ratio (target: at most 1.5). The code-only rebuild runs
``--runs`` times and the full build ``--full-runs`` times (each one downloads from PyPI).
Also printed, for reference: the engine API call alone and the whole ``k8sco build`` command
(a new Python process). No assertions: this is a measurement, not a test.

Needs a Docker engine and a base image (``scripts/docker-setup.sh``, ``scripts/base-image.sh``);
honours K8SCO_BASE_IMAGE and K8SCO_BUILD_CA_BUNDLE (default: $PIP_CERT).

    python bench/rebuild.py --runs 15 --full-runs 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from k8sco.containers.build import Builder, BuildSettings
from k8sco.containers.engine import connect
from k8sco.errors import BuildError
from k8sco.image import Image

PRIMES = '''\
def seive(n: int) -> None:
    """Prints the primes below n."""
    import six  # noqa: F401  (installed in the image)

    is_prime = [True] * n
    for i in range(2, n):
        if is_prime[i]:
            print(i)
            for j in range(i * i, n, i):
                is_prime[j] = False
'''
PIPELINE = """\
import k8sco as co
from primes import seive


def pipeline() -> co.Serial:
    image = co.Image(copy_dir=".", reqs_py=["six==1.16.0"], name="bench-rebuild")
    with co.Serial(image=image) as root:
        co.Exec(seive, 30).set(name="seive")
    return root
"""
IMAGE = Image(copy_dir=".", reqs_py=["six==1.16.0"], name="bench-rebuild")


def timed(func: object, *args: object) -> float:
    start = time.perf_counter()
    func(*args)  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--full-runs", type=int, default=2)
    opts = parser.parse_args()

    client = connect(BuildError)
    settings = BuildSettings.from_env(
        os.environ,
        base_image=os.environ.get("K8SCO_BASE_IMAGE") or "k8sco-base:py3.11",
        ca_bundle=os.environ.get("K8SCO_BUILD_CA_BUNDLE") or os.environ.get("PIP_CERT"),
    )
    with tempfile.TemporaryDirectory(prefix="k8sco-bench-") as tmp:
        root = Path(tmp)
        (root / "primes.py").write_text(PRIMES)
        (root / "pipeline.py").write_text(PIPELINE)
        tag = Builder(settings, client).build(IMAGE, tmp).ref  # warm: image and wheel exist

        def noop() -> None:
            result = Builder(settings, client).build(IMAGE, tmp)
            assert not result.built, "the no-op rebuild built"

        def inspect() -> None:
            subprocess.run(["docker", "image", "inspect", tag], check=True, capture_output=True)

        for _ in range(2):
            noop()
            inspect()
        noops: list[float] = []
        inspects: list[float] = []
        api: list[float] = []
        for _ in range(opts.runs):
            noops.append(timed(noop))
            inspects.append(timed(inspect))
            api.append(timed(client.api.inspect_image, tag))
        env = {**os.environ, "K8SCO_BASE_IMAGE": settings.base_image}
        env["K8SCO_BUILD_CA_BUNDLE"] = settings.ca_bundle or ""
        # The command itself, without depending on its registration in the `k8sco` group.
        build_cli = [sys.executable, "-c", "from k8sco.cli.build import build; build()"]
        build_cli += ["pipeline.py", "--quiet"]
        cli: list[float] = []
        for _ in range(min(opts.runs, 5)):
            start = time.perf_counter()
            proc = subprocess.run(
                build_cli, cwd=tmp, env=env, capture_output=True, text=True, check=False
            )
            cli.append(time.perf_counter() - start)
            if proc.returncode != 0:
                cli = []
                print(f"(k8sco build CLI not measured: {proc.stderr.strip()[-200:]})")
                break

        made: list[str] = []  # one-off tags, removed at the end
        code_only: list[float] = []
        builder = Builder(settings, client)
        for _ in range(opts.runs):
            (root / "primes.py").write_text(PRIMES + f"# {uuid.uuid4()}\n")
            start = time.perf_counter()
            result = builder.build(IMAGE, tmp)
            code_only.append(time.perf_counter() - start)
            assert result.built
            made.append(result.ref)

        full: list[float] = []
        no_cache = Builder(BuildSettings(**{**settings.__dict__, "no_cache": True}), client)
        for _ in range(opts.full_runs):
            (root / "primes.py").write_text(PRIMES + f"# {uuid.uuid4()}\n")
            start = time.perf_counter()
            result = no_cache.build(IMAGE, tmp)
            full.append(time.perf_counter() - start)
            assert result.built
            made.append(result.ref)
        for ref in made:
            client.api.remove_image(ref)

    med = statistics.median
    print(f"no-op rebuild (Builder.build, tag exists)   median {med(noops) * 1000:7.1f} ms")
    print(f"docker image inspect <tag> (CLI)            median {med(inspects) * 1000:7.1f} ms")
    print(f"  ratio no-op / inspect: {med(noops) / med(inspects):.2f}  (target <= 1.5)")
    print(f"engine API inspect_image alone              median {med(api) * 1000:7.1f} ms")
    if cli:
        print(f"`k8sco build pipeline.py` (new process)     median {med(cli) * 1000:7.1f} ms")
    print(f"code-only rebuild ({opts.runs} runs)               median {med(code_only):7.2f} s")
    if full:
        print(f"full build, no layer cache ({opts.full_runs} runs)     median {med(full):7.2f} s")
        print(f"  ratio code-only / full: {med(code_only) / med(full):.3f}")
    client.close()


if __name__ == "__main__":
    main()
