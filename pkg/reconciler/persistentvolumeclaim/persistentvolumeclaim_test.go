package persistentvolumeclaim

import (
	"testing"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	"github.com/kcp-dev/logicalcluster/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// TestWorkloadClaimLeadsBackToTheTenantClaim: the workload PVC keeps the
// tenant's claim (not its volume name), is labelled as ours, and its
// annotations give back the tenant PVC's queue key.
func TestWorkloadClaimLeadsBackToTheTenantClaim(t *testing.T) {
	cluster := logicalcluster.Name("abc123")
	tenant := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "cache", Namespace: "team"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			VolumeName:  "pv-in-some-other-cluster",
		},
	}
	ns := workload.Namespace(cluster, tenant.Namespace)
	got := forWorkload(cluster, ns, tenant)
	if got.Namespace != ns || got.Name != "cache" || got.Spec.VolumeName != "" {
		t.Errorf("workload PVC %s/%s volume %q", got.Namespace, got.Name, got.Spec.VolumeName)
	}
	if !got.Spec.Resources.Requests.Storage().Equal(resource.MustParse("1Gi")) || len(got.Spec.AccessModes) != 1 {
		t.Errorf("claim not kept: %+v", got.Spec)
	}
	if got.Labels[workload.LabelManagedBy] != workload.ManagedByValue {
		t.Errorf("labels %v", got.Labels)
	}
	key, ok := workload.TenantObjectKey(got)
	if want := kcpcache.ToClusterAwareKey("abc123", "team", "cache"); !ok || key != want {
		t.Errorf("key %q, %v; want %q", key, ok, want)
	}
}
