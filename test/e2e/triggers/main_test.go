//go:build e2e

// Package triggers tests Tekton Triggers on the real stack: its types
// served in every tenant workspace from the provider's export, each
// workspace's objects its own.
package triggers

import (
	"testing"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { framework.Main(m, &env) }
