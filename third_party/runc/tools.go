//go:build tools

// Package tools pins runc, the OCI runtime the workload nodes' containerd
// shims run (runc 1.2 or later is what pods with hostUsers: false need).
package tools

import _ "github.com/opencontainers/runc"
