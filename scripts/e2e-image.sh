#!/usr/bin/env bash
# Build the end-to-end suite's image (tests/e2e/Dockerfile: k8sco and the test pipelines at
# /app, on the controller image ghcr.io/k8sco/k8sco:<version>, which must be built first) and
# print its reference, tagged by content: the first 12 hex digits of the image ID.
#
# Never ":latest": for that tag (or none) the API server defaults imagePullPolicy to Always
# (pkg/apis/core/v1/defaults.go, SetDefaults_Container), so kind's kubelet would pull it
# from a registry instead of using the image `kind load docker-image` put on the node.
#
#   image=$(scripts/e2e-image.sh) && kind load docker-image --name k8sco "$image"
set -euo pipefail
cd "$(dirname "$0")/.."
id=$(docker build --quiet -f tests/e2e/Dockerfile .)
id=${id#sha256:}
ref="k8sco-e2e:${id:0:12}"
docker tag "$id" "$ref" >&2
echo "$ref"
