//go:build e2e

package taskrun

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/workload"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// TestSidecarStoppedWhenStepsEnd: a sidecar that would run for an hour is
// stopped once the TaskRun's step has ended, as in Tekton: its pod on the
// workload cluster ends, and the TaskRun's sidecar state says it
// terminated, the run still Succeeded. Before, the tenant's sidecar ran on the shared node for as
// long as its TaskRun existed.
func TestSidecarStoppedWhenStepsEnd(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-sidecar")
	create(ctx, t, tn, &v1.TaskRun{
		ObjectMeta: metav1.ObjectMeta{Name: "with-sidecar"},
		Spec: v1.TaskRunSpec{TaskSpec: &v1.TaskSpec{
			Steps:    []v1.Step{{Name: "build", Image: "busybox", Script: "echo built"}},
			Sidecars: []v1.Sidecar{{Name: "db", Image: "busybox", Script: "sleep 3600"}},
		}},
	})
	tr := tn.WaitTaskRunDone(ctx, t, ns, "with-sidecar", 3*time.Minute)
	if status, reason := framework.Condition(tr); status != "True" {
		t.Fatalf("TaskRun ended %s/%s, want Succeeded", status, reason)
	}
	podNS := workload.Namespace(logicalcluster.From(tr), ns)
	framework.Eventually(t, 2*time.Minute, "the pod ended, its sidecar stopped", func() (bool, string, error) {
		pod, err := env.Workload.CoreV1().Pods(podNS).Get(ctx, tr.Status.PodName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		// The script the sidecar keeps as its command cannot start on the
		// nop image, so the pod may end Failed; the run has ended before.
		return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed, string(pod.Status.Phase), nil
	})
	framework.Eventually(t, time.Minute, "the TaskRun's sidecar state terminated", func() (bool, string, error) {
		tr, err := tn.Tekton.TektonV1().TaskRuns(ns).Get(ctx, "with-sidecar", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		if len(tr.Status.Sidecars) != 1 || tr.Status.Sidecars[0].Terminated == nil {
			return false, fmt.Sprintf("sidecars %+v", tr.Status.Sidecars), nil
		}
		if status, reason := framework.Condition(tr); status != "True" {
			return false, "", fmt.Errorf("the TaskRun became %s/%s when its sidecar stopped, want it to stay Succeeded", status, reason)
		}
		return true, "", nil
	})
}
