//go:build tools

// Package tools pins containerd 2 and its runc shim, run by the dev stack on
// the workload nodes (containerd 2 and runc 1.2 or later are what pods with
// hostUsers: false need).
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
)
