package pipelinerun

import (
	"context"
	"encoding/json"
	"fmt"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline/v1beta1"
	"github.com/tektoncd/pipeline/pkg/reconciler/pipelinerun/resources"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"knative.dev/pkg/controller"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler/customrun"
)

// getCustomRun reads a child CustomRun; NotFound when it does not exist
// yet.
func (r *run) getCustomRun(name string) (*v1beta1.CustomRun, error) {
	cr := &v1beta1.CustomRun{}
	if err := r.get(context.Background(), customrun.CustomRunsResource, name, cr); err != nil {
		return nil, err
	}
	return cr, nil
}

// createCustomRuns creates the CustomRun(s) of a custom task, one per
// matrix combination, as Tekton does: the service runs no custom-task
// controller (they say so, pkg/reconciler/customrun), a tenant's own
// controller watching its workspace may run them.
func (r *run) createCustomRuns(ctx context.Context, rpt *resources.ResolvedPipelineTask, facts *resources.PipelineRunFacts) ([]*v1beta1.CustomRun, error) {
	combinations := []v1.Params{nil}
	if rpt.PipelineTask.IsMatrixed() {
		combinations = rpt.PipelineTask.Matrix.FanOut()
	}
	var out []*v1beta1.CustomRun
	for i, name := range rpt.CustomRunNames {
		if i >= len(combinations) {
			break
		}
		cr, err := r.createCustomRun(ctx, name, combinations[i], rpt, facts)
		if err != nil {
			return nil, err
		}
		out = append(out, cr)
	}
	return out, nil
}

func (r *run) createCustomRun(ctx context.Context, name string, matrixParams v1.Params, rpt *resources.ResolvedPipelineTask, facts *resources.PipelineRunFacts) (*v1beta1.CustomRun, error) {
	pr := r.pr
	rpt.PipelineTask = resources.ApplyPipelineTaskContexts(rpt.PipelineTask, pr.Status, facts)
	pt := rpt.PipelineTask
	spec := pr.GetTaskRunSpec(pt.Name)
	workspaces, err := taskRunWorkspaces(pr, rpt)
	if err != nil {
		return nil, r.fail(v1.PipelineRunReasonInvalidWorkspaceBinding, "PipelineRun %s/%s: %s", err)
	}
	cr := &v1beta1.CustomRun{
		ObjectMeta: childMeta(pr, name, *pt, rpt.IsFinalTask(facts), nil),
		Spec:       v1beta1.CustomRunSpec{Retries: pt.Retries, ServiceAccountName: spec.ServiceAccountName, Timeout: pt.Timeout},
	}
	if spec.Timeout != nil {
		cr.Spec.Timeout = spec.Timeout
	}
	// CustomRuns are v1beta1: references, params and workspaces converted.
	if pt.TaskRef != nil {
		cr.Spec.CustomRef = &v1beta1.TaskRef{}
		cr.Spec.CustomRef.ConvertFrom(ctx, *pt.TaskRef)
	}
	for _, p := range append(append(v1.Params{}, matrixParams...), pt.Params...) {
		var b v1beta1.Param
		b.ConvertFrom(ctx, p)
		cr.Spec.Params = append(cr.Spec.Params, b)
	}
	for _, w := range workspaces {
		var b v1beta1.WorkspaceBinding
		b.ConvertFrom(ctx, w)
		cr.Spec.Workspaces = append(cr.Spec.Workspaces, b)
	}
	if pt.TaskSpec != nil {
		raw, err := json.Marshal(pt.TaskSpec.Spec)
		if err != nil {
			return nil, err
		}
		cr.Spec.CustomSpec = &v1beta1.EmbeddedCustomRunSpec{
			TypeMeta: runtime.TypeMeta{APIVersion: pt.TaskSpec.APIVersion, Kind: pt.TaskSpec.Kind},
			Metadata: v1beta1.PipelineTaskMetadata(pt.TaskSpec.Metadata),
			Spec:     runtime.RawExtension{Raw: raw},
		}
	}
	cr.SetGroupVersionKind(v1beta1.SchemeGroupVersion.WithKind("CustomRun"))
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cr)
	if err != nil {
		return nil, err
	}
	delete(obj, "status")
	_, err = r.c.tenants.Cluster(r.cluster.Path()).Resource(customrun.CustomRunsResource).Namespace(pr.Namespace).
		Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		pr.Status.MarkFailed(v1.PipelineRunReasonCreateRunFailed.String(), "%s", err.Error())
		return nil, controller.NewPermanentError(err)
	case err != nil:
		return nil, fmt.Errorf("create CustomRun %s: %w", name, err)
	}
	r.log.Infow("created CustomRun", "pipelineTask", pt.Name, "customRun", name)
	return cr, nil
}
