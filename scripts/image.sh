#!/usr/bin/env bash
# Builds the project's container image from its own Dockerfile with BuildKit's daemon (OCI worker,
# runc), without a Docker daemon and without a registry: the base image `node:24-bookworm-slim` is
# made locally by scripts/image-base.sh and handed to the build as a named context. The result is a
# `docker save`-format tar (loads with `docker load` and `ctr -n k8s.io images import`).
#
#   scripts/image.sh          env: IMAGE (ghcr.io/s3fs-csi/s3fs-csi), IMAGE_TAG (package.json version),
#                             IMAGE_CACHE_DIR, BUILD_CA (CA bundle for HTTPS in the build; "" = none),
#                             IMAGE_REBUILD=1 (ignore the cached tar)
#
# Prints `ref=<image ref>` and `tar=<path>` on stdout; progress goes to stderr. Cached by a hash of
# every input (Dockerfile, .dockerignore, package*.json, tsconfig.json, src/, proto/, bin/, native/,
# these scripts, the ref and the revision): unchanged inputs return the cached tar at once. The base
# image is cached by a hash of its recipe. One build at a time per cache directory (a lock file).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
TOOLS_DIR=${TOOLS_DIR:-${S3FS_CSI_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/s3fs-csi/tools}}
BUILDKIT_VERSION=v0.34.2
BUILDKITD=${BUILDKITD_BIN:-$TOOLS_DIR/buildkitd-$BUILDKIT_VERSION/buildkitd}
BUILDCTL=${BUILDCTL_BIN:-$TOOLS_DIR/buildctl-$BUILDKIT_VERSION/buildctl}
RUNC=${RUNC_BIN:-$(command -v runc || echo /usr/sbin/runc)}
CACHE=${IMAGE_CACHE_DIR:-$TOOLS_DIR/image}
version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json)
IMAGE=${IMAGE:-ghcr.io/s3fs-csi/s3fs-csi}
IMAGE_TAG=${IMAGE_TAG:-$version}
ref="$IMAGE:$IMAGE_TAG"
BUILD_CA=${BUILD_CA-/etc/ssl/certs/ca-certificates.crt}

log() { printf '[image] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

for b in "$BUILDKITD" "$BUILDCTL"; do [ -x "$b" ] || die "$b is missing: run scripts/install-tools.sh image"; done
for b in "$RUNC" debootstrap; do command -v "$b" >/dev/null || die "$b is missing: run scripts/install-tools.sh image"; done
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, and buildkitd's OCI worker runs runc)"

# The files the build reads, in a stable order: the build context (.dockerignore lets in exactly
# these) and the recipes of the base image and of this build.
inputs=(Dockerfile .dockerignore package.json package-lock.json tsconfig.json src proto bin native scripts/image-base.sh scripts/image.sh)
[ -f native/heal.c ] || die "native/heal.c is missing"
hash_files() { find "$@" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16; }
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] && [ -n "$(git status --porcelain -- "${inputs[@]}" 2>/dev/null)" ]; then revision="$revision-dirty"; fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -w 1800 9 || die "another image build holds $CACHE/.lock"

# --- base image (cached by its recipe) --------------------------------------------------------------
base_key=$(hash_files scripts/image-base.sh)
base="$CACHE/base/$base_key"
if [ ! -f "$base/manifest-digest" ]; then
  start=$SECONDS
  log "making the base image (node:24-bookworm-slim stand-in) in $base"
  scripts/image-base.sh "$base"
  log "base image made in $((SECONDS - start)) s"
fi
# Bases of other recipes may still serve other checkouts sharing this cache: keep the three used last.
touch "$base"
ls -1dt "$CACHE"/base/*/ | tail -n +4 | xargs -r rm -rf
base_digest=$(cat "$base/manifest-digest")

# --- the image (cached by every input) ---------------------------------------------------------------
key=$( { hash_files "${inputs[@]}"; echo "$ref $revision $base_digest"; } | sha256sum | cut -c1-16)
out="$CACHE/driver/$(printf '%s' "$ref" | tr '/:@' '___')-$key.tar"
if [ -s "$out" ] && [ "${IMAGE_REBUILD:-0}" != 1 ]; then
  log "$ref unchanged (inputs $key): $out"
  printf 'ref=%s\ntar=%s\n' "$ref" "$out"
  exit 0
fi

state="$CACHE/buildkit"          # BuildKit's root: its layer cache makes rebuilds fast
run="$CACHE/buildkitd-run"       # socket, config and log of this run
mkdir -p "$state" "$run" "$CACHE/driver"
sock="$run/buildkitd.sock"
cat > "$run/buildkitd.toml" <<EOF
# Written by scripts/image.sh: nothing under /run, no CDI device scan, a bounded layer cache.
[otel]
  socketPath = "$run/otel-grpc.sock"
[cdi]
  disabled = true
[worker.oci]
  maxUsedSpace = "8GB"
EOF

pid=
stop_buildkitd() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { log "buildkitd did not stop on SIGTERM; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
    wait "$pid" 2>/dev/null || true
  fi
  pid=
  # Whatever the daemon or a build container left mounted below the cache (deepest first).
  local m
  while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(awk -v c="$CACHE/" 'index($5, c) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  rm -f "$sock" "$run/otel-grpc.sock"
}
cleanup() {
  if [ -n "$pid" ]; then stop_buildkitd; fi
  rm -f "$out.tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$SECONDS
"$BUILDKITD" --config "$run/buildkitd.toml" --root "$state" --addr "unix://$sock" \
  --oci-worker=true --containerd-worker=false --oci-worker-binary="$RUNC" \
  --oci-worker-snapshotter=overlayfs --oci-worker-net=host >"$run/buildkitd.log" 2>&1 9>&- &
pid=$!
# Ready when it answers a request on its socket.
for _ in $(seq 1 600); do
  kill -0 "$pid" 2>/dev/null || { tail -n 20 "$run/buildkitd.log" >&2; die "buildkitd exited"; }
  "$BUILDCTL" --addr "unix://$sock" debug workers >/dev/null 2>&1 && break
  sleep 0.1
done
"$BUILDCTL" --addr "unix://$sock" debug workers >/dev/null 2>&1 || { tail -n 20 "$run/buildkitd.log" >&2; die "buildkitd did not answer within 60 s"; }

secret=()
if [ -n "$BUILD_CA" ]; then
  [ -s "$BUILD_CA" ] || die "BUILD_CA=$BUILD_CA is not a file (BUILD_CA= disables it)"
  secret=(--secret "id=build-ca,src=$BUILD_CA")
fi
log "building $ref (inputs $key, revision $revision)"
# --opt cmdline: the Dockerfile frontend built into BuildKit, instead of fetching the one the
# `# syntax=` line names from a registry. The named context replaces node:24-bookworm-slim.
"$BUILDCTL" --addr "unix://$sock" build --progress plain \
  --frontend dockerfile.v0 --opt cmdline=docker/dockerfile:1 \
  --local context="$here" --local dockerfile="$here" \
  --oci-layout "base=$base" --opt "context:node:24-bookworm-slim=oci-layout://base@sha256:$base_digest" \
  --opt "build-arg:VERSION=$version" --opt "build-arg:REVISION=$revision" \
  "${secret[@]}" \
  --output "type=docker,name=$ref,dest=$out.tmp" >&2
mv "$out.tmp" "$out"
stop_buildkitd
log "built $ref in $((SECONDS - start)) s: $out ($(( $(stat -c %s "$out") / 1048576 )) MiB)"
# Keep the three newest image tars.
ls -1t "$CACHE"/driver/*.tar 2>/dev/null | tail -n +4 | xargs -r rm -f
printf 'ref=%s\ntar=%s\n' "$ref" "$out"
