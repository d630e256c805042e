//go:build tools

// Package tools pins kube-router, run by the dev stack as the workload
// nodes' network policy enforcer.
package tools

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
