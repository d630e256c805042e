package pipelinerun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline/v1beta1"
	"github.com/tektoncd/pipeline/pkg/reconciler/pipelinerun/resources"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/pkg/apis"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler/customrun"
)

// cancelPipelineRun cancels every child TaskRun and marks the
// PipelineRun Cancelled, as Tekton does.
func (r *run) cancelPipelineRun(ctx context.Context) error {
	if err := r.cancelChildren(ctx, nil, v1.TaskRunCancelledByPipelineMsg); err != nil {
		r.pr.Status.MarkRunning(v1.PipelineRunReasonCouldntCancel.String(),
			"PipelineRun %q was cancelled but had errors trying to cancel TaskRuns and/or Runs: %s", r.pr.Name, err)
		return err
	}
	r.pr.Status.SetCondition(&apis.Condition{
		Type: apis.ConditionSucceeded, Status: "False",
		Reason:  v1.PipelineRunReasonCancelled.String(),
		Message: fmt.Sprintf("PipelineRun %q was cancelled", r.pr.Name),
	})
	now := metav1.NewTime(r.c.clock.Now())
	r.pr.Status.CompletionTime = &now
	return nil
}

// timeoutPipelineRun cancels every child TaskRun as timed out and marks
// the PipelineRun PipelineRunTimeout.
func (r *run) timeoutPipelineRun(ctx context.Context) error {
	if err := r.cancelChildren(ctx, nil, v1.TaskRunCancelledByPipelineTimeoutMsg); err != nil {
		r.pr.Status.MarkRunning(v1.PipelineRunReasonCouldntTimeOut.String(),
			"PipelineRun %q was timed out but had errors trying to time out TaskRuns and/or Runs: %s", r.pr.Name, err)
		return err
	}
	r.pr.SetTimeoutCondition(context.Background())
	now := metav1.NewTime(r.c.clock.Now())
	r.pr.Status.CompletionTime = &now
	return nil
}

// timeoutRunningTasks times out running DAG tasks when the tasks timeout
// passed, and running finally tasks when the finally timeout passed.
func (r *run) timeoutRunningTasks(ctx context.Context, facts *resources.PipelineRunFacts) error {
	pr := r.pr
	final := pr.Status.FinallyStartTime != nil
	if (!final && !pr.HaveTasksTimedOut(ctx, r.c.clock)) || (final && !pr.HasFinallyTimedOut(ctx, r.c.clock)) {
		return nil
	}
	tasks := map[string]bool{}
	for _, rpt := range facts.State {
		if rpt.IsFinalTask(facts) == final && rpt.IsRunning() {
			tasks[rpt.PipelineTask.Name] = true
		}
	}
	if len(tasks) == 0 {
		return nil
	}
	return r.cancelChildren(ctx, tasks, v1.TaskRunCancelledByPipelineTimeoutMsg)
}

// cancelChildren patches the child TaskRuns of the given pipeline tasks
// (all when nil) to TaskRunCancelled with message, and their child
// PipelineRuns (pipelines in pipelines) to Cancelled, as Tekton does.
func (r *run) cancelChildren(ctx context.Context, tasks map[string]bool, message v1.TaskRunSpecStatusMessage) error {
	taskRunPatch, err := json.Marshal([]map[string]string{
		{"op": "add", "path": "/spec/status", "value": string(v1.TaskRunSpecStatusCancelled)},
		{"op": "add", "path": "/spec/statusMessage", "value": string(message)},
	})
	if err != nil {
		return err
	}
	pipelineRunPatch, err := json.Marshal([]map[string]string{
		{"op": "add", "path": "/spec/status", "value": string(v1.PipelineRunSpecStatusCancelled)},
	})
	if err != nil {
		return err
	}
	customRunPatch, err := json.Marshal([]map[string]string{
		{"op": "add", "path": "/spec/status", "value": string(v1beta1.CustomRunSpecStatusCancelled)},
		{"op": "add", "path": "/spec/statusMessage", "value": string(message)},
	})
	if err != nil {
		return err
	}
	tenant := r.c.tenants.Cluster(r.cluster.Path())
	var errs []error
	for _, ref := range r.pr.Status.ChildReferences {
		if tasks != nil && !tasks[ref.PipelineTaskName] {
			continue
		}
		var err error
		switch ref.Kind {
		case "TaskRun":
			_, err = tenant.Resource(TaskRunsResource).Namespace(r.pr.Namespace).Patch(ctx, ref.Name, types.JSONPatchType, taskRunPatch, metav1.PatchOptions{})
		case "CustomRun":
			_, err = tenant.Resource(customrun.CustomRunsResource).Namespace(r.pr.Namespace).Patch(ctx, ref.Name, types.JSONPatchType, customRunPatch, metav1.PatchOptions{})
		case "PipelineRun":
			_, err = tenant.Resource(PipelineRunsResource).Namespace(r.pr.Namespace).Patch(ctx, ref.Name, types.JSONPatchType, pipelineRunPatch, metav1.PatchOptions{})
		}
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("%s %s: %w", ref.Kind, ref.Name, err))
		}
	}
	return errors.Join(errs...)
}
