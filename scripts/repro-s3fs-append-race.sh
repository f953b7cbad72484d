#!/usr/bin/env bash
# Reproduces, with s3fs alone (no driver, no kubelet), the stale reads docs/node.md describes under
# "s3fs's consistency": one process appends a line every 100 ms and reads it back while two others
# read the same file every 200 ms. READ_FILE=other makes the readers read another file of the same
# mount instead (then the appender's read-backs do not fail). Usage, as root, after `make setup`:
#   scripts/repro-s3fs-append-race.sh [appends]          (default 1500, ~3 minutes)
set -euo pipefail
N=${1:-1500}
TOOLS_DIR=${S3FS_CSI_TOOLS_DIR:-$HOME/.cache/s3fs-csi/tools}
GW_BIN=$TOOLS_DIR/versitygw-v1.7.0/versitygw
D=$(mktemp -d /tmp/s3fs-append-race.XXXXXX)
PORT=$((20000 + RANDOM % 20000))
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  mountpoint -q "$D/mnt" && umount "$D/mnt" 2>/dev/null || umount -l "$D/mnt" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
mkdir -p "$D/data/bucket" "$D/meta" "$D/mnt"
# Test-owned server on loopback; its credentials are made up for this run.
ROOT_ACCESS_KEY=AKIAREPRO ROOT_SECRET_KEY=repro-secret "$GW_BIN" --port "127.0.0.1:$PORT" posix --sidecar "$D/meta" "$D/data" >"$D/gw.log" 2>&1 &
pids+=($!)
umask 077; echo "AKIAREPRO:repro-secret" >"$D/passwd"; umask 022
until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do sleep 0.1; done
# The options the driver gives s3fs (src/mount/spec.ts).
s3fs bucket "$D/mnt" -f -o "allow_other,complement_stat,mp_umask=0022,parallel_count=16,use_path_request_style,passwd_file=$D/passwd,endpoint=us-east-1,url=http://127.0.0.1:$PORT" >"$D/s3fs.log" 2>&1 &
pids+=($!)
until mountpoint -q "$D/mnt"; do sleep 0.1; done
echo other >"$D/mnt/other.txt"
read_file=$D/mnt/appended.log
[ "${READ_FILE:-appended}" = other ] && read_file=$D/mnt/other.txt
(
  e=0
  for n in $(seq "$N"); do
    echo "line $n" >>"$D/mnt/appended.log"
    got=$(tail -n 1 "$D/mnt/appended.log" 2>/dev/null | tr -d '\0') || true
    if [ "$got" != "line $n" ]; then e=$((e + 1)); echo "append $n read back: '$got'"; fi
    sleep 0.1
  done
  echo "appends: $N, wrong read-backs: $e"
) &
writer=$!
for _ in 1 2; do
  ( while kill -0 "$writer" 2>/dev/null; do tail -n 1 "$read_file" >/dev/null 2>&1 || true; sleep 0.2; done ) &
  pids+=($!)
done
wait "$writer"
