# s3fs-csi — the two commands for a fresh machine are `make run` and `make test`; both install what
# they need (scripts/install-tools.sh, cached by version under $(TOOLS_DIR)).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
TOOLS_DIR ?= $(HOME)/.cache/s3fs-csi/tools
export S3FS_CSI_TOOLS_DIR := $(TOOLS_DIR)
export PATH := $(TOOLS_DIR)/node-24/bin:$(PATH)
NODE := $(TOOLS_DIR)/node-24/bin/node
# Test files run one at a time: they mount FUSE filesystems and start servers, and 2 cores are shared.
# A test that hangs fails after 10 minutes, and a file whose tests are done exits even if something
# it started still holds its event loop, so one hang can never hold the whole run past CI's limit.
TEST_FLAGS ?= --test-concurrency=1 --test-timeout=600000 --test-force-exit
# Node 24's runner takes files or globs (a bare directory is read as a module): pure logic, the
# integration tests, the fault suite, the full csi-sanity suite, and last the end-to-end tests under
# a real kubelet (docs/e2e.md; alone with `make e2e`).
E2E_TESTS ?= 'dist/test/e2e/**/*.test.js'
TESTS ?= 'dist/test/unit/**/*.test.js' 'dist/test/integration/**/*.test.js' 'dist/test/faults/**/*.test.js' 'dist/test/sanity/**/*.test.js' $(E2E_TESTS)

.PHONY: all setup tools deps build native test unit sanity e2e run clean bench image chart-lint chart-test demo proto-types

all: build

tools:
	scripts/install-tools.sh node apt s3 sanity helm chart promtool kube node-e2e image

# Dependencies from package-lock.json, installed by the machine's npm running on Node 24 (first on PATH).
node_modules/.installed: package.json package-lock.json | tools
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: node_modules/.installed

build: deps native
	rm -rf dist  # no stale output of deleted sources for the test globs to find
	node_modules/.bin/tsc -p tsconfig.json

# The two single-threaded helpers (docs/kernel.md): s3fs-csi-heal heals containers' mount namespaces
# in place (found with --heal-helper: s3fs-csi-heal on PATH, else this built copy); s3fs-csi-mount
# makes the bind mounts and unmounts with mount(2)/umount2(2), started once per process (on PATH,
# else this built copy).
CC ?= cc
HEAL_HELPER := build/native/s3fs-csi-heal
MOUNT_HELPER := build/native/s3fs-csi-mount
native: $(HEAL_HELPER) $(MOUNT_HELPER)
$(HEAL_HELPER): native/heal.c
	mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -Werror -o $@ $<
$(MOUNT_HELPER): native/mount.c native/spawn.c native/spawn.h
	mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -Werror -o $@ native/mount.c native/spawn.c

setup: tools deps

# TypeScript types of every proto under proto/ into src/generated/ (committed), generated with the
# loader options the driver runs with. Run after changing or adding a proto; test/unit/proto-types.test.ts
# fails while src/generated/ differs from what this makes.
proto-types: build
	$(NODE) dist/scripts/proto-types.js

# Whole-run budget below CI's 90 minutes (set-up included): past it the runner is stopped with SIGTERM
# and still prints which tests were running, instead of the run being cut off without a summary.
TEST_BUDGET ?= 75m
test: setup build
	timeout --signal=TERM --kill-after=60s $(TEST_BUDGET) $(NODE) --test $(TEST_FLAGS) $(TESTS)

unit: build
	$(NODE) --test $(TEST_FLAGS) 'dist/test/unit/**/*.test.js'

# The full csi-sanity suite in its three shapes (also part of `make test`); JUnit in build/sanity/.
sanity: setup build
	$(NODE) --test $(TEST_FLAGS) 'dist/test/sanity/**/*.test.js'

# A real single node (etcd, kube-apiserver, controller-manager, scheduler, containerd, runc, kubelet),
# the image built from the Dockerfile, the chart installed with helm, real pods (docs/e2e.md). Root.
e2e: setup build
	$(NODE) --test $(TEST_FLAGS) $(E2E_TESTS)

run: setup build
	scripts/run.sh

# Kill the driver and its s3fs, start it again, watch the mounts come back (real S3 server, real
# kube-apiserver, real FUSE; needs root). DEMO_ARGS=--local: recovery without the Kubernetes API.
demo: setup build
	scripts/demo.sh $(DEMO_ARGS)

clean:
	rm -rf dist build run

# Benchmarks side by side with the peers (livenessprobe, grpcurl, s3fs by hand, the S3 SDK); prints
# a table, writes JSON to build/bench/. `make bench QUICK=1` is the short run (< 3 minutes).
# Not part of `make test` (only a seconds-long smoke run of the runner is).
bench: setup build
	scripts/install-tools.sh peers
	$(NODE) dist/bench/run.js $(if $(filter 1 true yes,$(QUICK)),--quick) $(if $(ONLY),--only $(ONLY))

# --- packaging (docs/packaging.md) ------------------------------------------------------------------
HELM := $(TOOLS_DIR)/helm-v3.21.4/helm
DOCKERFILE_LINT := $(TOOLS_DIR)/dockerfile-lint-v0.34.2/dockerfile-lint
IMAGE ?= ghcr.io/s3fs-csi/s3fs-csi
IMAGE_TAG ?= $(shell sed -n 's/^  "version": "\(.*\)",$$/\1/p' package.json)
# Empty: BuildKit (below). docker or podman: `make image CONTAINER_ENGINE=docker` builds with that engine.
CONTAINER_ENGINE ?=

# The container image from the Dockerfile with BuildKit's own daemon (runc worker) and a locally made
# Debian bookworm + Node 24 base: no Docker daemon, no registry (scripts/image.sh, docs/packaging.md).
# Writes a docker-save tar under $(TOOLS_DIR)/image/driver/ (`docker load` / `ctr images import`) and
# prints its path; unchanged inputs return the cached tar at once. Needs root.
image:
ifeq ($(strip $(CONTAINER_ENGINE)),)
	scripts/install-tools.sh image
	IMAGE=$(IMAGE) IMAGE_TAG=$(IMAGE_TAG) TOOLS_DIR=$(TOOLS_DIR) scripts/image.sh
else
	@$(CONTAINER_ENGINE) info >/dev/null 2>&1 || { echo "make image: $(CONTAINER_ENGINE) cannot reach a daemon/engine to build with" >&2; exit 1; }
	$(CONTAINER_ENGINE) build --build-arg VERSION=$(IMAGE_TAG) --build-arg REVISION=$$(git rev-parse HEAD) -t $(IMAGE):$(IMAGE_TAG) .
endif

# helm lint --strict on the chart and BuildKit's linter on the Dockerfile.
chart-lint:
	scripts/install-tools.sh helm chart
	$(HELM) lint --strict --kube-version 1.34.4 charts/s3fs-csi
	$(DOCKERFILE_LINT) Dockerfile

# The chart and image tests only (they are part of `make test` too): render, RBAC, server-side dry run, image.
chart-test: setup build
	$(NODE) --test $(TEST_FLAGS) dist/test/integration/chart.test.js dist/test/integration/chart-alerts.test.js dist/test/integration/chart-rbac.test.js dist/test/integration/chart-dryrun.test.js dist/test/integration/chart-image.test.js
