//go:build e2e

// Package results tests Tekton Results on the real stack: every finished
// run of every workspace archived with its logs by the controller's
// recorder, read back by each tenant through the gateway, one tenant's
// runs out of another's reach. TestOutageLosesNothing and TestLogsInS3
// restart the Results API and run alone, first; the others are parallel
// and run beside each other after them.
package results

import (
	"testing"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { framework.Main(m, &env) }
