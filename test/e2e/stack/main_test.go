//go:build e2e

// Package stack holds the e2e tests of the local real stack itself.
package stack

import (
	"testing"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { framework.Main(m, &env) }
