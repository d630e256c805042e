//go:build tools

// Package tools pins Tekton Results' API server (cmd/api) and CLI
// (cmd/tkn-results), which the dev stack builds and runs.
package tools

import (
	_ "github.com/tektoncd/results/cmd/api"
	_ "github.com/tektoncd/results/cmd/tkn-results"
)
