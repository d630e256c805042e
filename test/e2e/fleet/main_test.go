//go:build e2e

// Package fleet holds the e2e tests of runs on a fleet of workload
// clusters: spreading, failover when a cluster's apiserver stops, fair
// sharing under per-workspace limits.
package fleet

import (
	"testing"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { framework.Main(m, &env) }
