//go:build tools

// Package tools pins upstream Tekton's controller command.
package tools

import _ "github.com/tektoncd/pipeline/cmd/controller"
