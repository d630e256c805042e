package taskrun

import (
	"context"
	"errors"
	"fmt"

	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	podconvert "github.com/tektoncd/pipeline/pkg/pod"
	"github.com/tektoncd/pipeline/pkg/reconciler/taskrun/resources"
	"github.com/tektoncd/pipeline/pkg/reconciler/volumeclaim"
	"github.com/tektoncd/pipeline/pkg/workspace"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	"knative.dev/pkg/kmeta"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/podsecurity"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// podIfAny is the TaskRun's pod on its workload cluster, nil if there is
// none (or the cluster is not known).
func (c *Controller) podIfAny(cluster logicalcluster.Name, tr *v1.TaskRun) *corev1.Pod {
	m := c.memberOf(tr)
	if m == nil {
		return nil
	}
	pod, err := podOn(m, cluster, tr)
	if err != nil {
		return nil
	}
	return pod
}

// podOn finds the TaskRun's pod on a member.
func podOn(m *fleet.Member, cluster logicalcluster.Name, tr *v1.TaskRun) (*corev1.Pod, error) {
	ns := workload.Namespace(cluster, tr.Namespace)
	if tr.Status.PodName != "" {
		pod, err := m.Pods.Pods(ns).Get(tr.Status.PodName)
		if err == nil || !apierrors.IsNotFound(err) {
			return pod, err
		}
	}
	pods, err := m.Pods.Pods(ns).List(labels.SelectorFromSet(labels.Set{workload.LabelTaskRunUID: string(tr.UID)}))
	if err != nil {
		return nil, err
	}
	for _, pod := range pods {
		if !podconvert.IsPodArchived(pod, &tr.Status) {
			return pod, nil
		}
	}
	return nil, nil
}

// ensurePod returns the TaskRun's pod, creating it (and its workload
// namespace) if there is none. Substitution runs on every reconcile, as in
// Tekton, so that the status carries the substituted task spec.
func (c *Controller) ensurePod(ctx context.Context, log *zap.SugaredLogger, m *fleet.Member, cluster logicalcluster.Name, tr *v1.TaskRun, rtr *resources.ResolvedTask) (*corev1.Pod, error) {
	pod, err := podOn(m, cluster, tr)
	if err != nil {
		return nil, err
	}
	// As in Tekton: before the first substitution, claims are made from
	// the templates (tenant PVCs owned by the TaskRun) and bound instead.
	if pod == nil && tr.HasVolumeClaimTemplate() {
		if err := c.claimTemplates(ctx, log, cluster, tr); err != nil {
			tr.Status.MarkResourceFailed(volumeclaim.ReasonCouldntCreateWorkspacePVC,
				fmt.Errorf("failed to create PVC for TaskRun %s/%s workspaces correctly: %w", tr.Namespace, tr.Name, err))
			return nil, nil
		}
	}
	resources.ApplyParametersToWorkspaceBindings(rtr.TaskSpec, tr)
	volumes := workspace.CreateVolumes(tr.Spec.Workspaces)
	ts := substitute(ctx, tr, rtr, volumes)
	tr.Status.TaskSpec = ts
	rtr.TaskSpec = ts
	if pod != nil {
		return pod, nil
	}
	level, err := c.fleet.PodSecurityLevel(cluster.String())
	if err != nil {
		tr.Status.MarkResourceFailed(ReasonInvalidPodSecurityLevel, fmt.Errorf("the platform's TenantPolicy of this workspace: %w", err))
		return nil, nil
	}
	pod, err = c.buildPod(withTektonSecurityContext(ctx, level), m, cluster, tr, ts, volumes)
	if err != nil {
		tr.Status.MarkResourceFailed(podconvert.ReasonPodCreationFailed, fmt.Errorf("failed to create task run pod %q: %w", tr.Name, err))
		return nil, nil
	}
	if !c.checkPodSecurity(level, tr, pod) {
		log.Infow("TaskRun refused: its pod breaks the workspace's Pod Security level", "level", level)
		return nil, nil
	}
	if userNamespaces(level, m.UserNamespaces()) && !inUserNamespace(tr, pod) {
		log.Infow("TaskRun refused: its pod cannot run in a user namespace", "cluster", m.Name)
		return nil, nil
	}
	if err := workload.EnsureNamespace(ctx, m.Client, c.fleet.Isolation(), cluster, tr.Namespace, podsecurity.NamespaceLabels(level)); err != nil {
		return nil, err
	}
	if err := c.carryPodSources(ctx, m, cluster, tr, pod); err != nil {
		var missing missingSourceError
		if errors.As(err, &missing) {
			tr.Status.MarkResourceFailed(v1.TaskRunReasonCreateContainerConfigError, err)
			return nil, nil
		}
		return nil, err
	}
	if err := ensureServiceAccount(ctx, m, pod.Namespace, pod.Spec.ServiceAccountName); err != nil {
		return nil, err
	}
	created, err := m.Client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return m.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("create pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	log.Infow("created pod", "cluster", m.Name, "podNamespace", created.Namespace, "pod", created.Name)
	return created, nil
}

// claimTemplates creates a tenant PVC for every volumeClaimTemplate
// workspace of tr, owned by tr, and binds the workspace to it (in tr's
// copy, for building the pod; the spec stays as written).
func (c *Controller) claimTemplates(ctx context.Context, log *zap.SugaredLogger, cluster logicalcluster.Name, tr *v1.TaskRun) error {
	client, err := c.workspaceKube(cluster)
	if err != nil {
		return err
	}
	handler := volumeclaim.NewPVCHandler(client, log)
	owner := *kmeta.NewControllerRef(tr)
	for i, wb := range tr.Spec.Workspaces {
		if wb.VolumeClaimTemplate == nil {
			continue
		}
		if err := handler.CreatePVCFromVolumeClaimTemplate(ctx, wb, owner, tr.Namespace); err != nil {
			return err
		}
		tr.Spec.Workspaces[i] = v1.WorkspaceBinding{
			Name:                  wb.Name,
			SubPath:               wb.SubPath,
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: volumeclaim.GeneratePVCNameFromWorkspaceBinding(wb.VolumeClaimTemplate.Name, wb, owner)},
		}
	}
	return nil
}

// substitute applies parameters, contexts, results and workspaces to the
// task spec, mirroring Tekton's taskrun reconciler.
func substitute(ctx context.Context, tr *v1.TaskRun, rtr *resources.ResolvedTask, volumes map[string]corev1.Volume) *v1.TaskSpec {
	ts := rtr.TaskSpec.DeepCopy()
	ts = resources.ApplyParameters(ts, tr, ts.Params...)
	ts = resources.ApplyContexts(ts, rtr.TaskName, tr)
	ts = resources.ApplyResults(ts)
	ts = resources.ApplyArtifacts(ts)
	ts = resources.ApplyStepExitCodePath(ts)
	declared := map[string]bool{}
	for _, w := range ts.Workspaces {
		declared[w.Name] = true
	}
	for _, b := range tr.Spec.Workspaces {
		if !declared[b.Name] {
			ts.Workspaces = append(ts.Workspaces, v1.WorkspaceDeclaration{Name: b.Name})
		}
	}
	return resources.ApplyWorkspaces(ctx, ts, ts.Workspaces, tr.Spec.Workspaces, volumes)
}

// buildPod builds the pod with Tekton's pod builder, for the workload
// namespace, with labels leading back to the tenant TaskRun.
func (c *Controller) buildPod(ctx context.Context, m *fleet.Member, cluster logicalcluster.Name, tr *v1.TaskRun, spec *v1.TaskSpec, volumes map[string]corev1.Volume) (*corev1.Pod, error) {
	ts := spec.DeepCopy()
	if err := v1.ValidateUsageOfDeclaredParameters(ctx, ts.Steps, ts.Params); err != nil {
		return nil, err
	}
	if err := ts.Validate(ctx); err != nil {
		return nil, err
	}
	ts, err := workspace.Apply(ctx, *ts, tr.Spec.Workspaces, volumes)
	if err != nil {
		return nil, err
	}
	ts = resources.ApplyCredentialsPath(ts, pipeline.CredsDir)
	if err := c.resolveCommands(ctx, ts); err != nil {
		return nil, err
	}
	wtr := tr.DeepCopy()
	wtr.Namespace = workload.Namespace(cluster, tr.Namespace)
	if tr.Spec.PodTemplate != nil {
		wtr.Spec.PodTemplate = resources.ApplyPodTemplateReplacements(tr.Spec.PodTemplate, tr, ts.Params...)
	}
	builder := podconvert.Builder{Images: c.images, KubeClient: m.Client}
	return builder.Build(ctx, wtr, *ts, c.forWorkload(cluster, tr))
}

// forWorkload adapts a Tekton pod to the workload cluster: no owner
// reference (the TaskRun lives in kcp), labels and annotations leading
// back to the tenant TaskRun, no workload-cluster credentials mounted, and
// images rewritten through the image map.
func (c *Controller) forWorkload(cluster logicalcluster.Name, tr *v1.TaskRun) podconvert.Transformer {
	return func(pod *corev1.Pod) (*corev1.Pod, error) {
		pod.OwnerReferences = nil
		if pod.Labels == nil {
			pod.Labels = map[string]string{}
		}
		pod.Labels[workload.LabelManagedBy] = workload.ManagedByValue
		pod.Labels[workload.LabelClusterName] = cluster.String()
		pod.Labels[workload.LabelTaskRunUID] = string(tr.UID)
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[workload.AnnotationTaskRun] = tr.Namespace + "/" + tr.Name
		pod.Annotations[workload.AnnotationClusterNS] = workload.TenantAnnotation(cluster, tr.Namespace)
		pod.Spec.AutomountServiceAccountToken = ptr.To(false)
		for i := range pod.Spec.Containers {
			pod.Spec.Containers[i].Image = c.resolver.Rewrite(pod.Spec.Containers[i].Image)
		}
		for i := range pod.Spec.InitContainers {
			pod.Spec.InitContainers[i].Image = c.resolver.Rewrite(pod.Spec.InitContainers[i].Image)
		}
		return pod, nil
	}
}

// resolveCommands sets the command of every step that has none (after the
// step template is merged) from its image's config, read through the local
// image mapping. Tekton's entrypoint cache would otherwise reach out to the
// image's registry.
func (c *Controller) resolveCommands(ctx context.Context, ts *v1.TaskSpec) error {
	merged, err := v1.MergeStepsWithStepTemplate(ts.StepTemplate, ts.Steps)
	if err != nil {
		return err
	}
	for i, step := range merged {
		if len(step.Command) > 0 || step.Script != "" {
			continue
		}
		command, err := c.resolver.Command(ctx, step.Image, len(step.Args) > 0)
		if err != nil {
			return fmt.Errorf("step %q: %w", step.Name, err)
		}
		ts.Steps[i].Command = command
	}
	for i, sc := range ts.Sidecars {
		if len(sc.Command) > 0 || sc.Script != "" {
			continue
		}
		command, err := c.resolver.Command(ctx, sc.Image, len(sc.Args) > 0)
		if err != nil {
			return fmt.Errorf("sidecar %q: %w", sc.Name, err)
		}
		ts.Sidecars[i].Command = command
	}
	return nil
}

// ensureServiceAccount creates the pod's service account in the workload
// namespace: an identity without workload-cluster credentials.
func ensureServiceAccount(ctx context.Context, m *fleet.Member, namespace, name string) error {
	if name == "" || name == "default" {
		return nil
	}
	sa := &corev1.ServiceAccount{
		ObjectMeta:                   metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{workload.LabelManagedBy: workload.ManagedByValue}},
		AutomountServiceAccountToken: ptr.To(false),
	}
	_, err := m.Client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}
