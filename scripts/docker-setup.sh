#!/usr/bin/env bash
# Make a Docker engine available on this machine, idempotently: install docker.io when dockerd
# is missing, start dockerd when nothing answers, and wait until it does.
#
# The daemon runs with no bridge, no iptables rules and no IP masquerading: k8sco's containers
# use host or no networking, and a default bridge would route container traffic to a private
# range that must never be a target on these machines.
#
#   scripts/docker-setup.sh           # prints the engine version once it answers
#   DOCKER_SETUP_TIMEOUT=120 scripts/docker-setup.sh
#
# Exit 0 when an engine answers, 1 when none could be started (the reason on stderr).
set -euo pipefail

timeout_s=${DOCKER_SETUP_TIMEOUT:-90}
log_file=${DOCKERD_LOG:-/var/log/k8sco-dockerd.log}

answers() { docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

if answers; then
  docker info --format 'docker engine {{.ServerVersion}} already running'
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "docker-setup: dockerd is not installed and installing it needs root" >&2
    exit 1
  fi
  echo "docker-setup: installing docker.io" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # --no-install-recommends: no apparmor/cgroupfs-mount/git extras; the engine needs none here.
  apt-get install -y -qq --no-install-recommends docker.io >&2
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  # Left behind by a daemon that was killed: dockerd refuses to start while its pid file is
  # there ("pid file found, ensure docker is not running").
  rm -f /var/run/docker.sock /var/run/docker.pid
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "docker-setup: dockerd is not running and starting it needs root" >&2
    exit 1
  fi
  # containerd comes with docker.io; dockerd starts its own when none is listening.
  nohup dockerd \
    --bridge=none --iptables=false --ip-masq=false --ip6tables=false \
    --host=unix:///var/run/docker.sock \
    >"$log_file" 2>&1 </dev/null &
  echo "docker-setup: started dockerd (pid $!, log $log_file)" >&2
fi

deadline=$((SECONDS + timeout_s))
until answers; do
  if [ $SECONDS -ge $deadline ]; then
    echo "docker-setup: no Docker engine answered within ${timeout_s}s; last log lines:" >&2
    tail -n 20 "$log_file" >&2 2>/dev/null || true
    exit 1
  fi
  sleep 0.5
done
docker info --format 'docker engine {{.ServerVersion}} running'
