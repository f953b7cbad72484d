# syntax=docker/dockerfile:1
# check=error=true;experimental=all
#
# s3fs-csi image: one image for both roles. The controller runs as the non-root user below; the node
# plugin needs root and privilege (FUSE and propagated bind mounts), which the Helm chart grants per
# container (runAsUser: 0, privileged: true). Build: `make image` (BuildKit without a daemon or a
# registry, see docs/packaging.md; or docker/podman where present).

# NODE_IMAGE is the base of every stage: Node.js 24 LTS on Debian bookworm, slim.
ARG NODE_IMAGE=node:24-bookworm-slim

# build compiles the TypeScript sources; dev dependencies live only in this stage.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency needs an install script (no native modules). The optional build
# secret `build-ca` is a CA bundle npm trusts on top of the system's, for machines whose HTTPS goes
# through a CA of their own: mounted for this one command, never in a layer, absent in an ordinary
# build (then NODE_EXTRA_CA_CERTS is empty, which Node ignores).
RUN --mount=type=secret,id=build-ca \
    NODE_EXTRA_CA_CERTS="$(test -s /run/secrets/build-ca && echo /run/secrets/build-ca)" \
    npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# deps installs the production dependencies only.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=build-ca \
    NODE_EXTRA_CA_CERTS="$(test -s /run/secrets/build-ca && echo /run/secrets/build-ca)" \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
    && npm cache clean --force

# heal compiles the two single-threaded helpers, s3fs-csi-heal and s3fs-csi-mount.
FROM ${NODE_IMAGE} AS heal
# s3fs-csi-heal swaps a dead mount in a container (it enters the container's mount namespace, which
# setns refuses Node's multi-threaded process); s3fs-csi-mount makes bind mounts and unmounts with
# mount(2)/umount2(2), which Node cannot call, without a process start per call. The compiler stays
# in this stage; the binaries link the same bookworm libc as the runtime stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY native ./native
RUN cc -O2 -Wall -Wextra -o s3fs-csi-heal native/heal.c \
    && cc -O2 -Wall -Wextra -o s3fs-csi-mount native/mount.c native/spawn.c

# The runtime stage: compiled output, production dependencies, s3fs and fuse3.
FROM ${NODE_IMAGE}
# s3fs + fuse3 (fusermount3) mount the buckets; mount/umount (util-linux) and stat (coreutils) are there
# for operators at a shell (the driver uses s3fs-csi-mount); tini is PID 1; ca-certificates for HTTPS.
RUN apt-get update \
    && apt-get install -y --no-install-recommends s3fs fuse3 mount coreutils tini ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# The controller's identity (the chart's controller runs as 65532:65532 with a read-only root).
RUN groupadd --system --gid 65532 s3fs-csi \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin s3fs-csi

WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY package.json ./
COPY proto ./proto
COPY bin ./bin
COPY --from=heal /src/s3fs-csi-heal /src/s3fs-csi-mount /usr/local/bin/
# `s3fs-csi` on PATH: the entrypoint and the exec probe (`s3fs-csi probe`) both use it.
RUN ln -s /app/bin/s3fs-csi /usr/local/bin/s3fs-csi

# Node's module compile cache, filled now so a started container (and every exec probe) reuses V8's
# compiled code instead of compiling the sources again (bin/s3fs-csi enables it). Node keeps it per
# uid: once as root (node plugin, mounter) and once as 65532 (controller); read-only afterwards.
ENV S3FS_CSI_COMPILE_CACHE=/app/.compile-cache
RUN mkdir -m 1777 /app/.compile-cache \
    && node /app/dist/src/compile-cache.js \
    && setpriv --reuid=65532 --regid=65532 --clear-groups node /app/dist/src/compile-cache.js \
    && chmod 0755 /app/.compile-cache

ARG VERSION=0.1.0
ARG REVISION=unknown
# Labels last: VERSION and REVISION change between builds, and declared above they would be in the
# environment of every RUN, invalidating the cache of the apt layer each time.
LABEL org.opencontainers.image.title="s3fs-csi" \
      org.opencontainers.image.description="Kubernetes CSI driver mounting S3 buckets with s3fs-fuse" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/node:24-bookworm-slim"

USER 65532:65532
# tini as PID 1: it forwards SIGTERM to the driver (which drains in-flight calls itself) and reaps
# the orphans a mount driver leaves behind (statfs and mount helpers killed at a deadline, exited s3fs children),
# which node as PID 1 would not reap. Only the driver gets the signal, not its s3fs children: the
# driver decides how they stop.
ENTRYPOINT ["/usr/bin/tini", "--", "s3fs-csi"]
CMD ["--help"]
