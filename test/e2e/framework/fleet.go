package framework

import (
	"context"
	"testing"

	kcpdynamic "github.com/kcp-dev/client-go/dynamic"
	"github.com/kcp-dev/logicalcluster/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	fleetv1alpha1 "github.com/pipelines-service/pipelines-service/apis/fleet/v1alpha1"
	"github.com/pipelines-service/pipelines-service/pkg/devstack"
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

// WorkloadCluster reads a WorkloadCluster (with the status the
// controller's heartbeat keeps) from the provider workspace.
func (e *Env) WorkloadCluster(ctx context.Context, t testing.TB, name string) *fleetv1alpha1.WorkloadCluster {
	t.Helper()
	u, err := e.ProviderResource(t, fleetv1alpha1.WorkloadClustersResource).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("read WorkloadCluster %s: %v", name, err)
	}
	wc := &fleetv1alpha1.WorkloadCluster{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, wc); err != nil {
		t.Fatal(err)
	}
	return wc
}

// ProviderResource is an admin client of a resource in the
// provider workspace.
func (e *Env) ProviderResource(t testing.TB, resource schema.GroupVersionResource) dynamic.NamespaceableResourceInterface {
	t.Helper()
	rc, err := e.Stack.Config().KCPBaseRestConfig()
	if err != nil {
		t.Fatal(err)
	}
	client, err := kcpdynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return client.Cluster(logicalcluster.NewPath("root").Join(devstack.ProviderWorkspace)).Resource(resource)
}
