//go:build e2e

// Package pipelinerun holds the e2e tests of PipelineRuns in tenant
// workspaces.
package pipelinerun

import (
	"testing"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { framework.Main(m, &env) }
