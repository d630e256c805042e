package pipelinerun

import (
	"context"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/reconciler/pipelinerun/resources"
	tektontaskrun "github.com/tektoncd/pipeline/pkg/reconciler/taskrun"
)

type reasonedError struct {
	reason v1.PipelineRunReason
	err    error
}

func (e reasonedError) Error() string { return e.err.Error() }

// validateSpec runs Tekton's checks of a PipelineRun against its
// pipeline, each failure with Tekton's reason. kcp has no Tekton admission
// webhook, so the PipelineRun's own validation runs here too.
func validateSpec(ctx context.Context, spec *v1.PipelineSpec, pr *v1.PipelineRun) error {
	// On copies: Tekton's validation fills object params with defaults in
	// place (harmless in its validating webhook, wrong in a controller).
	if ferr := pr.DeepCopy().Validate(ctx); ferr != nil {
		return reasonedError{v1.PipelineRunReasonFailedValidation, ferr}
	}
	if ferr := spec.DeepCopy().Validate(ctx); ferr != nil {
		return reasonedError{v1.PipelineRunReasonFailedValidation, ferr}
	}
	checks := []struct {
		reason v1.PipelineRunReason
		check  func() error
	}{
		{v1.PipelineRunReasonParameterMissing, func() error { return resources.ValidateRequiredParametersProvided(&spec.Params, &pr.Spec.Params) }},
		{v1.PipelineRunReasonParameterTypeMismatch, func() error { return resources.ValidateParamTypesMatching(spec, pr) }},
		{v1.PipelineRunReasonInvalidParamValue, func() error { return tektontaskrun.ValidateEnumParam(ctx, pr.Spec.Params, spec.Params) }},
		{v1.PipelineRunReasonObjectParameterMissKeys, func() error { return resources.ValidateObjectParamRequiredKeys(spec.Params, pr.Spec.Params) }},
		{v1.PipelineRunReasonParamArrayIndexingInvalid, func() error { return resources.ValidateParamArrayIndex(spec, pr.Spec.Params) }},
		{v1.PipelineRunReasonInvalidWorkspaceBinding, func() error { return resources.ValidateWorkspaceBindings(spec, pr) }},
		{v1.PipelineRunReasonInvalidTaskRunSpec, func() error { return resources.ValidateTaskRunSpecs(spec, pr) }},
	}
	for _, c := range checks {
		if err := c.check(); err != nil {
			return reasonedError{c.reason, err}
		}
	}
	return nil
}

// validateResolvedPipelineTask checks a pipeline task's params against its
// task, as the TaskRun reconciler would.
func validateResolvedPipelineTask(ctx context.Context, rpt *resources.ResolvedPipelineTask) error {
	return tektontaskrun.ValidateResolvedTask(ctx, rpt.PipelineTask.Params, rpt.PipelineTask.Matrix, rpt.ResolvedTask)
}
