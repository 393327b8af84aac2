"""Nested Serial and Parallel nodes with a failing node, to show how failures travel:

- /build: a Parallel; /build/flaky fails once and passes on its retry (retries=1);
  /build/optional fails but suppress_errors=True keeps /build done.
- /test: a Serial (stop_on_error=True, the default). In its Parallel /test/unit, u2 fails
  while its siblings still run to the end; /test then stops: /test/integration never runs.
- the root is a Serial with stop_on_error=False, so /cleanup still runs after /test failed.
- /docs is skipped.

Running it exits 1, and the summary names /test/unit/u2 and shows the tail of its log.
"""

from __future__ import annotations

import k8sco as co

# Fails on the first attempt, passes on the second: a marker file per run remembers.
FLAKY = """
marker="${TMPDIR:-/tmp}/k8sco-flaky-$K8SCO_PIPELINE"
if [ -e "$marker" ]; then rm -f "$marker"; echo "second attempt passes"
else touch "$marker"; echo "first attempt fails"; exit 1; fi
"""


def nested() -> co.Serial:
    with co.Serial(stop_on_error=False) as root:
        with co.Parallel(name="build"):
            co.Exec("echo compiling", name="compile")
            co.Exec(FLAKY, name="flaky", retries=1)
            co.Exec("echo lint warnings; exit 1", name="optional", suppress_errors=True)
        with co.Serial(name="test"):
            with co.Parallel(name="unit"):
                co.Exec("echo unit 1 passes", name="u1")
                co.Exec("echo 'assert 1 + 1 == 3' >&2; exit 1", name="u2")
                co.Exec("sleep 0.3; echo u3 still runs", name="u3")
            co.Exec("echo never printed", name="integration")
        co.Exec("echo cleaning up", name="cleanup")
        co.Exec("echo building docs", name="docs", skip=True)
    return root


if __name__ == "__main__":
    co.main(default=nested)
