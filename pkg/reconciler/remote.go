package reconciler

import (
	"context"
	"fmt"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/reconciler/apiserver"
	"github.com/tektoncd/pipeline/pkg/reconciler/pipelinerun/pipelinespec"
	"github.com/tektoncd/pipeline/pkg/reconciler/taskrun/resources"
	"github.com/tektoncd/pipeline/pkg/trustedresources"
)

// ValidatedTask validates what get returns, a remote Task, as Tekton's
// webhook would: kcp runs none, and the dry-run create Tekton's
// resolution code issues checks the schema only.
func ValidatedTask(get resources.GetTask) resources.GetTask {
	return func(ctx context.Context, name string) (*v1.Task, *v1.RefSource, *trustedresources.VerificationResult, error) {
		task, source, vr, err := get(ctx, name)
		if err != nil {
			return nil, nil, nil, err
		}
		task.SetDefaults(ctx)
		if ferr := task.DeepCopy().Validate(ctx); ferr != nil {
			return nil, nil, nil, fmt.Errorf("%w: remote task %q is invalid: %w", apiserver.ErrReferencedObjectValidationFailed, task.Name, ferr)
		}
		return task, source, vr, nil
	}
}

// ValidatedPipeline is ValidatedTask for a remote Pipeline.
func ValidatedPipeline(get pipelinespec.GetPipeline) pipelinespec.GetPipeline {
	return func(ctx context.Context, name string) (*v1.Pipeline, *v1.RefSource, *trustedresources.VerificationResult, error) {
		p, source, vr, err := get(ctx, name)
		if err != nil {
			return nil, nil, nil, err
		}
		p.SetDefaults(ctx)
		if ferr := p.DeepCopy().Validate(ctx); ferr != nil {
			return nil, nil, nil, fmt.Errorf("%w: remote pipeline %q is invalid: %w", apiserver.ErrReferencedObjectValidationFailed, p.Name, ferr)
		}
		return p, source, vr, nil
	}
}
