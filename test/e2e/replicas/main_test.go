//go:build e2e

// Package replicas holds the e2e tests of the controller's replicas:
// leader election on a Lease in the provider workspace, and failover when
// the leader dies.
package replicas

import (
	"testing"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { framework.Main(m, &env) }
