//go:build tools

// Package tools pins etcd for the test harness; it is built, never imported.
package tools

import _ "go.etcd.io/etcd/server/v3"
