package pipelinerun

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/tektoncd/pipeline/pkg/apis/config"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/reconciler/pipelinerun/resources"
	"github.com/tektoncd/pipeline/pkg/reconciler/volumeclaim"
	"github.com/tektoncd/pipeline/pkg/workspace"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"knative.dev/pkg/controller"
	"knative.dev/pkg/kmeta"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
)

// runNextSchedulableTasks creates the TaskRuns of the pipeline tasks (and,
// when the DAG is done, finally tasks) that can run now.
func (r *run) runNextSchedulableTasks(ctx context.Context, facts *resources.PipelineRunFacts) error {
	pr := r.pr
	next, err := facts.DAGExecutionQueue()
	if err != nil {
		return nil // stopping or cancelled: nothing new starts
	}
	for _, rpt := range next {
		if resources.CheckMissingResultReferences(facts.State, rpt) != nil {
			facts.ValidationFailedTask = append(facts.ValidationFailedTask, rpt)
			next = nil
			break
		}
	}
	if finals := facts.GetFinalTasks(); len(finals) > 0 {
		resources.ApplyPipelineTaskStateContext(finals, facts.GetPipelineTaskStatus())
		for _, rpt := range finals {
			refs, _, err := resources.ResolveResultRef(facts.State, rpt)
			if err != nil {
				continue
			}
			resources.ApplyTaskResults(resources.PipelineRunState{rpt}, refs)
			if err := rpt.EvaluateCEL(); err != nil {
				continue
			}
			next = append(next, rpt)
		}
	}
	resources.ApplyResultsToWorkspaceBindings(facts.State.GetTaskRunsResults(), pr)
	for _, rpt := range next {
		if rpt == nil || rpt.Skip(facts).IsSkipped || rpt.IsFinallySkipped(facts).IsSkipped {
			continue
		}
		if rpt.IsFinalTask(facts) && pr.Status.FinallyStartTime == nil {
			now := metav1.NewTime(r.c.clock.Now())
			pr.Status.FinallyStartTime = &now
			facts.TimeoutsState.FinallyStartTime = &now.Time
		}
		resources.PropagateResults(rpt, facts.State)
		resources.PropagateArtifacts(rpt, facts.State)
		if rpt.PipelineTask.IsMatrixed() {
			if err := resources.ValidateParameterTypesInMatrix(facts.State); err != nil {
				return r.fail(v1.PipelineRunReasonInvalidMatrixParameterTypes, "PipelineRun %s/%s: %s", err)
			}
		}
		if rpt.IsCustomTask() {
			customRuns, err := r.createCustomRuns(ctx, rpt, facts)
			if err != nil {
				return err
			}
			rpt.CustomRuns = customRuns
			continue
		}
		if rpt.IsChildPipeline() {
			children, err := r.createChildPipelineRuns(ctx, rpt, facts)
			if err != nil {
				return err
			}
			rpt.ChildPipelineRuns = children
			continue
		}
		taskRuns, err := r.createTaskRuns(ctx, rpt, facts)
		if err != nil {
			return err
		}
		rpt.TaskRuns = taskRuns
	}
	return nil
}

// createTaskRuns creates the TaskRun(s) of one pipeline task: one per
// matrix combination.
func (r *run) createTaskRuns(ctx context.Context, rpt *resources.ResolvedPipelineTask, facts *resources.PipelineRunFacts) ([]*v1.TaskRun, error) {
	rpt.PipelineTask = resources.ApplyPipelineTaskContexts(rpt.PipelineTask, r.pr.Status, facts)
	combinations := []v1.Params{nil}
	if rpt.PipelineTask.IsMatrixed() {
		combinations = rpt.PipelineTask.Matrix.FanOut()
	}
	var out []*v1.TaskRun
	for i, name := range rpt.TaskRunNames {
		if i >= len(combinations) {
			break
		}
		if existing := findTaskRun(rpt.TaskRuns, name); existing != nil {
			out = append(out, existing)
			continue
		}
		tr, err := r.createTaskRun(ctx, name, combinations[i], rpt, facts)
		if err != nil {
			return nil, err
		}
		out = append(out, tr)
	}
	return out, nil
}

// createChildPipelineRuns creates the child PipelineRun(s) of a pipeline
// task that runs a pipelineSpec (pipelines in pipelines, alpha), as
// Tekton does, on the parent's workload cluster. Beyond Tekton v1.9, which
// passes the spec only, the child gets the pipeline task's params and
// its workspaces bound as the parent's.
func (r *run) createChildPipelineRuns(ctx context.Context, rpt *resources.ResolvedPipelineTask, facts *resources.PipelineRunFacts) ([]*v1.PipelineRun, error) {
	pr := r.pr
	rpt.PipelineTask = resources.ApplyPipelineTaskContexts(rpt.PipelineTask, pr.Status, facts)
	pt := rpt.PipelineTask
	var out []*v1.PipelineRun
	for _, name := range rpt.ChildPipelineRunNames {
		if existing := findPipelineRun(rpt.ChildPipelineRuns, name); existing != nil {
			out = append(out, existing)
			continue
		}
		child := &v1.PipelineRun{
			ObjectMeta: childMeta(pr, name, *pt, rpt.IsFinalTask(facts), nil),
			Spec: v1.PipelineRunSpec{
				PipelineSpec: pt.PipelineSpec,
				Params:       pt.Params,
				Workspaces:   childWorkspaces(pr, pt),
				TaskRunTemplate: v1.PipelineTaskRunTemplate{
					ServiceAccountName: pr.Spec.TaskRunTemplate.ServiceAccountName,
					PodTemplate:        pr.Spec.TaskRunTemplate.PodTemplate,
				},
			},
		}
		child.SetGroupVersionKind(v1.SchemeGroupVersion.WithKind("PipelineRun"))
		placement.Set(child, placement.Of(pr)) // the whole PipelineRun runs on one cluster
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(child)
		if err != nil {
			return nil, err
		}
		_, err = r.c.tenants.Cluster(r.cluster.Path()).Resource(PipelineRunsResource).Namespace(pr.Namespace).
			Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create child PipelineRun %s of pipeline task %s: %w", name, pt.Name, err)
		}
		r.log.Infow("created child PipelineRun", "child", name, "pipelineTask", pt.Name)
		out = append(out, child)
	}
	return out, nil
}

// childWorkspaces binds a child PipelineRun's workspaces as the parent's
// bindings of the workspaces its pipeline task maps.
func childWorkspaces(pr *v1.PipelineRun, pt *v1.PipelineTask) []v1.WorkspaceBinding {
	var out []v1.WorkspaceBinding
	for _, ws := range pt.Workspaces {
		from := ws.Workspace
		if from == "" {
			from = ws.Name
		}
		for _, b := range pr.Spec.Workspaces {
			if b.Name == from {
				bound := *b.DeepCopy()
				bound.Name = ws.Name
				out = append(out, bound)
			}
		}
	}
	return out
}

func findPipelineRun(prs []*v1.PipelineRun, name string) *v1.PipelineRun {
	for _, pr := range prs {
		if pr.Name == name {
			return pr
		}
	}
	return nil
}

func findTaskRun(trs []*v1.TaskRun, name string) *v1.TaskRun {
	for _, tr := range trs {
		if tr.Name == name {
			return tr
		}
	}
	return nil
}

func (r *run) createTaskRun(ctx context.Context, name string, matrixParams v1.Params, rpt *resources.ResolvedPipelineTask, facts *resources.PipelineRunFacts) (*v1.TaskRun, error) {
	pr, pt := r.pr, rpt.PipelineTask
	spec := pr.GetTaskRunSpec(pt.Name)
	tr := &v1.TaskRun{
		ObjectMeta: childMeta(pr, name, *pt, rpt.IsFinalTask(facts), spec.Metadata),
		Spec: v1.TaskRunSpec{
			Retries:            pt.Retries,
			Params:             append(append(v1.Params{}, matrixParams...), pt.Params...),
			ServiceAccountName: spec.ServiceAccountName,
			PodTemplate:        spec.PodTemplate,
			StepSpecs:          spec.StepSpecs,
			SidecarSpecs:       spec.SidecarSpecs,
			ComputeResources:   spec.ComputeResources,
			Timeout:            pt.Timeout,
		},
	}
	tr.SetGroupVersionKind(v1.SchemeGroupVersion.WithKind("TaskRun"))
	defaultManagedBy(ctx, &tr.ObjectMeta)
	placement.Set(tr, placement.Of(pr)) // the whole PipelineRun runs on one cluster
	if pt.OnError == v1.PipelineTaskContinue {
		tr.Annotations[v1.PipelineTaskOnErrorAnnotation] = string(v1.PipelineTaskContinue)
	}
	if spec.Timeout != nil {
		tr.Spec.Timeout = spec.Timeout
	}
	if rpt.ResolvedTask.TaskName != "" {
		tr.Spec.TaskRef = pt.TaskRef
	} else if rpt.ResolvedTask.TaskSpec != nil {
		tr.Spec.TaskSpec = rpt.ResolvedTask.TaskSpec
	}
	workspaces, err := taskRunWorkspaces(pr, rpt)
	if err != nil {
		return nil, r.fail(v1.PipelineRunReasonInvalidWorkspaceBinding, "PipelineRun %s/%s: %s", err)
	}
	tr.Spec.Workspaces = workspaces

	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(tr)
	if err != nil {
		return nil, err
	}
	delete(obj, "status")
	client := r.c.tenants.Cluster(r.cluster.Path()).Resource(TaskRunsResource).Namespace(pr.Namespace)
	created, err := client.Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		created, err = client.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		pr.Status.MarkFailed(v1.PipelineRunReasonCreateRunFailed.String(), "%s", err.Error())
		return nil, controller.NewPermanentError(err)
	case err != nil:
		return nil, fmt.Errorf("create TaskRun %s: %w", name, err)
	}
	out := &v1.TaskRun{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(created.Object, out); err != nil {
		return nil, err
	}
	r.log.Infow("created TaskRun", "pipelineTask", pt.Name, "taskRun", name)
	return out, nil
}

// childMeta is the metadata of a child (TaskRun, PipelineRun, CustomRun)
// of a pipeline task: owned by the PipelineRun, labelled and annotated as
// Tekton does.
// defaultManagedBy labels a new TaskRun app.kubernetes.io/managed-by, as
// Tekton's defaulting webhook does when it is created (TaskRun.SetDefaults;
// a label the TaskRun has wins). kcp runs no Tekton webhook: without the
// label at creation, the TaskRun's first reconcile added it with a write
// of its own through kcp, one of the slowest steps on its way to Running
// (README, Benchmarks).
func defaultManagedBy(ctx context.Context, meta *metav1.ObjectMeta) {
	if meta.Labels == nil {
		meta.Labels = map[string]string{}
	}
	if _, ok := meta.Labels[v1.ManagedByLabelKey]; !ok {
		meta.Labels[v1.ManagedByLabelKey] = config.FromContextOrDefaults(ctx).Defaults.DefaultManagedByLabelValue
	}
}

func childMeta(pr *v1.PipelineRun, name string, pt v1.PipelineTask, final bool, specMeta *v1.PipelineTaskMetadata) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:            name,
		Namespace:       pr.Namespace,
		OwnerReferences: []metav1.OwnerReference{*kmeta.NewControllerRef(pr)},
		Labels:          childLabels(pr, pt, final, specMeta),
		Annotations:     childAnnotations(pr, pt, specMeta),
	}
}

// childLabels are the TaskRun's labels, by Tekton's precedence: taskRunSpecs
// metadata, then the PipelineRun's labels and Tekton's own, then the
// embedded task spec's metadata.
func childLabels(pr *v1.PipelineRun, pt v1.PipelineTask, final bool, specMeta *v1.PipelineTaskMetadata) map[string]string {
	labels := map[string]string{}
	if specMeta != nil {
		addMissing(labels, specMeta.Labels)
	}
	own := map[string]string{}
	for k, v := range pr.Labels {
		own[k] = v
	}
	own[pipeline.PipelineRunLabelKey] = pr.Name
	own[pipeline.PipelineRunUIDLabelKey] = string(pr.UID)
	own[pipeline.PipelineTaskLabelKey] = pt.Name
	own[pipeline.MemberOfLabelKey] = v1.PipelineTasks
	if final {
		own[pipeline.MemberOfLabelKey] = v1.PipelineFinallyTasks
	}
	addMissing(labels, own)
	if pt.TaskSpec != nil {
		addMissing(labels, pt.TaskSpecMetadata().Labels)
	}
	return labels
}

func childAnnotations(pr *v1.PipelineRun, pt v1.PipelineTask, specMeta *v1.PipelineTaskMetadata) map[string]string {
	annotations := map[string]string{}
	if specMeta != nil {
		addMissing(annotations, specMeta.Annotations)
	}
	own := map[string]string{}
	for k, v := range pr.Annotations {
		if !strings.HasPrefix(k, "chains.tekton.dev/") && k != "kubectl.kubernetes.io/last-applied-configuration" {
			own[k] = v
		}
	}
	addMissing(annotations, own)
	if pt.TaskSpec != nil {
		addMissing(annotations, pt.TaskSpecMetadata().Annotations)
	}
	return annotations
}

func addMissing(into, from map[string]string) {
	for k, v := range from {
		if _, ok := into[k]; !ok {
			into[k] = v
		}
	}
}

// taskRunWorkspaces maps the pipeline task's workspaces to the
// PipelineRun's bindings (with sub-paths), as Tekton does.
func taskRunWorkspaces(pr *v1.PipelineRun, rpt *resources.ResolvedPipelineTask) ([]v1.WorkspaceBinding, error) {
	pt := rpt.PipelineTask
	bindings := map[string]v1.WorkspaceBinding{}
	for _, b := range pr.Spec.Workspaces {
		bindings[b.Name] = b
	}
	taskWorkspaces := append([]v1.WorkspacePipelineTaskBinding{}, pt.Workspaces...)
	if pt.TaskSpec != nil {
		// Workspaces an embedded task uses without declaring them are
		// propagated from the PipelineRun by name, as in Tekton.
		declared := map[string]bool{}
		for _, w := range pt.Workspaces {
			declared[w.Name] = true
		}
		used, err := workspace.FindWorkspacesUsedByTask(pt.TaskSpec.TaskSpec)
		if err != nil {
			return nil, err
		}
		for ws := range used {
			if !declared[ws] {
				taskWorkspaces = append(taskWorkspaces, v1.WorkspacePipelineTaskBinding{Name: ws})
			}
		}
	}
	var out []v1.WorkspaceBinding
	for _, w := range taskWorkspaces {
		pipelineWorkspace := w.Workspace
		if pipelineWorkspace == "" {
			pipelineWorkspace = w.Name
		}
		b, ok := bindings[pipelineWorkspace]
		if !ok {
			if optionalInTask(rpt, w.Name) {
				continue
			}
			return nil, fmt.Errorf("expected workspace %q to be provided by pipelinerun for pipeline task %q", pipelineWorkspace, pt.Name)
		}
		binding := *b.DeepCopy()
		if b.VolumeClaimTemplate != nil {
			// The claim made for the PipelineRun (claimTemplates).
			binding = v1.WorkspaceBinding{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
				ClaimName: volumeclaim.GeneratePVCNameFromWorkspaceBinding(b.VolumeClaimTemplate.Name, b, *kmeta.NewControllerRef(pr)),
			}}
		}
		binding.Name = w.Name
		binding.SubPath = joinSubPath(b.SubPath, w.SubPath)
		out = append(out, binding)
	}
	return out, nil
}

func optionalInTask(rpt *resources.ResolvedPipelineTask, name string) bool {
	if rpt.ResolvedTask == nil || rpt.ResolvedTask.TaskSpec == nil {
		return false
	}
	for _, w := range rpt.ResolvedTask.TaskSpec.Workspaces {
		if w.Name == name {
			return w.Optional
		}
	}
	return false
}

func joinSubPath(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	default:
		return filepath.Join(a, b)
	}
}
