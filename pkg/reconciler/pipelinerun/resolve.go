package pipelinerun

import (
	"context"
	"errors"
	"fmt"
	"sort"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline/v1beta1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	"github.com/tektoncd/pipeline/pkg/reconciler/pipeline/dag"
	"github.com/tektoncd/pipeline/pkg/reconciler/pipelinerun/pipelinespec"
	"github.com/tektoncd/pipeline/pkg/reconciler/pipelinerun/resources"
	tektontaskresources "github.com/tektoncd/pipeline/pkg/reconciler/taskrun/resources"
	"github.com/tektoncd/pipeline/pkg/remote"
	remoteresource "github.com/tektoncd/pipeline/pkg/remoteresolution/resource"
	"github.com/tektoncd/pipeline/pkg/trustedresources"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"knative.dev/pkg/controller"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	kcpinformers "github.com/kcp-dev/client-go/informers"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/customrun"
	"github.com/pipelines-service/pipelines-service/pkg/resolution"
)

// pipelineGetter is how the run's Pipeline is read: through its resolver,
// or from the workspace (getPipeline). Once resolved, the spec stored in
// status is replayed.
func (r *run) pipelineGetter(ctx context.Context) (pipelinespec.GetPipeline, error) {
	ref := r.pr.Spec.PipelineRef
	if r.pr.Status.PipelineSpec != nil || ref == nil || ref.Resolver == "" {
		return r.getPipeline(), nil
	}
	kube, tekton, requester, err := r.remote()
	if err != nil {
		return nil, err
	}
	return reconciler.ValidatedPipeline(resources.GetPipelineFunc(ctx, kube, tekton, requester, r.pr, nil)), nil
}

// remote gives what Tekton's resolution code takes: the workspace's
// clients and a requester that enqueues this run when a fetch ends.
func (r *run) remote() (kubernetes.Interface, tektonclient.Interface, remoteresource.Requester, error) {
	kube, err := r.c.workspaceKube(r.cluster)
	if err != nil {
		return nil, nil, nil, err
	}
	tekton, err := r.c.workspaceTekton(r.cluster)
	if err != nil {
		return nil, nil, nil, err
	}
	key := kcpcache.ToClusterAwareKey(r.cluster.String(), r.pr.Namespace, r.pr.Name)
	return kube, tekton, r.c.resolution.Requester(r.cluster, r.pr.Namespace, key, func() { r.c.queue.Add(key) }), nil
}

// taskGetter is how a pipeline task's Task is read: through its
// resolver, as the child TaskRun will (the same request: Tekton names it
// after the TaskRun), or from the workspace (getTask). A child that has
// its Task already gives it, so that a long run does not depend on the
// remote source staying the same and reachable.
func (r *run) taskGetter(ctx context.Context, pt v1.PipelineTask) (tektontaskresources.GetTask, error) {
	if pt.TaskRef == nil || pt.TaskRef.Resolver == "" {
		return r.getTask, nil
	}
	trName := resources.GetTaskRunName(r.pr.Status.ChildReferences, pt.Name, r.pr.Name)
	if child, err := r.getTaskRun(trName); err == nil && child.Status.TaskSpec != nil {
		return func(_ context.Context, name string) (*v1.Task, *v1.RefSource, *trustedresources.VerificationResult, error) {
			t := &v1.Task{Spec: *child.Status.TaskSpec.DeepCopy()}
			t.Name, t.Namespace = name, r.pr.Namespace
			return t, nil, nil, nil
		}, nil
	}
	kube, tekton, requester, err := r.remote()
	if err != nil {
		return nil, err
	}
	return reconciler.ValidatedTask(tektontaskresources.GetTaskFunc(ctx, kube, tekton, requester, r.pr, pt.TaskRef, trName,
		r.pr.Namespace, r.pr.Spec.TaskRunTemplate.ServiceAccountName, nil)), nil
}

// getPipeline reads a Pipeline from the PipelineRun's workspace and
// namespace; once resolved, the spec stored in status is replayed.
func (r *run) getPipeline() pipelinespec.GetPipeline {
	return func(ctx context.Context, name string) (*v1.Pipeline, *v1.RefSource, *trustedresources.VerificationResult, error) {
		if r.pr.Status.PipelineSpec != nil {
			p := &v1.Pipeline{Spec: *r.pr.Status.PipelineSpec.DeepCopy()}
			p.Name, p.Namespace = name, r.pr.Namespace
			return p, nil, nil, nil
		}
		p := &v1.Pipeline{}
		if err := r.get(ctx, PipelinesResource, name, p); err != nil {
			return nil, nil, nil, err
		}
		return p, nil, nil, nil
	}
}

// getTask reads a Task from the PipelineRun's workspace and namespace.
func (r *run) getTask(ctx context.Context, name string) (*v1.Task, *v1.RefSource, *trustedresources.VerificationResult, error) {
	t := &v1.Task{}
	if err := r.get(ctx, TasksResource, name, t); err != nil {
		return nil, nil, nil, err
	}
	return t, nil, nil, nil
}

// getChildPipelineRun reads a child PipelineRun (pipelines in pipelines);
// NotFound when it does not exist yet.
func (r *run) getChildPipelineRun(name string) (*v1.PipelineRun, error) {
	pr := &v1.PipelineRun{}
	if err := r.get(context.Background(), PipelineRunsResource, name, pr); err != nil {
		return nil, err
	}
	return pr, nil
}

// getTaskRun reads a child TaskRun; NotFound when it does not exist yet.
func (r *run) getTaskRun(name string) (*v1.TaskRun, error) {
	tr := &v1.TaskRun{}
	if err := r.get(context.Background(), TaskRunsResource, name, tr); err != nil {
		return nil, err
	}
	return tr, nil
}

// get decodes an object of the PipelineRun's namespace from the informer
// cache (a deep copy: Tekton's defaulting mutates in place).
// On a cache miss it reads through the virtual workspace: an object created
// just before the PipelineRun may not be in the cache yet.
func (r *run) get(ctx context.Context, resource schema.GroupVersionResource, name string, into any) error {
	var u *unstructured.Unstructured
	obj, err := r.c.lister(resource).ByCluster(r.cluster).ByNamespace(r.pr.Namespace).Get(name)
	switch {
	case err == nil:
		u = obj.(*unstructured.Unstructured).DeepCopy()
	case apierrors.IsNotFound(err) && resource != TaskRunsResource && resource != PipelineRunsResource && resource != customrun.CustomRunsResource:
		u, err = r.c.tenants.Cluster(r.cluster.Path()).Resource(resource).Namespace(r.pr.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
	default:
		return err
	}
	if err := reconciler.Decode(u, into); err != nil {
		return fmt.Errorf("%s %q does not decode into tekton.dev/v1: %w", resource.Resource, name, err)
	}
	return nil
}

// resolveState resolves every pipeline task: first those with children,
// then the rest, so that result references and matrix counts see earlier
// tasks (as Tekton does).
func (r *run) resolveState(ctx context.Context, spec *v1.PipelineSpec) (resources.PipelineRunState, error) {
	all := append(append([]v1.PipelineTask{}, spec.Tasks...), spec.Finally...)
	hasChildren := map[string]bool{}
	for _, ref := range r.pr.Status.ChildReferences {
		hasChildren[ref.PipelineTaskName] = true
	}
	var first, rest []v1.PipelineTask
	for _, pt := range all {
		if hasChildren[pt.Name] {
			first = append(first, pt)
		} else {
			rest = append(rest, pt)
		}
	}
	state := resources.PipelineRunState{}
	for _, pt := range append(first, rest...) {
		getTask, err := r.taskGetter(ctx, pt)
		if err != nil {
			return nil, err
		}
		rpt, err := resources.ResolvePipelineTask(ctx, *r.pr, r.getChildPipelineRun, getTask, r.getTaskRun, r.getCustomRun, pt, state)
		if errors.Is(err, remote.ErrRequestInProgress) {
			return nil, err
		}
		if resolution.IsHostNotAllowed(err) {
			r.pr.Status.MarkFailed(resolution.ReasonHostNotAllowed,
				"PipelineRun %s/%s can't be Run; couldn't resolve all references: %s", r.pr.Namespace, r.pr.Name, err)
			return nil, controller.NewPermanentError(err)
		}
		if err != nil {
			var notFound *resources.TaskNotFoundError
			if errors.As(err, &notFound) {
				r.pr.Status.MarkFailed(v1.PipelineRunReasonCouldntGetTask.String(),
					"Pipeline %s/%s can't be Run; it contains Tasks that don't exist: %s", r.pr.Namespace, r.pr.Name, err)
			} else {
				r.pr.Status.MarkFailed(v1.PipelineRunReasonFailedValidation.String(),
					"PipelineRun %s/%s can't be Run; couldn't resolve all references: %s", r.pr.Namespace, r.pr.Name, err)
			}
			return nil, controller.NewPermanentError(err)
		}
		state = append(state, rpt)
	}
	return state, nil
}

// facts assembles Tekton's view of the run's progress.
func (r *run) facts(ctx context.Context, state resources.PipelineRunState, tasks, finally *dag.Graph) *resources.PipelineRunFacts {
	pr := r.pr
	facts := &resources.PipelineRunFacts{
		State: state, SpecStatus: pr.Spec.Status, TasksGraph: tasks, FinalTasksGraph: finally,
		TimeoutsState: resources.PipelineRunTimeoutsState{Clock: r.c.clock},
	}
	if pr.Status.StartTime != nil {
		facts.TimeoutsState.StartTime = &pr.Status.StartTime.Time
	}
	if pr.Status.FinallyStartTime != nil {
		facts.TimeoutsState.FinallyStartTime = &pr.Status.FinallyStartTime.Time
	}
	if t := pr.TasksTimeout(); t != nil {
		facts.TimeoutsState.TasksTimeout = &t.Duration
	}
	if t := pr.FinallyTimeout(); t != nil {
		facts.TimeoutsState.FinallyTimeout = &t.Duration
	}
	if d := pr.PipelineTimeout(ctx); d != 0 {
		facts.TimeoutsState.PipelineTimeout = &d
	}
	return facts
}

// recoverChildReferences adds TaskRuns and child PipelineRuns of this
// PipelineRun that its status does not list yet (e.g. a status update lost
// after creating them).
func (r *run) recoverChildReferences() {
	selector := labels.SelectorFromSet(labels.Set{"tekton.dev/pipelineRun": r.pr.Name, "tekton.dev/pipelineRunUID": string(r.pr.UID)})
	known := map[string]bool{}
	for _, ref := range r.pr.Status.ChildReferences {
		known[ref.Name] = true
	}
	for kind, informer := range map[string]kcpinformers.GenericClusterInformer{"TaskRun": r.c.taskRuns, "PipelineRun": r.c.pipelineRuns, "CustomRun": r.c.customRuns} {
		objs, err := informer.Lister().ByCluster(r.cluster).ByNamespace(r.pr.Namespace).List(selector)
		if err != nil {
			continue
		}
		for _, obj := range objs {
			u := obj.(*unstructured.Unstructured)
			owners := u.GetOwnerReferences()
			if known[u.GetName()] || len(owners) == 0 || owners[0].UID != r.pr.UID {
				continue
			}
			ref := v1.ChildStatusReference{Name: u.GetName(), PipelineTaskName: u.GetLabels()["tekton.dev/pipelineTask"]}
			ref.APIVersion, ref.Kind = v1.SchemeGroupVersion.String(), kind
			if kind == "CustomRun" {
				ref.APIVersion = v1beta1.SchemeGroupVersion.String()
			}
			r.pr.Status.ChildReferences = append(r.pr.Status.ChildReferences, ref)
		}
	}
	sort.Slice(r.pr.Status.ChildReferences, func(i, j int) bool {
		a, b := r.pr.Status.ChildReferences[i], r.pr.Status.ChildReferences[j]
		if a.PipelineTaskName != b.PipelineTaskName {
			return a.PipelineTaskName < b.PipelineTaskName
		}
		return a.Name < b.Name
	})
}
