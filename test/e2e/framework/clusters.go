package framework

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ClusterClient is an admin client of the named workload cluster.
func (e *Env) ClusterClient(t testing.TB, name string) kubernetes.Interface {
	t.Helper()
	client, err := e.Stack.Config().WorkloadClusterClient(name)
	if err != nil {
		t.Fatalf("client of workload cluster %s: %v", name, err)
	}
	return client
}

// RunPodToCompletion creates pod in namespace ns, waits until it succeeded
// and returns the logs of its first container, read through the API.
func RunPodToCompletion(ctx context.Context, t testing.TB, client kubernetes.Interface, ns string, pod *corev1.Pod, timeout time.Duration) string {
	t.Helper()
	if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", pod.Name, err)
	}
	Eventually(t, timeout, "pod "+pod.Name+" succeeds", func() (bool, string, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		if p.Status.Phase == corev1.PodFailed {
			return false, "", PodFailure(p)
		}
		return p.Status.Phase == corev1.PodSucceeded, PodSummary(p), nil
	})
	logs, err := client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: pod.Spec.Containers[0].Name}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("read logs of pod %s through the API: %v", pod.Name, err)
	}
	return strings.TrimSpace(string(logs))
}
