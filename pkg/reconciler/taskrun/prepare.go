package taskrun

import (
	"context"
	"errors"
	"fmt"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	"github.com/tektoncd/pipeline/pkg/reconciler/apiserver"
	tektontaskrun "github.com/tektoncd/pipeline/pkg/reconciler/taskrun"
	"github.com/tektoncd/pipeline/pkg/reconciler/taskrun/resources"
	"github.com/tektoncd/pipeline/pkg/remote"
	remoteresource "github.com/tektoncd/pipeline/pkg/remoteresolution/resource"
	resolutioncommon "github.com/tektoncd/pipeline/pkg/resolution/common"
	"github.com/tektoncd/pipeline/pkg/trustedresources"
	"github.com/tektoncd/pipeline/pkg/workspace"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/resolution"
	"github.com/tektoncd/pipeline/pkg/apis/config"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/kmap"
)

// prepare defaults, validates and resolves the TaskRun's Task as Tekton
// does. It returns the resolved Task; or nil and remote.ErrRequestInProgress
// while a remote reference is fetched (the run is marked so, and is
// enqueued when the fetch ends); or nil and an error to retry; or nil and
// nil when the run failed (marked with Tekton's reason).
func (c *Controller) prepare(ctx context.Context, cluster logicalcluster.Name, key string, tr *v1.TaskRun) (*resources.ResolvedTask, error) {
	tr.SetDefaults(ctx)
	// kcp has no Tekton admission webhook: validate as it would, on a copy,
	// because Tekton's validation fills object params with defaults in place
	// (harmless in a validating webhook, wrong in a controller).
	if ferr := tr.DeepCopy().Validate(ctx); ferr != nil {
		tr.Status.MarkResourceFailed(v1.TaskRunReasonFailedValidation, ferr)
		return nil, nil
	}
	if err := unservedTaskRunFeature(tr); err != nil {
		tr.Status.MarkResourceFailed(v1.TaskRunReasonFailedResolution, err)
		return nil, nil
	}
	getTask, err := c.getTask(ctx, cluster, key, tr)
	if err != nil {
		return nil, err
	}
	taskMeta, taskSpec, err := resources.GetTaskData(ctx, tr, getTask)
	if err != nil {
		return nil, resolutionFailed(tr, v1.TaskRunReasonResolvingTaskRef, "TaskRun %s/%s awaiting remote resource", err)
	}
	// As in Tekton, StepActions are merged on every reconcile (the spec is
	// substituted afresh each time, e.g. with a retry's count).
	if err := c.resolveStepActions(ctx, cluster, key, tr, taskSpec); err != nil {
		return nil, resolutionFailed(tr, v1.TaskRunReasonResolvingStepActionRef, "TaskRun %s/%s awaiting remote StepAction", err)
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
		if taskMeta.RefSource != nil && tr.Status.Provenance.RefSource == nil {
			tr.Status.Provenance.RefSource = taskMeta.RefSource
		}
	}
	rtr := &resources.ResolvedTask{TaskName: taskMeta.Name, TaskSpec: taskSpec, Kind: resources.GetTaskKind(tr)}
	if err := validateResolved(ctx, tr, rtr); err != nil {
		var reasoned reasonedError
		if errors.As(err, &reasoned) {
			tr.Status.MarkResourceFailed(reasoned.reason, reasoned.err)
		} else {
			tr.Status.MarkResourceFailed(v1.TaskRunReasonFailedValidation, err)
		}
		return nil, nil
	}
	return rtr, nil
}

// resolutionFailed marks the TaskRun for an error of resolving its Task
// or StepActions, as Tekton does: still resolving (ongoing, reason
// resolving), to retry (a transient failure), or failed, with
// ResolutionHostNotAllowed when the platform refused the host.
func resolutionFailed(tr *v1.TaskRun, resolving v1.TaskRunReason, waitingFormat string, err error) error {
	switch {
	case errors.Is(err, remote.ErrRequestInProgress):
		tr.Status.MarkResourceOngoing(resolving, fmt.Sprintf(waitingFormat, tr.Namespace, tr.Name))
		return remote.ErrRequestInProgress
	case errors.Is(err, apiserver.ErrCouldntValidateObjectRetryable), resolutioncommon.IsErrTransient(err):
		return err
	case errors.Is(err, apiserver.ErrReferencedObjectValidationFailed), errors.Is(err, apiserver.ErrCouldntValidateObjectPermanent):
		tr.Status.MarkResourceFailed(v1.TaskRunReasonTaskFailedValidation, err)
	case resolution.IsHostNotAllowed(err):
		tr.Status.MarkResourceFailed(resolution.ReasonHostNotAllowed, err)
	default:
		tr.Status.MarkResourceFailed(v1.TaskRunReasonFailedResolution, err)
	}
	return nil
}

// unservedTaskRunFeature names what a TaskRun asks for that the service
// does not provide yet, so that it fails at once with a clear message.
func unservedTaskRunFeature(tr *v1.TaskRun) error {
	if ref := tr.Spec.TaskRef; ref != nil {
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

// getTask returns the Task a TaskRun refers to: from the same workspace
// and namespace, or through a resolver. Once resolved, the spec stored in
// status is replayed.
func (c *Controller) getTask(ctx context.Context, cluster logicalcluster.Name, key string, tr *v1.TaskRun) (resources.GetTask, error) {
	if tr.Status.TaskSpec == nil && tr.Spec.TaskRef != nil && tr.Spec.TaskRef.Resolver != "" {
		kube, tekton, requester, err := c.remote(cluster, key, tr.Namespace)
		if err != nil {
			return nil, err
		}
		return reconciler.ValidatedTask(resources.GetTaskFuncFromTaskRun(ctx, kube, tekton, requester, tr, nil)), nil
	}
	return func(ctx context.Context, name string) (*v1.Task, *v1.RefSource, *trustedresources.VerificationResult, error) {
		if tr.Status.TaskSpec != nil {
			task := &v1.Task{Spec: *tr.Status.TaskSpec.DeepCopy()}
			task.Name = name
			return task, nil, nil, nil
		}
		obj, err := c.tasks.Lister().ByCluster(cluster).ByNamespace(tr.Namespace).Get(name)
		if apierrors.IsNotFound(err) {
			// A Task created just before the TaskRun may not be in the
			// cache yet (Tekton reads it from the apiserver): read it
			// through the virtual workspace before saying it is missing.
			obj, err = c.tenants.Cluster(cluster.Path()).Resource(TasksResource).Namespace(tr.Namespace).Get(ctx, name, metav1.GetOptions{})
		}
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
	}, nil
}

// remote gives what Tekton's resolution code takes for a run of the
// workspace: its clients and a requester that enqueues the run when a
// fetch it waits for ends.
func (c *Controller) remote(cluster logicalcluster.Name, key, namespace string) (kubernetes.Interface, tektonclient.Interface, remoteresource.Requester, error) {
	kube, err := c.workspaceKube(cluster)
	if err != nil {
		return nil, nil, nil, err
	}
	tekton, err := c.stepActions(cluster)
	if err != nil {
		return nil, nil, nil, err
	}
	return kube, tekton, c.resolution.Requester(cluster, namespace, key, func() { c.queue.Add(key) }), nil
}
