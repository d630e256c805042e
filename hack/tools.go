//go:build tools

// Package hack pins build-time tools of the product module.
package hack

import (
	_ "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
)
