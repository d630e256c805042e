package taskrun

import (
	"context"
	"fmt"
	"testing"
	"time"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"knative.dev/pkg/apis"
)

// TestReconcileKeyStopsSidecarsOfADoneRun: once its steps have ended, the
// TaskRun is done and its pod's running sidecar gets the nop image, as
// Tekton's reconciler does; once the sidecar has stopped, the TaskRun's
// sidecar state says so.
func TestReconcileKeyStopsSidecarsOfADoneRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	spec := v1.TaskSpec{
		Steps:    []v1.Step{{Name: "build", Image: "busybox", Script: "echo hi"}},
		Sidecars: []v1.Sidecar{{Name: "db", Image: "busybox", Script: "sleep 3600"}},
	}
	c, tenants, workloads := newTestController(ctx, t, tenantTaskRunOf(t, spec, nil))
	key := kcpcache.ToClusterAwareKey(tenantWS.String(), "default", "build")
	reconcile := func(what string) {
		t.Helper()
		if _, err := c.skeleton.Reconcile(ctx, key); err != nil {
			t.Fatalf("%s reconcile: %v", what, err)
		}
	}
	member := c.fleet.Member("workload-1")
	podNow := func() *corev1.Pod {
		t.Helper()
		pods, err := workloads.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) != 1 {
			t.Fatalf("pods: %d (%v), want one", len(pods.Items), err)
		}
		return &pods.Items[0]
	}
	setPodStatus := func(pod *corev1.Pod, status corev1.PodStatus, seen func(*corev1.Pod) bool) {
		t.Helper()
		pod.Status = status
		if _, err := workloads.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the workload informer to see the pod's status", func() bool {
			p, err := member.Pods.Pods(pod.Namespace).Get(pod.Name)
			return err == nil && seen(p)
		})
	}
	taskRunSeen := func(what string, ok func(*v1.TaskRun) bool) {
		t.Helper()
		waitFor(t, "the tenant informer to see "+what, func() bool {
			obj, err := c.taskRuns.Lister().ByCluster(tenantWS).ByNamespace("default").Get("build")
			if err != nil {
				return false
			}
			return ok(taskRunOf(t, obj.(*unstructured.Unstructured)))
		})
	}

	reconcile("first")
	pod := podNow()
	started := metav1.Now()
	setPodStatus(pod, corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
		{Name: "step-build", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 0, Reason: "Completed", StartedAt: started, FinishedAt: started,
			Message: fmt.Sprintf(`[{"key":"StartedAt","value":%q,"type":3}]`, started.Format(time.RFC3339Nano))}}},
		{Name: "sidecar-db", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}},
	}}, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	taskRunSeen("the TaskRun's pod", func(tr *v1.TaskRun) bool { return tr.Status.PodName == pod.Name })

	reconcile("second")
	tr := tenantTaskRunNow(ctx, t, tenants)
	if cond := tr.Status.GetCondition(apis.ConditionSucceeded); cond == nil || !cond.IsTrue() {
		t.Fatalf("the TaskRun's condition is %+v with its steps ended, want True", cond)
	}
	taskRunSeen("the TaskRun done", func(tr *v1.TaskRun) bool { return tr.IsDone() })

	reconcile("third")
	pod = podNow()
	for _, ctr := range pod.Spec.Containers {
		if want := map[string]string{"step-build": "busybox", "sidecar-db": "nop"}[ctr.Name]; want != "" && ctr.Image != want {
			t.Errorf("container %s has image %q, want %q", ctr.Name, ctr.Image, want)
		}
	}

	// The kubelet restarts the sidecar with the nop image, which exits.
	setPodStatus(pod, corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{
		pod.Status.ContainerStatuses[0],
		{Name: "sidecar-db", RestartCount: 1,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 137, Reason: "Error", StartedAt: started, FinishedAt: metav1.Now()}}},
	}}, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	reconcile("fourth")
	tr = tenantTaskRunNow(ctx, t, tenants)
	if len(tr.Status.Sidecars) != 1 || tr.Status.Sidecars[0].Terminated == nil || tr.Status.Sidecars[0].Terminated.Reason != "Completed" {
		t.Errorf("the TaskRun's sidecars are %+v, want db terminated (Completed)", tr.Status.Sidecars)
	}
}

// TestSidecarRunning: only a sidecar that runs an image other than nop,
// in a running pod, is one to stop.
func TestSidecarRunning(t *testing.T) {
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	pod := func(phase corev1.PodPhase, image string, state corev1.ContainerState) *corev1.Pod {
		return &corev1.Pod{
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "step-a", Image: "busybox"}, {Name: "sidecar-db", Image: image}}},
			Status: corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{
				{Name: "step-a", State: running}, {Name: "sidecar-db", State: state},
			}},
		}
	}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"a running sidecar", pod(corev1.PodRunning, "postgres", running), true},
		{"already given the nop image", pod(corev1.PodRunning, "nop", running), false},
		{"a sidecar that ended", pod(corev1.PodRunning, "postgres", corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}), false},
		{"a pod that ended", pod(corev1.PodFailed, "postgres", running), false},
	} {
		if got := sidecarRunning(tc.pod, "nop"); got != tc.want {
			t.Errorf("%s: sidecarRunning = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func taskRunOf(t *testing.T, u *unstructured.Unstructured) *v1.TaskRun {
	t.Helper()
	var tr v1.TaskRun
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &tr); err != nil {
		t.Fatal(err)
	}
	return &tr
}
