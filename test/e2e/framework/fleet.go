package framework

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// PinnedRegion is the region label of the workload cluster NewTenant pins
// tenants to (the stack's first).
const PinnedRegion = "local-1"

// TenantPods lists the service's pods of a tenant on a workload cluster.
func TenantPods(ctx context.Context, client kubernetes.Interface, tn *Tenant) ([]corev1.Pod, error) {
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: workload.LabelClusterName + "=" + tn.Cluster.String()})
	if err != nil {
		return nil, err
	}
	return pods.Items, nil
}
