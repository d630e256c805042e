package reconciler

import (
	"context"
	"slices"

	kcpdynamic "github.com/kcp-dev/client-go/dynamic"
	"github.com/kcp-dev/logicalcluster/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Finalizers edits the finalizers of tenant objects of one resource.
type Finalizers struct {
	Client   kcpdynamic.ClusterInterface
	Resource schema.GroupVersionResource
	Name     string
}

// Has tells whether u carries the finalizer.
func (f Finalizers) Has(u *unstructured.Unstructured) bool {
	return slices.Contains(u.GetFinalizers(), f.Name)
}

// Add adds the finalizer to u in its workspace.
func (f Finalizers) Add(ctx context.Context, cluster logicalcluster.Name, u *unstructured.Unstructured) error {
	out := u.DeepCopy()
	out.SetFinalizers(append(out.GetFinalizers(), f.Name))
	return f.update(ctx, cluster, out)
}

// Remove removes the finalizer from u in its workspace.
func (f Finalizers) Remove(ctx context.Context, cluster logicalcluster.Name, u *unstructured.Unstructured) error {
	out := u.DeepCopy()
	out.SetFinalizers(slices.DeleteFunc(out.GetFinalizers(), func(n string) bool { return n == f.Name }))
	return f.update(ctx, cluster, out)
}

func (f Finalizers) update(ctx context.Context, cluster logicalcluster.Name, u *unstructured.Unstructured) error {
	_, err := f.Client.Cluster(cluster.Path()).Resource(f.Resource).Namespace(u.GetNamespace()).Update(ctx, u, metav1.UpdateOptions{})
	return err
}
