package taskrun

import (
	"testing"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTerminateStepsRecordsTheReasonOnUnfinishedSteps(t *testing.T) {
	started := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	now := metav1.NewTime(started.Add(time.Minute))
	tr := &v1.TaskRun{}
	tr.CreationTimestamp = metav1.NewTime(started.Add(-time.Second))
	tr.Status.PodName = "p"
	tr.Status.Steps = []v1.StepState{
		{Name: "done", ContainerState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}, TerminationReason: "Completed"},
		{Name: "running", ContainerState: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}},
		{Name: "waiting", ContainerState: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}},
	}
	terminateSteps(tr, v1.TaskRunReasonTimedOut, now)

	if st := tr.Status.Steps[0]; st.Terminated.Reason != "Completed" || st.TerminationReason != "Completed" {
		t.Errorf("finished step changed: %+v", st)
	}
	for i, wantStart := range map[int]metav1.Time{1: started, 2: tr.CreationTimestamp} {
		st := tr.Status.Steps[i]
		if st.Running != nil || st.Waiting != nil || st.Terminated == nil {
			t.Fatalf("step %s not terminated: %+v", st.Name, st.ContainerState)
		}
		if st.Terminated.ExitCode != 1 || st.Terminated.Reason != "TaskRunTimeout" || st.TerminationReason != "TaskRunTimeout" ||
			!st.Terminated.StartedAt.Equal(&wantStart) || !st.Terminated.FinishedAt.Equal(&now) {
			t.Errorf("step %s terminated as %+v (%s)", st.Name, st.Terminated, st.TerminationReason)
		}
	}
}
