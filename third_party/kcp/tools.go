//go:build tools

// Package tools pins the kcp server binary built by the dev stack.
package tools

import _ "github.com/kcp-dev/kcp/cmd/kcp"
