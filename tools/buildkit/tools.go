//go:build tools

// Package tools pins BuildKit's daemon and client, which `make image` uses to build the project's
// Dockerfile without a Docker daemon or a registry; they are built, never imported.
package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
