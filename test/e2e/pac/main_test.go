//go:build e2e

// Package pac tests Pipelines as Code on the real stack, against the
// stack's Gitea: tenants' Repositories, the one webhook intake at the
// gateway, PaC's flow creating PipelineRuns in the Repository's
// workspace, and statuses and comments back on the forge.
package pac

import (
	"testing"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { framework.Main(m, &env) }
