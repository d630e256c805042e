package reconciler

import (
	"context"
	"fmt"
	"slices"

	kcpdynamic "github.com/kcp-dev/client-go/dynamic"
	"github.com/kcp-dev/logicalcluster/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
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

// Objects writes tenant objects of one resource.
type Objects struct {
	Client   kcpdynamic.ClusterInterface
	Resource schema.GroupVersionResource
}

// UpdateMeta writes labels and annotations onto u in its workspace.
func (o Objects) UpdateMeta(ctx context.Context, cluster logicalcluster.Name, u *unstructured.Unstructured, labels, annotations map[string]string) (*unstructured.Unstructured, error) {
	out := u.DeepCopy()
	out.SetLabels(labels)
	out.SetAnnotations(annotations)
	updated, err := o.Client.Cluster(cluster.Path()).Resource(o.Resource).Namespace(u.GetNamespace()).Update(ctx, out, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("update labels and annotations: %w", err)
	}
	return updated, nil
}

// UpdateStatus writes status (a typed status struct) as u's status.
func (o Objects) UpdateStatus(ctx context.Context, cluster logicalcluster.Name, u *unstructured.Unstructured, status any) error {
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(status)
	if err != nil {
		return err
	}
	out := u.DeepCopy()
	out.Object["status"] = raw
	if _, err := o.Client.Cluster(cluster.Path()).Resource(o.Resource).Namespace(u.GetNamespace()).UpdateStatus(ctx, out, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}
