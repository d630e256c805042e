package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	"github.com/pipelines-service/pipelines-service/apis/fleet"
	fleetv1alpha1 "github.com/pipelines-service/pipelines-service/apis/fleet/v1alpha1"
)

// FleetNamespace is the provider workspace's namespace holding the
// kubeconfig Secrets of workload clusters.
const FleetNamespace = "pipelines-service"

var crdsResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// ensureFleetAPI installs the fleet API's CRDs in the provider workspace
// (they are the platform's, not exported) and the namespace of the
// kubeconfig Secrets, and waits until the CRDs are served.
func ensureFleetAPI(ctx context.Context, c Clients, provider logicalcluster.Path) error {
	crds, err := fleet.CRDs()
	if err != nil {
		return err
	}
	client := c.Dynamic.Cluster(provider).Resource(crdsResource)
	for _, crd := range crds {
		digest, err := specDigest(crd)
		if err != nil {
			return err
		}
		annotations := crd.GetAnnotations()
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[annotationSpecDigest] = digest
		crd.SetAnnotations(annotations)
		existing, err := client.Get(ctx, crd.GetName(), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = client.Create(ctx, crd, metav1.CreateOptions{})
		case err == nil && existing.GetAnnotations()[annotationSpecDigest] != digest:
			// The apiserver defaults a CRD's spec, so the one read back
			// never equals the one written: the digest of what was
			// written says whether it changed.
			crd.SetResourceVersion(existing.GetResourceVersion())
			_, err = client.Update(ctx, crd, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("CRD %s: %w", crd.GetName(), err)
		}
		if err := waitEstablished(ctx, c, provider, crd.GetName()); err != nil {
			return err
		}
	}
	namespaces := c.Kube.Cluster(provider).CoreV1().Namespaces()
	if _, err := namespaces.Get(ctx, FleetNamespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: FleetNamespace}}
	if _, err := namespaces.Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", FleetNamespace, err)
	}
	return nil
}

// annotationSpecDigest is the digest of the spec a CRD was last written
// with.
const annotationSpecDigest = "pipelines-service.dev/spec-digest"

func specDigest(crd *unstructured.Unstructured) (string, error) {
	data, err := json.Marshal(crd.Object["spec"])
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8]), nil
}

func waitEstablished(ctx context.Context, c Clients, provider logicalcluster.Path, name string) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		u, err := c.Dynamic.Cluster(provider).Resource(crdsResource).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, cond := range conds {
			m, _ := cond.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
}

// RegisterWorkloadCluster stores a workload cluster's kubeconfig in a
// Secret and creates or updates its WorkloadCluster in the provider
// workspace.
func RegisterWorkloadCluster(ctx context.Context, c Clients, provider logicalcluster.Path, name string, labels map[string]string, kubeconfig []byte, limits fleetv1alpha1.ClusterLimits) error {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-kubeconfig", Namespace: FleetNamespace},
		Data:       map[string][]byte{"kubeconfig": kubeconfig},
	}
	secrets := c.Kube.Cluster(provider).CoreV1().Secrets(FleetNamespace)
	if _, err := secrets.Create(ctx, secret, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		_, err = secrets.Update(ctx, secret, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("update Secret %s: %w", secret.Name, err)
		}
	} else if err != nil {
		return fmt.Errorf("create Secret %s: %w", secret.Name, err)
	}
	wc := &fleetv1alpha1.WorkloadCluster{
		TypeMeta:   metav1.TypeMeta{APIVersion: fleetv1alpha1.SchemeGroupVersion.String(), Kind: "WorkloadCluster"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: fleetv1alpha1.WorkloadClusterSpec{
			KubeconfigSecretRef: fleetv1alpha1.SecretKeyRef{Namespace: FleetNamespace, Name: secret.Name, Key: "kubeconfig"},
			Limits:              limits,
		},
	}
	return applySpec(ctx, c, provider, fleetv1alpha1.WorkloadClustersResource, wc)
}

// SetTenantPolicy creates or replaces the policy of a tenant workspace
// (its logical cluster name) or the default policy.
func SetTenantPolicy(ctx context.Context, c Clients, provider logicalcluster.Path, name string, spec fleetv1alpha1.TenantPolicySpec) error {
	policy := &fleetv1alpha1.TenantPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: fleetv1alpha1.SchemeGroupVersion.String(), Kind: "TenantPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       spec,
	}
	return applySpec(ctx, c, provider, fleetv1alpha1.TenantPoliciesResource, policy)
}

// DeleteTenantPolicy deletes the policy of a tenant workspace.
func DeleteTenantPolicy(ctx context.Context, c Clients, provider logicalcluster.Path, name string) error {
	err := c.Dynamic.Cluster(provider).Resource(fleetv1alpha1.TenantPoliciesResource).Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// applySpec creates obj or replaces the labels and spec of the existing
// object of its name.
func applySpec(ctx context.Context, c Clients, provider logicalcluster.Path, resource schema.GroupVersionResource, obj any) error {
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	want := &unstructured.Unstructured{Object: content}
	unstructured.RemoveNestedField(want.Object, "status")
	client := c.Dynamic.Cluster(provider).Resource(resource)
	// The controller writes these objects' status (a WorkloadCluster's
	// heartbeat): an update from a stale read is retried on the latest,
	// and an unchanged object is not written at all.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		existing, err := client.Get(ctx, want.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = client.Create(ctx, want, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		if equality.Semantic.DeepEqual(existing.GetLabels(), want.GetLabels()) && equality.Semantic.DeepEqual(existing.Object["spec"], want.Object["spec"]) {
			return nil
		}
		existing.SetLabels(want.GetLabels())
		existing.Object["spec"] = want.Object["spec"]
		_, err = client.Update(ctx, existing, metav1.UpdateOptions{})
		return err
	})
	return wrap(err, "apply %s %s", resource.Resource, want.GetName())
}
