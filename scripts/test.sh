#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs the whole test suite: lint, types, tests.
# This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e ".[dev]"
# The S3-compatible server of the co.data tests (tests/data_store/conftest.py): moto in
# server mode, in a venv of its own (botocore pins python-dateutil<3, kubernetes needs >=3).
python3 -m venv .venv-s3
.venv-s3/bin/pip install --quiet "moto[server]==5.2.5"

.venv/bin/ruff check k8sco tests bench examples
.venv/bin/ruff format --check k8sco tests bench examples
.venv/bin/mypy
# The layers: the pure core imports no shell; only k8sco/kube imports kubernetes, only
# k8sco/containers docker (contracts in pyproject.toml).
.venv/bin/lint-imports
# checkov on manifests/, the chart and rendered Jobs (its own venv; reasons for skipped
# checks in .checkov.yaml and .checkov-nodes.yaml).
scripts/checkov.sh

# pytest exits 5 when it collects no test: that is a failure here, not a pass.
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests" >&2
  exit 1
fi
# The Kubernetes tests again, with the lowest dependency versions pyproject.toml allows.
if [ "$status" -eq 0 ] && [ -z "${K8SCO_SKIP_MIN_VERSIONS:-}" ]; then
  scripts/min-versions.sh || status=$?
fi
exit "$status"
