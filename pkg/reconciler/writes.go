package reconciler

import (
	"context"
	"fmt"
	"slices"

	kcpdynamic "github.com/kcp-dev/client-go/dynamic"
	"github.com/kcp-dev/logicalcluster/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"
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

// Add adds the finalizer to u in its workspace and returns the updated
// object, so that the reconcile can go on with it.
func (f Finalizers) Add(ctx context.Context, cluster logicalcluster.Name, u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	out := u.DeepCopy()
	out.SetFinalizers(append(out.GetFinalizers(), f.Name))
	return f.Client.Cluster(cluster.Path()).Resource(f.Resource).Namespace(u.GetNamespace()).Update(ctx, out, metav1.UpdateOptions{})
}

// Remove removes the finalizer from u in its workspace. An object already
// gone is done: a reconcile of a stale cached copy finds its finalizer
// removed and the object deleted.
func (f Finalizers) Remove(ctx context.Context, cluster logicalcluster.Name, u *unstructured.Unstructured) error {
	out := u.DeepCopy()
	out.SetFinalizers(slices.DeleteFunc(out.GetFinalizers(), func(n string) bool { return n == f.Name }))
	_, err := f.Client.Cluster(cluster.Path()).Resource(f.Resource).Namespace(u.GetNamespace()).Update(ctx, out, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// Objects writes tenant objects of one resource.
type Objects struct {
	Client   kcpdynamic.ClusterInterface
	Resource schema.GroupVersionResource
}

// UpdateMeta writes labels and annotations onto u in its workspace. On a
// conflict (the informer's copy was stale) it applies them to the latest
// object from the server, as Tekton's generated reconcilers do.
func (o Objects) UpdateMeta(ctx context.Context, cluster logicalcluster.Name, u *unstructured.Unstructured, labels, annotations map[string]string) (*unstructured.Unstructured, error) {
	var updated *unstructured.Unstructured
	err := o.onLatest(ctx, cluster, u, func(out *unstructured.Unstructured) error {
		out.SetLabels(labels)
		out.SetAnnotations(annotations)
		var err error
		updated, err = o.client(cluster, u).Update(ctx, out, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("update labels and annotations: %w", err)
	}
	return updated, nil
}

// UpdateStatus writes status (a typed status struct) as u's status; on a
// conflict, onto the latest object from the server (the controller owns
// the status).
func (o Objects) UpdateStatus(ctx context.Context, cluster logicalcluster.Name, u *unstructured.Unstructured, status any) error {
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(status)
	if err != nil {
		return err
	}
	err = o.onLatest(ctx, cluster, u, func(out *unstructured.Unstructured) error {
		out.Object["status"] = raw
		_, err := o.client(cluster, u).UpdateStatus(ctx, out, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}

// onLatest runs write on a copy of u, and after a conflict on the object
// read from the server, a few times.
func (o Objects) onLatest(ctx context.Context, cluster logicalcluster.Name, u *unstructured.Unstructured, write func(*unstructured.Unstructured) error) error {
	current := u.DeepCopy()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		err := write(current)
		if !apierrors.IsConflict(err) {
			return err
		}
		latest, gerr := o.client(cluster, u).Get(ctx, u.GetName(), metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		current = latest
		return err
	})
}

func (o Objects) client(cluster logicalcluster.Name, u *unstructured.Unstructured) dynamic.ResourceInterface {
	return o.Client.Cluster(cluster.Path()).Resource(o.Resource).Namespace(u.GetNamespace())
}
