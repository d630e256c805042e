//go:build tools

// Package hack pins build-time tools and the Tekton binaries ko builds
// into images (so that go.sum covers them).
package hack

import (
	_ "github.com/tektoncd/pipeline/cmd/entrypoint"
	_ "github.com/tektoncd/pipeline/cmd/nop"
	_ "github.com/tektoncd/pipeline/cmd/sidecarlogresults"
	_ "github.com/tektoncd/pipeline/cmd/workingdirinit"
	// Triggers' CRDs (config/300-*.yaml) are the source of its exported
	// schemas (make generate).
	_ "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
)
