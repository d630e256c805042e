//go:build e2e

// Package taskrun holds the e2e tests of TaskRuns in tenant workspaces,
// run by the kcp-aware controller on the workload cluster.
package taskrun

import (
	"testing"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { framework.Main(m, &env) }
