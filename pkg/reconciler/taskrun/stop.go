package taskrun

import (
	"context"
	"errors"
	"fmt"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// failTaskRun ends a TaskRun with reason, as Tekton does: the condition
// turns False, running and waiting steps are recorded as terminated with
// that reason, and the pod is deleted.
func (c *Controller) failTaskRun(ctx context.Context, cluster logicalcluster.Name, tr *v1.TaskRun, reason v1.TaskRunReason, message string) error {
	tr.Status.MarkResourceFailed(reason, errors.New(message))
	now := metav1.NewTime(c.clock.Now())
	tr.Status.CompletionTime = &now
	if tr.Status.PodName == "" {
		return nil
	}
	terminateSteps(tr, reason, now)
	m := c.memberOf(tr)
	if m == nil || !m.Reachable() {
		return nil // the garbage collector removes the pod when the cluster is back
	}
	err := m.Client.CoreV1().Pods(workload.Namespace(cluster, tr.Namespace)).Delete(ctx, tr.Status.PodName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete pod %s: %w", tr.Status.PodName, err)
	}
	return nil
}

func terminateSteps(tr *v1.TaskRun, reason v1.TaskRunReason, now metav1.Time) {
	for i, step := range tr.Status.Steps {
		if step.Running == nil && step.Waiting == nil {
			continue
		}
		startedAt := tr.CreationTimestamp
		if step.Running != nil {
			startedAt = step.Running.StartedAt
		}
		tr.Status.Steps[i].ContainerState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode:   1,
			StartedAt:  startedAt,
			FinishedAt: now,
			Reason:     reason.String(),
			Message:    fmt.Sprintf("Step %s terminated as pod %s is terminated", step.Name, tr.Status.PodName),
		}}
		tr.Status.Steps[i].TerminationReason = reason.String()
	}
}
