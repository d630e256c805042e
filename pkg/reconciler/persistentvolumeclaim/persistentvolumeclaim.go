package persistentvolumeclaim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/pkg/apis"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// ConditionWorkloadSynced reports on a tenant PVC that the workload
// cluster refused it, with the workload apiserver's message.
const ConditionWorkloadSynced corev1.PersistentVolumeClaimConditionType = "WorkloadSynced"

// kind is the tenant PVC's part of the reconcile skeleton
// (reconciler.Skeleton).
type kind struct{ c *Controller }

func (kind) New() *corev1.PersistentVolumeClaim                      { return &corev1.PersistentVolumeClaim{} }
func (kind) Status(tenant *corev1.PersistentVolumeClaim) any         { return &tenant.Status }
func (kind) Succeeded(*corev1.PersistentVolumeClaim) *apis.Condition { return nil }

// Gone: the workload claim goes (reconciler.Tombstones).
func (k kind) Gone(ctx context.Context, key string) error { return k.c.collectDeleted(ctx, key, "") }

// Undecodable: the schema admitted what the Go type cannot read; it is
// logged, and left.
func (k kind) Undecodable(ctx context.Context, o *reconciler.Object, _ error) error {
	return k.c.collectDeleted(ctx, o.Key, o.Unstructured.GetUID())
}

func (k kind) FinalizeKind(ctx context.Context, o *reconciler.Object, tenant *corev1.PersistentVolumeClaim) error {
	if err := k.c.collectDeleted(ctx, o.Key, o.Unstructured.GetUID()); err != nil {
		return err
	}
	ns := workload.Namespace(o.Cluster, tenant.Namespace)
	return k.c.finalize(ctx, o.Cluster, o.Unstructured, k.c.fleet.Member(placement.Of(tenant)), ns, tenant.Name)
}

// ReconcileKind places the claim, makes its workload claim and reflects
// that claim's status (or the workload cluster's refusal) on it.
func (k kind) ReconcileKind(ctx context.Context, o *reconciler.Object, tenant *corev1.PersistentVolumeClaim) (time.Duration, error) {
	c := k.c
	if err := c.collectDeleted(ctx, o.Key, o.Unstructured.GetUID()); err != nil {
		return 0, err // an earlier claim of the same name went first
	}
	m, wait, err := c.placedMember(o.Log, o.Cluster, tenant)
	if err != nil || m == nil {
		return wait, err
	}
	ns := workload.Namespace(o.Cluster, tenant.Namespace)
	current, err := c.ensureWorkloadClaim(ctx, m, o.Cluster, ns, tenant)
	var refused *apierrors.StatusError
	if errors.As(err, &refused) && apierrors.IsInvalid(err) {
		o.Log.Infow("workload cluster refused the claim", "error", err)
		reportRefused(tenant, err)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	tenant.Status = *current.Status.DeepCopy()
	return 0, nil
}

// ensureWorkloadClaim returns the workload PVC of a tenant PVC, creating it
// (and its namespace) from the tenant's spec.
func (c *Controller) ensureWorkloadClaim(ctx context.Context, m *fleet.Member, cluster logicalcluster.Name, ns string, tenant *corev1.PersistentVolumeClaim) (*corev1.PersistentVolumeClaim, error) {
	existing, err := m.Claims.PersistentVolumeClaims(ns).Get(tenant.Name)
	if err == nil {
		return existing, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	labels, err := c.fleet.NamespaceLabels(cluster.String())
	if err != nil {
		return nil, err
	}
	if err := workload.EnsureNamespace(ctx, m.Client, c.fleet.Isolation(), cluster, tenant.Namespace, labels); err != nil {
		return nil, err
	}
	created, err := m.Client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, forWorkload(cluster, ns, tenant), metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return m.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, tenant.Name, metav1.GetOptions{})
	}
	return created, err
}

// forWorkload is the workload PVC of a tenant PVC: the same name and claim
// in the tenant's workload namespace, bound to a workload volume.
func forWorkload(cluster logicalcluster.Name, ns string, tenant *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
	spec := tenant.Spec.DeepCopy()
	spec.VolumeName = "" // tenant volumes are workload volumes: none named in kcp
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name:      tenant.Name,
			Namespace: ns,
			Labels: map[string]string{
				workload.LabelManagedBy:   workload.ManagedByValue,
				workload.LabelClusterName: cluster.String(),
			},
			Annotations: map[string]string{workload.AnnotationClusterNS: workload.TenantAnnotation(cluster, tenant.Namespace)},
		},
		Spec: *spec,
	}
	return pvc
}

// reportRefused records on the tenant PVC why the workload cluster refused
// it (once per message).
func reportRefused(tenant *corev1.PersistentVolumeClaim, refusal error) {
	cond := corev1.PersistentVolumeClaimCondition{
		Type: ConditionWorkloadSynced, Status: corev1.ConditionFalse, Reason: "Invalid",
		Message: fmt.Sprintf("the workload cluster refused the claim: %v", refusal),
	}
	for _, existing := range tenant.Status.Conditions {
		if existing.Type == cond.Type && existing.Message == cond.Message {
			return
		}
	}
	tenant.Status.Phase = corev1.ClaimPending
	cond.LastTransitionTime = metav1.Now()
	tenant.Status.Conditions = append(tenant.Status.Conditions, cond)
}

// collectDeleted deletes the workload PVC of the tenant PVC last deleted
// under key, unless that claim is the one now under key (current; empty
// when none is). The workload PVC stays while a pod uses it, as on
// Kubernetes; the tenant PVC went at once (reconciler.Tombstones says
// why). A cluster that does not answer is left to the garbage collector.
func (c *Controller) collectDeleted(ctx context.Context, key string, current types.UID) error {
	gone := c.deleted.Get(key)
	if gone == nil || gone.GetUID() == current {
		return nil
	}
	m := c.fleet.Member(placement.Of(gone))
	if m != nil && m.Reachable() {
		ns := workload.Namespace(logicalcluster.From(gone), gone.GetNamespace())
		err := m.Client.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, gone.GetName(), metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	c.deleted.Forget(key, gone)
	return nil
}

// finalize deletes the workload PVC of a tenant PVC that still carries the
// finalizer of earlier versions, and removes the finalizer once the
// workload PVC is gone. Nothing adds it any more.
func (c *Controller) finalize(ctx context.Context, cluster logicalcluster.Name, u *unstructured.Unstructured, m *fleet.Member, ns, name string) error {
	if !c.finalizers.Has(u) {
		return nil
	}
	if m == nil || !m.Reachable() {
		return c.finalizers.Remove(ctx, cluster, u)
	}
	err := m.Client.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, name, metav1.DeleteOptions{})
	if err == nil {
		return nil // deleting; the workload PVC's deletion brings us back
	}
	if !apierrors.IsNotFound(err) {
		return err
	}
	return c.finalizers.Remove(ctx, cluster, u)
}
