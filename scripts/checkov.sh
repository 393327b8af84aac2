#!/usr/bin/env bash
# checkov on what k8sco installs and what it renders: manifests/, the Helm chart's output
# (default values) and the Jobs `k8sco render` prints for the examples. Configs and the
# reason of every skipped check: .checkov.yaml (manifests, chart), .checkov-nodes.yaml (node
# pods). checkov pins dependencies that conflict with k8sco's (packaging, for one), so it
# lives in its own venv, .venv-checkov, made once and reused while its version holds.
set -euo pipefail
cd "$(dirname "$0")/.."

version=3.3.30
venv=.venv-checkov
if [ "$("$venv/bin/checkov" --version 2>/dev/null || true)" != "$version" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet "checkov==$version"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
helm=$(scripts/get-helm.sh | tail -n 1)
"$helm" template k8sco charts/k8sco --include-crds >"$out/chart.yaml"
mkdir "$out/nodes"
for example in examples/*.py; do
  # A namespace of its own, as `k8sco apply -n` gives (checkov flags "default").
  .venv/bin/python -m k8sco render -n pipelines "$example" >"$out/nodes/$(basename "$example" .py).yaml"
done

"$venv/bin/checkov" --config-file .checkov.yaml -d manifests
"$venv/bin/checkov" --config-file .checkov.yaml -f "$out/chart.yaml"
"$venv/bin/checkov" --config-file .checkov-nodes.yaml -d "$out/nodes"
