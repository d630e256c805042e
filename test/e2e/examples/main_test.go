//go:build e2e

// Package examples runs Tekton's own examples (examples/v1 of the pinned
// tektoncd/pipeline module) in a tenant workspace.
package examples

import (
	"testing"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { framework.Main(m, &env) }
