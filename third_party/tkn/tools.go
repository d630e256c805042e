//go:build tools

// Package tools pins tkn, the Tekton CLI, installed by the dev stack as
// bin/tkn: tenants use it against the gateway.
package tools

import _ "github.com/tektoncd/cli/cmd/tkn"
