package framework

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// CreateNamespace creates a namespace with a generated name, deleted when
// the test ends.
func CreateNamespace(ctx context.Context, t testing.TB, client kubernetes.Interface, prefix string) string {
	t.Helper()
	ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

// PodSummary describes where a pod stands, for failure messages.
func PodSummary(p *corev1.Pod) string {
	parts := []string{"phase " + string(p.Status.Phase)}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			parts = append(parts, fmt.Sprintf("%s waiting: %s %s", cs.Name, w.Reason, w.Message))
		}
	}
	return strings.Join(parts, "; ")
}

// PodFailure is the error of a failed pod, with its containers' reasons.
func PodFailure(p *corev1.Pod) error {
	var parts []string
	for _, cs := range p.Status.ContainerStatuses {
		if term := cs.State.Terminated; term != nil {
			parts = append(parts, fmt.Sprintf("%s exited %d: %s %s", cs.Name, term.ExitCode, term.Reason, term.Message))
		}
	}
	return fmt.Errorf("pod %s/%s failed: %s", p.Namespace, p.Name, strings.Join(parts, "; "))
}
