//go:build e2e

// Package isolation holds the e2e tests of tenant isolation on the
// workload clusters, written as a hostile tenant would try: pods that
// would reach the node, and the platform's level per tenant.
package isolation

import (
	"testing"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { framework.Main(m, &env) }
