package taskrun

import (
	"context"
	"errors"
	"fmt"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektontaskrun "github.com/tektoncd/pipeline/pkg/reconciler/taskrun"
	"github.com/tektoncd/pipeline/pkg/reconciler/taskrun/resources"
	"github.com/tektoncd/pipeline/pkg/trustedresources"
	"github.com/tektoncd/pipeline/pkg/workspace"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/tektoncd/pipeline/pkg/apis/config"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/kmap"
)

// prepare defaults, validates and resolves the TaskRun's Task as Tekton
// does. On failure it marks the TaskRun failed with Tekton's reason and
// returns false.
func (c *Controller) prepare(ctx context.Context, cluster logicalcluster.Name, tr *v1.TaskRun) (*resources.ResolvedTask, bool) {
	tr.SetDefaults(ctx)
	// kcp has no Tekton admission webhook: validate as it would, on a copy,
	// because Tekton's validation fills object params with defaults in place
	// (harmless in a validating webhook, wrong in a controller).
	if ferr := tr.DeepCopy().Validate(ctx); ferr != nil {
		tr.Status.MarkResourceFailed(v1.TaskRunReasonFailedValidation, ferr)
		return nil, false
	}
	if err := unservedTaskRunFeature(tr); err != nil {
		tr.Status.MarkResourceFailed(v1.TaskRunReasonFailedResolution, err)
		return nil, false
	}
	taskMeta, taskSpec, err := resources.GetTaskData(ctx, tr, c.getTask(cluster, tr))
	if err != nil {
		tr.Status.MarkResourceFailed(v1.TaskRunReasonFailedResolution, err)
		return nil, false
	}
	// As in Tekton, StepActions are merged on every reconcile (the spec is
	// substituted afresh each time, e.g. with a retry's count).
	if err := c.resolveStepActions(ctx, cluster, tr, taskSpec); err != nil {
		tr.Status.MarkResourceFailed(v1.TaskRunReasonFailedResolution, err)
		return nil, false
	}
	if tr.Status.TaskSpec == nil {
		tr.Status.TaskSpec = taskSpec.DeepCopy()
		mergeTaskMeta(tr, taskMeta.ObjectMeta)
	}
	if config.FromContextOrDefaults(ctx).FeatureFlags.EnableProvenanceInStatus {
		if tr.Status.Provenance == nil {
			tr.Status.Provenance = &v1.Provenance{}
		}
		tr.Status.Provenance.FeatureFlags = config.FromContextOrDefaults(ctx).FeatureFlags
	}
	rtr := &resources.ResolvedTask{TaskName: taskMeta.Name, TaskSpec: taskSpec, Kind: resources.GetTaskKind(tr)}
	if err := validateResolved(ctx, tr, rtr); err != nil {
		var reasoned reasonedError
		if errors.As(err, &reasoned) {
			tr.Status.MarkResourceFailed(reasoned.reason, reasoned.err)
		} else {
			tr.Status.MarkResourceFailed(v1.TaskRunReasonFailedValidation, err)
		}
		return nil, false
	}
	return rtr, true
}

// unservedTaskRunFeature names what a TaskRun asks for that the service
// does not provide yet, so that it fails at once with a clear message.
func unservedTaskRunFeature(tr *v1.TaskRun) error {
	if ref := tr.Spec.TaskRef; ref != nil {
		if ref.Resolver != "" {
			return fmt.Errorf("taskRef uses the %q resolver: remote resolution is not served by pipelines-service yet", ref.Resolver)
		}
		if ref.APIVersion != "" {
			return fmt.Errorf("taskRef names custom task %s %s: custom tasks are not served by pipelines-service yet", ref.APIVersion, ref.Kind)
		}
	}
	return nil
}

// mergeTaskMeta propagates the Task's labels and annotations to the
// TaskRun (the TaskRun's own win) and names the Task in tekton.dev/task,
// as Tekton does when it first resolves the Task.
func mergeTaskMeta(tr *v1.TaskRun, task *metav1.ObjectMeta) {
	if task == nil {
		return
	}
	tr.Annotations = kmap.Union(kmap.ExcludeKeys(task.Annotations, corev1.LastAppliedConfigAnnotation), tr.Annotations)
	tr.Labels = kmap.Union(task.Labels, tr.Labels)
	if tr.Spec.TaskRef != nil {
		tr.Labels[pipeline.TaskLabelKey] = task.Name
	}
}

type reasonedError struct {
	reason v1.TaskRunReason
	err    error
}

func (e reasonedError) Error() string { return e.err.Error() }

// validateResolved runs Tekton's checks of a TaskRun against its Task.
func validateResolved(ctx context.Context, tr *v1.TaskRun, rtr *resources.ResolvedTask) error {
	if err := tektontaskrun.ValidateResolvedTask(ctx, tr.Spec.Params, &v1.Matrix{}, rtr); err != nil {
		return err
	}
	if err := tektontaskrun.ValidateEnumParam(ctx, tr.Spec.Params, rtr.TaskSpec.Params); err != nil {
		return reasonedError{reason: v1.TaskRunReasonInvalidParamValue, err: fmt.Errorf("invalid param value: %w", err)}
	}
	if err := resources.ValidateParamArrayIndex(rtr.TaskSpec, tr.Spec.Params); err != nil {
		return fmt.Errorf("invalid array index in params: %w", err)
	}
	decls := rtr.TaskSpec.Workspaces
	if tr.Spec.TaskSpec != nil {
		// Embedded specs get the TaskRun's workspaces propagated, as in Tekton.
		for _, b := range tr.Spec.Workspaces {
			decls = append(decls, v1.WorkspaceDeclaration{Name: b.Name})
		}
	}
	if err := workspace.ValidateBindings(ctx, decls, tr.Spec.Workspaces); err != nil {
		return fmt.Errorf("invalid workspace bindings: %w", err)
	}
	return nil
}

// getTask returns the Task a TaskRun refers to, from the same workspace
// and namespace. Once resolved, the spec stored in status is replayed.
func (c *Controller) getTask(cluster logicalcluster.Name, tr *v1.TaskRun) resources.GetTask {
	return func(ctx context.Context, name string) (*v1.Task, *v1.RefSource, *trustedresources.VerificationResult, error) {
		if tr.Status.TaskSpec != nil {
			task := &v1.Task{Spec: *tr.Status.TaskSpec.DeepCopy()}
			task.Name = name
			return task, nil, nil, nil
		}
		obj, err := c.tasks.Lister().ByCluster(cluster).ByNamespace(tr.Namespace).Get(name)
		if apierrors.IsNotFound(err) {
			return nil, nil, nil, fmt.Errorf("tasks.tekton.dev %q not found in namespace %q", name, tr.Namespace)
		}
		if err != nil {
			return nil, nil, nil, err
		}
		task := &v1.Task{}
		if err := reconciler.Decode(obj.(*unstructured.Unstructured), task); err != nil {
			return nil, nil, nil, fmt.Errorf("task %q does not decode into tekton.dev/v1: %w", name, err)
		}
		task.SetDefaults(ctx)
		if ferr := task.DeepCopy().Validate(ctx); ferr != nil {
			return nil, nil, nil, fmt.Errorf("task %q is invalid: %w", name, ferr)
		}
		return task, nil, nil, nil
	}
}
