#!/usr/bin/env bash
# `make run`: the driver in `all` mode on ./run/csi.sock, with a local S3 server (versitygw on
# 127.0.0.1) as its default S3 endpoint. Ctrl-C stops both.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "${S3FS_CSI_TOOLS_DIR:-$HOME/.cache/s3fs-csi/tools}/env.sh"
run="$root/run"
S3_PORT=${S3_PORT:-7070}
HTTP_PORT=${HTTP_PORT:-9808}
mkdir -p "$run/s3/data" "$run/s3/meta" "$run/kubelet" "$run/state"
install -d -m 0700 "$run/s3-secret" "$run/runtime"

# Local credentials, generated once and kept in files only (never on a command line).
if [ ! -s "$run/s3-secret/secretAccessKey" ]; then
  umask 077
  echo "AKIALOCAL$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)" > "$run/s3-secret/accessKeyID"
  od -An -N20 -tx1 /dev/urandom | tr -d ' \n' > "$run/s3-secret/secretAccessKey"
  echo "http://127.0.0.1:$S3_PORT" > "$run/s3-secret/endpoint"
  echo "us-east-1" > "$run/s3-secret/region"
fi

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

ROOT_ACCESS_KEY=$(cat "$run/s3-secret/accessKeyID") ROOT_SECRET_KEY=$(cat "$run/s3-secret/secretAccessKey") \
  "$VERSITYGW_BIN" --port "127.0.0.1:$S3_PORT" posix --sidecar "$run/s3/meta" "$run/s3/data" >"$run/s3.log" 2>&1 &
pids+=($!)

cat <<MSG
s3fs-csi (all mode) on unix://$run/csi.sock, S3 server http://127.0.0.1:$S3_PORT (data in $run/s3)
  liveness:   curl -s http://127.0.0.1:$HTTP_PORT/healthz
  readiness:  curl -s http://127.0.0.1:$HTTP_PORT/readyz
  metrics:    curl -s http://127.0.0.1:$HTTP_PORT/metrics
  exec probe: bin/s3fs-csi probe --endpoint unix://$run/csi.sock
  credentials for the S3 server: $run/s3-secret/ (accessKeyID, secretAccessKey)
Ctrl-C stops the driver and the S3 server.
MSG

"$root/bin/s3fs-csi" --mode all --endpoint "unix://$run/csi.sock" --nodeid "$(hostname)" \
  --http-endpoint "127.0.0.1:$HTTP_PORT" --kubelet-dir "$run/kubelet" --state-dir "$run/state" \
  --runtime-dir "$run/runtime" --s3-secret-dir "$run/s3-secret" --recovery false &
pids+=($!)
wait "${pids[-1]}"
