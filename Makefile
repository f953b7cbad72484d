# s3fs-csi — the two commands for a fresh machine are `make run` and `make test`; both install what
# they need (scripts/install-tools.sh, cached by version under $(TOOLS_DIR)).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
TOOLS_DIR ?= $(HOME)/.cache/s3fs-csi/tools
export S3FS_CSI_TOOLS_DIR := $(TOOLS_DIR)
export PATH := $(TOOLS_DIR)/node-24/bin:$(PATH)
NODE := $(TOOLS_DIR)/node-24/bin/node
# Test files run one at a time: they mount FUSE filesystems and start servers, and 2 cores are shared.
TEST_FLAGS ?= --test-concurrency=1 --test-timeout=1200000
TESTS ?= dist/test/

.PHONY: all setup tools deps build test unit sanity run clean bench

all: build

tools:
	scripts/install-tools.sh node apt s3 sanity helm kube

# Dependencies from package-lock.json, installed by the machine's npm running on Node 24 (first on PATH).
node_modules/.installed: package.json package-lock.json | tools
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: node_modules/.installed

build: deps
	node_modules/.bin/tsc -p tsconfig.json

setup: tools deps

test: setup build
	$(NODE) --test $(TEST_FLAGS) $(TESTS)

unit: build
	$(NODE) --test $(TEST_FLAGS) dist/test/unit/

# The full csi-sanity suite in its three shapes (also part of `make test`); JUnit in build/sanity/.
sanity: setup build
	$(NODE) --test $(TEST_FLAGS) dist/test/sanity/

run: setup build
	scripts/run.sh

clean:
	rm -rf dist build run

# Benchmarks side by side with the peers (livenessprobe, grpcurl, s3fs by hand, the S3 SDK); prints
# a table, writes JSON to build/bench/. `make bench QUICK=1` is the short run (< 3 minutes).
# Not part of `make test` (only a seconds-long smoke run of the runner is).
bench: setup build
	scripts/install-tools.sh peers
	$(NODE) dist/bench/run.js $(if $(filter 1 true yes,$(QUICK)),--quick) $(if $(ONLY),--only $(ONLY))
