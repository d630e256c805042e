//go:build e2e

package stack

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
)

// TestKCPWorkspaceCreateAndList creates a workspace through kcp's API,
// waits until it is Ready and finds it when listing root's workspaces.
func TestKCPWorkspaceCreateAndList(t *testing.T) {
	ctx := context.Background()
	root := logicalcluster.NewPath("root")
	name := fmt.Sprintf("e2e-ws-%d", time.Now().UnixNano())
	path, err := devstack.EnsureWorkspace(ctx, env.KCP, root, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.KCP.Cluster(root).TenancyV1alpha1().Workspaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	list, err := env.KCP.Cluster(root).TenancyV1alpha1().Workspaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var found, provider bool
	for _, ws := range list.Items {
		found = found || ws.Name == name
		provider = provider || ws.Name == devstack.ProviderWorkspace
	}
	if !found || !provider {
		t.Fatalf("listing root workspaces: found %s=%v, %s=%v", name, found, devstack.ProviderWorkspace, provider)
	}
	// The new workspace serves the Kubernetes API of its own logical cluster.
	ns, err := env.KCP.Cluster(path).TenancyV1alpha1().Workspaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list workspaces inside %s: %v", path, err)
	}
	if len(ns.Items) != 0 {
		t.Errorf("new workspace %s has %d child workspaces, want 0", path, len(ns.Items))
	}
}
