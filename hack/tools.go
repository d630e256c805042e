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
	// Pipelines as Code's Repository CRD (config/300-repositories.yaml).
	_ "github.com/openshift-pipelines/pipelines-as-code/pkg/apis/pipelinesascode/v1alpha1"
)
