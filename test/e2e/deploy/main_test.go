//go:build e2e

// Package deploy tests the controller deployed with `ko apply -f config/`
// into the workload cluster.
package deploy

import (
	"testing"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { framework.Main(m, &env) }
