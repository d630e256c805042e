package taskrun

import (
	"context"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	podconvert "github.com/tektoncd/pipeline/pkg/pod"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"knative.dev/pkg/apis"
)

// stopSidecars stops the sidecars of a done TaskRun's pod, as Tekton's
// reconciler does (stopSidecars): each running sidecar's image becomes the
// nop image, which exits at once, and the run's sidecar states are read
// again from the pod once they have stopped.
//
// Why: the pod is kept after the run for its logs, and a sidecar (a
// database, a registry) never ends on its own. Without this, a tenant's
// sidecar ran on the shared nodes for as long as the TaskRun existed, and
// its pod, still Running, counted against the node's pods.
//
// Runs that were cancelled or timed out had their pod deleted (or stopped,
// with keep-pod-on-cancel), as in Tekton.
func (c *Controller) stopSidecars(ctx context.Context, cluster logicalcluster.Name, tr *v1.TaskRun) error {
	if tr.Status.PodName == "" || !podconvert.IsSidecarStatusRunning(tr) {
		return nil
	}
	if cond := tr.Status.GetCondition(apis.ConditionSucceeded); cond != nil {
		if reason := v1.TaskRunReason(cond.Reason); reason == v1.TaskRunReasonCancelled || reason == v1.TaskRunReasonTimedOut {
			return nil
		}
	}
	m := c.memberOf(tr)
	if m == nil || !m.Reachable() {
		return nil
	}
	pod := c.podIfAny(cluster, tr)
	if pod == nil {
		return nil
	}
	if sidecarRunning(pod, c.images.NopImage) {
		// The pod's update wakes the run again, and the states are read
		// then.
		_, err := podconvert.StopSidecars(ctx, c.images.NopImage, m.Client, pod.Namespace, pod.Name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	tr.Status.Sidecars = stoppedSidecarStates(pod)
	return nil
}

// sidecarRunning tells whether one of the pod's sidecars still runs an
// image other than nop: one that stopSidecars has yet to stop.
func sidecarRunning(pod *corev1.Pod, nopImage string) bool {
	if pod.Status.Phase != corev1.PodRunning {
		return false
	}
	images := map[string]string{}
	for _, c := range pod.Spec.Containers {
		images[c.Name] = c.Image
	}
	for _, s := range pod.Status.ContainerStatuses {
		if podconvert.IsContainerSidecar(s.Name) && s.State.Running != nil && images[s.Name] != nopImage {
			return true
		}
	}
	return false
}

// stoppedSidecarStates are the sidecars' states once stopped, as Tekton's
// updateStoppedSidecarStatus reads them: a sidecar the nop image replaced
// shows how it ended before, the others their current state.
func stoppedSidecarStates(pod *corev1.Pod) []v1.SidecarState {
	states := []v1.SidecarState{}
	for _, s := range pod.Status.ContainerStatuses {
		if !podconvert.IsContainerSidecar(s.Name) {
			continue
		}
		state := s.State
		if last := s.LastTerminationState.Terminated; last != nil {
			state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode:    last.ExitCode,
				Reason:      "Completed",
				Message:     "Sidecar container successfully stopped by nop image",
				StartedAt:   last.StartedAt,
				FinishedAt:  last.FinishedAt,
				ContainerID: last.ContainerID,
			}}
		}
		states = append(states, v1.SidecarState{
			ContainerState: *state.DeepCopy(),
			Name:           podconvert.TrimSidecarPrefix(s.Name),
			Container:      s.Name,
			ImageID:        s.ImageID,
		})
	}
	return states
}
