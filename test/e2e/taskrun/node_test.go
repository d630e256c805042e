//go:build e2e

package taskrun

import (
	"context"
	"testing"
	"time"

	"github.com/tektoncd/pipeline/pkg/apis/pipeline/pod"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestNodeLosingItsContainersFailsTheTaskRun: when the node of a running
// TaskRun loses its containers (as a rebooted node does), the kubelet
// fails the pod, and the TaskRun ends Failed as on Tekton, not waiting
// for its timeout; the kubelet's messages where a step's JSON belongs do
// not hold it.
func TestNodeLosingItsContainersFailsTheTaskRun(t *testing.T) {
	ctx := context.Background()
	const node = "workload-node-2"
	tn := env.NewTenant(ctx, t, "e2e-node-lost")
	tr := &v1.TaskRun{
		ObjectMeta: metav1.ObjectMeta{Name: "on-lost-node"},
		Spec: v1.TaskRunSpec{
			PodTemplate: &pod.PodTemplate{NodeSelector: map[string]string{"node-type": "worker-2"}},
			TaskSpec: &v1.TaskSpec{Steps: []v1.Step{
				{Name: "sleep", Image: "busybox", Script: "sleep 300"},
				{Name: "after", Image: "busybox", Script: "echo never"},
			}},
		},
	}
	create(ctx, t, tn, tr)
	running := waitPodRunning(ctx, t, tn, tr.Name)
	if running.Spec.NodeName != node {
		t.Fatalf("pod runs on %s, want %s", running.Spec.NodeName, node)
	}
	wiped := time.Now()
	if err := env.Stack.WipeNodeContainers(ctx, node); err != nil {
		t.Fatalf("wipe the containers of %s: %v", node, err)
	}
	t.Logf("%s lost its containers (%.0fs to restart its kubelet)", node, time.Since(wiped).Seconds())

	done := tn.WaitTaskRunDone(ctx, t, ns, tr.Name, 3*time.Minute)
	cond := done.Status.GetCondition("Succeeded")
	t.Logf("TaskRun ended %s/%s %.0fs after the wipe: %s", cond.Status, cond.Reason, time.Since(wiped).Seconds(), cond.Message)
	if cond.Status != corev1.ConditionFalse || cond.Reason != string(v1.TaskRunReasonFailed) {
		t.Errorf("TaskRun on the wiped node ended %s/%s, want False/%s", cond.Status, cond.Reason, v1.TaskRunReasonFailed)
	}
	if done.Status.CompletionTime == nil || len(done.Status.Steps) != 2 {
		t.Errorf("completion time %v, %d step states: want both", done.Status.CompletionTime, len(done.Status.Steps))
	}
}
