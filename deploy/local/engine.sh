#!/usr/bin/env bash
# Make a local Docker engine answer on a machine with no image registry: install the
# engine, compose and debootstrap when missing, start dockerd when none runs, and build
# the local base images (Debian from debootstrap, then Python from Debian's apt).
# Idempotent: every step is skipped when its result exists. Needs root (a CI VM).
#   deploy/local/engine.sh            # engine + local/debian:bookworm + local/python:3.11
set -euo pipefail
cd "$(dirname "$0")"

DEBIAN_IMAGE=${DEBIAN_IMAGE:-local/debian:bookworm}
PYTHON_IMAGE=${LOCAL_PYTHON_IMAGE:-local/python:3.11}
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

say() { echo "engine: $*" >&2; }

# One set-up at a time (apt and the base image builds do not share). What this script
# leaves running (dockerd) must not inherit the lock's descriptor: it would hold the
# lock for as long as it lives and every later run would wait for ever.
exec 9>/tmp/intentbus-engine.lock
if ! flock -w 900 9; then
  say "another engine set-up has held /tmp/intentbus-engine.lock for 15 minutes; giving up"
  exit 1
fi

has_image() { docker image inspect "$1" >/dev/null 2>&1; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 \
    || missing+=(docker-compose)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return
  say "installing ${missing[*]} with apt (about a minute)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "${missing[@]}" >/dev/null
}

start_engine() {
  docker info >/dev/null 2>&1 && return
  say "starting dockerd (log: $DOCKERD_LOG)"
  nohup dockerd >"$DOCKERD_LOG" 2>&1 9>&- &
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && return
    sleep 0.5  # polling the engine until it answers, with a deadline
  done
  say "dockerd did not answer within 60 s; see $DOCKERD_LOG"
  exit 1
}

build_debian() {
  has_image "$DEBIAN_IMAGE" && return
  say "building $DEBIAN_IMAGE with debootstrap (about a minute)"
  local rootfs
  rootfs=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >/dev/null
  tar -C "$rootfs" -c . | docker import - "$DEBIAN_IMAGE" >/dev/null
  rm -rf "$rootfs"
}

build_python() {
  has_image "$PYTHON_IMAGE" && return
  say "building $PYTHON_IMAGE (Debian's python3 from apt)"
  local log
  log=$(mktemp)
  # The legacy builder's deprecation notice is noise; the log shows on failure.
  docker build -q -t "$PYTHON_IMAGE" --build-arg BASE="$DEBIAN_IMAGE" \
    -f Dockerfile.python . >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; exit 1; }
  rm -f "$log"
}

install_packages
start_engine
build_debian
build_python
say "ready: $(docker version --format '{{.Server.Version}}'), $DEBIAN_IMAGE, $PYTHON_IMAGE"
