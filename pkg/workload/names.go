// Package workload holds what the controller writes to workload clusters:
// the mapping of tenant (logical cluster, namespace) to a workload
// namespace, and the labels that lead from workload objects back to the
// tenant objects they were made for.
package workload

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"strings"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	"github.com/kcp-dev/logicalcluster/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Labels and annotations on workload objects.
const (
	LabelManagedBy       = "app.kubernetes.io/managed-by"
	ManagedByValue       = "pipelines-service"
	LabelClusterName     = "pipelines-service.dev/cluster"
	LabelNamespace       = "pipelines-service.dev/namespace"
	LabelTaskRunUID      = "pipelines-service.dev/taskrun-uid"
	AnnotationClusterNS  = "pipelines-service.dev/tenant" // "<cluster>/<namespace>"
	namespacePrefix      = "ps-"
	maxNamespaceLength   = 63
	hashedNamespaceChars = 24
)

// Namespace is the workload namespace holding the objects of one tenant
// namespace in one logical cluster.
//
// Logical cluster names never contain '-' (they are "root" or base36
// hashes), so "ps-<cluster>-<namespace>" is injective. Where that exceeds
// 63 characters, the name is "ps-<cluster>-h<hash>"; the namespace carries
// the tenant in an annotation, and EnsureNamespace refuses a namespace
// annotated for another tenant, so two tenants never share one.
func Namespace(cluster logicalcluster.Name, namespace string) string {
	name := namespacePrefix + cluster.String() + "-" + namespace
	if len(name) <= maxNamespaceLength {
		return name
	}
	sum := sha256.Sum256([]byte(cluster.String() + "/" + namespace))
	hash := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))[:hashedNamespaceChars]
	prefix := namespacePrefix + cluster.String()
	if max := maxNamespaceLength - len(hash) - 2; len(prefix) > max {
		prefix = prefix[:max]
	}
	return prefix + "-h" + hash
}

// TenantAnnotation is the value of AnnotationClusterNS for a tenant namespace.
func TenantAnnotation(cluster logicalcluster.Name, namespace string) string {
	return cluster.String() + "/" + namespace
}

// NamespaceObject is the workload namespace object for a tenant namespace;
// extra are further labels (the Pod Security labels of the tenant's level).
func NamespaceObject(cluster logicalcluster.Name, namespace string, extra map[string]string) *corev1.Namespace {
	ns := &corev1.Namespace{}
	ns.Name = Namespace(cluster, namespace)
	ns.Labels = map[string]string{LabelManagedBy: ManagedByValue, LabelClusterName: cluster.String()}
	if len(namespace) <= 63 {
		ns.Labels[LabelNamespace] = namespace
	}
	for k, v := range extra {
		ns.Labels[k] = v
	}
	ns.Annotations = map[string]string{AnnotationClusterNS: TenantAnnotation(cluster, namespace)}
	return ns
}

// CheckOwner fails when an existing workload namespace belongs to another
// tenant namespace.
func CheckOwner(ns *corev1.Namespace, cluster logicalcluster.Name, namespace string) error {
	want := TenantAnnotation(cluster, namespace)
	if got := ns.Annotations[AnnotationClusterNS]; got != want {
		return fmt.Errorf("workload namespace %s belongs to %q, not %q", ns.Name, got, want)
	}
	return nil
}

// EnsureNamespace creates the workload namespace of a tenant namespace
// with labels, refusing one that belongs to another tenant, and puts
// labels back on an existing one where they were changed or removed. It
// also keeps the namespace isolated from every other (iso.Ensure).
func EnsureNamespace(ctx context.Context, client kubernetes.Interface, iso Isolation, cluster logicalcluster.Name, namespace string, labels map[string]string) error {
	want := NamespaceObject(cluster, namespace, labels)
	ns, err := client.CoreV1().Namespaces().Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = client.CoreV1().Namespaces().Create(ctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil // made meanwhile by another worker, which also isolates it
		}
	case err == nil:
		if err := CheckOwner(ns, cluster, namespace); err != nil {
			return err
		}
		err = EnsureNamespaceLabels(ctx, client, ns, labels)
	}
	if err != nil {
		return err
	}
	// The policy is in place before the namespace's first pod is created.
	return iso.Ensure(ctx, client, want.Name)
}

// NamespaceLabelsDiffer says ns lacks one of labels, or has another value.
func NamespaceLabelsDiffer(ns *corev1.Namespace, labels map[string]string) bool {
	return len(changedLabels(ns, labels)) > 0
}

func changedLabels(ns *corev1.Namespace, labels map[string]string) map[string]string {
	changed := map[string]string{}
	for k, v := range labels {
		if ns.Labels[k] != v {
			changed[k] = v
		}
	}
	return changed
}

// EnsureNamespaceLabels patches labels back onto ns where they differ.
func EnsureNamespaceLabels(ctx context.Context, client kubernetes.Interface, ns *corev1.Namespace, labels map[string]string) error {
	changed := changedLabels(ns, labels)
	if len(changed) == 0 {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": changed}})
	if err != nil {
		return err
	}
	_, err = client.CoreV1().Namespaces().Patch(ctx, ns.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// ManagedSelector restricts list/watch to objects the service made.
func ManagedSelector(opts *metav1.ListOptions) {
	opts.LabelSelector = LabelManagedBy + "=" + ManagedByValue
}

// Annotations leading from a workload object back to its tenant object.
const (
	AnnotationTaskRun = "pipelines-service.dev/taskrun" // "<namespace>/<name>" in the tenant workspace
)

// TenantKey is the cluster-aware queue key of the tenant TaskRun a
// workload object was made for.
func TenantKey(obj metav1.Object) (string, bool) {
	cluster := obj.GetLabels()[LabelClusterName]
	ref := obj.GetAnnotations()[AnnotationTaskRun]
	ns, name, ok := strings.Cut(ref, "/")
	if cluster == "" || !ok {
		return "", false
	}
	return kcpcache.ToClusterAwareKey(cluster, ns, name), true
}

// TenantObjectKey is the cluster-aware queue key of the tenant object of
// the same name a workload object was made for (e.g. a PVC).
func TenantObjectKey(obj metav1.Object) (string, bool) {
	cluster, ns, ok := strings.Cut(obj.GetAnnotations()[AnnotationClusterNS], "/")
	if !ok || cluster == "" || obj.GetLabels()[LabelClusterName] != cluster {
		return "", false
	}
	return kcpcache.ToClusterAwareKey(cluster, ns, obj.GetName()), true
}
