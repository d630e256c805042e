package pipelinerun

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/pipeline/pkg/apis/config"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/reconciler/apiserver"
	"github.com/tektoncd/pipeline/pkg/reconciler/pipeline/dag"
	"github.com/tektoncd/pipeline/pkg/reconciler/pipelinerun/pipelinespec"
	"github.com/tektoncd/pipeline/pkg/reconciler/pipelinerun/resources"
	"github.com/tektoncd/pipeline/pkg/reconciler/volumeclaim"
	"github.com/tektoncd/pipeline/pkg/remote"
	resolutioncommon "github.com/tektoncd/pipeline/pkg/resolution/common"
	"go.uber.org/zap"
	"knative.dev/pkg/apis"
	"knative.dev/pkg/controller"
	"knative.dev/pkg/kmap"
	"knative.dev/pkg/kmeta"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
	"github.com/pipelines-service/pipelines-service/pkg/resolution"
	"github.com/pipelines-service/pipelines-service/pkg/tenantconfig"
)

// kind is the PipelineRun's part of the reconcile skeleton
// (reconciler.Skeleton): get, decode, write and emit are shared by every
// kind.
type kind struct{ c *Controller }

func (kind) New() *v1.PipelineRun          { return &v1.PipelineRun{} }
func (kind) Status(pr *v1.PipelineRun) any { return &pr.Status }
func (kind) Succeeded(pr *v1.PipelineRun) *apis.Condition {
	return pr.Status.GetCondition(apis.ConditionSucceeded)
}

// Gone: its TaskRuns go with it (owner references, kcp's garbage
// collector).
func (kind) Gone(context.Context, string) error { return nil }

// Undecodable: the PipelineRun fails validation, keeping what the tenant
// wrote.
func (k kind) Undecodable(ctx context.Context, o *reconciler.Object, err error) error {
	return k.c.failUndecodable(ctx, o.Cluster, o.Unstructured, err)
}

// FinalizeKind: nothing of a PipelineRun's own is on a workload cluster.
func (kind) FinalizeKind(context.Context, *reconciler.Object, *v1.PipelineRun) error { return nil }

func (k kind) ReconcileKind(ctx context.Context, o *reconciler.Object, pr *v1.PipelineRun) (time.Duration, error) {
	ctx, cfgErr := k.c.config.WithConfig(ctx, o.Cluster)
	r := &run{c: k.c, log: o.Log, cluster: o.Cluster, pr: pr, cfgErr: cfgErr}
	return r.reconcile(ctx)
}

// run is one reconcile of one PipelineRun.
type run struct {
	c       *Controller
	log     *zap.SugaredLogger
	cluster logicalcluster.Name
	pr      *v1.PipelineRun
	// cfgErr says why the workspace's Tekton configuration is unusable.
	cfgErr error
}

// reconcile mirrors Tekton's PipelineRun reconciler.
func (r *run) reconcile(ctx context.Context) (time.Duration, error) {
	pr := r.pr
	if !pr.IsDone() && pr.HasTimedOutForALongTime(ctx, r.c.clock) && !pr.IsTimeoutConditionSet() {
		return 0, r.timeoutPipelineRun(ctx)
	}
	if !pr.HasStarted() && !pr.IsPending() {
		pr.Status.InitializeConditions(r.c.clock)
		if pr.Status.StartTime.Sub(pr.CreationTimestamp.Time) < 0 {
			pr.Status.StartTime = pr.CreationTimestamp.DeepCopy()
		}
	}
	if pr.IsDone() {
		return 0, nil
	}
	if err := propagatePipelineNameLabel(pr); err != nil {
		pr.Status.MarkFailed(v1.PipelineRunReasonFailedValidation.String(), "%s", err)
		return 0, controller.NewPermanentError(err)
	}
	if pr.IsCancelled() {
		return 0, r.cancelPipelineRun(ctx)
	}
	if r.cfgErr != nil && len(pr.Status.ChildReferences) == 0 {
		pr.Status.MarkFailed(tenantconfig.ReasonInvalidConfiguration, "the workspace's Tekton configuration is invalid: %s", r.cfgErr)
		return 0, controller.NewPermanentError(r.cfgErr)
	}
	r.recoverChildReferences()
	var stranded error
	if !pr.IsPending() {
		wait, err := r.place()
		if errors.As(err, new(strandedError)) {
			stranded, err = err, nil
		}
		if err != nil || wait > 0 {
			return wait, err
		}
	}
	if err := r.run(ctx); err != nil {
		return 0, err
	}
	if stranded != nil && !pr.IsDone() {
		pr.Status.MarkRunning(placement.ReasonWaitingForWorkloadCluster, "%s", stranded)
		return waitRequeue, nil
	}
	return r.requeueAfter(ctx), nil
}

// propagatePipelineNameLabel sets tekton.dev/pipeline as Tekton does
// (propagatePipelineNameLabelToPipelineRun, unexported there).
func propagatePipelineNameLabel(pr *v1.PipelineRun) error {
	if pr.Labels == nil {
		pr.Labels = map[string]string{}
	}
	if _, ok := pr.Labels[pipeline.PipelineLabelKey]; ok {
		return nil
	}
	switch {
	case pr.Spec.PipelineRef != nil && pr.Spec.PipelineRef.Name != "":
		pr.Labels[pipeline.PipelineLabelKey] = pr.Spec.PipelineRef.Name
	case pr.Spec.PipelineSpec != nil:
		pr.Labels[pipeline.PipelineLabelKey] = pr.Name
	case pr.Spec.PipelineRef != nil && pr.Spec.PipelineRef.Resolver != "":
		pr.Labels[pipeline.PipelineLabelKey] = pr.Name
		// The cluster resolver names the Pipeline.
		var kind, name string
		for _, p := range pr.Spec.PipelineRef.Params {
			switch p.Name {
			case "kind":
				kind = p.Value.StringVal
			case "name":
				name = p.Value.StringVal
			}
		}
		if kind == "pipeline" {
			pr.Labels[pipeline.PipelineLabelKey] = name
		}
	default:
		return fmt.Errorf("pipelineRun %s not providing PipelineRef or PipelineSpec", pr.Name)
	}
	return nil
}

// run resolves, validates and schedules the pipeline.
func (r *run) run(ctx context.Context) error {
	pr := r.pr
	pr.SetDefaults(ctx)
	if pr.IsPending() {
		pr.Status.MarkRunning(v1.PipelineRunReasonPending.String(), "PipelineRun %q is pending", pr.Name)
		return nil
	}
	getPipeline, err := r.pipelineGetter(ctx)
	if err != nil {
		return err
	}
	meta, spec, err := pipelinespec.GetPipelineData(ctx, pr, getPipeline)
	switch {
	case err == nil:
	case errors.Is(err, remote.ErrRequestInProgress):
		pr.Status.MarkRunning(v1.PipelineRunReasonResolvingPipelineRef.String(), "PipelineRun %s/%s awaiting remote resource", pr.Namespace, pr.Name)
		return nil
	case errors.Is(err, apiserver.ErrCouldntValidateObjectRetryable), resolutioncommon.IsErrTransient(err):
		return err
	case resolution.IsHostNotAllowed(err):
		pr.Status.MarkFailed(resolution.ReasonHostNotAllowed, "Error retrieving pipeline for pipelinerun %s/%s: %s", pr.Namespace, pr.Name, err)
		return controller.NewPermanentError(err)
	case errors.Is(err, apiserver.ErrReferencedObjectValidationFailed), errors.Is(err, apiserver.ErrCouldntValidateObjectPermanent):
		pr.Status.MarkFailed(v1.PipelineRunReasonFailedValidation.String(), "Failed dryRunValidation for PipelineRun %s: %s", pr.Name, err)
		return controller.NewPermanentError(err)
	case err != nil:
		pr.Status.MarkFailed(v1.PipelineRunReasonCouldntGetPipeline.String(),
			"Error retrieving pipeline for pipelinerun %s/%s: %s", pr.Namespace, pr.Name, err)
		return controller.NewPermanentError(err)
	}
	if pr.Status.PipelineSpec == nil {
		pr.Status.PipelineSpec = spec
		if meta.RefSource != nil && config.FromContextOrDefaults(ctx).FeatureFlags.EnableProvenanceInStatus {
			if pr.Status.Provenance == nil {
				pr.Status.Provenance = &v1.Provenance{}
			}
			pr.Status.Provenance.RefSource = meta.RefSource
		}
		pr.Labels = kmap.Union(meta.Labels, pr.Labels)
		pr.Labels["tekton.dev/pipeline"] = meta.Name
		pr.Annotations = kmap.Union(kmap.ExcludeKeys(meta.Annotations, "kubectl.kubernetes.io/last-applied-configuration"), pr.Annotations)
	}
	if err := unservedPipelineFeature(spec); err != nil {
		return r.fail(v1.PipelineRunReasonCouldntGetTask, "Pipeline %s/%s can't be Run: %s", err)
	}
	tasksGraph, err := dag.Build(v1.PipelineTaskList(spec.Tasks), v1.PipelineTaskList(spec.Tasks).Deps())
	if err != nil {
		return r.fail(v1.PipelineRunReasonInvalidGraph, "PipelineRun %s/%s's Pipeline DAG is invalid: %s", err)
	}
	finallyGraph, err := dag.Build(v1.PipelineTaskList(spec.Finally), map[string][]string{})
	if err != nil {
		return r.fail(v1.PipelineRunReasonInvalidGraph, "PipelineRun %s/%s's Pipeline DAG is invalid for finally clause: %s", err)
	}
	if err := validateSpec(ctx, spec, pr); err != nil {
		var reasoned reasonedError
		errors.As(err, &reasoned)
		return r.fail(reasoned.reason, "PipelineRun %s/%s is invalid: %s", reasoned.err)
	}
	resources.ApplyParametersToWorkspaceBindings(pr)
	spec, err = resources.ApplyParameters(spec, pr)
	if err != nil {
		return r.fail(v1.PipelineRunReasonFailedValidation, "PipelineRun %s/%s: applying parameters: %s", err)
	}
	spec = resources.ApplyContexts(spec, meta.Name, pr)
	spec = resources.ApplyWorkspaces(spec, pr)
	pr.Status.PipelineSpec = spec
	for _, pt := range append(append([]v1.PipelineTask{}, spec.Tasks...), spec.Finally...) {
		if ferr := pt.ValidateOnError(ctx); ferr != nil {
			return r.fail(v1.PipelineRunReasonFailedValidation, "PipelineRun %s/%s is invalid: %s", ferr)
		}
	}

	state, err := r.resolveState(ctx, spec)
	if errors.Is(err, remote.ErrRequestInProgress) {
		pr.Status.MarkRunning(v1.TaskRunReasonResolvingTaskRef, "PipelineRun %s/%s awaiting remote resource", pr.Namespace, pr.Name)
		return nil
	}
	if err != nil {
		return err
	}
	facts := r.facts(ctx, state, tasksGraph, finallyGraph)
	for _, rpt := range facts.State {
		if rpt.ResolvedTask == nil {
			continue
		}
		if err := validateResolvedPipelineTask(ctx, rpt); err != nil {
			return r.fail(v1.PipelineRunReasonFailedValidation, "PipelineRun %s/%s: %s", err)
		}
	}
	for _, rpt := range facts.State {
		if err := rpt.EvaluateCEL(); err != nil {
			return r.fail(v1.PipelineRunReasonCELEvaluationFailed, "PipelineRun %s/%s: error evaluating CEL: %s", err)
		}
	}
	if pr.IsGracefullyCancelled() && facts.IsRunning() {
		if err := r.cancelChildren(ctx, nil, v1.TaskRunCancelledByPipelineMsg); err != nil {
			pr.Status.MarkRunning(v1.PipelineRunReasonCouldntCancel.String(),
				"PipelineRun %q was cancelled but had errors trying to cancel TaskRuns and/or Runs: %s", pr.Name, err)
			return err
		}
	}
	if facts.State.IsBeforeFirstTaskRun() {
		if err := resources.ValidatePipelineTaskResults(facts.State); err != nil {
			return r.fail(v1.PipelineRunReasonInvalidTaskResultReference, "PipelineRun %s/%s: %s", err)
		}
		if err := resources.ValidatePipelineResults(spec, facts.State); err != nil {
			return r.fail(v1.PipelineRunReasonInvalidPipelineResultReference, "PipelineRun %s/%s: %s", err)
		}
		if err := resources.ValidateOptionalWorkspaces(spec.Workspaces, facts.State); err != nil {
			return r.fail(v1.PipelineRunReasonRequiredWorkspaceMarkedOptional, "PipelineRun %s/%s: %s", err)
		}
		if err := r.claimTemplates(ctx); err != nil {
			if errors.Is(err, volumeclaim.ErrPvcCreationFailedRetryable) {
				pr.Status.MarkRunning(v1.PipelineRunReasonPending.String(), "Waiting for PVC creation to succeed: %v", err)
				return err
			}
			pr.Status.MarkFailed(volumeclaim.ReasonCouldntCreateWorkspacePVC,
				"Failed to create PVC for PipelineRun %s/%s correctly: %s", pr.Namespace, pr.Name, err)
			return controller.NewPermanentError(err)
		}
	}
	if err := r.timeoutRunningTasks(ctx, facts); err != nil {
		return err
	}
	if err := r.runNextSchedulableTasks(ctx, facts); err != nil {
		return err
	}
	return r.updateFromFacts(ctx, spec, facts)
}

// claimTemplates creates a tenant PVC, owned by the PipelineRun, for every
// volumeClaimTemplate workspace, as Tekton does without affinity assistant;
// the workload cluster gets it from the PVC reconciler.
func (r *run) claimTemplates(ctx context.Context) error {
	if !r.pr.HasVolumeClaimTemplate() {
		return nil
	}
	client, err := r.c.workspaceKube(r.cluster)
	if err != nil {
		return err
	}
	handler := volumeclaim.NewPVCHandler(client, r.log)
	for _, wb := range r.pr.Spec.Workspaces {
		if err := handler.CreatePVCFromVolumeClaimTemplate(ctx, wb, *kmeta.NewControllerRef(r.pr), r.pr.Namespace); err != nil {
			return err
		}
	}
	return nil
}

// unservedPipelineFeature names what a pipeline's tasks ask for that the
// service does not provide yet, so that the run fails at once, clearly.
func unservedPipelineFeature(spec *v1.PipelineSpec) error {
	for _, pt := range append(append([]v1.PipelineTask{}, spec.Tasks...), spec.Finally...) {
		if pt.PipelineRef != nil {
			return fmt.Errorf("pipeline task %q runs a pipeline by pipelineRef: Tekton v1.9 runs pipelines in pipelines by pipelineSpec only", pt.Name)
		}
	}
	return nil
}

// fail marks the PipelineRun failed with reason; format gets namespace,
// name and err.
func (r *run) fail(reason v1.PipelineRunReason, format string, err error) error {
	r.pr.Status.MarkFailed(reason.String(), format, r.pr.Namespace, r.pr.Name, err)
	return controller.NewPermanentError(err)
}

// updateFromFacts sets condition, child references, skipped tasks and,
// once done, the pipeline results.
func (r *run) updateFromFacts(ctx context.Context, spec *v1.PipelineSpec, facts *resources.PipelineRunFacts) error {
	pr := r.pr
	facts.ResetSkippedCache()
	if pr.HasTimedOut(ctx, r.c.clock) {
		if err := r.timeoutPipelineRun(ctx); err != nil {
			return err
		}
	}
	after := facts.GetPipelineConditionStatus(ctx, pr, r.log, r.c.clock)
	switch after.Status {
	case "True":
		pr.Status.MarkSucceeded(after.Reason, "%s", after.Message)
	case "False":
		pr.Status.MarkFailed(after.Reason, "%s", after.Message)
	default:
		pr.Status.MarkRunning(after.Reason, "%s", after.Message)
	}
	pr.Status.StartTime = facts.State.AdjustStartTime(pr.Status.StartTime)
	pr.Status.ChildReferences = facts.GetChildReferences()
	pr.Status.SkippedTasks = facts.GetSkippedTasks()
	if after.Status == "True" || after.Status == "False" {
		taskStatus := kmap.Union(facts.GetPipelineTaskStatus(), facts.GetPipelineFinalTaskStatus())
		results, err := resources.ApplyTaskResultsToPipelineResults(spec.Results, facts.State.GetTaskRunsResults(), facts.State.GetRunsResults(), taskStatus)
		if err != nil {
			pr.Status.MarkFailed(v1.PipelineRunReasonCouldntGetPipelineResult.String(),
				"PipelineRun %s/%s failed to retrieve pipeline results: %s", pr.Namespace, pr.Name, err)
		}
		pr.Status.Results = results
	}
	return nil
}

// requeueAfter is when a timeout of the PipelineRun falls due.
func (r *run) requeueAfter(ctx context.Context) time.Duration {
	pr := r.pr
	if pr.IsDone() || pr.Status.StartTime == nil {
		return 0
	}
	elapsed := r.c.clock.Since(pr.Status.StartTime.Time)
	pipelineLeft := pr.PipelineTimeout(ctx) - elapsed
	hasPipelineTimeout := pr.PipelineTimeout(ctx) != config.NoTimeoutDuration
	var left time.Duration
	switch {
	case pr.Status.FinallyStartTime != nil && pr.FinallyTimeout() != nil && pr.FinallyTimeout().Duration != config.NoTimeoutDuration:
		left = pr.FinallyTimeout().Duration - r.c.clock.Since(pr.Status.FinallyStartTime.Time)
		if hasPipelineTimeout && pipelineLeft < left {
			left = pipelineLeft
		}
	case pr.Status.FinallyStartTime == nil && pr.TasksTimeout() != nil && pr.TasksTimeout().Duration != config.NoTimeoutDuration:
		left = pr.TasksTimeout().Duration - elapsed
	case hasPipelineTimeout:
		left = pipelineLeft
	default:
		return 0
	}
	if left <= 0 {
		return time.Millisecond
	}
	return left
}
