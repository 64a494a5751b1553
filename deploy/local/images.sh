#!/usr/bin/env bash
# Build every intentbus image and the local stand-ins with no network in any build:
# third-party wheels are downloaded on the host (the locked versions, for CPython 3.11 on
# x86-64 glibc) and the workspace members are built into wheels, all into build/docker/;
# deploy/Dockerfile.service installs one member from there with --no-index.
#   UV=uv deploy/local/images.sh      # after deploy/local/engine.sh
# Variables: PYTHON_BASE_IMAGE (default local/python:3.11; python:3.11-slim where a
# registry answers), LOCAL_NATS_IMAGE, LOCAL_POSTGRES_IMAGE, INTENTBUS_IMAGE_TAG.
set -euo pipefail
cd "$(dirname "$0")/../.."

UV=${UV:-uv}
BASE=${PYTHON_BASE_IMAGE:-local/python:3.11}
DEBIAN_IMAGE=${DEBIAN_IMAGE:-local/debian:bookworm}
TAG=${INTENTBUS_IMAGE_TAG:-local}
NATS_STANDIN=${LOCAL_NATS_IMAGE:-local/nats:latest}
POSTGRES_STANDIN=${LOCAL_POSTGRES_IMAGE:-local/postgres:latest}
OUT=build/docker
# image name -> the workspace member it holds (with its dependencies, nothing else)
SERVICES="ledger:intentbus-ledger paper:intentbus-venue-paper pm:intentbus-pm \
hyperliquid:intentbus-venue-hyperliquid"

say() { echo "images: $*" >&2; }

# One build at a time (two test sessions at once would write the same build folder).
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
if ! flock -w 900 9; then
  say "another image build has held $OUT/.lock for 15 minutes; giving up"
  exit 1
fi

wheelhouse() {
  mkdir -p "$OUT/wheels"
  local packages=() platforms=()
  for pair in $SERVICES; do packages+=(--package "${pair#*:}"); done
  "$UV" export --quiet --frozen --no-dev --no-emit-workspace --no-hashes "${packages[@]}" \
    -o "$OUT/constraints.txt"
  if ! cmp -s "$OUT/constraints.txt" "$OUT/downloaded.txt"; then
    for minor in $(seq 36 -1 5); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
    platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64)
    say "third-party wheels for CPython 3.11 into $OUT/wheels"
    "$UV" tool run --quiet --from 'pip>=24' pip download --quiet --no-deps \
      --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
      "${platforms[@]}" -r "$OUT/constraints.txt" -d "$OUT/wheels" 2> >(grep -v '^WARNING' >&2)
    cp "$OUT/constraints.txt" "$OUT/downloaded.txt"
  fi
  # Members' wheels again only when a file of theirs changed since the last build.
  local sources=(schemas libs/telemetry libs/bus libs/command libs/executor services)
  if [ -f "$OUT/members.stamp" ] && [ -z "$(find "${sources[@]}" -type f \
      -not -path '*/__pycache__/*' -newer "$OUT/members.stamp" -print -quit)" ]; then
    return
  fi
  say "workspace members' wheels"
  rm -f "$OUT"/wheels/intentbus_*.whl
  touch "$OUT/members.stamp.new"
  "$UV" build --quiet --all-packages --wheel -o "$OUT/wheels" >/dev/null 2>&1 \
    || "$UV" build --all-packages --wheel -o "$OUT/wheels"
  mv "$OUT/members.stamp.new" "$OUT/members.stamp"
}

build() {  # tag, dockerfile, context, build args...
  local tag=$1 file=$2 context=$3
  shift 3
  say "building $tag"
  local log
  log=$(mktemp)
  # The legacy builder's deprecation notice is noise; the log shows on failure.
  docker build -q -t "$tag" -f "$file" "$@" "$context" >"$log" 2>&1 \
    || { cat "$log" >&2; rm -f "$log"; return 1; }
  rm -f "$log"
}

standins() {
  mkdir -p "$OUT/nats"
  "$UV" run --quiet --frozen python -c \
    'import shutil; from intentbus.bus.embedded import find_nats_server as f; shutil.copy(f(), "'"$OUT"'/nats/")'
  cp deploy/local/nats/Dockerfile "$OUT/nats/"
  build "$NATS_STANDIN" "$OUT/nats/Dockerfile" "$OUT/nats" --build-arg BASE="$DEBIAN_IMAGE"
  build "$POSTGRES_STANDIN" deploy/local/postgres/Dockerfile deploy/local/postgres \
    --build-arg BASE="$DEBIAN_IMAGE"
}

wheelhouse
for pair in $SERVICES; do
  build "intentbus-${pair%%:*}:$TAG" deploy/Dockerfile.service . \
    --build-arg BASE="$BASE" --build-arg SERVICE="${pair#*:}"
done
standins
say "ready: $(for pair in $SERVICES; do printf 'intentbus-%s:%s ' "${pair%%:*}" "$TAG"; done)\
$NATS_STANDIN $POSTGRES_STANDIN"
