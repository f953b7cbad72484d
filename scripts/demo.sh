#!/usr/bin/env bash
# `make demo`: a node plugin restart without losing mounts (see scripts/demo.ts). Needs root and
# /dev/fuse (it mounts FUSE filesystems). `scripts/demo.sh --local` runs without the Kubernetes API.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "${S3FS_CSI_TOOLS_DIR:-$HOME/.cache/s3fs-csi/tools}/env.sh"
exec node "$root/dist/scripts/demo.js" "$@"
