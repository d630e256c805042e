//go:build e2e

package stack

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// TestPodFromLocalImageRunsAndLogs runs pods from the locally built images,
// named as pipelines name them upstream, to completion on the workload
// cluster and reads their logs through the API.
func TestPodFromLocalImageRunsAndLogs(t *testing.T) {
	cases := []struct {
		name   string
		image  string
		script string
		want   string
	}{
		{name: "busybox", image: "docker.io/library/busybox:1.36", script: "echo hello from $(uname -s)", want: "hello from Linux"},
		{name: "alpine-mirror-gcr", image: "mirror.gcr.io/library/alpine:3.20", script: "echo alpine ok", want: "alpine ok"},
		{name: "python", image: "python:3.12", script: "python3 -c 'print(6*7)'", want: "42"},
		{name: "node-ghcr", image: "ghcr.io/library/node:20", script: "node -e 'console.log([1,2].length)'", want: "2"},
	}
	ctx := context.Background()
	ns := framework.CreateNamespace(ctx, t, env.Workload, "e2e-pod-")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: tc.name},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "main", Image: tc.image, Command: []string{"sh", "-c", tc.script}}},
				},
			}
			if _, err := env.Workload.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create pod: %v", err)
			}
			framework.Eventually(t, 3*time.Minute, "pod "+tc.name+" succeeds", func() (bool, string, error) {
				p, err := env.Workload.CoreV1().Pods(ns).Get(ctx, tc.name, metav1.GetOptions{})
				if err != nil {
					return false, err.Error(), nil
				}
				if p.Status.Phase == corev1.PodFailed {
					return false, "", framework.PodFailure(p)
				}
				return p.Status.Phase == corev1.PodSucceeded, framework.PodSummary(p), nil
			})
			logs, err := env.Workload.CoreV1().Pods(ns).GetLogs(tc.name, &corev1.PodLogOptions{Container: "main"}).DoRaw(ctx)
			if err != nil {
				t.Fatalf("read logs through the API: %v", err)
			}
			if got := strings.TrimSpace(string(logs)); got != tc.want {
				t.Errorf("logs = %q, want %q", got, tc.want)
			}
		})
	}
}
