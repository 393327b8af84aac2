#!/usr/bin/env bash
# Install the lowest versions pyproject.toml allows (every ">=" bound of [project]
# dependencies, pinned with "==") into a second venv, .venv-min, and run the Kubernetes
# tests there, so that a lower bound the code does not actually work with fails CI.
# Called by scripts/test.sh; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
venv=.venv-min
constraints=$venv/constraints.txt
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" - > "$constraints.new" <<'PY'
import re
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the [project] dependencies list, read plainly
    tomllib = None

if tomllib is not None:
    with open("pyproject.toml", "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
else:
    text = open("pyproject.toml", encoding="utf-8").read()
    block = re.search(r"(?m)^dependencies = \[(.*?)^\]", text, re.S)
    if block is None:
        sys.exit("pyproject.toml: no [project] dependencies list")
    deps = re.findall(r'"([^"]+)"', block[1])
for dep in deps:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([^,;\s]+)\s*", dep)
    if match is None:
        sys.exit(f"pyproject.toml: dependency {dep!r} has no single '>=' lower bound")
    print(f"{match[1]}=={match[2]}")
PY
mv "$constraints.new" "$constraints"
echo "scripts/min-versions.sh: $(tr '\n' ' ' < "$constraints")"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet -c "$constraints" -e ".[dev]"
# The constraints pin; this shows they took (pip would have refused a conflict).
"$venv/bin/pip" list --format=freeze 2>/dev/null | grep -i -x -F -f "$constraints" \
  | wc -l | { read -r n; want=$(wc -l < "$constraints"); [ "$n" -eq "$want" ] || {
    echo "scripts/min-versions.sh: only $n of $want minimum versions installed" >&2; exit 1; }; }
"$venv/bin/python" -m pytest -q -p no:cacheprovider \
  tests/kube tests/reconcile \
  tests/e2e/test_pipelines.py::test_primes_apply_wait_then_logs_status_and_kubectl \
  tests/e2e/test_pipelines.py::test_a_failing_node_stops_its_serial_and_not_its_parallel_siblings \
  tests/e2e/test_pipelines.py::test_apply_auto_uses_the_running_controller \
  tests/e2e/test_bad_input.py::test_missing_crd_says_how_to_install \
  "$@"
