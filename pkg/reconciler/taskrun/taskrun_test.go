package taskrun

import (
	"context"
	"testing"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	podconvert "github.com/tektoncd/pipeline/pkg/pod"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"knative.dev/pkg/apis"
)

// lostContainer is what the kubelet reports for a step whose container
// it can no longer find (e.g. after its node restarted).
var lostContainer = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
	ExitCode: 137, Reason: "ContainerStatusUnknown",
	Message: "The container could not be located when the pod was terminated",
}}

func TestApplyPodStatusWhereAStepsMessageDoesNotParse(t *testing.T) {
	tests := []struct {
		name      string
		phase     corev1.PodPhase
		step      corev1.ContainerState
		wantErr   bool
		wantState corev1.ConditionStatus
	}{{
		name: "the pod failed: the run fails", phase: corev1.PodFailed, step: lostContainer,
		wantState: corev1.ConditionFalse,
	}, {
		name: "the pod still runs: looked at again", phase: corev1.PodRunning, step: lostContainer,
		wantErr: true, wantState: corev1.ConditionUnknown,
	}, {
		name: "a readable pod that runs", phase: corev1.PodRunning,
		step:      corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		wantState: corev1.ConditionUnknown,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			log := zap.NewNop().Sugar()
			tr := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "tr", Namespace: "ns"}}
			tr.Status.InitializeConditions()
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "tr-pod", Namespace: "ns"},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "step-a"}, {Name: "step-b"}}},
				Status: corev1.PodStatus{Phase: tt.phase, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "step-a", State: tt.step},
					{Name: "step-b", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}},
				}},
			}
			status, convErr := podconvert.MakeTaskRunStatus(ctx, log, *tr, pod, fake.NewSimpleClientset(), &v1.TaskSpec{})
			err := applyPodStatus(log, tr, status, convErr)
			if (err != nil) != tt.wantErr {
				t.Fatalf("applyPodStatus error %v, want error %v", err, tt.wantErr)
			}
			if got := tr.Status.GetCondition(apis.ConditionSucceeded); got == nil || got.Status != tt.wantState {
				t.Fatalf("Succeeded condition %+v, want %s", got, tt.wantState)
			}
		})
	}
}
