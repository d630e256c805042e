//go:build e2e

// Package gateway tests the tenants' front door on the real stack: tkn
// and kubectl against a tenant kubeconfig, pods and logs of runs, access
// decided by the workspace's RBAC, the gateway going away mid-follow.
package gateway

import (
	"testing"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { framework.Main(m, &env) }
