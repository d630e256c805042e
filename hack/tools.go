//go:build tools

// Package hack pins build-time tools and the Tekton binaries ko builds
// into images (so that go.sum covers them).
package hack

import (
	_ "github.com/tektoncd/pipeline/cmd/entrypoint"
	_ "github.com/tektoncd/pipeline/cmd/nop"
	_ "github.com/tektoncd/pipeline/cmd/sidecarlogresults"
	_ "github.com/tektoncd/pipeline/cmd/workingdirinit"
)
